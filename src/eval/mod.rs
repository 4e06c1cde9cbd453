//! Evaluation: judge classifiers and the metrics that measure generated images.
//!
//! - [`judge`]: the small CNNs trained on real train splits.
//! - [`metrics`]: conditional accuracy, Fréchet distance, precision/recall,
//!   KID (pooled and per condition), density/coverage, diversity, memorization,
//!   style accuracy. The real reference is drawn like-with-like: per condition,
//!   as many images as the samples have ([`class_matched_subset`]).
//! - [`snapshots`]: the judge's accuracy on a run's fixed-noise snapshots over epochs.
//! - [`copying`]: the data-copying test (C_T, Meehan et al. 2020) in the judge's feature space.
//! - [`cas`]: Classification Accuracy Score, a classifier trained on samples and tested on real images.
//! - [`recognisability`]: the letter judge on rotation (turned upright) and vowel samples.
//!
//! Samples are measured against one held-out split ([`EvalOptions::split`]): the
//! test split by default, which the final report reads; the validation split for
//! every choice made before it (`condgen eval --split validation`).

pub mod anomaly;
pub mod cas;
pub mod copying;
pub mod judge;
pub mod likelihood;
pub mod metrics;
pub mod recognisability;
pub mod reference;
pub mod reference_rows;
pub mod snapshots;

use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

pub use crate::task::HeldOut;
pub use cas::{classification_accuracy_score, Cas, CasConfig};
pub use judge::{Judge, JudgeKind};
pub use metrics::ConditionalAccuracy;
pub use recognisability::Recognisability;
pub use reference::{class_matched_subset, ReferenceMeasures};
pub use reference_rows::{
    class_mean_samples, collapsed, features, gaussian_blur, real_as_samples, reference_rows, ReferenceRow,
    REFERENCE_BLURS,
};
pub use snapshots::snapshot_accuracy;

use crate::capacity::{self, Footprint};
use crate::data::{Dataset, Split};
use crate::progress::ProgressMode;
use crate::sample::{LatentSource, Sampler, Samples, TrainedModel};
use crate::task::{Experiment, TaskData};
use crate::train::history;
use crate::{Error, Result};

/// How an evaluation is run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalOptions {
    /// Samples in total, spread evenly over the conditions.
    pub samples: usize,
    /// Seed of the sampling noise and of the real reference subsets.
    pub seed: u64,
    /// Where judges are cached.
    pub judges_root: PathBuf,
    /// Retrain judges even when cached.
    pub retrain_judges: bool,
    /// Real train images the memorization check compares against.
    pub memorization_reference: usize,
    /// k of the k-NN balls of precision/recall.
    pub precision_recall_k: i64,
    /// Use quick judges (one epoch on 4,000 images) for smoke runs.
    pub quick_judges: bool,
    /// The real split samples are measured against (the Fréchet distance's and
    /// precision/recall's reference, the real diversity, the reference rows): the
    /// test split for the final report (the default), the validation split for
    /// every selection made before it. Absent in metrics from before it existed: test.
    #[serde(default)]
    pub split: HeldOut,
    /// How a judge's training reports its epochs (not part of the measurement).
    #[serde(skip)]
    pub progress: ProgressMode,
}

/// Samples judged per run in a profile: 480 for quick smoke runs, else 2,400.
pub fn samples_for(profile: crate::train::Profile) -> usize {
    if profile == crate::train::Profile::Quick {
        480
    } else {
        2400
    }
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            samples: samples_for(crate::train::Profile::Default),
            seed: 1234,
            judges_root: PathBuf::from("runs/judges"),
            retrain_judges: false,
            memorization_reference: 5000,
            precision_recall_k: 3,
            quick_judges: false,
            split: HeldOut::Test,
            progress: ProgressMode::Auto,
        }
    }
}

impl EvalOptions {
    /// Samples per condition so that every condition gets as many and the total reaches `samples`.
    pub fn per_condition(&self, spec: &crate::ConditionSpec) -> usize {
        self.samples.div_ceil(spec.conditions()).max(1)
    }

    /// How a profile's runs are judged, with judges cached in `<runs_root>/judges`: the one
    /// place the report, the notebooks and the command line take these defaults from.
    pub fn for_profile(profile: crate::train::Profile, runs_root: &Path) -> EvalOptions {
        EvalOptions {
            samples: samples_for(profile),
            judges_root: runs_root.join("judges"),
            quick_judges: profile == crate::train::Profile::Quick,
            ..EvalOptions::default()
        }
    }

    /// Whether two option sets measure the same thing: where judges are cached
    /// and whether they are retrained aside (the judge itself is compared separately).
    pub fn same_measurement(&self, other: &EvalOptions) -> bool {
        let norm = |o: &EvalOptions| EvalOptions {
            retrain_judges: false,
            judges_root: PathBuf::new(),
            progress: ProgressMode::Auto,
            ..o.clone()
        };
        norm(self) == norm(other)
    }
}

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

/// The metrics of a run folder, as written to `metrics.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunMetrics {
    pub run: PathBuf,
    pub model: String,
    pub architecture: String,
    pub epoch: usize,
    pub data_source: String,
    /// CVAE only: negative ELBO per held-out image after the last epoch (history.csv's
    /// `test_loss`: the validation split's, or the test split's in runs from before it).
    pub cvae_test_loss: Option<f64>,
    /// CVAE only: active units on the held-out split after the last epoch (history.csv's
    /// `test_active_units`; None for a history from before it was recorded).
    #[serde(default)]
    pub cvae_active_units: Option<usize>,
    /// CVAE only: KL per latent dimension on the held-out split after the last epoch,
    /// nats per image (history.csv's `test_kl_per_dim`).
    #[serde(default)]
    pub cvae_kl_per_dim: Option<Vec<f64>>,
    /// The samples measured: for a CVAE, z from its fitted per-condition prior.
    pub metrics: SampleMetrics,
    /// How the measured samples were drawn (see [`crate::sample::LATENT_FITTED`]).
    #[serde(default)]
    pub latent_source: Option<String>,
    /// CVAE only: the same measurement with z from N(0, I), the prior of training.
    #[serde(default)]
    pub standard_prior_metrics: Option<SampleMetrics>,
    pub seconds: f64,
    /// The options these metrics were computed with (a later evaluation with
    /// the same options, epoch and judge reuses them).
    #[serde(default)]
    pub options: Option<EvalOptions>,
}

impl RunMetrics {
    /// The samples as the model draws them: a CVAE's z from N(0, I), the prior it was
    /// trained with; a CGAN's noise. What a run is judged by.
    pub fn as_trained(&self) -> &SampleMetrics {
        self.standard_prior_metrics.as_ref().unwrap_or(&self.metrics)
    }

    /// The measured sets of samples with how each was drawn: the run's own,
    /// then (CVAE) the same decoder with z ~ N(0, I).
    pub fn by_latent_source(&self) -> Vec<(&SampleMetrics, &str)> {
        let own = self.latent_source.as_deref().unwrap_or(crate::sample::GAN_NOISE);
        let mut sets = vec![(&self.metrics, own)];
        if let Some(standard) = &self.standard_prior_metrics {
            sets.push((standard, crate::sample::LATENT_STANDARD));
        }
        sets
    }
}

/// The judge for `experiment`, trained on `dataset` if not cached.
pub fn judge_for(experiment: Experiment, dataset: &Dataset, opts: &EvalOptions, device: Device) -> Result<Judge> {
    let kind = JudgeKind::for_experiment(experiment);
    let data = kind.task().prepare(dataset);
    let cfg = if opts.quick_judges { judge::JudgeConfig::quick(kind) } else { judge::JudgeConfig::for_kind(kind) };
    Judge::load_or_train(kind, &data, &cfg, &opts.judges_root, opts.retrain_judges, device, opts.progress)
}

/// A seeded random subset of a split (at most `n` images).
pub(crate) fn subset(split: &Split, n: usize, seed: u64) -> Split {
    if n >= split.len() {
        return split.clone();
    }
    let mut idx: Vec<usize> = (0..split.len()).collect();
    idx.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    idx.truncate(n);
    idx.sort_unstable();
    split.select(&idx)
}

/// Measures `samples` of `data.experiment` with `judge`, against real images of
/// the held-out split `opts.split` names.
pub fn evaluate_samples(
    samples: &Samples,
    data: &TaskData,
    judge: &Judge,
    opts: &EvalOptions,
) -> Result<SampleMetrics> {
    if samples.is_empty() {
        return Err(Error::InvalidInput("no samples to evaluate".into()));
    }
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
    let exp = data.experiment;
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
    Footprint::images(samples.len() as u128, capacity::MEASURE_BYTES).check()?;
    let fake = judge.judge(samples.images.view());
    let probs = metrics::condition_probs(exp, &fake.probs);
    let accuracy = metrics::conditional_accuracy(&probs, &samples.labels)?;
    let real = judge.judge(reference.images.view());
    let frechet_distance = metrics::frechet_distance(&real.features, &fake.features);
    let (precision, recall) = metrics::precision_recall(&real.features, &fake.features, opts.precision_recall_k);
    let real_labels: Vec<i64> = reference.labels.iter().map(|&l| l as i64).collect();
    let diversity_real = metrics::within_class_diversity(&real.features, &real_labels);
    let diversity_samples = metrics::within_class_diversity(&fake.features, &samples.labels);

    let train_ref = subset(&data.train, opts.memorization_reference, opts.seed ^ 1);
    let sample_flat = crate::data::row_major(&samples.images);
    let (memorization_share, memorization_threshold) =
        metrics::memorization_share(&sample_flat, &crate::data::row_major(&train_ref.images))?;

    // The data-copying test against validation images: neither the generator nor the judge
    // trained on them, and they come from the train file (the test split's shift from train
    // would count as copying).
    let held_out = subset(&data.validation, samples.len(), opts.seed ^ 0xC0B);
    let held_out_features = judge.judge(held_out.images.view()).features;
    let copying = copying_test(&fake.features, &held_out_features, &train_ref, judge, opts.seed)?;

    let style_accuracy = match (&samples.styles, &data.style_medians) {
        (Some(styles), Some(medians)) => Some(metrics::style_accuracy(&sample_flat, &samples.labels, styles, medians)),
        _ => None,
    };
    let conditions = data.spec.conditions();
    let like = ReferenceMeasures::measure(&real.features, reference, &fake.features, samples, opts.seed);
    Ok(SampleMetrics {
        experiment: exp,
        samples: samples.len(),
        per_condition: samples.len() / conditions.max(1),
        judge: judge.meta.kind,
        judge_test_accuracy: judge.meta.test_accuracy,
        accuracy,
        frechet_distance,
        real_reference_images: reference.len(),
        precision,
        recall,
        precision_recall_k: opts.precision_recall_k,
        diversity_samples,
        diversity_real,
        memorization_share,
        memorization_threshold,
        memorization_reference_images: train_ref.len(),
        style_accuracy,
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
    })
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

/// The file in a run folder holding its metrics against `split`: `metrics.json`
/// for the test split (the report's), `metrics-validation.json` for validation.
pub fn metrics_file(split: HeldOut) -> &'static str {
    match split {
        HeldOut::Test => "metrics.json",
        HeldOut::Validation => "metrics-validation.json",
    }
}

/// Evaluates a trained run on its task's data, against the held-out split
/// `opts.split` names, and writes `<run>/`[`metrics_file`].
pub fn evaluate_run(run: &Path, dataset: &Dataset, opts: &EvalOptions, device: Device) -> Result<RunMetrics> {
    let start = Instant::now();
    let mut model = TrainedModel::load(run, device)?;
    let exp = model.experiment();
    if exp.dataset() != dataset.kind {
        return Err(Error::InvalidInput(format!(
            "run {} is a {exp} run; it needs {}",
            run.display(),
            exp.dataset().title()
        )));
    }
    run_footprint(&model.spec, opts).check()?;
    let is_cvae = matches!(model.built.net, crate::model::Net::Cvae(_));
    // Read from the history every time: cheap, and right for metrics cached before it was recorded.
    let (cvae_active_units, cvae_kl_per_dim) =
        history::last_collapse_diagnostics(&run.join(crate::train::run::HISTORY_FILE)).unzip();
    let judge = judge_for(exp, dataset, opts, device)?;
    let metrics_path = run.join(metrics_file(opts.split));
    let data = exp.prepare(dataset);
    model.ensure_latent_prior(&data)?;
    let sampler = model.sampler(LatentSource::FittedPrior)?;
    if !opts.retrain_judges {
        let previous = std::fs::read(&metrics_path).ok().and_then(|b| serde_json::from_slice::<RunMetrics>(&b).ok());
        if let Some(prev) = previous {
            let same_options = prev.options.as_ref().is_some_and(|o| o.same_measurement(opts));
            let same_judge = prev.metrics.judge_test_accuracy == judge.meta.test_accuracy;
            // Metrics from before the fitted prior lack the N(0, I) comparison.
            let complete = !is_cvae || prev.standard_prior_metrics.is_some();
            // Metrics from before the like-with-like reference (and KID) were measured against another one.
            let complete = complete && prev.metrics.reference_shortfall.is_some();
            // Metrics from before the data-copying test lack C_T.
            let complete = complete && prev.metrics.copying_cells.is_some();
            // Drawn as they would be now (the caption names the fitted prior's shape).
            let same_source = prev.latent_source.as_deref() == Some(sampler.caption().as_str());
            if same_options && same_judge && prev.epoch == model.epoch && complete && same_source {
                return Ok(RunMetrics { cvae_active_units, cvae_kl_per_dim, ..prev });
            }
        }
    }
    let per_condition = opts.per_condition(&data.spec);
    let samples = sampler.sample_all_conditions(per_condition, opts.seed)?;
    let metrics = evaluate_samples(&samples, &data, &judge, opts)?;
    let standard_prior_metrics = if is_cvae {
        let samples = model.sampler(LatentSource::StandardNormal)?.sample_all_conditions(per_condition, opts.seed)?;
        Some(evaluate_samples(&samples, &data, &judge, opts)?)
    } else {
        None
    };
    let cvae_test_loss = last_value(&run.join(crate::train::run::HISTORY_FILE), "test_loss");
    let meta = model.run.read_meta().ok();
    let out = RunMetrics {
        run: run.to_path_buf(),
        model: model.config.model().name().to_string(),
        architecture: model.config.architecture.name().to_string(),
        epoch: model.epoch,
        data_source: meta.and_then(|m| m.data_source).unwrap_or_else(|| dataset.source.clone()).to_string(),
        cvae_test_loss,
        cvae_active_units,
        cvae_kl_per_dim,
        metrics,
        latent_source: Some(sampler.caption().to_string()),
        standard_prior_metrics,
        seconds: start.elapsed().as_secs_f64(),
        options: Some(opts.clone()),
    };
    crate::train::run::write_atomic(&metrics_path, &serde_json::to_vec_pretty(&out).expect("json"))?;
    Ok(out)
}

/// What [`evaluate_run`] needs for `opts.samples` samples of a run whose
/// conditions are `spec`'s: two sets of samples (a CVAE's are also measured
/// with z from N(0, I)) and the memory measuring them takes. It checks this
/// before drawing; a caller can check it before loading anything.
pub fn run_footprint(spec: &crate::ConditionSpec, opts: &EvalOptions) -> Footprint {
    let bytes_per_sample = 2 * capacity::SAMPLE_BYTES + capacity::MEASURE_BYTES;
    Footprint::per_condition(opts.per_condition(spec), spec.conditions(), bytes_per_sample)
}

/// The share of `samples` the judge assigns to each condition of `experiment`
/// (its argmax): the class histogram an unconditional model's samples make.
pub fn predicted_condition_shares(judge: &Judge, experiment: Experiment, samples: &Samples) -> Result<Vec<f64>> {
    let probs = metrics::condition_probs(experiment, &judge.judge(samples.images.view()).probs);
    let conditions = probs.size()[1] as usize;
    let predicted = Vec::<i64>::try_from(probs.argmax(1, false))?;
    let mut shares = vec![0.0; conditions];
    for p in &predicted {
        shares[*p as usize] += 1.0 / predicted.len().max(1) as f64;
    }
    Ok(shares)
}

/// Sampling temperatures of the CVAE's prior sweep ([`temperature_sweep`]).
pub const SWEEP_TEMPERATURES: [f64; 6] = [0.25, 0.5, 0.75, 1.0, 1.25, 1.5];

/// A CVAE's samples measured at each sampling temperature: the sampler's
/// standard normal noise scaled by T before its latent source moves it (see
/// [`sample::draw`]). The precision/recall trade-off: low T keeps samples
/// near each condition's mode. (temperature, metrics) pairs.
pub fn temperature_sweep(
    sampler: &Sampler,
    data: &TaskData,
    judge: &Judge,
    temperatures: &[f64],
    opts: &EvalOptions,
) -> Result<Vec<(f64, SampleMetrics)>> {
    let per_condition = opts.per_condition(&data.spec);
    temperatures
        .iter()
        .map(|&t| {
            let samples = sampler.sample_all_conditions_at(per_condition, opts.seed, t)?;
            Ok((t, evaluate_samples(&samples, data, judge, opts)?))
        })
        .collect()
}

/// The last value of a column of a history.csv, if it has one.
fn last_value(history_csv: &Path, column: &str) -> Option<f64> {
    let df = history::read_csv(history_csv).ok()?;
    let col = df.column(column).ok()?.f64().ok()?.clone();
    col.get(col.len().checked_sub(1)?)
}
