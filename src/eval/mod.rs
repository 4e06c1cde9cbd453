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
pub mod intervals;
pub mod judge;
pub mod likelihood;
pub mod metrics;
pub mod recognisability;
pub mod reference;
pub mod reference_rows;
pub mod samples;
pub mod snapshots;
pub mod swap;

use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::Device;

pub use crate::task::HeldOut;
pub use cas::{classification_accuracy_score, Cas, CasConfig};
pub use intervals::{Interval, MetricIntervals};
pub use judge::{Judge, JudgeKind};
pub use metrics::ConditionalAccuracy;
pub use recognisability::Recognisability;
pub use reference::{class_matched_subset, ReferenceMeasures};
pub use reference_rows::{
    class_mean_samples, collapsed, features, gaussian_blur, real_as_samples, reference_rows, ReferenceRow,
    REFERENCE_BLURS,
};
pub use samples::{copying_test, evaluate_samples, evaluate_samples_against, SampleMetrics};
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

/// The metrics of a run folder, as written to `metrics.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunMetrics {
    pub run: PathBuf,
    pub model: String,
    pub architecture: String,
    pub epoch: usize,
    pub data_source: String,
    /// CVAE only: negative ELBO per held-out image at the model's epoch (history.csv's
    /// `test_loss`: the validation split's, or the test split's in runs from before it).
    pub cvae_test_loss: Option<f64>,
    /// CVAE only: active units on the held-out split at the model's epoch (history.csv's
    /// `test_active_units`; None for a history from before it was recorded).
    #[serde(default)]
    pub cvae_active_units: Option<usize>,
    /// CVAE only: KL per latent dimension on the held-out split at the model's epoch,
    /// nats per image (history.csv's `test_kl_per_dim`).
    #[serde(default)]
    pub cvae_kl_per_dim: Option<Vec<f64>>,
    /// The samples measured: for a CVAE, z from its fitted per-condition prior.
    pub metrics: SampleMetrics,
    /// How the measured samples were drawn (see [`crate::sample::LATENT_FITTED`]).
    #[serde(default)]
    pub latent_source: Option<String>,
    /// CVAE only: the same measurement with z from the prior of training (N(0, I),
    /// or the learned p(z | c) of a CVAE trained with one).
    #[serde(default)]
    pub standard_prior_metrics: Option<SampleMetrics>,
    /// How `standard_prior_metrics`' samples were drawn (None in metrics from
    /// before learned priors: N(0, I)).
    #[serde(default)]
    pub trained_prior_source: Option<String>,
    pub seconds: f64,
    /// The options these metrics were computed with (a later evaluation with
    /// the same options, epoch and judge reuses them).
    #[serde(default)]
    pub options: Option<EvalOptions>,
}

impl RunMetrics {
    /// The samples as the model draws them: a CVAE's z from the prior it was trained
    /// with (N(0, I) or a learned p(z | c)); a CGAN's noise. What a run is judged by.
    pub fn as_trained(&self) -> &SampleMetrics {
        self.standard_prior_metrics.as_ref().unwrap_or(&self.metrics)
    }

    /// The measured sets of samples with how each was drawn: the run's own,
    /// then (CVAE) the same decoder with z from the prior it was trained with.
    pub fn by_latent_source(&self) -> Vec<(&SampleMetrics, &str)> {
        let own = self.latent_source.as_deref().unwrap_or(crate::sample::GAN_NOISE);
        let mut sets = vec![(&self.metrics, own)];
        if let Some(standard) = &self.standard_prior_metrics {
            sets.push((standard, self.trained_prior_source.as_deref().unwrap_or(crate::sample::LATENT_STANDARD)));
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
        history::collapse_diagnostics(&run.join(crate::train::run::HISTORY_FILE), model.epoch).unzip();
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
            // Metrics from before the data-copying test lack C_T, from before the bootstrap its intervals.
            let complete = complete && prev.metrics.copying_cells.is_some() && prev.metrics.intervals.is_some();
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
    let trained_prior = model.sampler(LatentSource::TrainedPrior)?;
    let standard_prior_metrics = if is_cvae {
        let samples = trained_prior.sample_all_conditions(per_condition, opts.seed)?;
        Some(evaluate_samples(&samples, &data, &judge, opts)?)
    } else {
        None
    };
    let cvae_test_loss = epoch_value(&run.join(crate::train::run::HISTORY_FILE), "test_loss", model.epoch);
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
        trained_prior_source: is_cvae.then(|| trained_prior.caption()),
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
/// `column` of a history.csv at `epoch` (1-based).
fn epoch_value(history_csv: &Path, column: &str, epoch: usize) -> Option<f64> {
    let df = history::read_csv(history_csv).ok()?;
    let col = df.column(column).ok()?.f64().ok()?.clone();
    col.get(epoch.checked_sub(1)?)
}
