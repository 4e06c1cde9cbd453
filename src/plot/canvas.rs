//! An RGB pixel buffer that figures are composed on: direct pixel writes for
//! images and frames, plotters for text and charts, then PNG encoding.
//!
//! Also the text helpers. plotters' `ab_glyph` backend places a top-anchored
//! line of text about 0.13 em above the point asked for (its baseline sits
//! at half the font size), so titles drawn at y = 0 lose the tops of their
//! capitals; [`draw_text`] corrects for that, and [`line_height`] is the
//! vertical room one line needs.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{ensure_font, image_error, Figure, FONT_FAMILY};
use crate::Result;

/// Largest side of any figure, in pixels.
pub(crate) const MAX_SIDE: u32 = 16_384;
/// Largest figure area, in pixels (≈150 MB of RGB).
pub(crate) const MAX_PIXELS: u64 = 50_000_000;

/// What a plotters drawing closure returns; any plotters error fits.
pub(crate) type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

/// The drawing area handed to plotters closures.
pub(crate) type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// rgb: [height, width, 3] uint8, starts white.
pub(crate) struct Canvas {
    pub width: u32,
    pub height: u32,
    rgb: Vec<u8>,
}

impl Canvas {
    /// A white canvas; refuses empty or absurdly large sizes instead of
    /// letting an allocation or plotters fail.
    pub fn new(width: u32, height: u32) -> Result<Canvas> {
        if width == 0 || height == 0 {
            return Err(image_error(format!("figure would be empty ({width}x{height} pixels)")));
        }
        if width > MAX_SIDE || height > MAX_SIDE || width as u64 * height as u64 > MAX_PIXELS {
            return Err(image_error(format!(
                "figure would be {width}x{height} pixels; the limit is {MAX_SIDE} per side \
                 and {MAX_PIXELS} in all"
            )));
        }
        ensure_font();
        Ok(Canvas { width, height, rgb: vec![255; width as usize * height as usize * 3] })
    }

    /// Sets one pixel; coordinates outside the canvas are ignored.
    pub fn put(&mut self, x: i64, y: i64, color: [u8; 3]) {
        if x < 0 || y < 0 || x >= self.width as i64 || y >= self.height as i64 {
            return;
        }
        let i = (y as usize * self.width as usize + x as usize) * 3;
        self.rgb[i..i + 3].copy_from_slice(&color);
    }

    /// Fills the rectangle at (x, y) of size w×h, clipped to the canvas.
    pub fn fill_rect(&mut self, x: i64, y: i64, w: i64, h: i64, color: [u8; 3]) {
        for yy in y.max(0)..(y + h).min(self.height as i64) {
            for xx in x.max(0)..(x + w).min(self.width as i64) {
                self.put(xx, yy, color);
            }
        }
    }

    /// A frame `thickness` pixels wide drawn just outside the rectangle
    /// (x, y, w, h), so it never covers what the rectangle shows.
    pub fn frame_around(&mut self, x: i64, y: i64, w: i64, h: i64, thickness: i64, color: [u8; 3]) {
        let t = thickness;
        self.fill_rect(x - t, y - t, w + 2 * t, t, color); // top
        self.fill_rect(x - t, y + h, w + 2 * t, t, color); // bottom
        self.fill_rect(x - t, y, t, h, color); // left
        self.fill_rect(x + w, y, t, h, color); // right
    }

    /// Copies an RGB image with its top-left corner at (x, y), clipped.
    pub fn blit(&mut self, img: &image::RgbImage, x: i64, y: i64) {
        for (px, py, p) in img.enumerate_pixels() {
            self.put(x + px as i64, y + py as i64, p.0);
        }
    }

    /// Runs plotters drawing code on the canvas (over what is already there).
    pub fn draw<F>(&mut self, f: F) -> Result<()>
    where
        F: FnOnce(&Area<'_>) -> DrawResult,
    {
        let (w, h) = (self.width, self.height);
        let root = BitMapBackend::with_buffer(&mut self.rgb, (w, h)).into_drawing_area();
        f(&root).map_err(image_error)?;
        root.present().map_err(image_error)?;
        Ok(())
    }

    pub fn into_figure(self) -> Result<Figure> {
        Figure::from_rgb(self.width, self.height, &self.rgb)
    }
}

/// The embedded font at `size` pixels.
pub(crate) fn font(size: f64) -> FontDesc<'static> {
    ensure_font();
    (FONT_FAMILY, size).into_font()
}

/// Width in pixels of `text` at `size`.
pub(crate) fn text_width(text: &str, size: f64) -> Result<u32> {
    if text.is_empty() {
        return Ok(0);
    }
    let (w, _) = font(size).box_size(text).map_err(image_error)?;
    Ok(w)
}

/// Widest of `texts` at `size` (0 for none).
pub(crate) fn max_text_width(texts: &[String], size: f64) -> Result<u32> {
    texts.iter().try_fold(0, |m, t| Ok(m.max(text_width(t, size)?)))
}

/// Vertical room for one line of text at `size`, accents and descenders included.
pub(crate) fn line_height(size: f64) -> u32 {
    size.ceil() as u32
}

/// Draws one line of text whose line box (see [`line_height`]) starts at
/// `y_top`; `h` says whether `x` is its left end, centre or right end.
pub(crate) fn draw_text(
    area: &Area<'_>,
    text: &str,
    size: f64,
    color: RGBColor,
    (x, y_top): (i32, i32),
    h: HPos,
) -> DrawResult {
    if text.is_empty() {
        return Ok(());
    }
    let style = font(size).color(&color).pos(Pos::new(h, VPos::Top));
    // Compensates the backend's upward shift (module docs).
    let y = y_top + (0.2 * size).round() as i32;
    area.draw_text(text, &style, (x, y))?;
    Ok(())
}

/// Like [`draw_text`], centred vertically on `y_center`.
pub(crate) fn draw_text_vcenter(
    area: &Area<'_>,
    text: &str,
    size: f64,
    color: RGBColor,
    (x, y_center): (i32, i32),
    h: HPos,
) -> DrawResult {
    let y_top = y_center - (line_height(size) / 2) as i32;
    draw_text(area, text, size, color, (x, y_top), h)
}

/// `text` shortened with an ellipsis to at most `max_width` pixels at `size`.
pub(crate) fn truncate_to_width(text: &str, size: f64, max_width: u32) -> Result<String> {
    if text_width(text, size)? <= max_width {
        return Ok(text.to_string());
    }
    let chars: Vec<char> = text.chars().collect();
    for keep in (0..chars.len()).rev() {
        let candidate: String = chars[..keep].iter().chain(std::iter::once(&'…')).collect();
        if text_width(&candidate, size)? <= max_width {
            return Ok(candidate);
        }
    }
    Ok(String::new())
}

/// A number for a tick or a caption: short, without trailing zeros.
/// A value captioned on a chart (a bar's height): about three significant digits,
/// e.g. 93.8, 1.40, 0.512.
pub(crate) fn fmt_caption(v: f64) -> String {
    let a = v.abs();
    if !v.is_finite() || !(1e-3..1e5).contains(&a) {
        return fmt_number(v);
    }
    let digits = if a >= 10.0 {
        1
    } else if a >= 1.0 {
        2
    } else {
        3
    };
    format!("{v:.digits$}")
}

pub(crate) fn fmt_number(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return if v.is_finite() { "0".to_string() } else { v.to_string() };
    }
    let a = v.abs();
    if !(1e-3..1e5).contains(&a) {
        return format!("{v:.2e}");
    }
    let digits = if a >= 100.0 { 1 } else { 4 };
    let s = format!("{v:.digits$}");
    let s = if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.') } else { &s };
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::fmt_caption;

    #[test]
    fn captions_keep_about_three_significant_digits() {
        assert_eq!(fmt_caption(93.833_333), "93.8");
        assert_eq!(fmt_caption(99.166_7), "99.2");
        assert_eq!(fmt_caption(1.401_1), "1.40");
        assert_eq!(fmt_caption(0.512_34), "0.512");
        assert_eq!(fmt_caption(-12.25), "-12.2");
    }
}
