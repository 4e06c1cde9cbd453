//! What was measured: timings, derived figures and the targets they are held to.

use serde::{Deserialize, Serialize};

use crate::memory::MemoryRun;
use crate::plan::{BenchModel, Plan};
use crate::stats::median;

/// Images per second or (training) steps per second.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateUnit {
    ImagesPerSecond,
    StepsPerSecond,
}

/// One model at one batch size, as timed on one side.
#[derive(Clone, Copy, Debug)]
pub struct Case {
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
    pub fn new(step_seconds: Vec<f64>, batch: usize) -> Self {
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

/// Peak-memory target of a K49 training run, MB (10⁶ bytes).
pub const MEMORY_TARGET_MB: f64 = 1500.0;
/// Conv CVAE: share of the measured SGEMM FLOP/s to reach.
pub const SGEMM_SHARE_TARGET: f64 = 0.5;
/// Data pipeline: largest share of a step.
pub const PIPELINE_SHARE_TARGET: f64 = 0.05;

pub fn targets(r: &BenchReport) -> Vec<Target> {
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
            measured: crate::markdown::fmt_duration(e.total_seconds),
            threshold: format!("≤ {}", crate::markdown::fmt_duration(e.target_seconds)),
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
