//! Figures: labelled image grids and charts as PNG (plotters + image).
//!
//! Every function returns a [`Figure`] (PNG bytes plus size) that can be
//! written with [`Figure::save`] or shown inline in an evcxr notebook with
//! [`Figure::evcxr_display`].
//!
//! - [`grid`]: [`image_grid`], a labelled grid of 28×28 grey-scale images.
//! - [`chart`]: [`line_chart`] and [`bar_chart`].
//! - [`compose`]: [`side_by_side`], figures next to each other with captions.
//!
//! Text uses the embedded DejaVu Sans (see `DejaVuSans-LICENSE.txt`),
//! registered with plotters as `"sans-serif"`: plotters' `ab_glyph` backend
//! loads no system fonts, so figures look the same on every machine. The
//! font has no CJK glyphs; labels are Latin text supplied by callers.

mod canvas;
pub mod chart;
pub mod compose;
pub mod grid;

use std::path::{Path, PathBuf};
use std::sync::Once;

use base64::Engine as _;

use crate::{Error, Result};

pub use chart::{bar_chart, line_chart, line_chart_equal_axes, Series, CHART_HEIGHT, CHART_WIDTH};
pub use compose::side_by_side;
pub use grid::{image_grid, GridLayout, GridSpec, Mark};

/// DejaVu Sans, embedded so that no system font is needed.
const DEJAVU_SANS: &[u8] = include_bytes!("DejaVuSans.ttf");

/// The family name every figure draws its text with.
pub(crate) const FONT_FAMILY: &str = "sans-serif";

static FONT: Once = Once::new();

/// Registers the embedded font with plotters, once per process.
///
/// A registration failure is not reported here: drawing text then fails with
/// plotters' "font unavailable", which becomes an [`Error::Image`].
pub(crate) fn ensure_font() {
    FONT.call_once(|| {
        let _ = plotters::style::register_font(FONT_FAMILY, plotters::style::FontStyle::Normal, DEJAVU_SANS);
    });
}

/// An in-memory rendering error (no file involved yet).
pub(crate) fn image_error(message: impl std::fmt::Display) -> Error {
    Error::Image { path: PathBuf::new(), message: message.to_string() }
}

/// A rendered figure: PNG bytes plus its size in pixels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Figure {
    pub png: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

impl Figure {
    /// Encodes an RGB buffer as PNG.
    ///
    /// rgb: [height, width, 3] uint8, row-major.
    pub fn from_rgb(width: u32, height: u32, rgb: &[u8]) -> Result<Figure> {
        use image::ImageEncoder as _;
        if rgb.len() as u64 != width as u64 * height as u64 * 3 {
            return Err(image_error(format!(
                "RGB buffer holds {} bytes, a {width}x{height} image needs {}",
                rgb.len(),
                width as u64 * height as u64 * 3
            )));
        }
        let mut png = Vec::new();
        image::codecs::png::PngEncoder::new(&mut png)
            .write_image(rgb, width, height, image::ExtendedColorType::Rgb8)
            .map_err(image_error)?;
        Ok(Figure { png, width, height })
    }

    /// Encodes a grey-scale buffer as an 8-bit grey PNG, compressed as hard as
    /// the encoder can: for images embedded in HTML, where bytes matter more
    /// than milliseconds of encoding. Both unfiltered and adaptively filtered
    /// rows are tried and the smaller kept: images of few grey levels and sharp
    /// strokes compress best unfiltered, smooth photographs filtered.
    ///
    /// grey: [height, width] uint8, row-major.
    pub fn from_grey(width: u32, height: u32, grey: &[u8]) -> Result<Figure> {
        use image::codecs::png::{CompressionType, FilterType, PngEncoder};
        use image::ImageEncoder as _;
        if grey.len() as u64 != width as u64 * height as u64 {
            return Err(image_error(format!(
                "grey buffer holds {} bytes, a {width}x{height} image needs {}",
                grey.len(),
                width as u64 * height as u64
            )));
        }
        let encode = |filter: FilterType| -> Result<Vec<u8>> {
            let mut png = Vec::new();
            PngEncoder::new_with_quality(&mut png, CompressionType::Best, filter)
                .write_image(grey, width, height, image::ExtendedColorType::L8)
                .map_err(image_error)?;
            Ok(png)
        };
        let (unfiltered, filtered) = (encode(FilterType::NoFilter)?, encode(FilterType::Adaptive)?);
        let png = if unfiltered.len() <= filtered.len() { unfiltered } else { filtered };
        Ok(Figure { png, width, height })
    }

    /// Wraps PNG bytes (e.g. a figure read back from disk), reading its size.
    pub fn from_png(png: Vec<u8>) -> Result<Figure> {
        let (width, height) = image::ImageReader::with_format(std::io::Cursor::new(&png), image::ImageFormat::Png)
            .into_dimensions()
            .map_err(image_error)?;
        Ok(Figure { png, width, height })
    }

    /// Decodes the PNG into RGB pixels (for composing figures).
    pub fn to_rgb(&self) -> Result<image::RgbImage> {
        let img = image::load_from_memory_with_format(&self.png, image::ImageFormat::Png).map_err(image_error)?;
        Ok(img.to_rgb8())
    }

    /// Writes the PNG to `path` atomically: a temporary file in the same
    /// directory, renamed over `path`, so readers never see half a file.
    /// Missing parent directories are created.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::files::write_atomic(path, &self.png)
    }

    /// The PNG bytes in standard base64 (what notebooks and HTML embed).
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.png)
    }

    /// The figure as a `data:image/png;base64,…` URI, for an `<img src>` in self-contained HTML.
    pub fn data_uri(&self) -> String {
        format!("data:image/png;base64,{}", self.to_base64())
    }

    /// The evcxr rich-output block for this figure (what [`Figure::evcxr_display`] prints).
    pub fn evcxr_content(&self) -> String {
        format!("EVCXR_BEGIN_CONTENT image/png\n{}\nEVCXR_END_CONTENT", self.to_base64())
    }

    /// Shows the figure inline in an evcxr (Jupyter) notebook.
    pub fn evcxr_display(&self) {
        println!("{}", self.evcxr_content());
    }
}
