//! Line charts (training curves) and bar charts (per-class scores).

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::canvas::{
    draw_text, draw_text_vcenter, fmt_caption, fmt_number, font, line_height, max_text_width, text_width,
    truncate_to_width, Area, Canvas,
};
use super::{image_error, Figure};
use crate::{Error, Result};

/// Default chart size in pixels.
pub const CHART_WIDTH: u32 = 800;
pub const CHART_HEIGHT: u32 = 480;

const TITLE_SIZE: f64 = 22.0;
const DESC_SIZE: f64 = 16.0;
const TICK_SIZE: f64 = 13.0;
const LEGEND_SIZE: f64 = 14.0;
/// Room left of the plot for tick labels and the rotated y description.
const Y_AREA: u32 = 86;
/// Height of a line chart's x-axis label area, pixels.
const X_AREA: u32 = 50;

/// matplotlib's tab10: distinct, and familiar from the studies' figures.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// One named line of a [`line_chart`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    pub name: String,
    /// (x, y) in drawing order; non-finite points break the line.
    pub points: Vec<(f64, f64)>,
    /// Dots without a line (a scatter plot).
    pub markers_only: bool,
}

impl Series {
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Series {
        Series { name: name.into(), points, markers_only: false }
    }

    /// A scatter of points, drawn as dots without a connecting line.
    pub fn markers(name: impl Into<String>, points: Vec<(f64, f64)>) -> Series {
        Series { markers_only: true, ..Series::new(name, points) }
    }
}

/// (lo, hi) widened by `frac` of the span on each side; a zero span (one
/// point, a constant series) gets a span of its own so the axis is not empty.
fn padded(lo: f64, hi: f64, frac: f64) -> (f64, f64) {
    let span = hi - lo;
    if span > 0.0 {
        (lo - frac * span, hi + frac * span)
    } else {
        let half = (lo.abs() * 0.1).max(0.5);
        (lo - half, hi + half)
    }
}

/// Draws the title centred at the top of `root` and returns the area below it.
fn titled<'a>(root: &Area<'a>, title: &str) -> std::result::Result<Area<'a>, Box<dyn std::error::Error>> {
    root.fill(&WHITE)?;
    if title.is_empty() {
        return Ok(root.margin(10, 0, 0, 0));
    }
    let w = root.dim_in_pixel().0 as i32;
    draw_text(root, title, TITLE_SIZE, BLACK, (w / 2, 10), HPos::Center)?;
    let (_, below) = root.split_vertically(10 + line_height(TITLE_SIZE) + 8);
    Ok(below)
}

/// Line chart with title, axis labels, a legend, automatic ranges.
///
/// Ranges cover every finite point, padded a little; a single point works.
/// Non-finite points (a diverged loss) are skipped and break their line.
/// An error when there is nothing finite to draw. Series with an empty name
/// stay out of the legend. 800×480 pixels.
pub fn line_chart(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> Result<Figure> {
    line_chart_scaled(title, x_label, y_label, series, false)
}

/// As [`line_chart`], with one unit as long on both axes (a circle is drawn round):
/// the smaller range is widened about its centre.
pub fn line_chart_equal_axes(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> Result<Figure> {
    line_chart_scaled(title, x_label, y_label, series, true)
}

/// The plot area of a line chart in pixels (width, height): the canvas less the
/// title, the margins and the label areas set in [`line_chart_scaled`].
fn line_plot_area() -> (f64, f64) {
    let width = CHART_WIDTH.saturating_sub(10 + 24 + Y_AREA);
    let height = CHART_HEIGHT.saturating_sub(10 + line_height(TITLE_SIZE) + 8 + 4 + 8 + X_AREA);
    (width.max(1) as f64, height.max(1) as f64)
}

/// Ranges widened about their centres so that a unit spans as many pixels on both axes.
fn equal_scale(x: (f64, f64), y: (f64, f64)) -> ((f64, f64), (f64, f64)) {
    let (width, height) = line_plot_area();
    let per_pixel = ((x.1 - x.0) / width).max((y.1 - y.0) / height);
    let around = |(lo, hi): (f64, f64), pixels: f64| {
        let (mid, half) = (0.5 * (lo + hi), 0.5 * per_pixel * pixels);
        (mid - half, mid + half)
    };
    (around(x, width), around(y, height))
}

fn line_chart_scaled(title: &str, x_label: &str, y_label: &str, series: &[Series], equal: bool) -> Result<Figure> {
    let finite =
        || series.iter().flat_map(|s| s.points.iter().copied()).filter(|(x, y)| x.is_finite() && y.is_finite());
    if finite().next().is_none() {
        return Err(image_error(format!("line chart `{title}`: no finite points to draw")));
    }
    let fold = |f: fn(f64, f64) -> f64, init: f64, pick: fn((f64, f64)) -> f64| finite().map(pick).fold(init, f);
    let (x0, x1) = padded(fold(f64::min, f64::INFINITY, |p| p.0), fold(f64::max, f64::NEG_INFINITY, |p| p.0), 0.02);
    let (y0, y1) = padded(fold(f64::min, f64::INFINITY, |p| p.1), fold(f64::max, f64::NEG_INFINITY, |p| p.1), 0.06);
    if !(x1 - x0).is_finite() || !(y1 - y0).is_finite() {
        return Err(image_error(format!("line chart `{title}`: values too large to draw")));
    }
    let ((x0, x1), (y0, y1)) = if equal { equal_scale((x0, x1), (y0, y1)) } else { ((x0, x1), (y0, y1)) };

    let integer_x = finite().all(|(x, _)| x.fract() == 0.0);
    let mut canvas = Canvas::new(CHART_WIDTH, CHART_HEIGHT)?;
    canvas.draw(|root| {
        let body = titled(root, title)?;
        let mut chart = ChartBuilder::on(&body)
            .margin_left(10)
            .margin_right(24)
            .margin_top(4)
            .margin_bottom(8)
            .x_label_area_size(X_AREA)
            .y_label_area_size(Y_AREA)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        let fmt = |v: &f64| fmt_number(*v);
        // Whole-number x (epochs, counts) gets no fractional tick labels.
        let fmt_x = |v: &f64| if integer_x && v.fract() != 0.0 { String::new() } else { fmt_number(*v) };
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .axis_desc_style(font(DESC_SIZE))
            .label_style(font(TICK_SIZE))
            .x_label_formatter(&fmt_x)
            .y_label_formatter(&fmt)
            .bold_line_style(BLACK.mix(0.12))
            .light_line_style(TRANSPARENT)
            .draw()?;

        let mut any_legend = false;
        for (k, s) in series.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            let line = color.stroke_width(2);
            let segments = finite_segments(&s.points);
            // Markers only where lines alone would hide the points.
            let few = s.points.len() <= 30;
            let mut labelled = false;
            if s.markers_only {
                let dots = chart.draw_series(segments.iter().flatten().map(|&p| Circle::new(p, 2, color.filled())))?;
                if !s.name.is_empty() {
                    dots.label(s.name.as_str()).legend(move |(x, y)| Circle::new((x + 10, y), 3, color.filled()));
                    any_legend = true;
                }
                continue;
            }
            for seg in &segments {
                let drawn = chart.draw_series(LineSeries::new(seg.iter().copied(), line))?;
                if !labelled && !s.name.is_empty() {
                    drawn
                        .label(s.name.as_str())
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], line));
                    labelled = true;
                    any_legend = true;
                }
                if few || seg.len() == 1 {
                    chart.draw_series(seg.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
                }
            }
        }
        if any_legend {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.9))
                .border_style(BLACK.mix(0.4))
                .label_font(font(LEGEND_SIZE))
                .draw()?;
        }
        Ok(())
    })?;
    canvas.into_figure()
}

/// The runs of consecutive finite points.
fn finite_segments(points: &[(f64, f64)]) -> Vec<Vec<(f64, f64)>> {
    let mut segments = vec![];
    let mut current = vec![];
    for &(x, y) in points {
        if x.is_finite() && y.is_finite() {
            current.push((x, y));
        } else if !current.is_empty() {
            segments.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        segments.push(current);
    }
    segments
}

/// Vertical bar chart, one bar per label, optional horizontal reference
/// line (e.g. a 95% bar) labelled at its right end. 800×480 pixels.
///
/// labels: one per value. Up to 20 bars carry their value on top; labels
/// that do not fit under their bar are turned on their side (shortened past
/// 140 pixels) and, with very many bars, only every k-th is shown.
pub fn bar_chart(
    title: &str,
    y_label: &str,
    labels: &[String],
    values: &[f64],
    reference: Option<(f64, &str)>,
) -> Result<Figure> {
    if labels.len() != values.len() {
        return Err(Error::Mismatch {
            message: format!("bar chart `{title}`: {} labels for {} values", labels.len(), values.len()),
        });
    }
    if values.is_empty() {
        return Err(image_error(format!("bar chart `{title}`: no values to draw")));
    }
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(image_error(format!("bar chart `{title}`: value {i} ({}) is not finite", labels[i])));
    }
    if let Some((r, _)) = reference {
        if !r.is_finite() {
            return Err(image_error(format!("bar chart `{title}`: reference {r} is not finite")));
        }
    }
    let n = values.len();
    let ref_value = reference.map(|(r, _)| r);
    let lo = values.iter().copied().chain(ref_value).fold(0.0, f64::min);
    let hi = values.iter().copied().chain(ref_value).fold(0.0, f64::max);
    let span = if hi > lo { hi - lo } else { 1.0 };
    if !span.is_finite() {
        return Err(image_error(format!("bar chart `{title}`: values too large to draw")));
    }
    // Headroom for the value captions; bars start at 0 unless negative.
    let y_hi = if hi > 0.0 || lo == hi { hi + 0.1 * span } else { hi };
    let y_lo = if lo < 0.0 { lo - 0.1 * span } else { lo };

    let ref_label = reference.map(|(_, l)| l).unwrap_or("");
    let right_margin = (text_width(ref_label, TICK_SIZE)? + 14).max(24);
    let plot_width = CHART_WIDTH.saturating_sub(10 + Y_AREA + right_margin).max(1);
    let pitch = plot_width as f64 / n as f64;
    let max_label = max_text_width(labels, TICK_SIZE)?;
    let upright = max_label as f64 + 6.0 <= pitch;
    // Each bar's value above it, when every caption fits its bar's width.
    let captions: Vec<String> = values.iter().map(|&v| fmt_caption(v)).collect();
    let show_values = n <= 20 && max_text_width(&captions, TICK_SIZE - 1.0)? as f64 + 4.0 <= pitch;
    const MAX_ROTATED: u32 = 140;
    let x_area = if upright { line_height(TICK_SIZE) + 14 } else { max_label.min(MAX_ROTATED) + 16 };
    // Side-turned labels are one line tall; skip some when bars are thinner.
    let every = if upright { 1 } else { ((line_height(TICK_SIZE) as f64) / pitch).ceil().max(1.0) as usize };
    let shown: Vec<String> = labels
        .iter()
        .map(|l| if upright { Ok(l.clone()) } else { truncate_to_width(l, TICK_SIZE, MAX_ROTATED) })
        .collect::<Result<_>>()?;

    let mut canvas = Canvas::new(CHART_WIDTH, CHART_HEIGHT)?;
    canvas.draw(|root| {
        let body = titled(root, title)?;
        let mut chart = ChartBuilder::on(&body)
            .margin_left(10)
            .margin_right(right_margin)
            .margin_top(4)
            .margin_bottom(8)
            .x_label_area_size(x_area)
            .y_label_area_size(Y_AREA)
            .build_cartesian_2d(-0.5..(n as f64 - 0.5), y_lo..y_hi)?;
        let fmt = |v: &f64| fmt_number(*v);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_desc(y_label)
            .axis_desc_style(font(DESC_SIZE))
            .label_style(font(TICK_SIZE))
            .y_label_formatter(&fmt)
            .bold_line_style(BLACK.mix(0.12))
            .light_line_style(TRANSPARENT)
            .draw()?;

        let bar = PALETTE[0];
        let half = 0.38;
        chart.draw_series(values.iter().enumerate().map(|(i, &v)| {
            let x = i as f64;
            Rectangle::new([(x - half, 0.0), (x + half, v)], bar.filled())
        }))?;

        if let Some((r, label)) = reference {
            let red = RGBColor(200, 20, 20);
            chart.draw_series(LineSeries::new(vec![(-0.5, r), (n as f64 - 0.5, r)], red.stroke_width(2)))?;
            let (px, py) = chart.backend_coord(&(n as f64 - 0.5, r));
            draw_text_vcenter(root, label, TICK_SIZE, red, (px + 6, py), HPos::Left)?;
        }

        // Labels and values are placed in pixels: plotters' own tick
        // labels cannot be pinned to the bar centres.
        let axis_y = chart.backend_coord(&(0.0, y_lo)).1;
        for (i, label) in shown.iter().enumerate().step_by(every) {
            let (px, _) = chart.backend_coord(&(i as f64, y_lo));
            if upright {
                draw_text(root, label, TICK_SIZE, BLACK, (px, axis_y + 8), HPos::Center)?;
            } else {
                // Reads bottom-to-top, ending just under the axis.
                let style = font(TICK_SIZE)
                    .transform(FontTransform::Rotate270)
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Right, VPos::Center));
                root.draw_text(label, &style, (px + (0.12 * TICK_SIZE) as i32, axis_y + 8))?;
            }
        }
        if show_values {
            let size = TICK_SIZE - 1.0;
            for (i, (&v, caption)) in values.iter().zip(&captions).enumerate() {
                let (px, py) = chart.backend_coord(&(i as f64, v));
                let y_top = if v >= 0.0 { py - 3 - line_height(size) as i32 } else { py + 3 };
                draw_text(root, caption, size, RGBColor(40, 40, 40), (px, y_top), HPos::Center)?;
            }
        }
        Ok(())
    })?;
    canvas.into_figure()
}
