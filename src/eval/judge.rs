//! Judge classifiers: small CNNs trained by condgen on the real TRAIN split
//! only — never on its validation images (see [`crate::data::validation`]) —
//! used to judge whether a generated image shows the condition that was asked for.
//! Their own accuracy is measured on the validation split (where any choice about
//! them is made) and on the test split (what the report states).
//!
//! Architecture: conv 32 (3×3, pad 1) → ReLU → max-pool 2 → conv 64 (3×3,
//! pad 1) → ReLU → max-pool 2 → dense 128 → ReLU (the *feature layer*, used
//! for Fréchet distance and precision/recall) → dropout 0.3 → dense K.
//! The sign-letter judge trains on augmented images (shifts ±2 px, rotations
//! ±10°, mild Gaussian blur) so blur alone does not fool it.

use std::path::{Path, PathBuf};
use std::time::Instant;

use ndarray::ArrayView3;
use serde::{Deserialize, Serialize};
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

use crate::data::{pixels_to_tensor, Batcher, DataSource, Split, PIXELS};
use crate::optim::Adam;
use crate::progress::{notice, ProgressMode};
use crate::task::{ConditionSpec, Experiment, TaskData};
use crate::train::run::write_atomic;
use crate::{Error, Result};

/// Size of the judges' feature layer.
pub const FEATURES: i64 = 128;

/// Which judge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JudgeKind {
    /// 24 letters; also judges vowel vs consonant.
    SignLetter,
    /// 0°, 90°, 180°, 270°.
    SignRotation,
    /// 49 K49 classes.
    K49Class,
}

impl JudgeKind {
    pub fn for_experiment(exp: Experiment) -> JudgeKind {
        match exp {
            Experiment::SignVowel | Experiment::SignLetter => JudgeKind::SignLetter,
            Experiment::SignRotation => JudgeKind::SignRotation,
            Experiment::K49 => JudgeKind::K49Class,
        }
    }

    /// The task whose train split the judge learns.
    pub fn task(self) -> Experiment {
        match self {
            JudgeKind::SignLetter => Experiment::SignLetter,
            JudgeKind::SignRotation => Experiment::SignRotation,
            JudgeKind::K49Class => Experiment::K49,
        }
    }

    pub fn classes(self) -> usize {
        self.task().condition_spec().classes()
    }

    pub fn name(self) -> &'static str {
        match self {
            JudgeKind::SignLetter => "sign-letter",
            JudgeKind::SignRotation => "sign-rotation",
            JudgeKind::K49Class => "k49-class",
        }
    }
}

/// How a judge is trained.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JudgeConfig {
    /// Passes over the train split.
    pub epochs: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Random shifts, rotations and blur on training batches.
    pub augment: bool,
    /// Use at most this many train images (None = all).
    pub max_train_images: Option<usize>,
    /// Seed of initialisation and shuffling.
    pub seed: u64,
    /// Version of the training code; a cached judge of another version is retrained
    /// (0: judges saved before it was recorded, whose epochs were seeded seed·1000 + epoch).
    #[serde(default)]
    pub recipe: u32,
    /// The version of the data protocol ([`crate::data::DATA_PROTOCOL`]): which train
    /// images are held out as validation and not learned. 0 in judges saved before the
    /// validation split, which learned the whole train split: a cached judge of
    /// another protocol is retrained.
    #[serde(default)]
    pub data_protocol: u32,
}

/// The judges' training code version: 1 seeds each epoch with [`crate::data::batcher::epoch_seed`], as runs do.
pub const JUDGE_RECIPE: u32 = 1;

impl JudgeConfig {
    /// The full judge of a kind.
    pub fn for_kind(kind: JudgeKind) -> Self {
        let (epochs, augment) = match kind {
            JudgeKind::SignLetter => (8, true),
            // 4 × 27,455 images per epoch already.
            JudgeKind::SignRotation => (2, false),
            JudgeKind::K49Class => (3, false),
        };
        JudgeConfig {
            epochs,
            batch_size: 128,
            learning_rate: 1e-3,
            augment,
            max_train_images: None,
            seed: 7,
            recipe: JUDGE_RECIPE,
            data_protocol: crate::data::DATA_PROTOCOL,
        }
    }

    /// A judge for smoke runs: one epoch on 4,000 images (weak, but fast).
    pub fn quick(kind: JudgeKind) -> Self {
        JudgeConfig { epochs: 1, max_train_images: Some(4000), ..JudgeConfig::for_kind(kind) }
    }

    /// Cache sub-folder name: full and quick judges never overwrite each other.
    /// The cache folder's name: "full" for the kind's full judge, else named by
    /// the configuration's digest, so two judges of different settings never
    /// share (and overwrite) one folder.
    fn cache_name(&self, kind: JudgeKind) -> String {
        if *self == JudgeConfig::for_kind(kind) {
            "full".to_string()
        } else {
            format!("custom-{}", crate::serde_helpers::json_digest(self))
        }
    }
}

/// What a trained judge records next to its weights.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JudgeMeta {
    pub kind: JudgeKind,
    pub config: JudgeConfig,
    pub data_source: DataSource,
    pub train_images: usize,
    /// None in judges from before the validation split.
    #[serde(default)]
    pub validation_images: Option<usize>,
    pub test_images: usize,
    /// Accuracy on the real validation split (None in judges from before it).
    #[serde(default)]
    pub validation_accuracy: Option<f64>,
    /// Accuracy on the real test split.
    pub test_accuracy: f64,
    pub train_seconds: f64,
}

#[derive(Debug)]
struct JudgeNet {
    conv1: nn::Conv2D,
    conv2: nn::Conv2D,
    fc: nn::Linear,
    out: nn::Linear,
}

impl JudgeNet {
    fn new(vs: &nn::Path, classes: i64) -> Self {
        let pad = nn::ConvConfig { padding: 1, ..Default::default() };
        JudgeNet {
            conv1: nn::conv2d(vs / "conv1", 1, 32, 3, pad),
            conv2: nn::conv2d(vs / "conv2", 32, 64, 3, pad),
            fc: nn::linear(vs / "fc", 64 * 7 * 7, FEATURES, Default::default()),
            out: nn::linear(vs / "out", FEATURES, classes, Default::default()),
        }
    }

    /// xs: [b, 1, 28, 28] in [0, 1] → features [b, 128]
    fn features(&self, xs: &Tensor) -> Tensor {
        xs.apply(&self.conv1)
            .relu()
            .max_pool2d_default(2)
            .apply(&self.conv2)
            .relu()
            .max_pool2d_default(2)
            .flatten(1, -1)
            .apply(&self.fc)
            .relu()
    }
}

impl ModuleT for JudgeNet {
    /// Class logits [b, K].
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.features(xs).dropout(0.3, train).apply(&self.out)
    }
}

/// A trained judge.
pub struct Judge {
    vs: nn::VarStore,
    net: JudgeNet,
    pub meta: JudgeMeta,
}

/// Predictions for a set of images.
pub struct Judgement {
    /// probs: [n, K] softmax over the judge's classes (on the CPU)
    pub probs: Tensor,
    /// features: [n, 128] the feature layer (on the CPU)
    pub features: Tensor,
}

impl Judge {
    /// Cache folder of a judge: `<root>/<kind>/<source>/<full|custom>/`.
    pub fn cache_dir(root: &Path, kind: JudgeKind, source: &DataSource, cfg: &JudgeConfig) -> PathBuf {
        let tag = match source {
            DataSource::Real { .. } => "real".to_string(),
            DataSource::Folder { name, .. } => format!("folder-{name}"),
            DataSource::Embedded { seed, .. } => format!("embedded-seed{seed}"),
        };
        root.join(kind.name()).join(tag).join(cfg.cache_name(kind))
    }

    /// Loads the cached judge for this data, or trains it (also when `retrain`).
    pub fn load_or_train(
        kind: JudgeKind,
        data: &TaskData,
        cfg: &JudgeConfig,
        root: &Path,
        retrain: bool,
        device: Device,
        progress: ProgressMode,
    ) -> Result<Judge> {
        let dir = Judge::cache_dir(root, kind, &data.source, cfg);
        if !retrain {
            if let Ok(judge) = Judge::load(&dir, device) {
                if &judge.meta.config == cfg {
                    return Ok(judge);
                }
            }
        }
        let judge = Judge::train(kind, data, cfg, device, progress)?;
        judge.save(&dir)?;
        Ok(judge)
    }

    /// Trains a judge on `data.train`; its accuracy is measured on `data.validation`
    /// and `data.test`.
    /// `data` must be the judge's own task (letters, rotations or K49 classes).
    pub fn train(
        kind: JudgeKind,
        data: &TaskData,
        cfg: &JudgeConfig,
        device: Device,
        progress: ProgressMode,
    ) -> Result<Judge> {
        if data.experiment != kind.task() {
            return Err(Error::InvalidInput(format!(
                "the {} judge learns {}, not {}",
                kind.name(),
                kind.task(),
                data.experiment
            )));
        }
        let train = data.train.head(cfg.max_train_images.unwrap_or(usize::MAX));
        let start = Instant::now();
        let (vs, net) = fit(&train, kind.classes(), cfg, device, |epoch, loss| {
            let line = format!(
                "judge {} epoch {epoch}/{}: loss {loss:.4} ({:.0}s)",
                kind.name(),
                cfg.epochs,
                start.elapsed().as_secs_f64()
            );
            notice(progress, &line);
        })?;
        let mut judge = Judge {
            vs,
            net,
            meta: JudgeMeta {
                kind,
                config: cfg.clone(),
                data_source: data.source.clone(),
                train_images: train.len(),
                validation_images: Some(data.validation.len()),
                test_images: data.test.len(),
                validation_accuracy: None,
                test_accuracy: 0.0,
                train_seconds: start.elapsed().as_secs_f64(),
            },
        };
        judge.meta.validation_accuracy = (!data.validation.is_empty()).then(|| judge.accuracy(&data.validation));
        judge.meta.test_accuracy = judge.accuracy(&data.test);
        let validation = judge.meta.validation_accuracy.map_or("-".into(), |a| format!("{a:.4}"));
        let line = format!(
            "judge {}: validation accuracy {validation}, test accuracy {:.4} on {}",
            kind.name(),
            judge.meta.test_accuracy,
            data.source.short()
        );
        notice(progress, &line);
        Ok(judge)
    }

    /// Share of a split's images whose predicted class is their label.
    pub fn accuracy(&self, split: &Split) -> f64 {
        split_accuracy(&self.judge(split.images.view()).probs, split)
    }

    /// Class probabilities and features of uint8 images [n, 28, 28], in batches.
    pub fn judge(&self, images: ArrayView3<u8>) -> Judgement {
        predict(&self.net, self.vs.device(), images, self.meta.kind.classes())
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let weights = dir.join("model.safetensors");
        crate::files::write_via_path(&weights, |tmp| {
            self.vs.save(tmp).map_err(|e| Error::Checkpoint { path: weights.clone(), message: e.to_string() })
        })?;
        write_atomic(&dir.join("judge.json"), &serde_json::to_vec_pretty(&self.meta).expect("json"))
    }

    pub fn load(dir: &Path, device: Device) -> Result<Judge> {
        let meta_path = dir.join("judge.json");
        let text = std::fs::read_to_string(&meta_path).map_err(|e| Error::io(&meta_path, e))?;
        let meta: JudgeMeta = serde_json::from_str(&text)
            .map_err(|e| Error::Checkpoint { path: meta_path.clone(), message: e.to_string() })?;
        let mut vs = nn::VarStore::new(device);
        let net = JudgeNet::new(&vs.root(), meta.kind.classes() as i64);
        let weights = dir.join("model.safetensors");
        vs.load(&weights).map_err(|e| Error::Checkpoint { path: weights, message: e.to_string() })?;
        Ok(Judge { vs, net, meta })
    }
}

/// A network of the judges' architecture trained on any labelled split and
/// cached nowhere: the classifier of the Classification Accuracy Score
/// ([`super::cas`]), trained on generated samples or on a subset of real images.
pub struct Classifier {
    vs: nn::VarStore,
    net: JudgeNet,
    classes: usize,
}

impl Classifier {
    /// Trains on all of `train` (labels `0..classes`) with `cfg`'s epochs, batch
    /// size, learning rate, augmentation and seed, as a judge trains
    /// (`cfg.max_train_images` is not applied: pass the split meant).
    pub fn train(train: &Split, classes: usize, cfg: &JudgeConfig, device: Device) -> Result<Classifier> {
        let (vs, net) = fit(train, classes, cfg, device, |_, _| {})?;
        Ok(Classifier { vs, net, classes })
    }

    /// Share of a split's images whose predicted class is their label.
    pub fn accuracy(&self, split: &Split) -> f64 {
        split_accuracy(&self.judge(split.images.view()).probs, split)
    }

    /// Class probabilities and features of uint8 images [n, 28, 28], in batches.
    pub fn judge(&self, images: ArrayView3<u8>) -> Judgement {
        predict(&self.net, self.vs.device(), images, self.classes)
    }
}

/// The judges' training loop: a fresh network of `classes` outputs, seeded by
/// `cfg.seed`, trained on every image of `train` for `cfg.epochs` epochs.
/// `on_epoch(epoch, mean loss)` after each epoch.
fn fit(
    train: &Split,
    classes: usize,
    cfg: &JudgeConfig,
    device: Device,
    mut on_epoch: impl FnMut(usize, f64),
) -> Result<(nn::VarStore, JudgeNet)> {
    if train.is_empty() {
        return Err(Error::InvalidInput("no images to train a classifier on".into()));
    }
    if let Some(&l) = train.labels.iter().find(|&&l| l as usize >= classes) {
        return Err(Error::InvalidInput(format!("label {l} of a classifier of {classes} classes")));
    }
    tch::manual_seed(cfg.seed as i64);
    let vs = nn::VarStore::new(device);
    let net = JudgeNet::new(&vs.root(), classes as i64);
    let mut opt = Adam::for_prefix(&vs, "", cfg.learning_rate, (0.9, 0.999));
    // The batches' condition vectors are not used: only images and labels.
    let spec = ConditionSpec::Ignored { classes };
    for epoch in 1..=cfg.epochs {
        tch::manual_seed(crate::data::batcher::epoch_seed(cfg.seed, epoch as u64) as i64);
        let (mut sum, mut n) = (0.0, 0usize);
        for batch in Batcher::new(train, spec, cfg.batch_size, Some((cfg.seed, epoch as u64)), device) {
            let xs = if cfg.augment { augment(&batch.images) } else { batch.images };
            let loss = net.forward_t(&xs, true).cross_entropy_for_logits(&batch.labels);
            opt.backward_step(&loss);
            let b = batch.labels.size()[0] as usize;
            sum += loss.double_value(&[]) * b as f64;
            n += b;
        }
        on_epoch(epoch, sum / n.max(1) as f64);
    }
    Ok((vs, net))
}

/// Class probabilities [n, classes] and features [n, 128] of uint8 images, in batches of 1,024.
fn predict(net: &JudgeNet, device: Device, images: ArrayView3<u8>, classes: usize) -> Judgement {
    let n = images.shape()[0];
    let flat: Vec<u8> = images.iter().copied().collect();
    let (mut probs, mut feats) = (Vec::new(), Vec::new());
    tch::no_grad(|| {
        for start in (0..n).step_by(1024) {
            let end = (start + 1024).min(n);
            let xs = pixels_to_tensor(&flat[start * PIXELS..end * PIXELS], device);
            let f = net.features(&xs);
            probs.push(f.apply(&net.out).softmax(1, Kind::Float).to_device(Device::Cpu));
            feats.push(f.to_device(Device::Cpu));
        }
    });
    if n == 0 {
        return Judgement {
            probs: Tensor::zeros([0, classes as i64], (Kind::Float, Device::Cpu)),
            features: Tensor::zeros([0, FEATURES], (Kind::Float, Device::Cpu)),
        };
    }
    Judgement { probs: Tensor::cat(&probs, 0), features: Tensor::cat(&feats, 0) }
}

/// Share of `split`'s images whose most probable class (probs: [n, K]) is their label.
fn split_accuracy(probs: &Tensor, split: &Split) -> f64 {
    let pred = probs.argmax(1, false);
    let labels = Tensor::from_slice(&split.labels.iter().map(|&l| l as i64).collect::<Vec<_>>());
    pred.eq_tensor(&labels).to_kind(Kind::Float).mean(Kind::Float).double_value(&[])
}

/// Random small shifts (±2 px), rotations (±10°) and, for half the batches,
/// a mild Gaussian blur. xs: [b, 1, 28, 28] → same shape.
pub fn augment(xs: &Tensor) -> Tensor {
    let b = xs.size()[0];
    let opts = (Kind::Float, xs.device());
    let angle = (Tensor::rand([b], opts) * 2.0 - 1.0) * (10f64.to_radians());
    // Shifts in normalised coordinates: 2 px of 28 is 2/14 of the half-width.
    let shift = (Tensor::rand([b, 2], opts) * 2.0 - 1.0) * (2.0 / 14.0);
    let (cos, sin) = (angle.cos(), angle.sin());
    let theta = Tensor::stack(
        &[
            Tensor::stack(&[&cos, &(-&sin), &shift.select(1, 0)], 1),
            Tensor::stack(&[&sin, &cos, &shift.select(1, 1)], 1),
        ],
        1,
    );
    let grid = Tensor::affine_grid_generator(&theta, [b, 1, crate::data::SIDE_I64, crate::data::SIDE_I64], false);
    // bilinear (0), border padding (1): backgrounds extend instead of turning black.
    let moved = xs.grid_sampler(&grid, 0, 1, false);
    if Tensor::rand([1], (Kind::Float, Device::Cpu)).double_value(&[0]) < 0.5 {
        let sigma = 0.5 + Tensor::rand([1], (Kind::Float, Device::Cpu)).double_value(&[0]) * 0.5;
        blur(&moved, sigma)
    } else {
        moved
    }
}

/// A 5×5 Gaussian blur with standard deviation `sigma` px. xs: [b, 1, 28, 28]
pub fn blur(xs: &Tensor, sigma: f64) -> Tensor {
    let taps: Vec<f32> = (-2..=2).map(|i: i32| (-(i * i) as f64 / (2.0 * sigma * sigma)).exp() as f32).collect();
    let sum: f32 = taps.iter().sum();
    let k1 = Tensor::from_slice(&taps.iter().map(|t| t / sum).collect::<Vec<_>>()).to_device(xs.device());
    let kernel = k1.view([5, 1]).matmul(&k1.view([1, 5])).view([1, 1, 5, 5]);
    xs.pad([2, 2, 2, 2], "replicate", None).conv2d(&kernel, None::<Tensor>, [1, 1], [0, 0], [1, 1], 1)
}
