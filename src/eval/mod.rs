//! Evaluation: judge classifiers and the metrics that measure generated images.
//!
//! - [`judge`]: the small CNNs trained on real train splits.
//! - [`metrics`]: conditional accuracy, Fréchet distance, precision/recall,
//!   diversity, memorization, style accuracy.
//! - [`snapshots`]: the judge's accuracy on a run's fixed-noise snapshots over epochs.
//! - [`cas`]: Classification Accuracy Score, a classifier trained on samples and tested on real images.
//! - [`recognisability`]: the letter judge on rotation (turned upright) and vowel samples.

pub mod anomaly;
pub mod cas;
pub mod judge;
pub mod likelihood;
pub mod metrics;
pub mod recognisability;
pub mod snapshots;

use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

pub use cas::{classification_accuracy_score, Cas, CasConfig};
pub use judge::{Judge, JudgeKind};
pub use metrics::ConditionalAccuracy;
pub use recognisability::Recognisability;
pub use snapshots::snapshot_accuracy;

use crate::capacity::{self, Footprint};
use crate::data::{Dataset, Split};
use crate::progress::ProgressMode;
use crate::sample::{self, LatentSource, Sampler, Samples, TrainedModel};
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
    /// Fréchet distance in the judge's 128-unit feature layer, samples vs real test images.
    pub frechet_distance: f64,
    /// Real test images in the Fréchet and precision/recall reference (as many as samples, at most the split).
    pub real_reference_images: usize,
    pub precision: f64,
    pub recall: f64,
    pub precision_recall_k: i64,
    /// Mean within-class pairwise feature distance of the samples, and of real test images.
    pub diversity_samples: f64,
    pub diversity_real: f64,
    /// Share of samples closer to a train image than the train set's own 1st-percentile NN distance.
    pub memorization_share: f64,
    /// That 1st-percentile distance (L2 over pixels in [0, 1]).
    pub memorization_threshold: f64,
    pub memorization_reference_images: usize,
    /// K49 only: measured thick/thin matches the requested style.
    pub style_accuracy: Option<f64>,
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
    /// CVAE only: negative ELBO per test image after the last epoch.
    pub cvae_test_loss: Option<f64>,
    /// CVAE only: active units on the test split after the last epoch (history.csv's
    /// `test_active_units`; None for a history from before it was recorded).
    #[serde(default)]
    pub cvae_active_units: Option<usize>,
    /// CVAE only: KL per latent dimension on the test split after the last epoch,
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
fn subset(split: &Split, n: usize, seed: u64) -> Split {
    if n >= split.len() {
        return split.clone();
    }
    let mut idx: Vec<usize> = (0..split.len()).collect();
    idx.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    idx.truncate(n);
    idx.sort_unstable();
    split.select(&idx)
}

/// Measures `samples` of `data.experiment` with `judge`.
pub fn evaluate_samples(
    samples: &Samples,
    data: &TaskData,
    judge: &Judge,
    opts: &EvalOptions,
) -> Result<SampleMetrics> {
    if samples.is_empty() {
        return Err(Error::InvalidInput("no samples to evaluate".into()));
    }
    let reference = subset(&data.test, samples.len(), opts.seed);
    evaluate_samples_against(samples, &reference, data, judge, opts)
}

/// As [`evaluate_samples`], against a given set of real images (the
/// reference of the Fréchet distance, precision/recall and real diversity).
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

    let style_accuracy = match (&samples.styles, &data.style_medians) {
        (Some(styles), Some(medians)) => Some(metrics::style_accuracy(&sample_flat, &samples.labels, styles, medians)),
        _ => None,
    };
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
        precision,
        recall,
        precision_recall_k: opts.precision_recall_k,
        diversity_samples,
        diversity_real,
        memorization_share,
        memorization_threshold,
        memorization_reference_images: train_ref.len(),
        style_accuracy,
    })
}

/// Evaluates a trained run on its task's data and writes `<run>/metrics.json`.
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
    let metrics_path = run.join("metrics.json");
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

/// Blur widths (Gaussian σ in pixels) of the blurred-real reference rows.
pub const REFERENCE_BLURS: [f64; 4] = [0.5, 1.0, 1.5, 2.0];

/// One reference row: real images measured as if they were samples, so a
/// generator's figures can be read against what real data scores.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReferenceRow {
    /// What was measured, e.g. "real test, half vs half" or "real test blurred σ = 1 px".
    pub name: String,
    /// Gaussian blur σ in pixels (None: not blurred).
    pub blur: Option<f64>,
    pub metrics: SampleMetrics,
}

/// The reference rows of a judge on a task, at `n` images a side (use the
/// generators' sample count: the Fréchet distance is biased by sample size):
/// - real test half vs half: one half of the test split, measured against the other;
/// - real train vs test: train images against the same test half as the generators;
/// - real test blurred with σ in [`REFERENCE_BLURS`]: the first half blurred, against the other.
pub fn reference_rows(data: &TaskData, judge: &Judge, n: usize, opts: &EvalOptions) -> Result<Vec<ReferenceRow>> {
    let n = n.min(data.test.len() / 2).max(1);
    // Two disjoint halves of one shuffle of the test split.
    let both = subset(&data.test, 2 * n, opts.seed ^ 0x5EF);
    let first = both.head(n);
    let second = Split {
        images: both.images.slice(ndarray::s![n.., .., ..]).to_owned(),
        labels: both.labels[n..].to_vec(),
        styles: both.styles.as_ref().map(|s| s[n..].to_vec()),
    };
    let as_samples = |split: &Split| Samples {
        images: split.images.clone(),
        labels: split.labels.iter().map(|&l| l as i64).collect(),
        styles: split.styles.as_ref().map(|v| v.iter().map(|&x| x as i64).collect()),
    };
    let mut rows = Vec::new();
    let mut push = |name: String, blur: Option<f64>, samples: &Samples| -> Result<()> {
        let metrics = evaluate_samples_against(samples, &second, data, judge, opts)?;
        rows.push(ReferenceRow { name, blur, metrics });
        Ok(())
    };
    push("real test, half vs half".into(), None, &as_samples(&first))?;
    push("real train vs test".into(), None, &as_samples(&subset(&data.train, n, opts.seed ^ 0x7A1)))?;
    for sigma in REFERENCE_BLURS {
        let mut blurred = as_samples(&first);
        blurred.images = gaussian_blur(&blurred.images, sigma);
        push(format!("real test blurred σ = {sigma} px"), Some(sigma), &blurred)?;
    }
    Ok(rows)
}

/// Gaussian blur of uint8 images (separable kernel of radius ⌈3σ⌉, edges
/// padded by replication). images: [n, 28, 28] → [n, 28, 28]
pub fn gaussian_blur(images: &ndarray::Array3<u8>, sigma: f64) -> ndarray::Array3<u8> {
    let radius = (3.0 * sigma).ceil().max(1.0) as i64;
    let taps: Vec<f32> = (-radius..=radius).map(|i| (-(i * i) as f64 / (2.0 * sigma * sigma)).exp() as f32).collect();
    let total: f32 = taps.iter().sum();
    let kernel = Tensor::from_slice(&taps.iter().map(|t| t / total).collect::<Vec<_>>());
    let xs = crate::data::pixels_to_tensor(&crate::data::row_major(images), Device::Cpu);
    let k = 2 * radius + 1;
    let blurred = tch::no_grad(|| {
        let padded = xs.replication_pad2d([radius, radius, radius, radius]);
        padded.conv2d(&kernel.view([1, 1, 1, k]), None::<Tensor>, [1], [0], [1], 1).conv2d(
            &kernel.view([1, 1, k, 1]),
            None::<Tensor>,
            [1],
            [0],
            [1],
            1,
        )
    });
    sample::to_u8_images(&blurred)
}

/// Judges real test images as if they were samples (a sanity reference: the
/// accuracy should be close to the judge's own test accuracy).
pub fn real_as_samples(data: &TaskData, n: usize, seed: u64) -> Samples {
    let s = subset(&data.test, n, seed);
    Samples {
        labels: s.labels.iter().map(|&l| l as i64).collect(),
        styles: s.styles.map(|v| v.iter().map(|&x| x as i64).collect()),
        images: s.images,
    }
}

/// The degenerate generator the metrics must see through: for every
/// condition, the mean of its train images, repeated `per_condition` times.
/// It is what the judge expects of each condition (accuracy near 100 %) with
/// no variety at all (diversity 0, recall near 0).
pub fn class_mean_samples(data: &TaskData, per_condition: usize) -> Samples {
    let (classes, styles) = data.spec.all_conditions();
    let train = &data.train;
    let mut images =
        ndarray::Array3::<u8>::zeros((classes.len() * per_condition, crate::data::SIDE, crate::data::SIDE));
    for (k, (&class, &style)) in classes.iter().zip(&styles).enumerate() {
        let rows: Vec<usize> = (0..train.len())
            .filter(|&i| train.labels[i] == class && train.styles.as_ref().is_none_or(|s| s[i] == style))
            .collect();
        let mut sum = ndarray::Array2::<f64>::zeros((crate::data::SIDE, crate::data::SIDE));
        for &i in &rows {
            sum += &train.images.index_axis(ndarray::Axis(0), i).mapv(f64::from);
        }
        let mean = (sum / rows.len().max(1) as f64).mapv(|v| v.round() as u8);
        for j in 0..per_condition {
            images.index_axis_mut(ndarray::Axis(0), k * per_condition + j).assign(&mean);
        }
    }
    let (labels, styles) = sample::condition_lists(&data.spec, per_condition);
    let as_i64 = |v: Vec<u8>| v.into_iter().map(i64::from).collect::<Vec<_>>();
    Samples { images, labels: as_i64(labels), styles: data.spec.has_style().then(|| as_i64(styles)) }
}

/// Features of uint8 images by a judge, for notebooks. images: [n, 28, 28] → [n, 128]
pub fn features(judge: &Judge, images: ndarray::ArrayView3<u8>) -> Tensor {
    judge.judge(images).features
}

/// A mode-collapsed copy of `samples`: every sample of a condition replaced by
/// that condition's first sample. Teaching aid: conditional accuracy barely
/// moves, while recall and diversity fall, which is how the metrics catch
/// a collapsed generator.
pub fn collapsed(samples: &Samples) -> Samples {
    let mut images = samples.images.clone();
    let mut first: std::collections::HashMap<(i64, i64), usize> = std::collections::HashMap::new();
    for i in 0..samples.len() {
        let style = samples.styles.as_ref().map_or(0, |s| s[i]);
        let j = *first.entry((samples.labels[i], style)).or_insert(i);
        if j != i {
            let src = samples.images.index_axis(ndarray::Axis(0), j).to_owned();
            images.index_axis_mut(ndarray::Axis(0), i).assign(&src);
        }
    }
    Samples { images, labels: samples.labels.clone(), styles: samples.styles.clone() }
}
