//! Benchmarks: condgen against PyTorch on the same models, side by side.
//!
//! [`run`] times training steps of each of the studies' models — condgen's own
//! [`cvae_step`] / [`gan_step`] with [`Adam`] on random batches built by the
//! [`Batcher`] — and the same models written in PyTorch
//! (`tests/bench/pytorch_reference.py`, run as a child process), in one run,
//! with the same thread count on both sides. Alongside: an SGEMM to put the conv
//! CVAE's achieved FLOP/s against, the data pipeline's share of a step, the peak
//! memory of a real K49 training run, and 50-epoch K49 wall times extrapolated
//! from the measured steps. [`BenchReport::to_markdown`] renders it all with the
//! targets marked met / not met.
//!
//! Every figure is a median over repeats; a repeat times N consecutive steps
//! after untimed warm-up steps. The PyTorch side runs as a worker process and
//! the repeats alternate (condgen, PyTorch, PyTorch, condgen, …), so both sides
//! see the same machine load.
//! condgen and torch share the same libtorch (the `.venv`'s), so kernels are
//! identical: differences come from what runs around them (dispatch from Rust
//! or Python, the optimiser's implementation, allocation).

mod flops;
mod memory;
mod reference;
mod report;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

pub use flops::{
    conv_cvae_forward_macs, conv_cvae_layer_macs, conv_cvae_train_flops_per_image, mlp_cgan_step_flops_per_image,
    mlp_cvae_train_flops_per_image,
};
pub use memory::MemoryRun;

use crate::data::{standin, Batch, Batcher, Split, PIXELS, SIDE};
use crate::model::{Architecture, ConvCvaeConfig, MlpCganConfig, MlpCvaeConfig, Net, DISC, GEN};
use crate::optim::Adam;
use crate::task::ConditionSpec;
use crate::train::{cvae_step, cvae_test_loss, gan_step, CvaeObjective, GanLoss, GanObjective};
use crate::Result;

/// Adam settings of both sides (the K49 study's; PyTorch's defaults).
const LEARNING_RATE: f64 = 1e-3;
const BETAS: (f64, f64) = (0.9, 0.999);
/// Distinct random batches cycled through while timing (the script's `--pool`).
const POOL_BATCHES: usize = 8;
/// Test-loss evaluation batch of the training loop (see `cvae_test_loss`).
const EVAL_BATCH: usize = 512;

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
fn default_python() -> PathBuf {
    let mut candidates = Vec::new();
    if let Some(venv) = std::env::var_os("VIRTUAL_ENV").filter(|v| !v.is_empty()) {
        candidates.push(PathBuf::from(venv).join("bin").join("python"));
    }
    candidates.push(PathBuf::from(".venv/bin/python"));
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"));
    candidates.into_iter().find(|p| p.is_file()).unwrap_or_else(|| PathBuf::from("python3"))
}

/// tests/bench/pytorch_reference.py relative to the working directory, else in the crate.
fn default_reference_script() -> PathBuf {
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
    fn new(o: &BenchOptions) -> Self {
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

/// Images per second or (training) steps per second.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateUnit {
    ImagesPerSecond,
    StepsPerSecond,
}

/// One model at one batch size, as timed on one side.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Case {
    pub model: BenchModel,
    /// Images per step.
    pub batch: usize,
    /// Steps per timed repeat.
    pub steps: usize,
    /// Untimed steps first.
    pub warmup: usize,
}

/// Step timings of one side.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Timing {
    /// Seconds per step, one figure per repeat.
    pub step_seconds: Vec<f64>,
    /// Median of `step_seconds`, seconds.
    pub median_step_seconds: f64,
    /// batch / median step time, images/s.
    pub images_per_second: f64,
    /// 1 / median step time, steps/s.
    pub steps_per_second: f64,
}

impl Timing {
    fn new(step_seconds: Vec<f64>, batch: usize) -> Self {
        let m = median(&step_seconds);
        Timing { step_seconds, median_step_seconds: m, images_per_second: batch as f64 / m, steps_per_second: 1.0 / m }
    }

    /// The rate in `unit`.
    pub fn rate(&self, unit: RateUnit) -> f64 {
        match unit {
            RateUnit::ImagesPerSecond => self.images_per_second,
            RateUnit::StepsPerSecond => self.steps_per_second,
        }
    }
}

/// One model at one batch size on both sides.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelResult {
    pub model: BenchModel,
    /// Images per step.
    pub batch_size: usize,
    /// The unit of the target (and of the ratio).
    pub rate_unit: RateUnit,
    pub condgen: Timing,
    /// None when the reference did not run.
    pub pytorch: Option<Timing>,
    /// condgen rate / PyTorch rate (= PyTorch step time / condgen step time).
    pub ratio: Option<f64>,
    /// Target ratio (None for sweep rows).
    pub target_ratio: Option<f64>,
    pub met: Option<bool>,
    /// FLOPs per image of a step (analytic), and the rates achieved, GFLOP/s.
    pub flops_per_image: f64,
    pub condgen_gflops: f64,
    pub pytorch_gflops: Option<f64>,
}

/// Step time ≈ fixed + per_image · batch, fitted by least squares over the sweep.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OverheadFit {
    pub model: BenchModel,
    /// "condgen" or "PyTorch".
    pub side: String,
    /// Intercept: per-step cost independent of the batch, ms.
    pub fixed_ms: f64,
    /// Slope: cost per image, µs.
    pub per_image_us: f64,
    /// Batch sizes fitted.
    pub batch_sizes: Vec<usize>,
}

/// SGEMM throughput at the start of the run (the conv CVAE rows carry their own,
/// measured between their repeats).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sgemm {
    /// Side of the square f32 matrices.
    pub size: i64,
    /// tch `matmul` in this process, GFLOP/s (median).
    pub condgen_gflops: f64,
    /// torch.matmul in the reference, GFLOP/s (median).
    pub torch_gflops: Option<f64>,
    /// numpy.matmul in the reference, GFLOP/s (median; None without numpy).
    pub numpy_gflops: Option<f64>,
}

/// The conv CVAE's achieved FLOP/s at one batch size.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConvFlopsRow {
    pub batch_size: usize,
    /// condgen: FLOPs per image × images/s, GFLOP/s.
    pub condgen_gflops: f64,
    /// tch SGEMM, median of repeats run between this case's repeats, GFLOP/s.
    pub sgemm_condgen_gflops: f64,
    /// condgen GFLOP/s / that SGEMM.
    pub condgen_share_of_sgemm: f64,
    /// PyTorch: GFLOP/s, torch's SGEMM between the repeats, and the share.
    pub pytorch_gflops: Option<f64>,
    pub sgemm_torch_gflops: Option<f64>,
    pub pytorch_share_of_sgemm: Option<f64>,
}

/// The conv CVAE's FLOP count and achieved rates.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConvFlops {
    /// Forward multiply-accumulates per image.
    pub forward_macs_per_image: i64,
    /// Training FLOPs per image (≈ 3 × forward MACs × 2, see [`conv_cvae_train_flops_per_image`]).
    pub train_flops_per_image: f64,
    pub rows: Vec<ConvFlopsRow>,
}

/// The Batcher's time per batch against a training step.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PipelineResult {
    /// The model whose batch size and step time this row uses.
    pub model: BenchModel,
    pub batch_size: usize,
    /// Images of the split walked (one shuffled epoch per repeat).
    pub images: usize,
    /// Batches per walk.
    pub batches: usize,
    /// Median over repeats of (walk time / batches), including the shuffle, seconds.
    pub seconds_per_batch: f64,
    /// condgen's median step time of that model, seconds.
    pub step_seconds: f64,
    /// seconds_per_batch / step_seconds.
    pub share: f64,
}

/// The CVAE's per-epoch test-loss evaluation (part of every training epoch).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EvalResult {
    /// Test images actually evaluated.
    pub images: usize,
    /// Median time of that evaluation, seconds.
    pub seconds: f64,
    /// Scaled to the K49 test split, seconds per epoch.
    pub seconds_per_epoch: f64,
}

/// End-to-end wall time of a K49 training, extrapolated from measured parts.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Extrapolation {
    pub model: BenchModel,
    pub batch_size: usize,
    /// Training images per epoch.
    pub images: usize,
    pub epochs: usize,
    /// Steps per epoch: ceil(images / batch) for the CVAE, floor for the CGAN (drop_last).
    pub steps_per_epoch: usize,
    /// condgen's median step time, seconds.
    pub step_seconds: f64,
    /// The Batcher's time per batch, seconds.
    pub pipeline_seconds: f64,
    /// Test-loss evaluation per epoch (CVAE only), seconds.
    pub eval_seconds: f64,
    /// steps · (step + pipeline) + eval, seconds.
    pub epoch_seconds: f64,
    /// epochs · epoch_seconds, seconds.
    pub total_seconds: f64,
    /// The same epochs' step FLOPs at the best SGEMM rate of the run: a floor no
    /// implementation on this machine beats, seconds.
    pub compute_floor_seconds: f64,
    /// The SGEMM rate used for the floor, GFLOP/s.
    pub floor_sgemm_gflops: f64,
    /// The target, seconds.
    pub target_seconds: f64,
    pub met: bool,
}

/// One target, met or not.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Target {
    pub name: String,
    /// The measured figure, as text with its unit.
    pub measured: String,
    /// The threshold, as text (e.g. "≥ 1.2×").
    pub threshold: String,
    /// None when it could not be measured.
    pub met: Option<bool>,
}

/// The machine and software the figures come from.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Machine {
    /// "model name" of /proc/cpuinfo.
    pub cpu_model: String,
    /// Logical cores available to this process.
    pub logical_cores: usize,
    /// Intra-op threads both sides ran with.
    pub threads: usize,
    /// torch version of the reference (None when it did not run).
    pub torch_version: Option<String>,
    pub python_version: Option<String>,
    pub numpy_version: Option<String>,
    /// The libtorch condgen links (LIBTORCH at run time, when set).
    pub libtorch: Option<String>,
    pub condgen_version: String,
    /// "debug" or "release" build of condgen.
    pub build: String,
    /// /proc/loadavg at the start and at the end (other work on the machine skews figures).
    pub load_average_start: Option<String>,
    pub load_average_end: Option<String>,
}

/// Everything [`run`] measured. Serialize it for JSON; [`BenchReport::to_markdown`] for reading.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BenchReport {
    pub machine: Machine,
    pub plan: Plan,
    /// Why the PyTorch reference is missing (in whole or in part), if it is.
    pub reference_error: Option<String>,
    /// The studies' models at their batch sizes.
    pub models: Vec<ModelResult>,
    /// The same MLP models at other batch sizes (per-step overhead).
    pub sweep: Vec<ModelResult>,
    pub overhead_fits: Vec<OverheadFit>,
    pub sgemm: Sgemm,
    pub conv_flops: ConvFlops,
    pub pipeline: Vec<PipelineResult>,
    pub eval: EvalResult,
    pub extrapolations: Vec<Extrapolation>,
    pub memory: MemoryRun,
    /// Peak RSS of the benchmark process itself (conv CVAE at batch 256 included), MB.
    pub bench_peak_rss_mb: Option<f64>,
    pub targets: Vec<Target>,
    /// Wall time of the whole benchmark, seconds.
    pub seconds: f64,
}

/// Runs the benchmark; progress lines go to stderr. Sets tch's thread count to
/// `opts.threads` for the duration and restores it afterwards.
pub fn run(opts: &BenchOptions) -> Result<BenchReport> {
    let plan = Plan::new(opts);
    let previous = tch::get_num_threads();
    tch::set_num_threads(plan.threads as i32);
    let report = run_plan(opts, &plan);
    tch::set_num_threads(previous);
    report
}

/// The PyTorch side: a worker process, dropped at its first failure (no python,
/// no torch, a crash) with the reason kept for the report.
struct Reference {
    worker: Option<reference::Worker>,
    versions: Option<reference::Versions>,
    error: Option<String>,
}

impl Reference {
    fn start(opts: &BenchOptions, plan: &Plan) -> Self {
        match reference::Worker::start(&opts.python, &opts.reference_script, plan.threads, opts.seed) {
            Ok(w) => {
                if w.versions.threads != plan.threads {
                    eprintln!("bench: WARNING: PyTorch runs with {} threads, not {}", w.versions.threads, plan.threads);
                }
                eprintln!("bench: PyTorch reference: torch {} ({})", w.versions.torch, opts.python.display());
                Reference { versions: Some(w.versions.clone()), worker: Some(w), error: None }
            }
            Err(e) => {
                eprintln!("bench: PyTorch reference unavailable: {e}");
                Reference { worker: None, versions: None, error: Some(e) }
            }
        }
    }

    /// Runs `f` on the worker; on failure drops it and keeps the reason.
    fn with<T>(&mut self, f: impl FnOnce(&mut reference::Worker) -> std::result::Result<T, String>) -> Option<T> {
        let worker = self.worker.as_mut()?;
        match f(worker) {
            Ok(v) => Some(v),
            Err(e) => {
                eprintln!("bench: PyTorch reference failed, continuing without it: {e}");
                self.error = Some(e);
                self.worker = None;
                None
            }
        }
    }
}

fn run_plan(opts: &BenchOptions, plan: &Plan) -> Result<BenchReport> {
    let started = Instant::now();
    let load_average_start = load_average();
    eprintln!(
        "bench: {} threads, {} repeat(s); MLP {} steps/repeat (+{} warm-up), conv {} (+{}){}",
        plan.threads,
        plan.repeats,
        plan.mlp_steps,
        plan.mlp_warmup,
        plan.conv_steps,
        plan.conv_warmup,
        if plan.quick { "; quick" } else { "" }
    );
    let mut reference = Reference::start(opts, plan);

    // SGEMM, alternating repeats with the reference's.
    let sgemm_bench = SgemmBench::new(plan.sgemm_size);
    let (mut sg_ours, mut sg_torch, mut sg_numpy) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..plan.repeats {
        sg_ours.push(sgemm_bench.repeat());
        if let Some((t, n)) = reference.with(|w| w.sgemm(plan.sgemm_size)) {
            sg_torch.push(t);
            sg_numpy.extend(n);
        }
    }
    let sgemm = Sgemm {
        size: plan.sgemm_size,
        condgen_gflops: median(&sg_ours),
        torch_gflops: (!sg_torch.is_empty()).then(|| median(&sg_torch)),
        numpy_gflops: (!sg_numpy.is_empty()).then(|| median(&sg_numpy)),
    };
    eprintln!(
        "bench: sgemm {0}×{0}: condgen {1:.1} GFLOP/s, torch {2}",
        plan.sgemm_size,
        sgemm.condgen_gflops,
        sgemm.torch_gflops.map_or("n/a".into(), |g| format!("{g:.1} GFLOP/s"))
    );

    // The studies' models.
    let mlp = |model, batch| Case { model, batch, steps: plan.mlp_steps, warmup: plan.mlp_warmup };
    let conv = |batch| Case { model: BenchModel::ConvCvae, batch, steps: plan.conv_steps, warmup: plan.conv_warmup };
    let cases: Vec<Case> = [mlp(BenchModel::MlpCvae, 128), mlp(BenchModel::MlpCgan, 32), conv(64), conv(256)]
        .into_iter()
        .filter(|c| opts.models.is_empty() || opts.models.contains(&c.model))
        .collect();
    let mut models = Vec::new();
    let mut conv_sgemm = Vec::new(); // (batch, tch SGEMM samples, torch SGEMM samples)
    for case in &cases {
        let conv = case.model == BenchModel::ConvCvae;
        let t = measure_case(case, plan.repeats, opts.seed, &mut reference, conv.then_some(&sgemm_bench));
        if conv {
            conv_sgemm.push((case.batch, t.sgemm_condgen, t.sgemm_torch));
        }
        models.push(model_result(case, t.condgen, t.pytorch, true));
    }
    drop(sgemm_bench);

    // Per-step overhead: the MLP models at other batch sizes.
    let mut sweep = Vec::new();
    for (model, main_batch) in [(BenchModel::MlpCvae, 128), (BenchModel::MlpCgan, 32)] {
        if !opts.models.is_empty() && !opts.models.contains(&model) {
            continue;
        }
        for &b in plan.sweep_batch_sizes.iter().filter(|&&b| b > 0 && b != main_batch) {
            // About the same time per repeat as the main case.
            let steps = (plan.mlp_steps * main_batch / b).clamp(10, 4 * plan.mlp_steps.max(10));
            let case = Case { model, batch: b, steps, warmup: (steps / 5).max(2) };
            let t = measure_case(&case, plan.repeats, opts.seed, &mut reference, None);
            sweep.push(model_result(&case, t.condgen, t.pytorch, false));
        }
    }
    let overhead_fits = overhead_fits(&models, &sweep);

    let conv_flops = conv_flops(&models, &conv_sgemm);
    // The floor of the extrapolations: the best SGEMM rate seen in the run.
    let best_sgemm = conv_flops.rows.iter().map(|r| r.sgemm_condgen_gflops).fold(sgemm.condgen_gflops, f64::max);

    let pipeline = pipeline(plan, &models, opts.seed);
    let eval = eval_time(plan, opts.seed);
    let extrapolations = extrapolate(plan, &models, &pipeline, &eval, best_sgemm);

    // The worker's memory and CPU are not wanted during the child run.
    let versions = reference.versions.clone();
    let reference_error = reference.error.clone();
    drop(reference);

    let memory = match &opts.condgen_binary {
        None => MemoryRun::skipped("no condgen binary given (BenchOptions::condgen_binary)"),
        Some(bin) => {
            eprintln!("bench: peak memory: {} train k49 --model cvae --epochs 1 (child process)", bin.display());
            let m = memory::memory_run(bin, plan.threads);
            match (&m.peak_rss_mb, &m.message) {
                (Some(mb), _) => eprintln!("bench: peak RSS {mb:.0} MB, wall {:.1} s", m.wall_seconds.unwrap_or(0.0)),
                (None, Some(msg)) => eprintln!("bench: memory run {}: {msg}", m.status),
                _ => {}
            }
            m
        }
    };

    let (torch_version, python_version, numpy_version) = match versions {
        Some(v) => (Some(v.torch), v.python, v.numpy),
        None => (None, None, None),
    };
    let machine = Machine {
        cpu_model: cpu_model(),
        logical_cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        threads: plan.threads,
        torch_version,
        python_version,
        numpy_version,
        libtorch: std::env::var("LIBTORCH").ok().filter(|v| !v.is_empty()),
        condgen_version: env!("CARGO_PKG_VERSION").to_string(),
        build: if cfg!(debug_assertions) { "debug" } else { "release" }.to_string(),
        load_average_start,
        load_average_end: load_average(),
    };
    let mut report = BenchReport {
        machine,
        plan: plan.clone(),
        reference_error,
        models,
        sweep,
        overhead_fits,
        sgemm,
        conv_flops,
        pipeline,
        eval,
        extrapolations,
        memory,
        bench_peak_rss_mb: memory::self_peak_rss_mb(),
        targets: Vec::new(),
        seconds: 0.0,
    };
    report.targets = targets(&report);
    report.seconds = started.elapsed().as_secs_f64();
    eprintln!("bench: done in {:.0} s", report.seconds);
    Ok(report)
}

fn model_result(case: &Case, condgen: Timing, pytorch: Option<Timing>, with_target: bool) -> ModelResult {
    let unit = case.model.rate_unit();
    let ratio = pytorch.as_ref().map(|p| condgen.rate(unit) / p.rate(unit));
    let target_ratio = with_target.then(|| case.model.target_ratio());
    let flops_per_image = case.model.flops_per_image();
    ModelResult {
        flops_per_image,
        condgen_gflops: flops_per_image * condgen.images_per_second / 1e9,
        pytorch_gflops: pytorch.as_ref().map(|p| flops_per_image * p.images_per_second / 1e9),
        model: case.model,
        batch_size: case.batch,
        rate_unit: unit,
        met: ratio.zip(target_ratio).map(|(r, t)| r >= t),
        condgen,
        pytorch,
        ratio,
        target_ratio,
    }
}

/// condgen's side of one case: the library's cvae_step / gan_step and Adam, on
/// a pool of random batches made by the Batcher.
struct CondgenCase {
    case: Case,
    built: crate::model::Built,
    pool: Vec<Batch>,
    /// One optimizer for a CVAE; generator and discriminator for a CGAN.
    optimizers: Vec<Adam>,
    /// Steps taken so far (picks the batch).
    taken: usize,
    /// A CGAN's losses: BCE, as the PyTorch reference computes them.
    objective: GanObjective,
}

impl CondgenCase {
    /// Builds the model and runs the case's warm-up steps.
    fn new(case: Case, seed: u64) -> Self {
        tch::manual_seed(seed as i64);
        let spec = case.model.condition();
        let built = case.model.architecture().build(spec.dim(), Device::Cpu);
        let optimizers = match &built.net {
            Net::Cvae(_) => vec![Adam::for_prefix(&built.vs, "", LEARNING_RATE, BETAS)],
            Net::Gan { .. } => vec![
                Adam::for_prefix(&built.vs, &format!("{GEN}."), LEARNING_RATE, BETAS),
                Adam::for_prefix(&built.vs, &format!("{DISC}."), LEARNING_RATE, BETAS),
            ],
        };
        let pool = random_batches(spec, case.batch, POOL_BATCHES, seed);
        let objective = GanObjective { loss: GanLoss::Bce, gradient_penalty_weight: 10.0, spec };
        let mut this = CondgenCase { case, built, pool, optimizers, taken: 0, objective };
        for _ in 0..case.warmup {
            this.step();
        }
        this
    }

    fn step(&mut self) {
        let b = &self.pool[self.taken % self.pool.len()];
        self.taken += 1;
        match (&self.built.net, self.optimizers.as_mut_slice()) {
            (Net::Cvae(cvae), [opt]) => {
                let objective = CvaeObjective::elbo(&self.built.likelihood, 1.0);
                black_box(cvae_step(cvae.as_ref(), opt, &b.images, &b.conditions, &objective));
            }
            (Net::Gan { generator, discriminator, .. }, [opt_g, opt_d]) => {
                black_box(gan_step(
                    generator.as_ref(),
                    discriminator.as_ref(),
                    opt_g,
                    opt_d,
                    &b.images,
                    &b.conditions,
                    &self.objective,
                    true,
                ));
            }
            _ => unreachable!("one optimizer per CVAE, two per CGAN"),
        }
    }

    /// One timed repeat: seconds per step.
    fn repeat(&mut self) -> f64 {
        let start = Instant::now();
        for _ in 0..self.case.steps {
            self.step();
        }
        start.elapsed().as_secs_f64() / self.case.steps as f64
    }
}

/// One case timed on both sides, with SGEMM repeats taken between its repeats when asked.
struct CaseTimes {
    condgen: Timing,
    pytorch: Option<Timing>,
    /// GFLOP/s of tch's and torch's SGEMM, one per repeat (empty unless asked).
    sgemm_condgen: Vec<f64>,
    sgemm_torch: Vec<f64>,
}

/// Times `case` on both sides, alternating repeats (condgen first on even
/// repeats, PyTorch first on odd ones) so load changes hit both alike; with
/// `sgemm`, one SGEMM repeat per side follows every pair, so the FLOP/s
/// comparison sees the same load too.
fn measure_case(
    case: &Case,
    repeats: usize,
    seed: u64,
    reference: &mut Reference,
    sgemm: Option<&SgemmBench>,
) -> CaseTimes {
    let mut ours = CondgenCase::new(*case, seed);
    let mut theirs_ok = reference.with(|w| w.prepare(case)).is_some();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let (mut sg_ours, mut sg_torch) = (Vec::new(), Vec::new());
    for r in 0..repeats {
        if r % 2 == 0 {
            a.push(ours.repeat());
        }
        if theirs_ok {
            match reference.with(|w| w.repeat(case.steps)) {
                Some(t) => b.push(t),
                None => theirs_ok = false,
            }
        }
        if r % 2 == 1 {
            a.push(ours.repeat());
        }
        if let Some(sg) = sgemm {
            sg_ours.push(sg.repeat());
            if let Some((t, _)) = reference.with(|w| w.sgemm(sg.size)) {
                sg_torch.push(t);
            }
        }
    }
    drop(ours); // free its memory before the next case
    let condgen = Timing::new(a, case.batch);
    let pytorch = (theirs_ok && !b.is_empty()).then(|| Timing::new(b, case.batch));
    eprintln!(
        "bench: {} batch {}: condgen {:.3} ms/step, PyTorch {} ms/step",
        case.model.id(),
        case.batch,
        condgen.median_step_seconds * 1e3,
        pytorch.as_ref().map_or("n/a".into(), |t| format!("{:.3}", t.median_step_seconds * 1e3))
    );
    CaseTimes { condgen, pytorch, sgemm_condgen: sg_ours, sgemm_torch: sg_torch }
}

/// `n` batches of `batch` random images with random conditions, made by the Batcher.
fn random_batches(spec: ConditionSpec, batch: usize, n: usize, seed: u64) -> Vec<Batch> {
    let split = synthetic_split(batch * n, spec, seed);
    Batcher::new(&split, spec, batch, Some((seed, 0)), Device::Cpu).collect()
}

/// splitmix64: fast, good enough for random pixels, no dependency.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// A split of `n` random 28×28 images with random classes (and style bits when `spec` has them).
/// Batching cost does not depend on pixel values, so noise stands in for K49.
fn synthetic_split(n: usize, spec: ConditionSpec, seed: u64) -> Split {
    let mut rng = SplitMix64(seed ^ 0xC0DE_6E11);
    let mut pixels = vec![0u8; n * PIXELS];
    for chunk in pixels.chunks_mut(8) {
        let bytes = rng.next().to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
    let classes = spec.classes() as u64;
    let labels = (0..n).map(|_| (rng.next() % classes) as u8).collect();
    let styles = spec.has_style().then(|| (0..n).map(|_| (rng.next() & 1) as u8).collect());
    Split { images: ndarray::Array3::from_shape_vec((n, SIDE, SIDE), pixels).expect("n·784 pixels"), labels, styles }
}

/// tch's matmul on n×n f32 matrices, about 2 GFLOP per repeat (as the script's `Sgemm`).
struct SgemmBench {
    size: i64,
    a: Tensor,
    b: Tensor,
    flop: f64,
    calls: usize,
}

impl SgemmBench {
    fn new(n: i64) -> Self {
        let a = Tensor::randn([n, n], (Kind::Float, Device::Cpu));
        let b = Tensor::randn([n, n], (Kind::Float, Device::Cpu));
        let flop = 2.0 * (n as f64).powi(3);
        let calls = ((2e9 / flop) as usize).max(1);
        let bench = SgemmBench { size: n, a, b, flop, calls };
        let _ = black_box(bench.a.matmul(&bench.b)); // warm-up: BLAS buffers, threads
        bench
    }

    /// One repeat, GFLOP/s.
    fn repeat(&self) -> f64 {
        let start = Instant::now();
        for _ in 0..self.calls {
            let _ = black_box(self.a.matmul(&self.b));
        }
        self.flop * self.calls as f64 / start.elapsed().as_secs_f64() / 1e9
    }
}

/// Least-squares fixed + per-image cost per side over the main case and the sweep.
fn overhead_fits(models: &[ModelResult], sweep: &[ModelResult]) -> Vec<OverheadFit> {
    let mut fits = Vec::new();
    for model in [BenchModel::MlpCvae, BenchModel::MlpCgan] {
        let rows: Vec<&ModelResult> = models.iter().chain(sweep).filter(|r| r.model == model).collect();
        let mut batch_sizes: Vec<usize> = rows.iter().map(|r| r.batch_size).collect();
        batch_sizes.sort_unstable();
        if batch_sizes.len() < 2 {
            continue;
        }
        let ours: Vec<(f64, f64)> = rows.iter().map(|r| (r.batch_size as f64, r.condgen.median_step_seconds)).collect();
        let theirs: Option<Vec<(f64, f64)>> =
            rows.iter().map(|r| r.pytorch.as_ref().map(|p| (r.batch_size as f64, p.median_step_seconds))).collect();
        for (side, points) in [("condgen", Some(ours)), ("PyTorch", theirs)] {
            if let Some((a, b)) = points.and_then(|p| linear_fit(&p)) {
                fits.push(OverheadFit {
                    model,
                    side: side.to_string(),
                    fixed_ms: a * 1e3,
                    per_image_us: b * 1e6,
                    batch_sizes: batch_sizes.clone(),
                });
            }
        }
    }
    fits
}

/// y ≈ a + b·x by least squares: Some((a, b)) with two or more distinct x.
fn linear_fit(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| {
        let b = sxy / sxx;
        (my - b * mx, b)
    })
}

fn conv_flops(models: &[ModelResult], conv_sgemm: &[(usize, Vec<f64>, Vec<f64>)]) -> ConvFlops {
    let cfg = ConvCvaeConfig::default();
    let cond = BenchModel::ConvCvae.condition().dim() as i64;
    let rows = models
        .iter()
        .filter(|r| r.model == BenchModel::ConvCvae)
        .map(|r| {
            let (ours_sg, theirs_sg) = conv_sgemm
                .iter()
                .find(|(b, _, _)| *b == r.batch_size)
                .map(|(_, o, t)| (median(o), (!t.is_empty()).then(|| median(t))))
                .unwrap_or((f64::NAN, None));
            ConvFlopsRow {
                batch_size: r.batch_size,
                condgen_gflops: r.condgen_gflops,
                sgemm_condgen_gflops: ours_sg,
                condgen_share_of_sgemm: r.condgen_gflops / ours_sg,
                pytorch_gflops: r.pytorch_gflops,
                sgemm_torch_gflops: theirs_sg,
                pytorch_share_of_sgemm: r.pytorch_gflops.zip(theirs_sg).map(|(g, s)| g / s),
            }
        })
        .collect();
    ConvFlops {
        forward_macs_per_image: conv_cvae_forward_macs(&cfg, cond),
        train_flops_per_image: conv_cvae_train_flops_per_image(&cfg, cond),
        rows,
    }
}

/// The Batcher walking a K49-size split at the MLP models' batch sizes, against their steps.
fn pipeline(plan: &Plan, models: &[ModelResult], seed: u64) -> Vec<PipelineResult> {
    let spec = BenchModel::MlpCvae.condition();
    let split = synthetic_split(plan.pipeline_images, spec, seed);
    let mut rows = Vec::new();
    for (model, batch, drop_last) in [(BenchModel::MlpCvae, 128, false), (BenchModel::MlpCgan, 32, true)] {
        let Some(step) = models.iter().find(|r| r.model == model && r.batch_size == batch) else { continue };
        let mut batches = 0;
        let per_batch: Vec<f64> = (0..plan.repeats)
            .map(|r| {
                let start = Instant::now();
                // As the training loops do: a new shuffled Batcher per epoch.
                let batcher =
                    Batcher::new(&split, spec, batch, Some((seed, r as u64)), Device::Cpu).drop_last(drop_last);
                batches = batcher.num_batches();
                for b in batcher {
                    black_box(b);
                }
                start.elapsed().as_secs_f64() / batches.max(1) as f64
            })
            .collect();
        let seconds_per_batch = median(&per_batch);
        let step_seconds = step.condgen.median_step_seconds;
        eprintln!(
            "bench: Batcher at batch {batch}: {:.3} ms/batch = {:.1}% of a {} step",
            seconds_per_batch * 1e3,
            100.0 * seconds_per_batch / step_seconds,
            model.id()
        );
        rows.push(PipelineResult {
            model,
            batch_size: batch,
            images: split.len(),
            batches,
            seconds_per_batch,
            step_seconds,
            share: seconds_per_batch / step_seconds,
        });
    }
    rows
}

/// The MLP CVAE's per-epoch test-loss evaluation (`cvae_test_loss`), scaled to K49's test split.
fn eval_time(plan: &Plan, seed: u64) -> EvalResult {
    tch::manual_seed(seed as i64);
    let spec = BenchModel::MlpCvae.condition();
    let built = BenchModel::MlpCvae.architecture().build(spec.dim(), Device::Cpu);
    let split = synthetic_split(plan.eval_images, spec, seed ^ 1);
    let Net::Cvae(cvae) = &built.net else { unreachable!("the MLP CVAE is a CVAE") };
    let times: Vec<f64> = (0..plan.repeats.min(3))
        .map(|_| {
            let start = Instant::now();
            black_box(cvae_test_loss(cvae.as_ref(), &built.likelihood, &split, spec, 1.0, Device::Cpu));
            start.elapsed().as_secs_f64()
        })
        .collect();
    let seconds = median(&times);
    let seconds_per_epoch = seconds * plan.test_images as f64 / plan.eval_images.max(1) as f64;
    eprintln!(
        "bench: MLP CVAE test loss on {} images (batch {EVAL_BATCH}): {seconds:.2} s → {seconds_per_epoch:.2} s per K49 epoch",
        plan.eval_images
    );
    EvalResult { images: plan.eval_images, seconds, seconds_per_epoch }
}

/// 50 K49 epochs: steps per epoch × (median step + Batcher per batch) + the CVAE's test evaluation.
fn extrapolate(
    plan: &Plan,
    models: &[ModelResult],
    pipeline: &[PipelineResult],
    eval: &EvalResult,
    sgemm_gflops: f64,
) -> Vec<Extrapolation> {
    let mut rows = Vec::new();
    for (model, batch, target_minutes) in [(BenchModel::MlpCvae, 128usize, 4.0), (BenchModel::MlpCgan, 32, 15.0)] {
        let Some(step) = models.iter().find(|r| r.model == model && r.batch_size == batch) else { continue };
        let pipe = pipeline.iter().find(|p| p.model == model).map_or(0.0, |p| p.seconds_per_batch);
        let (steps_per_epoch, eval_seconds) = match model {
            BenchModel::MlpCgan => (plan.train_images / batch, 0.0), // drop_last
            _ => (plan.train_images.div_ceil(batch), eval.seconds_per_epoch),
        };
        let step_seconds = step.condgen.median_step_seconds;
        let epoch_seconds = steps_per_epoch as f64 * (step_seconds + pipe) + eval_seconds;
        let total_seconds = epoch_seconds * plan.epochs as f64;
        let target_seconds = target_minutes * 60.0;
        let step_flops = step.flops_per_image * batch as f64;
        let compute_floor_seconds = steps_per_epoch as f64 * step_flops * plan.epochs as f64 / (sgemm_gflops * 1e9);
        rows.push(Extrapolation {
            model,
            batch_size: batch,
            images: plan.train_images,
            epochs: plan.epochs,
            steps_per_epoch,
            step_seconds,
            pipeline_seconds: pipe,
            eval_seconds,
            epoch_seconds,
            total_seconds,
            compute_floor_seconds,
            floor_sgemm_gflops: sgemm_gflops,
            target_seconds,
            met: total_seconds <= target_seconds,
        });
    }
    rows
}

/// Peak-memory target of a K49 training run, MB (10⁶ bytes).
const MEMORY_TARGET_MB: f64 = 1500.0;
/// Conv CVAE: share of the measured SGEMM FLOP/s to reach.
const SGEMM_SHARE_TARGET: f64 = 0.5;
/// Data pipeline: largest share of a step.
const PIPELINE_SHARE_TARGET: f64 = 0.05;

fn targets(r: &BenchReport) -> Vec<Target> {
    let mut out = Vec::new();
    for m in &r.models {
        let unit = match m.rate_unit {
            RateUnit::ImagesPerSecond => "images/s",
            RateUnit::StepsPerSecond => "steps/s",
        };
        let t = m.target_ratio.unwrap_or(1.0);
        out.push(Target {
            name: format!("{} batch {}: {unit} vs PyTorch", m.model.title(), m.batch_size),
            measured: m.ratio.map_or("n/a (no reference)".into(), |x| format!("{x:.2}×")),
            threshold: format!("≥ {t:.1}×"),
            met: m.met,
        });
    }
    for row in &r.conv_flops.rows {
        out.push(Target {
            name: format!("conv CVAE batch {}: FLOP/s vs SGEMM", row.batch_size),
            measured: format!(
                "{:.0}% ({:.1} of {:.1} GFLOP/s)",
                100.0 * row.condgen_share_of_sgemm,
                row.condgen_gflops,
                row.sgemm_condgen_gflops
            ),
            threshold: format!("≥ {:.0}%", 100.0 * SGEMM_SHARE_TARGET),
            met: Some(row.condgen_share_of_sgemm >= SGEMM_SHARE_TARGET),
        });
    }
    for e in &r.extrapolations {
        out.push(Target {
            name: format!("{} epochs K49, {}", e.epochs, e.model.title()),
            measured: report::fmt_duration(e.total_seconds),
            threshold: format!("≤ {}", report::fmt_duration(e.target_seconds)),
            met: Some(e.met),
        });
    }
    for p in &r.pipeline {
        out.push(Target {
            name: format!("data pipeline, batch {} ({})", p.batch_size, p.model.title()),
            measured: format!("{:.2}% of a step", 100.0 * p.share),
            threshold: format!("≤ {:.0}%", 100.0 * PIPELINE_SHARE_TARGET),
            met: Some(p.share <= PIPELINE_SHARE_TARGET),
        });
    }
    out.push(Target {
        name: "peak memory, K49 MLP CVAE training".into(),
        measured: r.memory.peak_rss_mb.map_or(format!("n/a ({})", r.memory.status), |mb| format!("{mb:.0} MB")),
        threshold: "≤ 1,500 MB".into(),
        met: r.memory.peak_rss_mb.map(|mb| mb <= MEMORY_TARGET_MB),
    });
    out
}

fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// "model name" of the first processor in /proc/cpuinfo.
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The first three fields of /proc/loadavg (1, 5, 15 minutes).
fn load_average() -> Option<String> {
    let s = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}
