//! Labelled grids of grey-scale images: samples per condition,
//! reconstructions next to originals, marked good/bad examples.

use ndarray::ArrayView3;
use plotters::style::text_anchor::HPos;
use plotters::style::RGBColor;

use super::canvas::{draw_text, draw_text_vcenter, line_height, max_text_width, text_width, Canvas, DrawResult};
use super::{image_error, Figure};
use crate::{Error, Result};

/// How a grid cell is marked (the Sign study marked good examples red and bad ones yellow).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mark {
    #[default]
    None,
    Good,
    Bad,
}

impl Mark {
    /// Frame colour: Good = red, Bad = yellow (a dark enough yellow to see on white).
    pub fn color(self) -> Option<[u8; 3]> {
        match self {
            Mark::None => None,
            Mark::Good => Some([255, 0, 0]),
            Mark::Bad => Some([255, 200, 0]),
        }
    }
}

/// What to draw and how; label and mark lists are either empty or complete.
#[derive(Clone, Copy, Debug)]
pub struct GridSpec<'a> {
    pub title: &'a str,
    pub rows: usize,
    pub cols: usize,
    /// empty, or one per row (drawn left of the row)
    pub row_labels: &'a [String],
    /// empty, or one per column (drawn above)
    pub col_labels: &'a [String],
    /// empty, or one per cell (small caption under each image), row-major
    pub cell_labels: &'a [String],
    /// empty, or one per cell: a 2-px coloured frame (Good = red, Bad = yellow)
    pub marks: &'a [Mark],
    /// pixels per image pixel, e.g. 3
    pub scale: u32,
    /// empty, or a one-line key under the grid: each piece's text, after a
    /// small frame in its mark's colour (none for Mark::None)
    pub legend: &'a [(&'a str, Mark)],
}

impl<'a> GridSpec<'a> {
    /// A grid with no labels or marks, at scale 3.
    pub fn new(title: &'a str, rows: usize, cols: usize) -> GridSpec<'a> {
        GridSpec {
            title,
            rows,
            cols,
            row_labels: &[],
            col_labels: &[],
            cell_labels: &[],
            marks: &[],
            scale: 3,
            legend: &[],
        }
    }
}

/// Outer margin of a grid figure.
const MARGIN: u32 = 10;
/// Space between neighbouring cells; holds both cells' frames.
const GAP: u32 = 8;
/// Space between row labels and the first column.
const LABEL_GAP: u32 = 10;
/// Width of a mark's frame.
pub const MARK_WIDTH: u32 = 2;
const TITLE_SIZE: f64 = 20.0;
const LABEL_SIZE: f64 = 14.0;
const CAPTION_SIZE: f64 = 11.0;
const LEGEND_SIZE: f64 = 13.0;
/// Side of a legend piece's frame, and the space after it and after its text.
const LEGEND_BOX: u32 = 12;
const LEGEND_GAP: u32 = 16;

/// Where everything of a grid goes, in pixels; computed from the spec alone,
/// so callers (and tests) can find a cell in the rendered figure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GridLayout {
    pub width: u32,
    pub height: u32,
    pub rows: usize,
    pub cols: usize,
    /// Size of one image on the figure (image size × scale).
    pub cell_width: u32,
    pub cell_height: u32,
    /// Top-left corner of the first image and the distance between images.
    origin: (u32, u32),
    pitch: (u32, u32),
    title_height: u32,
    /// x where the row labels end (they are right-aligned there).
    row_label_right: u32,
    /// y of the legend line (the figure's height when there is none).
    legend_top: u32,
    /// x of each legend piece.
    legend_x: Vec<LegendX>,
}

impl GridLayout {
    /// Layout of `spec` for images of img_height × img_width pixels; checks the
    /// spec (label and mark counts, scale, size) against itself.
    pub fn new(spec: &GridSpec, img_height: usize, img_width: usize) -> Result<GridLayout> {
        check_spec(spec)?;
        if img_height == 0 || img_width == 0 {
            return Err(image_error(format!("grid `{}`: images are {img_height}x{img_width}", spec.title)));
        }
        let too_big = || image_error(format!("grid `{}` would be too large", spec.title));
        let cell_width = u32::try_from(img_width).ok().and_then(|w| w.checked_mul(spec.scale)).ok_or_else(too_big)?;
        let cell_height = u32::try_from(img_height).ok().and_then(|h| h.checked_mul(spec.scale)).ok_or_else(too_big)?;

        let title_height = if spec.title.is_empty() { 0 } else { line_height(TITLE_SIZE) + 8 };
        let col_header = if spec.col_labels.is_empty() { 0 } else { line_height(LABEL_SIZE) + 4 };
        let caption_height = if spec.cell_labels.is_empty() { 0 } else { line_height(CAPTION_SIZE) + 4 };
        let row_header =
            if spec.row_labels.is_empty() { 0 } else { max_text_width(spec.row_labels, LABEL_SIZE)? + LABEL_GAP };
        // Columns widen to fit their labels and captions rather than clip them.
        let content_width = cell_width
            .max(max_text_width(spec.col_labels, LABEL_SIZE)?)
            .max(max_text_width(spec.cell_labels, CAPTION_SIZE)?);
        let pitch_x = content_width as u64 + GAP as u64;
        let pitch_y = cell_height as u64 + caption_height as u64 + GAP as u64;
        // Saturating: absurd row/column counts must end in the size error below.
        let grid_width = (spec.cols as u64).saturating_mul(pitch_x) - GAP as u64;
        let grid_height = (spec.rows as u64).saturating_mul(pitch_y) - GAP as u64;
        let title_width = text_width(spec.title, TITLE_SIZE)? as u64;
        let (legend_x, legend_width) = legend_positions(spec.legend)?;
        let legend_width = legend_width as u64;
        let legend_height = if spec.legend.is_empty() { 0 } else { line_height(LEGEND_SIZE) + GAP };
        let width = (row_header as u64)
            .saturating_add(grid_width)
            .max(title_width)
            .max(legend_width)
            .saturating_add(2 * MARGIN as u64);
        let height = (title_height as u64 + col_header as u64 + legend_height as u64 + 2 * MARGIN as u64)
            .saturating_add(grid_height);
        if width > super::canvas::MAX_SIDE as u64 || height > super::canvas::MAX_SIDE as u64 {
            return Err(image_error(format!(
                "grid `{}` would be {width}x{height} pixels; the limit is {} per side \
                 (fewer cells or a smaller scale)",
                spec.title,
                super::canvas::MAX_SIDE
            )));
        }
        // Images sit centred in columns that labels made wider.
        let origin_x = MARGIN + row_header + (content_width - cell_width) / 2;
        let origin_y = MARGIN + title_height + col_header;
        Ok(GridLayout {
            width: width as u32,
            height: height as u32,
            rows: spec.rows,
            cols: spec.cols,
            cell_width,
            cell_height,
            origin: (origin_x, origin_y),
            pitch: (pitch_x as u32, pitch_y as u32),
            title_height,
            row_label_right: MARGIN + row_header.saturating_sub(LABEL_GAP),
            legend_top: (height as u32).saturating_sub(MARGIN + line_height(LEGEND_SIZE)),
            legend_x,
        })
    }

    /// The image rectangle (x, y, width, height) of cell `index` (row-major);
    /// an index past the last cell lies off the figure.
    pub fn cell(&self, index: usize) -> (u32, u32, u32, u32) {
        let (r, c) = (index / self.cols.max(1), index % self.cols.max(1));
        let at = |origin: u32, k: usize, pitch: u32| {
            let v = origin as u64 + (k as u64).saturating_mul(pitch as u64);
            v.min(u32::MAX as u64) as u32
        };
        (at(self.origin.0, c, self.pitch.0), at(self.origin.1, r, self.pitch.1), self.cell_width, self.cell_height)
    }
}

/// A legend piece's x: its frame (when it has a mark colour) and its text.
type LegendX = (Option<u32>, u32);

/// Where each legend piece goes, left to right from the margin: the x of its frame (if it
/// has a mark colour) and of its text; and the width of the whole line.
fn legend_positions(legend: &[(&str, Mark)]) -> Result<(Vec<LegendX>, u32)> {
    let mut x = MARGIN;
    let mut positions = Vec::with_capacity(legend.len());
    for (text, mark) in legend {
        let frame = mark.color().map(|_| x);
        if frame.is_some() {
            x = x.saturating_add(LEGEND_BOX + 6);
        }
        positions.push((frame, x));
        x = x.saturating_add(text_width(text, LEGEND_SIZE)? + LEGEND_GAP);
    }
    let width = if legend.is_empty() { 0 } else { x - MARGIN - LEGEND_GAP };
    Ok((positions, width))
}

fn check_spec(spec: &GridSpec) -> Result<()> {
    let t = spec.title;
    if spec.rows == 0 || spec.cols == 0 {
        return Err(image_error(format!("grid `{t}` has {} rows and {} columns", spec.rows, spec.cols)));
    }
    if spec.scale == 0 {
        return Err(image_error(format!("grid `{t}`: scale must be at least 1")));
    }
    let cells = spec.rows.saturating_mul(spec.cols);
    let counts = [
        ("row labels", spec.row_labels.len(), spec.rows, "rows"),
        ("column labels", spec.col_labels.len(), spec.cols, "columns"),
        ("cell labels", spec.cell_labels.len(), cells, "cells"),
        ("marks", spec.marks.len(), cells, "cells"),
    ];
    for (what, got, want, unit) in counts {
        if got != 0 && got != want {
            return Err(Error::Mismatch {
                message: format!(
                    "grid `{t}`: {got} {what} for {want} {unit} (give none or one per {})",
                    &unit[..unit.len() - 1]
                ),
            });
        }
    }
    Ok(())
}

/// A labelled grid of grey-scale images (0 = black, 255 = white).
///
/// images: [n, 28, 28] uint8 with n <= rows*cols, filled row-major; other
/// image sizes work too. Cells past n stay empty (their labels and marks are
/// still drawn).
pub fn image_grid(images: ArrayView3<u8>, spec: &GridSpec) -> Result<Figure> {
    let (n, h, w) = images.dim();
    let layout = GridLayout::new(spec, h, w)?;
    if n > spec.rows * spec.cols {
        return Err(Error::Mismatch {
            message: format!(
                "grid `{}`: {n} images for {}x{} = {} cells",
                spec.title,
                spec.rows,
                spec.cols,
                spec.rows * spec.cols
            ),
        });
    }
    let mut canvas = Canvas::new(layout.width, layout.height)?;
    let s = spec.scale as i64;
    for i in 0..n {
        let (x0, y0, _, _) = layout.cell(i);
        for y in 0..h {
            for x in 0..w {
                let v = images[[i, y, x]];
                canvas.fill_rect(x0 as i64 + x as i64 * s, y0 as i64 + y as i64 * s, s, s, [v, v, v]);
            }
        }
    }
    for (i, mark) in spec.marks.iter().enumerate() {
        if let Some(color) = mark.color() {
            let (x, y, cw, ch) = layout.cell(i);
            canvas.frame_around(x as i64, y as i64, cw as i64, ch as i64, MARK_WIDTH as i64, color);
        }
    }
    // The legend's frames; draw_labels writes their texts.
    for ((_, mark), (frame_x, _)) in spec.legend.iter().zip(&layout.legend_x) {
        if let (Some(color), Some(x)) = (mark.color(), frame_x) {
            let (size, y) = (LEGEND_BOX as i64, layout.legend_top as i64 + 1);
            canvas.frame_around(*x as i64 + 2, y + 2, size - 4, size - 4, MARK_WIDTH as i64, color);
        }
    }
    canvas.draw(|root| draw_labels(root, spec, &layout))?;
    canvas.into_figure()
}

fn draw_labels(root: &super::canvas::Area<'_>, spec: &GridSpec, layout: &GridLayout) -> DrawResult {
    let black = RGBColor(0, 0, 0);
    let grey = RGBColor(60, 60, 60);
    draw_text(root, spec.title, TITLE_SIZE, black, (layout.width as i32 / 2, MARGIN as i32), HPos::Center)?;
    let (cw, ch) = (layout.cell_width as i32, layout.cell_height as i32);
    for (c, label) in spec.col_labels.iter().enumerate() {
        let (x, _, _, _) = layout.cell(c);
        let y = (MARGIN + layout.title_height) as i32;
        draw_text(root, label, LABEL_SIZE, black, (x as i32 + cw / 2, y), HPos::Center)?;
    }
    for (r, label) in spec.row_labels.iter().enumerate() {
        let (_, y, _, _) = layout.cell(r * spec.cols);
        let x = layout.row_label_right as i32;
        draw_text_vcenter(root, label, LABEL_SIZE, black, (x, y as i32 + ch / 2), HPos::Right)?;
    }
    for (i, label) in spec.cell_labels.iter().enumerate() {
        let (x, y, _, _) = layout.cell(i);
        // Below the image and below a mark's frame.
        let y_top = y as i32 + ch + MARK_WIDTH as i32 + 1;
        draw_text(root, label, CAPTION_SIZE, grey, (x as i32 + cw / 2, y_top), HPos::Center)?;
    }
    for ((text, _), (_, x)) in spec.legend.iter().zip(&layout.legend_x) {
        draw_text(root, text, LEGEND_SIZE, black, (*x as i32, layout.legend_top as i32), HPos::Left)?;
    }
    Ok(())
}
