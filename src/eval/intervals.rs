//! Bootstrap 95 % intervals of a set of samples' measures (Efron's percentile
//! bootstrap), so a reader can tell a difference between two rows from the
//! noise of drawing 2,400 samples.
//!
//! Each resample draws, within every condition, as many indices as the
//! condition has, with replacement (a stratified bootstrap: generators draw a
//! fixed number per condition, and so does the like-with-like reference). A
//! resample is a vector of multiplicities, and every measure is recomputed
//! from the same per-point values the point estimate averages:
//! - over the samples (the real reference fixed): accuracy, the worst
//!   condition's accuracy, the judge's confidence, the Fréchet distance,
//!   precision (is a sample inside the real manifold), density (real balls
//!   holding a sample), within-class diversity (pairs of distinct draws),
//!   memorization and K49's style accuracy;
//! - over the real reference images (the samples fixed): recall (is a real
//!   image inside the samples' manifold) and coverage (does a sample lie in a
//!   real image's ball). Resampling the samples instead would shrink their
//!   k-NN balls to zero around repeated draws.
//!
//! Percentile intervals, except the Fréchet distance's: the bootstrap's spread
//! centred on the estimate ([`Interval::centred_on`]), since repeated draws bias
//! a resample's FD upwards.
//!
//! KID carries its own spread (the standard deviation over its subsets, the
//! field's convention) and C_T is itself a test statistic; neither is resampled.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::metrics::{self, ClassDistances, FrechetReference};

/// Resamples per interval.
pub const RESAMPLES: usize = 200;

/// A 95 % interval: the 2.5th and 97.5th percentiles of a bootstrap distribution.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

impl Interval {
    /// The 2.5th and 97.5th percentiles of `values` (nearest rank; NaNs left out).
    pub fn percentile_95(values: &[f64]) -> Interval {
        // + 0.0 turns an empty sum's −0.0 into 0.0.
        let mut sorted: Vec<f64> = values.iter().map(|v| v + 0.0).filter(|v| !v.is_nan()).collect();
        sorted.sort_by(f64::total_cmp);
        let at = |q: f64| match sorted.len() {
            0 => f64::NAN,
            n => sorted[((q * (n - 1) as f64).round() as usize).min(n - 1)],
        };
        Interval { low: at(0.025), high: at(0.975) }
    }

    /// The percentile interval of `values` moved so that their median falls on
    /// `estimate`: the bootstrap's spread around the estimate. For a measure
    /// whose bootstrap distribution sits off the estimate — the Fréchet
    /// distance grows as a resample's repeated draws leave fewer distinct
    /// images — the plain percentiles would not hold the estimate at all.
    pub fn centred_on(values: &[f64], estimate: f64) -> Interval {
        let Interval { low, high } = Interval::percentile_95(values);
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
        sorted.sort_by(f64::total_cmp);
        let median = sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN);
        Interval { low: (low - median + estimate).max(0.0), high: high - median + estimate }
    }

    /// Both ends times `factor` (a share as a percentage, a diversity as a share of the real one).
    pub fn scaled(self, factor: f64) -> Interval {
        Interval { low: self.low * factor, high: self.high * factor }
    }
}

/// The bootstrap 95 % intervals of [`super::SampleMetrics`]' measures, in their units
/// (shares as shares; the diversity of the samples, not its ratio to real's).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricIntervals {
    /// Resamples each interval rests on.
    pub resamples: usize,
    pub accuracy: Interval,
    pub worst_condition: Interval,
    pub confidence: Interval,
    pub frechet_distance: Interval,
    pub precision: Interval,
    pub recall: Interval,
    pub diversity_samples: Interval,
    pub memorization_share: Interval,
    pub style_accuracy: Option<Interval>,
    pub density: Option<Interval>,
    pub coverage: Option<Interval>,
}

/// The per-point values a set of samples' measures average, kept to resample them.
pub struct PointValues<'a> {
    /// Each sample's condition (class, style) and requested class.
    pub fake_conditions: &'a [(i64, i64)],
    pub labels: &'a [i64],
    /// Classes of the judge's verdicts (the task's conditions).
    pub classes: usize,
    /// Per sample: the judge's verdict is right; its probability of the requested class.
    pub correct: &'a [bool],
    pub confidence: &'a [f64],
    /// Per sample: inside the real manifold (precision's points).
    pub fake_in_real: &'a Tensor,
    /// Per sample: real balls holding it, and k (density's points).
    pub balls_per_fake: Option<(&'a Tensor, i64)>,
    pub memorized: &'a [bool],
    pub style_hits: Option<&'a [bool]>,
    /// The samples' judge features [M, d], the real reference's Gaussian, the samples'
    /// Fréchet distance to it (the estimate its interval is centred on), and their class distances.
    pub fake_features: &'a Tensor,
    pub frechet: &'a FrechetReference,
    pub frechet_distance: f64,
    pub diversity: &'a ClassDistances,
    /// Each real reference image's condition; inside the samples' manifold (recall's
    /// points); its ball holds a sample (coverage's points).
    pub real_conditions: &'a [(i64, i64)],
    pub real_in_fake: &'a Tensor,
    pub real_covered: Option<&'a Tensor>,
}

/// The bootstrap 95 % intervals of every resampled measure, `resamples` times, seeded.
pub fn bootstrap(points: &PointValues, resamples: usize, seed: u64) -> MetricIntervals {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let fake_groups = groups(points.fake_conditions);
    let real_groups = groups(points.real_conditions);
    let device = points.fake_features.device();
    let as_f64 = |t: &Tensor| t.to_kind(Kind::Double).to_device(device);
    let (fake_in_real, real_in_fake) = (as_f64(points.fake_in_real), as_f64(points.real_in_fake));
    let balls = points.balls_per_fake.map(|(b, k)| (as_f64(b), k));
    let covered = points.real_covered.map(as_f64);
    let mut draws: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut push = |name: &'static str, value: f64| draws.entry(name).or_default().push(value);
    for _ in 0..resamples {
        let w = multiplicities(&fake_groups, points.fake_conditions.len(), &mut rng);
        let w_tensor = Tensor::from_slice(&w).to_device(device);
        let n = w.iter().sum::<f64>().max(1.0);
        let mean_of = |flags: &[bool]| flags.iter().zip(&w).filter(|(&f, _)| f).map(|(_, &w)| w).sum::<f64>() / n;
        let per_class = metrics::per_class_accuracy(points.correct, points.labels, points.classes, Some(&w));
        push("accuracy", mean_of(points.correct));
        push("worst", per_class.iter().copied().filter(|v| !v.is_nan()).fold(f64::INFINITY, f64::min));
        push("confidence", weighted_average(points.confidence, &w));
        push("fd", points.frechet.distance(points.fake_features, Some(&w_tensor)));
        push("precision", weighted_mean(&fake_in_real, &w_tensor));
        push("diversity", points.diversity.mean(Some(&w_tensor)));
        push("memorized", mean_of(points.memorized));
        if let Some(hits) = points.style_hits {
            push("style", mean_of(hits));
        }
        if let Some((balls, k)) = &balls {
            push("density", weighted_mean(balls, &w_tensor) / *k as f64);
        }
        let w_real = multiplicities(&real_groups, points.real_conditions.len(), &mut rng);
        let w_real = Tensor::from_slice(&w_real).to_device(device);
        push("recall", weighted_mean(&real_in_fake, &w_real));
        if let Some(covered) = &covered {
            push("coverage", weighted_mean(covered, &w_real));
        }
    }
    let interval = |name: &str| draws.get(name).map(|v| Interval::percentile_95(v));
    let nan = Interval { low: f64::NAN, high: f64::NAN };
    MetricIntervals {
        resamples,
        accuracy: interval("accuracy").unwrap_or(nan),
        worst_condition: interval("worst").unwrap_or(nan),
        confidence: interval("confidence").unwrap_or(nan),
        frechet_distance: draws.get("fd").map_or(nan, |v| Interval::centred_on(v, points.frechet_distance)),
        precision: interval("precision").unwrap_or(nan),
        recall: interval("recall").unwrap_or(nan),
        diversity_samples: interval("diversity").unwrap_or(nan),
        memorization_share: interval("memorized").unwrap_or(nan),
        style_accuracy: interval("style"),
        density: interval("density"),
        coverage: interval("coverage"),
    }
}

/// The 95 % interval of `statistic` over `resamples` plain bootstrap resamples
/// of n points (one group, drawn with replacement, seeded): `statistic` gets
/// each resample's multiplicities [n] and computes from the points it keeps
/// (several per-point values resampled together stay paired).
pub fn bootstrap_statistic(n: usize, resamples: usize, seed: u64, statistic: impl Fn(&[f64]) -> f64) -> Interval {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let all = [(0..n).collect::<Vec<_>>()];
    let values: Vec<f64> = (0..resamples).map(|_| statistic(&multiplicities(&all, n, &mut rng))).collect();
    Interval::percentile_95(&values)
}

/// Σ wᵢ vᵢ / Σ wᵢ of per-point `values` and multiplicities `w` (NaN when Σ w = 0).
pub fn weighted_average(values: &[f64], w: &[f64]) -> f64 {
    values.iter().zip(w).map(|(v, w)| v * w).sum::<f64>() / w.iter().sum::<f64>()
}

/// Σ wᵢ vᵢ / Σ wᵢ of [n] values and weights (double).
fn weighted_mean(values: &Tensor, weights: &Tensor) -> f64 {
    let total = weights.sum(Kind::Double).double_value(&[]).max(1.0);
    (values * weights).sum(Kind::Double).double_value(&[]) / total
}

/// The rows of each condition, in order of first appearance.
fn groups(conditions: &[(i64, i64)]) -> Vec<Vec<usize>> {
    let mut by_key: BTreeMap<(i64, i64), Vec<usize>> = BTreeMap::new();
    for (i, key) in conditions.iter().enumerate() {
        by_key.entry(*key).or_default().push(i);
    }
    by_key.into_values().collect()
}

/// One stratified resample as multiplicities [n]: within each group, as many
/// draws with replacement as the group has rows.
fn multiplicities(groups: &[Vec<usize>], n: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let mut w = vec![0.0; n];
    for rows in groups {
        for _ in 0..rows.len() {
            w[rows[rng.gen_range(0..rows.len())]] += 1.0;
        }
    }
    w
}
