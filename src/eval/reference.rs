//! The real reference a set of samples is measured against, drawn like with
//! like (per condition, with the samples' counts), and the measures that need
//! its conditions: KID pooled and per condition, density and coverage.

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::Tensor;

use super::metrics;
use crate::data::Split;
use crate::sample::Samples;

/// The condition of each of `labels`: (class, style), the style 0 without `styles`.
pub(super) fn condition_keys(labels: &[i64], styles: Option<&[i64]>) -> Vec<(i64, i64)> {
    labels.iter().enumerate().map(|(i, &l)| (l, styles.map_or(0, |s| s[i]))).collect()
}

/// The conditions of a split's images, with styles only when `with_styles`.
pub(super) fn split_condition_keys(split: &Split, with_styles: bool) -> Vec<(i64, i64)> {
    let labels: Vec<i64> = split.labels.iter().map(|&l| i64::from(l)).collect();
    let styles: Option<Vec<i64>> =
        split.styles.as_ref().filter(|_| with_styles).map(|s| s.iter().map(|&x| i64::from(x)).collect());
    condition_keys(&labels, styles.as_deref())
}

/// Seeded draws per condition: for each condition of `counts` (in order), up to
/// its count of the split's images of that condition (all of them when it has
/// fewer), in a random order. One stream seeded by `seed` serves the conditions in turn.
pub(super) fn draw_per_condition(
    split: &Split,
    counts: &BTreeMap<(i64, i64), usize>,
    with_styles: bool,
    seed: u64,
) -> Vec<Vec<usize>> {
    let mut pools: BTreeMap<(i64, i64), Vec<usize>> = Default::default();
    for (i, key) in split_condition_keys(split, with_styles).into_iter().enumerate() {
        if counts.contains_key(&key) {
            pools.entry(key).or_default().push(i);
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    counts
        .iter()
        .map(|(key, &count)| {
            let mut pool = pools.remove(key).unwrap_or_default();
            pool.shuffle(&mut rng);
            pool.truncate(count);
            pool
        })
        .collect()
}

/// How many times each condition occurs in `keys`.
pub(super) fn condition_counts(keys: &[(i64, i64)]) -> BTreeMap<(i64, i64), usize> {
    let mut counts = BTreeMap::new();
    for &key in keys {
        *counts.entry(key).or_insert(0) += 1;
    }
    counts
}

/// A real reference drawn like-with-like: for every condition of the samples
/// (`labels`, and `styles` when both the samples and the split carry them, as
/// K49's class × style), as many of the split's images of that condition as
/// there are samples of it, drawn at random (seeded); all of a condition's
/// images when it has fewer. In the split's order.
pub fn class_matched_subset(split: &Split, labels: &[i64], styles: Option<&[i64]>, seed: u64) -> Split {
    let with_styles = styles.is_some() && split.styles.is_some();
    let counts = condition_counts(&condition_keys(labels, styles.filter(|_| with_styles)));
    let mut rows: Vec<usize> = draw_per_condition(split, &counts, with_styles, seed).concat();
    rows.sort_unstable();
    split.select(&rows)
}

/// The measures of samples against a like-with-like reference: KID pooled and
/// per condition, density and coverage, and how far the reference fell short.
#[derive(Debug)]
pub struct ReferenceMeasures {
    pub reference_shortfall: usize,
    pub kid: Option<metrics::Kid>,
    /// (mean over conditions, worst condition).
    pub per_condition_kid: Option<(f64, f64)>,
    /// (density, coverage) with k = [`metrics::DENSITY_COVERAGE_K`].
    pub density_coverage: Option<(f64, f64)>,
    /// Their points ([`metrics::density_coverage_points`]): real balls per sample, and each real ball covered.
    pub density_coverage_points: Option<(Tensor, Tensor)>,
}

impl ReferenceMeasures {
    /// real: the judge's features of `reference` [N, 128]; fake: of `samples` [M, 128].
    /// Conditions are (class, style) when both sides carry styles, else classes.
    pub fn measure(real: &Tensor, reference: &Split, fake: &Tensor, samples: &Samples, seed: u64) -> Self {
        let with_styles = samples.styles.is_some() && reference.styles.is_some();
        let fake_conditions = condition_keys(&samples.labels, samples.styles.as_deref().filter(|_| with_styles));
        let real_conditions = split_condition_keys(reference, with_styles);
        let real_counts = condition_counts(&real_conditions);
        let reference_shortfall = condition_counts(&fake_conditions)
            .iter()
            .map(|(key, &n)| n.saturating_sub(real_counts.get(key).copied().unwrap_or(0)))
            .sum();
        let k = metrics::DENSITY_COVERAGE_K;
        let density_coverage_points = metrics::density_coverage_points(real, fake, k);
        let density_coverage =
            density_coverage_points.as_ref().map(|(balls, covered)| metrics::density_coverage_of(balls, covered, k));
        ReferenceMeasures {
            reference_shortfall,
            kid: metrics::kernel_distance(real, fake, metrics::KID_SUBSETS, metrics::KID_SUBSET_SIZE, seed ^ 0x41D),
            per_condition_kid: metrics::per_condition_kid(real, &real_conditions, fake, &fake_conditions),
            density_coverage,
            density_coverage_points,
        }
    }
}
