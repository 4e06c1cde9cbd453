//! Figures side by side, e.g. "CVAE vs CGAN".

use plotters::style::text_anchor::HPos;
use plotters::style::RGBColor;

use super::canvas::{draw_text, line_height, text_width, Canvas};
use super::{image_error, Figure};
use crate::Result;

const MARGIN: u32 = 10;
/// Space between neighbouring figures.
const GAP: u32 = 20;
const CAPTION_SIZE: f64 = 22.0;

/// Several figures side by side, top-aligned on white, each with its
/// caption (empty for none) centred above it.
///
/// figures: (caption, figure) pairs, left to right; at least one.
pub fn side_by_side(figures: &[(&str, &Figure)]) -> Result<Figure> {
    if figures.is_empty() {
        return Err(image_error("side_by_side: no figures to place"));
    }
    let images = figures.iter().map(|(_, f)| f.to_rgb()).collect::<Result<Vec<_>>>()?;
    let caption_height = if figures.iter().any(|(c, _)| !c.is_empty()) { line_height(CAPTION_SIZE) + 8 } else { 0 };
    // A caption wider than its figure widens the figure's slot.
    let mut slots = Vec::with_capacity(figures.len());
    for ((caption, _), img) in figures.iter().zip(&images) {
        slots.push(img.width().max(text_width(caption, CAPTION_SIZE)? + 8) as u64);
    }
    let width = 2 * MARGIN as u64 + slots.iter().sum::<u64>() + GAP as u64 * (slots.len() as u64 - 1);
    let tallest = images.iter().map(|i| i.height() as u64).max().unwrap_or(0);
    let height = 2 * MARGIN as u64 + caption_height as u64 + tallest;
    let width = u32::try_from(width).map_err(|_| image_error("side_by_side: figure too wide"))?;
    let height = u32::try_from(height).map_err(|_| image_error("side_by_side: figure too tall"))?;

    let mut canvas = Canvas::new(width, height)?;
    let mut x = MARGIN as i64;
    let mut centres = Vec::with_capacity(slots.len());
    for (img, &slot) in images.iter().zip(&slots) {
        let left = x + (slot as i64 - img.width() as i64) / 2;
        canvas.blit(img, left, (MARGIN + caption_height) as i64);
        centres.push((x + slot as i64 / 2) as i32);
        x += slot as i64 + GAP as i64;
    }
    canvas.draw(|root| {
        for ((caption, _), &cx) in figures.iter().zip(&centres) {
            draw_text(root, caption, CAPTION_SIZE, RGBColor(0, 0, 0), (cx, MARGIN as i32), HPos::Center)?;
        }
        Ok(())
    })?;
    canvas.into_figure()
}
