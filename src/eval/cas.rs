//! Classification Accuracy Score (Ravuri & Vinyals 2019, "Classification
//! Accuracy Score for Conditional Generative Models"): a classifier trained
//! only on a run's samples, labelled with the conditions they were asked for,
//! and tested on the real test split. Beside it, the same classifier with the
//! same budget trained on as many real train images, class for class. A
//! generator whose samples carry the class but not the data's variety (a
//! class-mean generator, a collapsed one) teaches a classifier that fails on
//! real images, while the judge's conditional accuracy cannot tell.
//!
//! The classifier is the judges' network and training loop
//! ([`super::judge::Classifier`]); nothing is cached on disk. For K49 it learns
//! the 49 classes (the style bit is ignored); for sign-vowel consonant/vowel.

use std::time::Instant;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::Device;

use super::intervals::{self, Interval};
use super::judge::{Classifier, JudgeConfig};
use super::metrics::ConditionalAccuracy;
use crate::data::Split;
use crate::sample::Samples;
use crate::task::{Experiment, TaskData};
use crate::{Error, Result};

/// The classifier's fixed budget, the same for samples and real images.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CasConfig {
    /// Passes over the training images.
    pub epochs: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// The letter judge's shifts, rotations and blur on training batches.
    pub augment: bool,
    /// Seed of the classifiers' initialisation and shuffling, and of the real subsets.
    pub seed: u64,
    /// Real test images both classifiers are scored on: a seeded subset of the
    /// test split, the same for every generator (None: the whole split).
    pub test_images: Option<usize>,
}

impl Default for CasConfig {
    /// 10 epochs of 32-image batches at Adam 1e-3, no augmentation, scored on 5,000
    /// test images (the budget's measurements: report/DECISIONS.md, "CAS budget").
    fn default() -> Self {
        CasConfig {
            epochs: 10,
            batch_size: 32,
            learning_rate: 1e-3,
            augment: false,
            seed: 11,
            test_images: Some(5_000),
        }
    }
}

impl CasConfig {
    /// The judge training settings this budget stands for.
    pub fn classifier(&self) -> JudgeConfig {
        JudgeConfig {
            epochs: self.epochs,
            batch_size: self.batch_size,
            learning_rate: self.learning_rate,
            augment: self.augment,
            max_train_images: None,
            seed: self.seed,
            recipe: super::judge::JUDGE_RECIPE,
            data_protocol: crate::data::DATA_PROTOCOL,
        }
    }
}

/// A run's Classification Accuracy Score beside the real-data baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cas {
    /// Real test accuracy of the classifier trained on the samples.
    pub samples_trained: f64,
    /// Real test accuracy of the same classifier and budget trained on an
    /// equally sized, class-matched, seeded subset of the real train split.
    pub real_trained: f64,
    /// samples_trained / real_trained (1: the samples teach as much as real images).
    pub ratio: f64,
    /// Bootstrap 95 % intervals over the real test images (both classifiers
    /// scored on the same resample) of `samples_trained` and of `ratio`; None in
    /// scores from before they were measured.
    #[serde(default)]
    pub samples_trained_interval: Option<Interval>,
    #[serde(default)]
    pub ratio_interval: Option<Interval>,
    /// The same two classifiers' balanced accuracy (mean of per-class
    /// accuracies): the test splits are imbalanced while the samples are not
    /// (sign-vowel's test is 76 % consonants, which a consonant-only
    /// classifier scores in plain accuracy).
    pub samples_trained_balanced: f64,
    pub real_trained_balanced: f64,
    /// Images each classifier trained on (the samples; the real subset has as
    /// many unless a class has fewer train images than samples).
    pub train_images: usize,
    pub real_train_images: usize,
    /// Real test images scored.
    pub test_images: usize,
    /// Classes learnt (the task's conditions without the style bit).
    pub classes: usize,
    pub config: CasConfig,
    /// Wall-clock seconds of the trainings and scorings done for it (both, or
    /// the samples' only when given a [`RealBaseline`]).
    pub seconds: f64,
}

impl Cas {
    /// samples_trained_balanced / real_trained_balanced.
    pub fn balanced_ratio(&self) -> f64 {
        self.samples_trained_balanced / self.real_trained_balanced.max(1e-12)
    }
}

/// CAS of `samples` of `data.experiment` (labels: the requested conditions,
/// `0..data.spec.classes()`; K49 styles ignored), with its real baseline.
/// Two trainings: [`real_baseline`] and [`score_against`] in one.
pub fn classification_accuracy_score(
    samples: &Samples,
    data: &TaskData,
    cfg: &CasConfig,
    device: Device,
) -> Result<Cas> {
    let start = Instant::now();
    let train = samples_split(samples, data.spec.classes())?;
    let baseline = real_baseline(data, &train.class_counts(data.spec.classes()), cfg, device)?;
    let mut cas = score_against(samples, data, &baseline, device)?;
    cas.seconds = start.elapsed().as_secs_f64();
    Ok(cas)
}

/// The real half of CAS: the classifier trained on a class-matched real subset
/// and scored. It depends only on the task, the class counts and the budget,
/// so one baseline serves every set of samples with those counts (every run
/// of a task evaluated with the same number of samples): [`score_against`].
#[derive(Clone, Debug)]
pub struct RealBaseline {
    pub accuracy: ConditionalAccuracy,
    /// Per test image: the real-trained classifier's verdict is right.
    correct: Vec<bool>,
    /// Real train images per class asked for (the samples' counts).
    pub class_counts: Vec<usize>,
    /// Real train images used (fewer than asked when a class has fewer).
    pub train_images: usize,
    pub config: CasConfig,
    /// The real test images scored (the same for the samples' classifier).
    test: Split,
    /// Which task's data.
    experiment: Experiment,
}

/// Trains and scores the real baseline for samples with `class_counts` images per class.
pub fn real_baseline(data: &TaskData, class_counts: &[usize], cfg: &CasConfig, device: Device) -> Result<RealBaseline> {
    if class_counts.len() != data.spec.classes() {
        return Err(Error::InvalidInput(format!(
            "{} class counts for {} classes of {}",
            class_counts.len(),
            data.spec.classes(),
            data.experiment
        )));
    }
    let test = test_split(data, cfg);
    let real = class_matched_subset(&data.train, class_counts, cfg.seed);
    let (accuracy, correct) = accuracy_trained_on(&real, data, &test, cfg, device)?;
    Ok(RealBaseline {
        accuracy,
        correct,
        class_counts: class_counts.to_vec(),
        train_images: real.len(),
        config: cfg.clone(),
        test,
        experiment: data.experiment,
    })
}

/// The samples' half of CAS, beside an already trained `baseline` (of the
/// same task, class counts and budget; an error otherwise).
pub fn score_against(samples: &Samples, data: &TaskData, baseline: &RealBaseline, device: Device) -> Result<Cas> {
    let start = Instant::now();
    let classes = data.spec.classes();
    let train = samples_split(samples, classes)?;
    if baseline.experiment != data.experiment || train.class_counts(classes) != baseline.class_counts {
        return Err(Error::InvalidInput(format!(
            "a CAS baseline of {} with class counts {:?} does not fit {} samples with {:?}",
            baseline.experiment,
            baseline.class_counts,
            data.experiment,
            train.class_counts(classes)
        )));
    }
    let cfg = &baseline.config;
    let (on_samples, correct) = accuracy_trained_on(&train, data, &baseline.test, cfg, device)?;
    let on_real = &baseline.accuracy;
    let as_values = |flags: &[bool]| flags.iter().map(|&c| f64::from(u8::from(c))).collect::<Vec<f64>>();
    let (samples_right, real_right) = (as_values(&correct), as_values(&baseline.correct));
    let interval = |seed: u64, ratio: bool| {
        intervals::bootstrap_statistic(correct.len(), intervals::RESAMPLES, cfg.seed ^ seed, |w| {
            let accuracy = intervals::weighted_average(&samples_right, w);
            if ratio {
                accuracy / intervals::weighted_average(&real_right, w).max(1e-12)
            } else {
                accuracy
            }
        })
    };
    Ok(Cas {
        samples_trained: on_samples.overall,
        real_trained: on_real.overall,
        ratio: on_samples.overall / on_real.overall.max(1e-12),
        samples_trained_interval: Some(interval(0xB1, false)),
        ratio_interval: Some(interval(0xB1, true)),
        samples_trained_balanced: on_samples.balanced,
        real_trained_balanced: on_real.balanced,
        train_images: train.len(),
        real_train_images: baseline.train_images,
        test_images: baseline.test.len(),
        classes,
        config: cfg.clone(),
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// The CAS classifier trained on `train` (labels: the task's classes) and
/// scored on `test` (see [`test_split`]): accuracy, balanced and per class
/// (`mean_confidence`: the mean probability of the true class), and whether
/// each test image was classified right.
pub fn accuracy_trained_on(
    train: &Split,
    data: &TaskData,
    test: &Split,
    cfg: &CasConfig,
    device: Device,
) -> Result<(ConditionalAccuracy, Vec<bool>)> {
    if test.is_empty() {
        return Err(Error::InvalidInput("no real test images to score a classifier on".into()));
    }
    let classifier = Classifier::train(train, data.spec.classes(), &cfg.classifier(), device)?;
    let probs = classifier.judge(test.images.view()).probs;
    let labels: Vec<i64> = test.labels.iter().map(|&l| i64::from(l)).collect();
    let (correct, confidence) = super::metrics::judged_points(&probs, &labels)?;
    let accuracy = ConditionalAccuracy::from_points(&correct, &confidence, &labels, probs.size()[1] as usize);
    Ok((accuracy, correct))
}

/// The real test images CAS scores on: `cfg.test_images` of the test split,
/// a seeded subset (the same for every generator of a task).
pub fn test_split(data: &TaskData, cfg: &CasConfig) -> Split {
    super::subset(&data.test, cfg.test_images.unwrap_or(usize::MAX), cfg.seed ^ 0xCA5)
}

/// Samples as a labelled split: label = requested class, no style.
pub fn samples_split(samples: &Samples, classes: usize) -> Result<Split> {
    if samples.is_empty() {
        return Err(Error::InvalidInput("no samples to train a classifier on".into()));
    }
    if samples.images.dim() != (samples.len(), crate::data::SIDE, crate::data::SIDE) {
        return Err(Error::InvalidInput(format!(
            "samples: images are {:?} for {} labels",
            samples.images.shape(),
            samples.len()
        )));
    }
    let labels = samples
        .labels
        .iter()
        .map(|&l| {
            u8::try_from(l)
                .ok()
                .filter(|&l| (l as usize) < classes)
                .ok_or_else(|| Error::InvalidInput(format!("sample label {l} outside 0..{classes}")))
        })
        .collect::<Result<Vec<u8>>>()?;
    Ok(Split { images: samples.images.clone(), labels, styles: None })
}

/// `counts[c]` images of each class c of `split` (all of a class that has
/// fewer), drawn at random by `seed`, in split order.
pub fn class_matched_subset(split: &Split, counts: &[usize], seed: u64) -> Split {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5EA1);
    let mut rows = Vec::new();
    for (class, &n) in counts.iter().enumerate() {
        let mut of_class: Vec<usize> = (0..split.len()).filter(|&i| split.labels[i] as usize == class).collect();
        of_class.shuffle(&mut rng);
        of_class.truncate(n);
        rows.extend(of_class);
    }
    rows.sort_unstable();
    split.select(&rows)
}
