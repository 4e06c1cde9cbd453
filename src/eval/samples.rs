//! One set of conditional samples measured by a judge against real held-out
//! images: every measure of [`SampleMetrics`] and its bootstrap interval.

use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::intervals::{self, MetricIntervals, PointValues};
use super::judge::{Judge, JudgeKind};
use super::metrics::{self, ClassDistances, ConditionalAccuracy, FrechetReference};
use super::reference::{self, class_matched_subset, ReferenceMeasures};
use super::{copying, subset, EvalOptions};
use crate::capacity::{self, Footprint};
use crate::data::Split;
use crate::sample::Samples;
use crate::task::{Experiment, TaskData};
use crate::{Error, Result};

/// Everything measured about one set of conditional samples.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SampleMetrics {
    pub experiment: Experiment,
    /// Generated images judged.
    pub samples: usize,
    pub per_condition: usize,
    pub judge: JudgeKind,
    /// The judge's own accuracy on the real test split.
    pub judge_test_accuracy: f64,
    /// Does the judge see what was asked for?
    pub accuracy: ConditionalAccuracy,
    /// Fréchet distance in the judge's 128-unit feature layer, samples vs real images
    /// of the held-out split ([`EvalOptions::split`]; test unless asked).
    pub frechet_distance: f64,
    /// Real held-out images in the reference of the Fréchet distance, precision/recall,
    /// KID and density/coverage: drawn per condition with the samples' counts
    /// ([`class_matched_subset`]), all of a condition's when it has fewer
    /// (see `reference_shortfall`).
    pub real_reference_images: usize,
    pub precision: f64,
    pub recall: f64,
    pub precision_recall_k: i64,
    /// Mean within-class pairwise feature distance of the samples, and of the real reference images.
    pub diversity_samples: f64,
    pub diversity_real: f64,
    /// Share of samples closer to a train image than the train set's own 1st-percentile NN distance.
    pub memorization_share: f64,
    /// That 1st-percentile distance (L2 over pixels in [0, 1]).
    pub memorization_threshold: f64,
    pub memorization_reference_images: usize,
    /// K49 only: measured thick/thin matches the requested style.
    pub style_accuracy: Option<f64>,

    // Like-with-like reference, KID, density and coverage ([`ReferenceMeasures`]).
    // None in metrics written before they were measured.
    /// Samples without a real reference image of their condition: Σ over conditions
    /// of max(0, samples − reference images), 0 when every condition was matched.
    #[serde(default)]
    pub reference_shortfall: Option<usize>,
    /// KID (Bińkowski et al. 2018) in the judge's feature layer against the reference:
    /// the mean over [`metrics::KID_SUBSETS`] seeded subsets of min(1,000, n) images a side
    /// of the unbiased MMD² with the kernel (xᵀy/d + 1)³. As is, not × 1000: the
    /// convention of torch-fidelity's `kernel_inception_distance_mean`.
    #[serde(default)]
    pub kid_mean: Option<f64>,
    /// The standard deviation of KID over the subsets (ddof 0, torch-fidelity's
    /// `kernel_inception_distance_std`; 0 when a subset is the whole set).
    #[serde(default)]
    pub kid_std: Option<f64>,
    /// Images a side in each KID subset.
    #[serde(default)]
    pub kid_subset_size: Option<usize>,
    /// Per-condition (intra-class) KID: the mean over conditions of the unbiased MMD²
    /// of a condition's samples against its reference images. A generator that
    /// collapses inside a class scores far above real data here, even when its
    /// pooled KID looks fine.
    #[serde(default)]
    pub kid_per_condition_mean: Option<f64>,
    /// The largest per-condition KID (the worst condition).
    #[serde(default)]
    pub kid_per_condition_worst: Option<f64>,
    /// Density (Naeem et al. 2020): real k-NN balls holding a sample, per sample, over k (≈ 1 for real data).
    #[serde(default)]
    pub density: Option<f64>,
    /// Coverage (Naeem et al. 2020): share of real k-NN balls holding at least one sample.
    #[serde(default)]
    pub coverage: Option<f64>,
    /// k of the balls of density and coverage ([`metrics::DENSITY_COVERAGE_K`]).
    #[serde(default)]
    pub density_coverage_k: Option<i64>,

    // The data-copying test ([`copying`]), against the memorization check's train
    // images and the held-out real images of the Fréchet reference. None: measured
    // before the test existed.
    /// C_T of Meehan et al. (2020) in the judge's feature space: strongly negative
    /// (below about −3) when samples sit closer to the train images than held-out
    /// real images do (copying), near 0 when as close, positive when farther.
    /// Also None when no cell held enough samples.
    #[serde(default)]
    pub copying_ct: Option<f64>,
    /// Cells of the k-means partition of the train features.
    #[serde(default)]
    pub copying_cells: Option<usize>,
    /// Cells holding enough samples (more than 20) to enter C_T.
    #[serde(default)]
    pub copying_cells_used: Option<usize>,

    /// Bootstrap 95 % intervals of the measures ([`intervals`]); None in metrics
    /// written before they were measured.
    #[serde(default)]
    pub intervals: Option<MetricIntervals>,
}

impl SampleMetrics {
    /// The accuracy of the condition the judge accepts least often (conditions with samples only).
    pub fn worst_condition(&self) -> f64 {
        self.accuracy.per_class.iter().copied().filter(|v| !v.is_nan()).fold(f64::INFINITY, f64::min)
    }

    /// Within-class diversity of the samples as a share of the real data's (1 = as varied as real images).
    pub fn diversity_ratio(&self) -> f64 {
        self.diversity_samples / self.diversity_real.max(1e-12)
    }
}

/// Measures `samples` of `data.experiment` with `judge`, against real images of
/// the held-out split `opts.split` names.
pub fn evaluate_samples(
    samples: &Samples,
    data: &TaskData,
    judge: &Judge,
    opts: &EvalOptions,
) -> Result<SampleMetrics> {
    // An empty set is refused by evaluate_samples_against (check_sizes), before anything is measured.
    let reference =
        class_matched_subset(data.held_out(opts.split), &samples.labels, samples.styles.as_deref(), opts.seed);
    evaluate_samples_against(samples, &reference, data, judge, opts)
}

/// As [`evaluate_samples`], against a given set of real images (the
/// reference of the Fréchet distance, precision/recall, KID, density/coverage
/// and real diversity).
pub fn evaluate_samples_against(
    samples: &Samples,
    reference: &Split,
    data: &TaskData,
    judge: &Judge,
    opts: &EvalOptions,
) -> Result<SampleMetrics> {
    check_sizes(samples, reference, opts)?;
    let exp = data.experiment;
    let fake = judge.judge(samples.images.view());
    let real = judge.judge(reference.images.view());
    let probs = metrics::condition_probs(exp, &fake.probs);
    let classes = probs.size()[1] as usize;
    let (correct, confidence) = metrics::judged_points(&probs, &samples.labels)?;
    let accuracy = ConditionalAccuracy::from_points(&correct, &confidence, &samples.labels, classes);
    let frechet = FrechetReference::new(&real.features);
    let frechet_distance = frechet.distance(&fake.features, None);
    let (fake_in_real, real_in_fake) =
        metrics::manifold_membership(&real.features, &fake.features, opts.precision_recall_k);
    let real_labels: Vec<i64> = reference.labels.iter().map(|&l| l as i64).collect();
    let diversity = ClassDistances::new(&fake.features, &samples.labels);
    let diversity_real = metrics::within_class_diversity(&real.features, &real_labels);

    let train_ref = subset(&data.train, opts.memorization_reference, opts.seed ^ 1);
    let sample_flat = crate::data::row_major(&samples.images);
    let (memorized, memorization_threshold) =
        metrics::memorized_points(&sample_flat, &crate::data::row_major(&train_ref.images))?;
    // The data-copying test against validation images: neither the generator nor the judge
    // trained on them, and they come from the train file (the test split's shift from train
    // would count as copying).
    let held_out = subset(&data.validation, samples.len(), opts.seed ^ 0xC0B);
    let held_out_features = judge.judge(held_out.images.view()).features;
    let copying = copying_test(&fake.features, &held_out_features, &train_ref, judge, opts.seed)?;
    let style_hits = match (&samples.styles, &data.style_medians) {
        (Some(styles), Some(medians)) => Some(metrics::style_hits(&sample_flat, &samples.labels, styles, medians)),
        _ => None,
    };
    let like = ReferenceMeasures::measure(&real.features, reference, &fake.features, samples, opts.seed);

    let with_styles = samples.styles.is_some() && reference.styles.is_some();
    let fake_conditions = reference::condition_keys(&samples.labels, samples.styles.as_deref().filter(|_| with_styles));
    let real_conditions = reference::split_condition_keys(reference, with_styles);
    let points = PointValues {
        fake_conditions: &fake_conditions,
        labels: &samples.labels,
        classes,
        correct: &correct,
        confidence: &confidence,
        fake_in_real: &fake_in_real,
        balls_per_fake: like.density_coverage_points.as_ref().map(|(b, _)| (b, metrics::DENSITY_COVERAGE_K)),
        memorized: &memorized,
        style_hits: style_hits.as_deref(),
        fake_features: &fake.features,
        frechet: &frechet,
        frechet_distance,
        diversity: &diversity,
        real_conditions: &real_conditions,
        real_in_fake: &real_in_fake,
        real_covered: like.density_coverage_points.as_ref().map(|(_, c)| c),
    };
    let intervals = intervals::bootstrap(&points, intervals::RESAMPLES, opts.seed ^ 0xB007);
    let conditions = data.spec.conditions();
    Ok(SampleMetrics {
        experiment: exp,
        samples: samples.len(),
        per_condition: samples.len() / conditions.max(1),
        judge: judge.meta.kind,
        judge_test_accuracy: judge.meta.test_accuracy,
        accuracy,
        frechet_distance,
        real_reference_images: reference.len(),
        precision: metrics::share(&fake_in_real),
        recall: metrics::share(&real_in_fake),
        precision_recall_k: opts.precision_recall_k,
        diversity_samples: diversity.mean(None),
        diversity_real,
        memorization_share: metrics::share_of(&memorized),
        memorization_threshold,
        memorization_reference_images: train_ref.len(),
        style_accuracy: style_hits.as_deref().map(metrics::share_of),
        reference_shortfall: Some(like.reference_shortfall),
        kid_mean: like.kid.map(|k| k.mean),
        kid_std: like.kid.map(|k| k.std),
        kid_subset_size: like.kid.map(|k| k.subset_size),
        kid_per_condition_mean: like.per_condition_kid.map(|k| k.0),
        kid_per_condition_worst: like.per_condition_kid.map(|k| k.1),
        density: like.density_coverage.map(|d| d.0),
        coverage: like.density_coverage.map(|d| d.1),
        density_coverage_k: Some(metrics::DENSITY_COVERAGE_K),
        copying_ct: copying.c_t,
        copying_cells: Some(copying.cells.len()),
        copying_cells_used: Some(copying.cells_used),
        intervals: Some(intervals),
    })
}

/// Refuses what cannot be measured before measuring anything: no samples, too
/// few reference images for the k-NN balls, more samples than memory holds.
fn check_sizes(samples: &Samples, reference: &Split, opts: &EvalOptions) -> Result<()> {
    if samples.is_empty() {
        return Err(Error::InvalidInput("no samples to evaluate".into()));
    }
    // The k-NN balls need more than k real images (a class-matched reference
    // holds only the conditions the split has).
    if reference.len() <= opts.precision_recall_k.max(0) as usize {
        return Err(Error::InvalidInput(format!(
            "{} real reference images of the samples' conditions; precision/recall (k = {}) need more",
            reference.len(),
            opts.precision_recall_k
        )));
    }
    Footprint::images(samples.len() as u128, capacity::MEASURE_BYTES).check()
}

/// The data-copying test ([`copying::data_copying`], default options, k-means
/// seeded by `seed`) of samples' judge features `generated`, against the judge's
/// features of `train` (images of the train split) and the held-out features it
/// is given: `held_out` must come from real images that neither the generator
/// nor the judge trained on, drawn as the train images are (the validation
/// split: against the test split, a dataset's train/test shift counts as copying).
/// Only copies of images in `train` are seen (a subset of the train split).
pub fn copying_test(
    generated: &Tensor,
    held_out: &Tensor,
    train: &Split,
    judge: &Judge,
    seed: u64,
) -> Result<copying::CopyingTest> {
    let train_features = judge.judge(train.images.view()).features;
    let opts = copying::CopyingOptions { seed, ..copying::CopyingOptions::default() };
    copying::data_copying(&train_features, held_out, generated, &opts)
}
