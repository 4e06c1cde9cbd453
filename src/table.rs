//! Result tables, built once and rendered wherever they are read: HTML in a
//! notebook, Markdown in REPORT.md, aligned text in a terminal.
//!
//! The measures of a set of samples ([`MEASURES`]) are named and rounded here
//! and nowhere else, so `condgen eval`, the report and the notebooks show the
//! same columns with the same precision.

use std::fmt::Write as _;

use polars::prelude::*;

use crate::eval::{Interval, MetricIntervals, RunMetrics, SampleMetrics};
use crate::Result;

/// A DataFrame with renderers for each place a table is read.
#[derive(Clone, Debug)]
pub struct Table(pub DataFrame);

/// One measured quantity of a set of samples, as every table shows it.
pub struct Measure {
    /// Column name, with its unit.
    pub name: &'static str,
    /// The value in the column's unit (percentages × 100); None when not measured.
    value: fn(&SampleMetrics) -> Option<f64>,
    /// Decimal places shown.
    decimals: i32,
    /// A spread shown after the value as "value ± spread" (KID's standard
    /// deviation over subsets), in the value's unit; the column is then text.
    spread: Option<fn(&SampleMetrics) -> Option<f64>>,
    /// The bootstrap 95 % interval shown after the value as "value [low, high]",
    /// in the value's unit; the column is then text.
    interval: Option<fn(&SampleMetrics, &MetricIntervals) -> Option<Interval>>,
}

impl Measure {
    /// The value in the column's unit, rounded as shown.
    pub fn of(&self, metrics: &SampleMetrics) -> Option<f64> {
        self.unrounded(metrics).map(|v| round_to(v, self.decimals))
    }

    /// The value in the column's unit, unrounded (for comparing against a bar).
    pub fn unrounded(&self, metrics: &SampleMetrics) -> Option<f64> {
        (self.value)(metrics)
    }

    /// A value in the column's unit as text, with the column's decimals.
    pub fn format(&self, value: f64) -> String {
        format!("{value:.*}", self.decimals.max(0) as usize)
    }

    /// The value as text, with the column's decimals ("0.90", not "0.9"),
    /// "± spread" after it for a measure with a spread ("12.3 ± 0.4"), and the
    /// bootstrap 95 % interval for a measure with one ("89.4 [88.2, 90.6]").
    pub fn shown(&self, metrics: &SampleMetrics) -> Option<String> {
        let value = self.format(self.unrounded(metrics)?);
        if let Some(spread) = self.spread.and_then(|spread| spread(metrics)) {
            return Some(format!("{value} ± {}", self.format(spread)));
        }
        Some(with_interval(&value, self.interval_of(metrics), |v| self.format(v)))
    }

    /// The bootstrap 95 % interval in the column's unit, when measured.
    pub fn interval_of(&self, metrics: &SampleMetrics) -> Option<Interval> {
        let interval = self.interval?(metrics, metrics.intervals.as_ref()?)?;
        (interval.low.is_finite() && interval.high.is_finite()).then_some(interval)
    }

    /// Whether the column shows text ("value ± spread", "value [low, high]") rather than a number.
    fn is_text(&self) -> bool {
        self.spread.is_some() || self.interval.is_some()
    }

    /// "name value" for sentences, e.g. "Fréchet distance 53.6"; "accuracy 89.4 %".
    pub fn phrase(&self, metrics: &SampleMetrics) -> Option<String> {
        let shown = self.shown(metrics)?;
        Some(match self.name.strip_suffix(" %") {
            Some(name) => format!("{name} {shown} %"),
            None => format!("{} {shown}", self.name),
        })
    }

    fn column(&self, rows: &[&SampleMetrics]) -> Option<Column> {
        if self.is_text() {
            let shown: Vec<Option<String>> = rows.iter().map(|m| self.shown(m)).collect();
            return shown.iter().any(Option::is_some).then(|| Column::new(self.name.into(), shown));
        }
        let values: Vec<Option<f64>> = rows.iter().map(|m| self.of(m)).collect();
        // A measure no row has (style accuracy outside K49, KID in metrics from before it) is left out.
        values.iter().any(Option::is_some).then(|| Column::new(self.name.into(), values))
    }
}

/// A value shown with its 95 % interval, "value [low, high]", the ends written
/// by `format`; the value alone without an interval.
pub fn with_interval(value: &str, interval: Option<Interval>, format: impl Fn(f64) -> String) -> String {
    match interval {
        Some(i) => format!("{value} [{}, {}]", format(i.low), format(i.high)),
        None => value.to_string(),
    }
}

/// One line of the headline measures of `metrics`, as the tables name and round them.
pub fn summary(metrics: &SampleMetrics) -> String {
    [
        &ACCURACY,
        &WORST_CONDITION,
        &FRECHET,
        &PRECISION,
        &RECALL,
        &DIVERSITY,
        &STYLE,
        &KID,
        &KID_PER_CONDITION,
        &DENSITY,
        &COVERAGE,
    ]
    .iter()
    .filter_map(|m| m.phrase(metrics))
    .collect::<Vec<_>>()
    .join(", ")
}

fn pct(value: f64) -> f64 {
    100.0 * value
}

pub const ACCURACY: Measure = Measure {
    name: "accuracy %",
    value: |m| Some(pct(m.accuracy.overall)),
    decimals: 1,
    spread: None,
    interval: Some(|_, i| Some(i.accuracy.scaled(100.0))),
};
/// Generators draw equally per condition, so balanced accuracy equals accuracy; the worst condition says more.
pub const WORST_CONDITION: Measure = Measure {
    name: "worst condition %",
    value: |m| Some(pct(m.worst_condition())),
    decimals: 1,
    spread: None,
    interval: Some(|_, i| Some(i.worst_condition.scaled(100.0))),
};
pub const CONFIDENCE: Measure = Measure {
    name: "confidence %",
    value: |m| Some(pct(m.accuracy.mean_confidence)),
    decimals: 1,
    spread: None,
    interval: Some(|_, i| Some(i.confidence.scaled(100.0))),
};
pub const FRECHET: Measure = Measure {
    name: "Fréchet distance",
    value: |m| Some(m.frechet_distance),
    decimals: 1,
    spread: None,
    interval: Some(|_, i| Some(i.frechet_distance)),
};
pub const PRECISION: Measure = Measure {
    name: "precision",
    value: |m| Some(m.precision),
    decimals: 3,
    spread: None,
    interval: Some(|_, i| Some(i.precision)),
};
pub const RECALL: Measure = Measure {
    name: "recall",
    value: |m| Some(m.recall),
    decimals: 3,
    spread: None,
    interval: Some(|_, i| Some(i.recall)),
};
pub const DIVERSITY: Measure = Measure {
    name: "diversity / real",
    value: |m| Some(m.diversity_ratio()),
    decimals: 2,
    spread: None,
    interval: Some(|m, i| Some(i.diversity_samples.scaled(1.0 / m.diversity_real.max(1e-12)))),
};
pub const MEMORIZED: Measure = Measure {
    name: "memorized %",
    value: |m| Some(pct(m.memorization_share)),
    decimals: 1,
    spread: None,
    interval: Some(|_, i| Some(i.memorization_share.scaled(100.0))),
};
pub const STYLE: Measure = Measure {
    name: "style accuracy %",
    value: |m| m.style_accuracy.map(pct),
    decimals: 1,
    spread: None,
    interval: Some(|_, i| i.style_accuracy.map(|s| s.scaled(100.0))),
};

/// KID against the like-with-like reference, as is (see [`SampleMetrics::kid_mean`]),
/// "mean ± standard deviation over subsets".
pub const KID: Measure =
    Measure { name: "KID", value: |m| m.kid_mean, decimals: 2, spread: Some(|m| m.kid_std), interval: None };
/// Intra-class KID: the mean over conditions of each condition's KID.
pub const KID_PER_CONDITION: Measure = Measure {
    name: "KID per condition",
    value: |m| m.kid_per_condition_mean,
    decimals: 2,
    spread: None,
    interval: None,
};
/// The worst condition's KID.
pub const KID_WORST_CONDITION: Measure = Measure {
    name: "KID worst condition",
    value: |m| m.kid_per_condition_worst,
    decimals: 2,
    spread: None,
    interval: None,
};
pub const DENSITY: Measure =
    Measure { name: "density", value: |m| m.density, decimals: 3, spread: None, interval: Some(|_, i| i.density) };
pub const COVERAGE: Measure =
    Measure { name: "coverage", value: |m| m.coverage, decimals: 3, spread: None, interval: Some(|_, i| i.coverage) };

/// The data-copying test's C_T (Meehan et al. 2020): ≪ 0 copying, ≈ 0 as near the
/// train images as held-out real images are, > 0 farther.
pub const COPYING: Measure =
    Measure { name: "copying C_T", value: |m| m.copying_ct, decimals: 2, spread: None, interval: None };

/// Every measure of a set of samples, in the order tables show them.
pub const MEASURES: [&Measure; 14] = [
    &ACCURACY,
    &WORST_CONDITION,
    &CONFIDENCE,
    &FRECHET,
    &PRECISION,
    &RECALL,
    &DIVERSITY,
    &MEMORIZED,
    &STYLE,
    &KID,
    &KID_PER_CONDITION,
    &DENSITY,
    &COVERAGE,
    &COPYING,
];

/// `value` rounded to `decimals` places, for tables people read.
/// Rounded as `format!("{:.d$}")` prints it, so a table cell and a sentence never disagree on a half.
pub fn round_to(value: f64, decimals: i32) -> f64 {
    if !value.is_finite() {
        return value;
    }
    format!("{value:.*}", decimals.max(0) as usize).parse().unwrap_or(value)
}

/// The measures of sets of samples side by side, one row per set: `(name, metrics)`.
pub fn sample_metrics_table(rows: &[(&str, &SampleMetrics)]) -> Result<Table> {
    let metrics: Vec<&SampleMetrics> = rows.iter().map(|(_, m)| *m).collect();
    let mut columns = vec![
        Column::new("samples of".into(), rows.iter().map(|(n, _)| n.to_string()).collect::<Vec<_>>()),
        Column::new("n".into(), metrics.iter().map(|m| m.samples as u64).collect::<Vec<_>>()),
    ];
    columns.extend(MEASURES.iter().filter_map(|measure| measure.column(&metrics)));
    Ok(Table(DataFrame::new_infer_height(columns)?))
}

/// Runs side by side, one row per run and latent source (a CVAE gets a second
/// row for its samples with z from the prior it was trained with), with the epoch and a CVAE's validation loss.
pub fn metrics_table(rows: &[(&str, &RunMetrics)]) -> Result<Table> {
    let mut named = Vec::new();
    let mut sources = Vec::new();
    let mut epochs = Vec::new();
    let mut losses = Vec::new();
    for (name, run) in rows {
        for (metrics, source) in run.by_latent_source() {
            named.push((*name, metrics));
            sources.push(source.to_string());
            epochs.push(run.epoch as u64);
            losses.push(run.cvae_test_loss.map(|v| round_to(v, 1)));
        }
    }
    let mut df = sample_metrics_table(&named)?.0;
    df.insert_column(1, Column::new("drawn from".into(), sources))?;
    df.with_column(Column::new("epoch".into(), epochs))?;
    if losses.iter().any(Option::is_some) {
        df.with_column(Column::new("validation loss".into(), losses))?;
    }
    Ok(Table(df))
}

/// Stability over seeds: per group of runs of one configuration (one per
/// seed), each headline measure's mean ± standard deviation (of one seed: the
/// value and its bootstrap interval) and the training time; every run as its
/// model draws ([`RunMetrics::as_trained`]).
/// groups: `(name, [(metrics, train seconds)])`
pub fn stability_table(groups: &[(&str, Vec<(RunMetrics, f64)>)]) -> Result<Table> {
    let spread = |runs: &[(RunMetrics, f64)], f: &dyn Fn(&(RunMetrics, f64)) -> f64, decimals: i32| {
        mean_spread(&runs.iter().map(f).collect::<Vec<f64>>(), decimals)
    };
    // Each run as the model draws (a CVAE's z from the prior it was trained with); one seed shows its bootstrap interval.
    let measure = |m: &Measure| {
        let values = groups
            .iter()
            .map(|(_, runs)| match runs.as_slice() {
                [(one, _)] => m.shown(one.as_trained()).unwrap_or_else(|| "-".into()),
                _ => spread(runs, &|r| m.unrounded(r.0.as_trained()).unwrap_or(f64::NAN), m.decimals),
            })
            .collect::<Vec<String>>();
        Column::new(m.name.into(), values)
    };
    let mut columns = vec![
        Column::new("runs".into(), groups.iter().map(|(n, _)| n.to_string()).collect::<Vec<_>>()),
        Column::new("seeds".into(), groups.iter().map(|(_, r)| r.len() as u32).collect::<Vec<_>>()),
    ];
    columns.extend([&ACCURACY, &FRECHET, &PRECISION, &RECALL].map(measure));
    let seconds = groups.iter().map(|(_, runs)| spread(runs, &|r| r.1, 0)).collect::<Vec<String>>();
    columns.push(Column::new("train seconds".into(), seconds));
    Ok(Table(DataFrame::new_infer_height(columns)?))
}

/// "mean ± sample standard deviation" over seeds (just the mean for one value).
pub fn mean_spread(values: &[f64], decimals: i32) -> String {
    let (mean, sd) = crate::stats::mean_and_spread(values);
    let d = decimals.max(0) as usize;
    if values.len() < 2 {
        return format!("{mean:.d$}");
    }
    format!("{mean:.d$} ± {sd:.d$}")
}

impl Table {
    /// The cell at (`column`, `row`) as text; empty for a missing value.
    /// Floats show a measure's decimals, or as many as the column's most
    /// precise value needs (up to 4), so a column reads 0.90 above 0.62, not 0.9.
    fn cell(&self, column: usize, row: usize) -> String {
        let col = &self.0.columns()[column];
        match col.get(row) {
            Ok(AnyValue::Null) | Err(_) => String::new(),
            Ok(AnyValue::String(s)) => s.to_string(),
            Ok(AnyValue::Float64(v)) => format!("{v:.*}", float_decimals(col)),
            Ok(AnyValue::Float32(v)) => format!("{:.*}", float_decimals(col), v as f64),
            Ok(v) => v.to_string(),
        }
    }

    /// Numbers, and measures shown as text ("12.3 ± 0.4"): right-aligned.
    fn is_numeric(&self, column: usize) -> bool {
        let col = &self.0.columns()[column];
        col.dtype().is_primitive_numeric()
            || MEASURES.iter().any(|m| m.spread.is_some() && col.name().as_str() == m.name)
    }

    fn names(&self) -> Vec<String> {
        self.0.get_column_names().iter().map(|n| n.to_string()).collect()
    }

    /// The table as HTML (every row; these tables are small).
    pub fn to_html(&self) -> String {
        let mut html = String::from("<table class=\"condgen\">\n<thead><tr>");
        for name in self.names() {
            let _ = write!(html, "<th>{}</th>", escape_html(&name));
        }
        html.push_str("</tr></thead>\n<tbody>\n");
        for row in 0..self.0.height() {
            html.push_str("<tr>");
            for col in 0..self.0.width() {
                let align = if self.is_numeric(col) { " style=\"text-align:right\"" } else { "" };
                let _ = write!(html, "<td{align}>{}</td>", escape_html(&self.cell(col, row)));
            }
            html.push_str("</tr>\n");
        }
        html.push_str("</tbody></table>");
        html
    }

    /// The table as a GitHub Markdown table, numbers right-aligned.
    pub fn to_markdown(&self) -> String {
        let names: Vec<String> = self.names().iter().map(|n| escape_cell(n)).collect();
        let mut md = format!("| {} |\n|", names.join(" | "));
        for col in 0..self.0.width() {
            md.push_str(if self.is_numeric(col) { "---:|" } else { "---|" });
        }
        md.push('\n');
        for row in 0..self.0.height() {
            let cells: Vec<String> = (0..self.0.width()).map(|col| escape_cell(&self.cell(col, row))).collect();
            let _ = writeln!(md, "| {} |", cells.join(" | "));
        }
        md
    }

    /// The table turned on its side for a terminal: a line per column, its
    /// name then one aligned value per row (a run's measures read down the page).
    pub fn to_text_by_column(&self) -> String {
        let names = self.names();
        let name_width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
        let rows = self.0.height();
        let widths: Vec<usize> = (0..rows)
            .map(|row| (0..self.0.width()).map(|col| self.cell(col, row).chars().count()).max().unwrap_or(0))
            .collect();
        let mut text = String::new();
        for (col, name) in names.iter().enumerate() {
            let _ = write!(text, "{name:<name_width$}");
            for (row, width) in widths.iter().enumerate() {
                let cell = self.cell(col, row);
                if self.is_numeric(col) {
                    let _ = write!(text, "  {cell:>width$}");
                } else {
                    let _ = write!(text, "  {cell:<width$}");
                }
            }
            text.truncate(text.trim_end().len());
            text.push('\n');
        }
        text
    }

    /// Shows the table inline in an evcxr (Jupyter) notebook.
    pub fn evcxr_display(&self) {
        println!("EVCXR_BEGIN_CONTENT text/html\n{}\nEVCXR_END_CONTENT", self.to_html());
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The decimals a float column shows: a measure's own (by column name), else
/// the most any of its values needs, at most 4.
fn float_decimals(col: &Column) -> usize {
    if let Some(measure) = MEASURES.iter().find(|m| col.name().as_str() == m.name) {
        return measure.decimals.max(0) as usize;
    }
    let Ok(values) = col.cast(&DataType::Float64) else { return 4 };
    let Ok(values) = values.f64() else { return 4 };
    let needed = |v: f64| (0..4).find(|&d| (round_to(v, d) - v).abs() < 1e-9 * v.abs().max(1.0)).unwrap_or(4);
    values.iter().flatten().filter(|v| v.is_finite()).map(needed).max().unwrap_or(0) as usize
}

/// Text made safe as the content of an HTML element (not of an attribute: quotes stay).
/// Text made safe for one markdown table cell: a `|` would end the cell.
pub fn escape_cell(s: &str) -> String {
    s.replace('|', "\\|")
}

pub(crate) fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        Table(
            df!(
                "run" => ["a|b", "c"],
                "accuracy %" => [Some(89.4), None],
                "recall" => [0.9, 0.625],
            )
            .unwrap(),
        )
    }

    #[test]
    fn markdown_escapes_pipes_aligns_numbers_and_leaves_missing_cells_empty() {
        assert_eq!(
            table().to_markdown(),
            "| run | accuracy % | recall |\n|---|---:|---:|\n| a\\|b | 89.4 | 0.900 |\n| c |  | 0.625 |\n"
        );
    }

    #[test]
    fn rounding_agrees_with_printing_on_halves() {
        for (value, decimals) in [(0.1825, 3), (2.675, 2), (0.125, 2), (89.45, 1), (-646.45, 1)] {
            let printed = format!("{value:.*}", decimals as usize);
            assert_eq!(format!("{:.*}", decimals as usize, round_to(value, decimals)), printed, "{value}");
            assert_eq!(round_to(value, decimals).to_string(), printed.trim_end_matches('0').trim_end_matches('.'));
        }
    }

    #[test]
    fn text_by_column_puts_each_column_on_a_line() {
        assert_eq!(table().to_text_by_column(), "run         a|b    c\naccuracy %   89.4\nrecall      0.900  0.625\n");
    }

    #[test]
    fn phrases_put_the_unit_after_the_value() {
        let m = SampleMetrics {
            experiment: crate::Experiment::SignLetter,
            samples: 48,
            per_condition: 2,
            judge: crate::eval::JudgeKind::SignLetter,
            judge_test_accuracy: 0.97,
            accuracy: crate::eval::ConditionalAccuracy {
                overall: 0.894,
                balanced: 0.894,
                per_class: vec![0.5, f64::NAN, 1.0],
                mean_confidence: 0.8,
            },
            frechet_distance: 53.6123,
            real_reference_images: 48,
            precision: 0.1,
            recall: 0.42,
            precision_recall_k: 3,
            diversity_samples: 9.0,
            diversity_real: 10.0,
            memorization_share: 0.0,
            memorization_threshold: 1.0,
            memorization_reference_images: 100,
            style_accuracy: None,
            reference_shortfall: Some(0),
            kid_mean: Some(12.344),
            kid_std: Some(0.4),
            kid_subset_size: Some(48),
            kid_per_condition_mean: Some(50.0),
            kid_per_condition_worst: Some(200.0),
            density: Some(0.95),
            coverage: None,
            density_coverage_k: Some(5),
            copying_ct: Some(-0.1234),
            copying_cells: Some(25),
            copying_cells_used: Some(24),
            intervals: None,
        };
        assert_eq!(ACCURACY.phrase(&m).unwrap(), "accuracy 89.4 %");
        assert_eq!(FRECHET.phrase(&m).unwrap(), "Fréchet distance 53.6");
        assert_eq!(DIVERSITY.phrase(&m).unwrap(), "diversity / real 0.90");
        assert_eq!(WORST_CONDITION.phrase(&m).unwrap(), "worst condition 50.0 %");
        assert_eq!(STYLE.phrase(&m), None);
        assert_eq!(KID.phrase(&m).unwrap(), "KID 12.34 ± 0.40");
        assert_eq!(KID.of(&m), Some(12.34));
        assert_eq!(KID_PER_CONDITION.phrase(&m).unwrap(), "KID per condition 50.00");
        assert_eq!(DENSITY.phrase(&m).unwrap(), "density 0.950");
        assert_eq!(COPYING.phrase(&m).unwrap(), "copying C_T -0.12");
        // With intervals: "value [low, high]" in the column's unit and decimals; none for KID (its ± spread).
        let at_nan = crate::eval::Interval { low: f64::NAN, high: f64::NAN };
        let span = |low, high| crate::eval::Interval { low, high };
        let with_intervals = SampleMetrics {
            intervals: Some(crate::eval::MetricIntervals {
                resamples: 200,
                accuracy: span(0.871, 0.912),
                worst_condition: at_nan,
                confidence: span(0.7, 0.9),
                frechet_distance: span(50.04, 57.96),
                precision: span(0.05, 0.15),
                recall: span(0.4, 0.44),
                diversity_samples: span(8.0, 9.5),
                memorization_share: span(0.0, 0.0),
                style_accuracy: None,
                density: None,
                coverage: None,
            }),
            ..m.clone()
        };
        assert_eq!(ACCURACY.phrase(&with_intervals).unwrap(), "accuracy 89.4 [87.1, 91.2] %");
        assert_eq!(FRECHET.shown(&with_intervals).unwrap(), "53.6 [50.0, 58.0]");
        assert_eq!(DIVERSITY.shown(&with_intervals).unwrap(), "0.90 [0.80, 0.95]");
        assert_eq!(
            WORST_CONDITION.shown(&with_intervals).unwrap(),
            "50.0",
            "an interval that was not measured is left out"
        );
        assert_eq!(DENSITY.shown(&with_intervals).unwrap(), "0.950");
        assert_eq!(KID.shown(&with_intervals).unwrap(), "12.34 ± 0.40");
        let table = sample_metrics_table(&[("a", &m)]).unwrap();
        let names: Vec<String> = table.0.get_column_names().iter().map(|n| n.to_string()).collect();
        assert!(!names.iter().any(|n| n == STYLE.name), "no style column without style");
        assert!(!names.iter().any(|n| n == COVERAGE.name), "no coverage column without coverage");
        // The new measures come after the old ones, in MEASURES' order.
        let at = |name: &str| names.iter().position(|n| n == name).unwrap();
        assert!(at(MEMORIZED.name) < at(KID.name) && at(KID.name) < at(KID_PER_CONDITION.name));
        assert!(at(KID_PER_CONDITION.name) < at(DENSITY.name));
        let md = table.to_markdown();
        assert!(md.contains("| 12.34 ± 0.40 | 50.00 | 0.950 |"), "{md}");
    }
}
