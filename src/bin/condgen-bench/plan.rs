//! What to run: the options, the plan they resolve to, the models timed.

use std::path::{Path, PathBuf};

use condgen::data::standin;
use condgen::model::flops::{
    conv_cvae_train_flops_per_image, mlp_cgan_step_flops_per_image, mlp_cvae_train_flops_per_image,
};
use condgen::model::{Architecture, ConvCvaeConfig, MlpCganConfig, MlpCvaeConfig};
use condgen::task::ConditionSpec;
use serde::{Deserialize, Serialize};

use crate::results::RateUnit;

/// Adam settings of both sides (the K49 study's; PyTorch's defaults).
pub const LEARNING_RATE: f64 = 1e-3;
pub const BETAS: (f64, f64) = (0.9, 0.999);
/// Distinct random batches cycled through while timing (the script's `--pool`).
pub const POOL_BATCHES: usize = 8;
/// Test-loss evaluation batch of the training loop (see `cvae_test_loss`).
pub const EVAL_BATCH: usize = 512;

/// How to run the benchmark. `Default` is the full benchmark; `quick` shrinks it to a smoke run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BenchOptions {
    /// Intra-op threads on both sides (tch::set_num_threads, torch.set_num_threads); default: all cores.
    pub threads: usize,
    /// Timed repeats of every measurement; figures are medians over them.
    pub repeats: usize,
    /// Training steps per timed repeat, MLP models (scaled by batch size in the sweep).
    pub steps_per_repeat: usize,
    /// Untimed training steps before the first repeat, MLP models.
    pub warmup_steps: usize,
    /// Training steps per timed repeat, conv CVAE (≈1–4 s per step on 2 cores).
    pub conv_steps_per_repeat: usize,
    /// Untimed training steps before the first repeat, conv CVAE.
    pub conv_warmup_steps: usize,
    /// Side of the square f32 matrices of the SGEMM, elements (2·n³ FLOP per product).
    pub sgemm_size: i64,
    /// Extra batch sizes of the MLP CVAE / MLP CGAN per-step-overhead sweep, images; empty: no sweep.
    pub sweep_batch_sizes: Vec<usize>,
    /// Training images per K49 epoch: the pipeline walks this many, the extrapolation counts them (232,365).
    pub train_images: usize,
    /// Test images evaluated after every CVAE epoch (K49: 38,547).
    pub test_images: usize,
    /// Epochs of the end-to-end extrapolation.
    pub epochs: usize,
    /// Python interpreter with torch (default: $VIRTUAL_ENV/bin/python, else .venv/bin/python).
    pub python: PathBuf,
    /// The PyTorch reference script (default: tests/bench/pytorch_reference.py).
    pub reference_script: PathBuf,
    /// condgen binary for the peak-memory child run (`train k49 --model cvae --epochs 1`); None: skip it.
    pub condgen_binary: Option<PathBuf>,
    /// Models to time (the conv CVAE at batch 64 and 256); empty: all three.
    pub models: Vec<BenchModel>,
    /// Seed of weights, random batches and shuffles (both sides).
    pub seed: u64,
    /// Smoke run: 1 repeat of a few steps, small pipeline and test splits, no sweep.
    pub quick: bool,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            repeats: 5,
            steps_per_repeat: 100,
            warmup_steps: 20,
            conv_steps_per_repeat: 3,
            conv_warmup_steps: 2,
            sgemm_size: 1024,
            sweep_batch_sizes: vec![8, 32, 128, 512],
            train_images: standin::K49_TRAIN_SIZE,
            test_images: standin::K49_TEST_COUNTS.iter().sum(),
            epochs: 50,
            python: default_python(),
            reference_script: default_reference_script(),
            condgen_binary: None,
            models: Vec::new(),
            seed: 0,
            quick: false,
        }
    }
}

/// $VIRTUAL_ENV/bin/python, else `.venv/bin/python` here or in the crate, else `python3`.
pub fn default_python() -> PathBuf {
    let mut candidates = Vec::new();
    if let Some(venv) = std::env::var_os("VIRTUAL_ENV").filter(|v| !v.is_empty()) {
        candidates.push(PathBuf::from(venv).join("bin").join("python"));
    }
    candidates.push(PathBuf::from(".venv/bin/python"));
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"));
    candidates.into_iter().find(|p| p.is_file()).unwrap_or_else(|| PathBuf::from("python3"))
}

/// tests/bench/pytorch_reference.py relative to the working directory, else in the crate.
pub fn default_reference_script() -> PathBuf {
    let rel = PathBuf::from("tests/bench/pytorch_reference.py");
    if rel.is_file() {
        rel
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
    }
}

/// The settings actually used (after `quick` shrank them).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    /// Intra-op threads on both sides.
    pub threads: usize,
    /// Timed repeats per measurement.
    pub repeats: usize,
    /// MLP models: steps per repeat, untimed warm-up steps.
    pub mlp_steps: usize,
    pub mlp_warmup: usize,
    /// Conv CVAE: steps per repeat, untimed warm-up steps.
    pub conv_steps: usize,
    pub conv_warmup: usize,
    /// SGEMM side, elements.
    pub sgemm_size: i64,
    /// Sweep batch sizes, images.
    pub sweep_batch_sizes: Vec<usize>,
    /// Images of the synthetic split the Batcher walks (K49-size unless quick).
    pub pipeline_images: usize,
    /// Test images actually evaluated; the time is scaled to `test_images`.
    pub eval_images: usize,
    /// K49 train / test images of an epoch, and epochs, for the extrapolation.
    pub train_images: usize,
    pub test_images: usize,
    pub epochs: usize,
    pub quick: bool,
}

impl Plan {
    pub fn new(o: &BenchOptions) -> Self {
        let threads = o.threads.max(1);
        if o.quick {
            Plan {
                threads,
                repeats: 1,
                mlp_steps: 3,
                mlp_warmup: 2,
                conv_steps: 1,
                conv_warmup: 0,
                sgemm_size: o.sgemm_size.clamp(1, 256),
                sweep_batch_sizes: Vec::new(),
                pipeline_images: o.train_images.min(4096),
                eval_images: o.test_images.min(1024),
                train_images: o.train_images,
                test_images: o.test_images,
                epochs: o.epochs,
                quick: true,
            }
        } else {
            Plan {
                threads,
                repeats: o.repeats.max(1),
                mlp_steps: o.steps_per_repeat.max(1),
                mlp_warmup: o.warmup_steps,
                conv_steps: o.conv_steps_per_repeat.max(1),
                conv_warmup: o.conv_warmup_steps,
                sgemm_size: o.sgemm_size.max(1),
                sweep_batch_sizes: o.sweep_batch_sizes.clone(),
                pipeline_images: o.train_images.max(1),
                eval_images: o.test_images.max(1),
                train_images: o.train_images.max(1),
                test_images: o.test_images,
                epochs: o.epochs,
                quick: false,
            }
        }
    }
}

/// The models benchmarked, each in the study's faithful configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum BenchModel {
    /// MLP CVAE 784-144-20, condition 50 (K49: 49 one-hot + style bit).
    MlpCvae,
    /// MLP CGAN, G [64⊕50]→256→512→784 tanh, D [784⊕50]→512→256→1; one D and one G step.
    MlpCgan,
    /// Conv CVAE, `ConvCvaeConfig::default()`, condition 24 (sign letters).
    ConvCvae,
}

impl BenchModel {
    /// The identifier shared with the reference script.
    pub fn id(self) -> &'static str {
        match self {
            BenchModel::MlpCvae => "mlp_cvae",
            BenchModel::MlpCgan => "mlp_cgan",
            BenchModel::ConvCvae => "conv_cvae",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            BenchModel::MlpCvae => "MLP CVAE",
            BenchModel::MlpCgan => "MLP CGAN",
            BenchModel::ConvCvae => "conv CVAE",
        }
    }

    /// How the model is conditioned (K49's 50-dim vector, or 24 sign letters).
    pub fn condition(self) -> ConditionSpec {
        match self {
            BenchModel::MlpCvae | BenchModel::MlpCgan => ConditionSpec::OneHot { classes: 49, style_bit: true },
            BenchModel::ConvCvae => ConditionSpec::OneHot { classes: 24, style_bit: false },
        }
    }

    pub fn architecture(self) -> Architecture {
        match self {
            BenchModel::MlpCvae => Architecture::MlpCvae(MlpCvaeConfig::default()),
            BenchModel::MlpCgan => Architecture::MlpCgan(MlpCganConfig::default()),
            BenchModel::ConvCvae => Architecture::ConvCvae(ConvCvaeConfig::default()),
        }
    }

    /// The rate its target is stated in.
    pub fn rate_unit(self) -> RateUnit {
        match self {
            BenchModel::MlpCgan => RateUnit::StepsPerSecond,
            _ => RateUnit::ImagesPerSecond,
        }
    }

    /// FLOPs per image of one training step (see [`flops`](self::flops)).
    pub fn flops_per_image(self) -> f64 {
        let c = self.condition().dim() as i64;
        match self {
            BenchModel::MlpCvae => mlp_cvae_train_flops_per_image(&MlpCvaeConfig::default(), c),
            BenchModel::MlpCgan => mlp_cgan_step_flops_per_image(&MlpCganConfig::default(), c),
            BenchModel::ConvCvae => conv_cvae_train_flops_per_image(&ConvCvaeConfig::default(), c),
        }
    }

    /// Target ratio condgen / PyTorch.
    pub fn target_ratio(self) -> f64 {
        match self {
            BenchModel::MlpCvae => 1.2,
            BenchModel::MlpCgan => 1.5,
            BenchModel::ConvCvae => 1.0,
        }
    }
}
