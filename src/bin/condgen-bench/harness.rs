//! The timing harness: condgen's steps and the PyTorch worker's, alternated repeat by repeat.

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use condgen::data::{Batch, Batcher, Split, PIXELS, SIDE};
use condgen::model::{Net, DISC, GEN};
use condgen::optim::Adam;
use condgen::task::ConditionSpec;
use condgen::train::{cvae_step, cvae_test_loss, gan_step, CvaeObjective, GanLoss, GanObjective};
use condgen::Result;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

use crate::memory;

use crate::machine::{cpu_model, load_average};
use crate::memory::MemoryRun;
use crate::plan::{BenchModel, BenchOptions, Plan, BETAS, EVAL_BATCH, LEARNING_RATE, POOL_BATCHES};
use crate::reference;
use crate::results::{targets, BenchReport, Case, EvalResult, Machine, ModelResult, PipelineResult, Sgemm, Timing};
use crate::stats::{conv_flops, extrapolate, median, overhead_fits};

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
pub struct Reference {
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

    /// Ends the worker; what it said about itself, and why it is missing if it is.
    fn finish(self) -> (Option<reference::Versions>, Option<String>) {
        let Reference { worker, versions, error } = self;
        drop(worker);
        (versions, error)
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

/// The whole benchmark, in this order (the order matters for timing): SGEMM,
/// the studies' models, the batch-size sweep, the data pipeline and the test
/// loss; then, with the PyTorch worker gone, the peak-memory child run.
pub fn run_plan(opts: &BenchOptions, plan: &Plan) -> Result<BenchReport> {
    let started = Instant::now();
    let load_average_start = load_average();
    announce(plan);
    let mut reference = Reference::start(opts, plan);

    let sgemm_bench = SgemmBench::new(plan.sgemm_size);
    let sgemm = measure_sgemm(plan, &sgemm_bench, &mut reference);
    let (models, conv_sgemm) = measure_models(opts, plan, &sgemm_bench, &mut reference);
    drop(sgemm_bench);
    let sweep = measure_sweep(opts, plan, &mut reference);
    let overhead_fits = overhead_fits(&models, &sweep);

    let conv_flops = conv_flops(&models, &conv_sgemm);
    // The floor of the extrapolations: the best SGEMM rate seen in the run.
    let best_sgemm = conv_flops.rows.iter().map(|r| r.sgemm_condgen_gflops).fold(sgemm.condgen_gflops, f64::max);

    let pipeline = pipeline(plan, &models, opts.seed);
    let eval = eval_time(plan, opts.seed);
    let extrapolations = extrapolate(plan, &models, &pipeline, &eval, best_sgemm);

    // The worker's memory and CPU are not wanted during the child run.
    let (versions, reference_error) = reference.finish();
    let memory = measure_memory(opts, plan);
    let machine = machine(plan, versions, load_average_start);
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

/// The plan, as a progress line.
fn announce(plan: &Plan) {
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
}

/// SGEMM at the start of the run, alternating repeats with the reference's.
fn measure_sgemm(plan: &Plan, sgemm_bench: &SgemmBench, reference: &mut Reference) -> Sgemm {
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
    sgemm
}

/// SGEMM samples taken between a conv CVAE case's repeats: (batch, tch's, torch's), GFLOP/s.
type ConvSgemm = Vec<(usize, Vec<f64>, Vec<f64>)>;

/// The studies' models at their batch sizes (those `opts.models` asks for),
/// with SGEMM repeats between the conv CVAE's.
fn measure_models(
    opts: &BenchOptions,
    plan: &Plan,
    sgemm_bench: &SgemmBench,
    reference: &mut Reference,
) -> (Vec<ModelResult>, ConvSgemm) {
    let mlp = |model, batch| Case { model, batch, steps: plan.mlp_steps, warmup: plan.mlp_warmup };
    let conv = |batch| Case { model: BenchModel::ConvCvae, batch, steps: plan.conv_steps, warmup: plan.conv_warmup };
    let cases: Vec<Case> = [mlp(BenchModel::MlpCvae, 128), mlp(BenchModel::MlpCgan, 32), conv(64), conv(256)]
        .into_iter()
        .filter(|c| opts.models.is_empty() || opts.models.contains(&c.model))
        .collect();
    let mut models = Vec::new();
    let mut conv_sgemm = Vec::new();
    for case in &cases {
        let conv = case.model == BenchModel::ConvCvae;
        let t = measure_case(case, plan.repeats, opts.seed, reference, conv.then_some(sgemm_bench));
        if conv {
            conv_sgemm.push((case.batch, t.sgemm_condgen, t.sgemm_torch));
        }
        models.push(model_result(case, t.condgen, t.pytorch, true));
    }
    (models, conv_sgemm)
}

/// Per-step overhead: the MLP models at the plan's other batch sizes.
fn measure_sweep(opts: &BenchOptions, plan: &Plan, reference: &mut Reference) -> Vec<ModelResult> {
    let mut sweep = Vec::new();
    for (model, main_batch) in [(BenchModel::MlpCvae, 128), (BenchModel::MlpCgan, 32)] {
        if !opts.models.is_empty() && !opts.models.contains(&model) {
            continue;
        }
        for &b in plan.sweep_batch_sizes.iter().filter(|&&b| b > 0 && b != main_batch) {
            // About the same time per repeat as the main case.
            let steps = (plan.mlp_steps * main_batch / b).clamp(10, 4 * plan.mlp_steps.max(10));
            let case = Case { model, batch: b, steps, warmup: (steps / 5).max(2) };
            let t = measure_case(&case, plan.repeats, opts.seed, reference, None);
            sweep.push(model_result(&case, t.condgen, t.pytorch, false));
        }
    }
    sweep
}

/// Peak memory of a K49 training epoch in a child process, unless no condgen binary is given.
fn measure_memory(opts: &BenchOptions, plan: &Plan) -> MemoryRun {
    let Some(bin) = &opts.condgen_binary else {
        return MemoryRun::skipped("no condgen binary given (BenchOptions::condgen_binary)");
    };
    eprintln!("bench: peak memory: {} train k49 --model cvae --epochs 1 (child process)", bin.display());
    let m = memory::memory_run(bin, plan.threads);
    match (&m.peak_rss_mb, &m.message) {
        (Some(mb), _) => eprintln!("bench: peak RSS {mb:.0} MB, wall {:.1} s", m.wall_seconds.unwrap_or(0.0)),
        (None, Some(msg)) => eprintln!("bench: memory run {}: {msg}", m.status),
        _ => {}
    }
    m
}

/// The machine and software of the run; the load average is read again now, as its end.
fn machine(plan: &Plan, versions: Option<reference::Versions>, load_average_start: Option<String>) -> Machine {
    let (torch_version, python_version, numpy_version) = match versions {
        Some(v) => (Some(v.torch), v.python, v.numpy),
        None => (None, None, None),
    };
    Machine {
        cpu_model: cpu_model(),
        logical_cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        threads: plan.threads,
        torch_version,
        python_version,
        numpy_version,
        libtorch: std::env::var("LIBTORCH").ok().filter(|v| !v.is_empty()).map(|p| venv_relative(Path::new(&p))),
        condgen_version: env!("CARGO_PKG_VERSION").to_string(),
        build: if cfg!(debug_assertions) { "debug" } else { "release" }.to_string(),
        load_average_start,
        load_average_end: load_average(),
    }
}

pub fn model_result(case: &Case, condgen: Timing, pytorch: Option<Timing>, with_target: bool) -> ModelResult {
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
pub struct CondgenCase {
    case: Case,
    built: condgen::model::Built,
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
        let objective =
            GanObjective { loss: GanLoss::Bce, gradient_penalty_weight: 10.0, spec, generator_auxiliary_weight: 1.0 };
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
pub struct CaseTimes {
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
pub fn measure_case(
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
pub fn random_batches(spec: ConditionSpec, batch: usize, n: usize, seed: u64) -> Vec<Batch> {
    let split = synthetic_split(batch * n, spec, seed);
    Batcher::new(&split, spec, batch, Some((seed, 0)), Device::Cpu).collect()
}

/// A split of `n` random 28×28 images with random classes (and style bits when `spec` has them).
/// Batching cost does not depend on pixel values, so noise stands in for K49.
pub fn synthetic_split(n: usize, spec: ConditionSpec, seed: u64) -> Split {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut pixels = vec![0u8; n * PIXELS];
    rng.fill_bytes(&mut pixels);
    let classes = spec.classes() as u8;
    let labels = (0..n).map(|_| rng.gen_range(0..classes)).collect();
    let styles = spec.has_style().then(|| (0..n).map(|_| rng.gen_range(0..2u8)).collect());
    Split { images: ndarray::Array3::from_shape_vec((n, SIDE, SIDE), pixels).expect("n·784 pixels"), labels, styles }
}

/// tch's matmul on n×n f32 matrices, about 2 GFLOP per repeat (as the script's `Sgemm`).
pub struct SgemmBench {
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

/// The Batcher walking a K49-size split at the MLP models' batch sizes, against their steps.
pub fn pipeline(plan: &Plan, models: &[ModelResult], seed: u64) -> Vec<PipelineResult> {
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
pub fn eval_time(plan: &Plan, seed: u64) -> EvalResult {
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

/// `path` inside the active virtual environment as `$VIRTUAL_ENV/…`, else
/// relative to the working folder: the report names no machine's paths.
fn venv_relative(path: &Path) -> String {
    let venv = std::env::var_os("VIRTUAL_ENV").filter(|v| !v.is_empty());
    match venv.as_deref().and_then(|v| path.strip_prefix(v).ok()) {
        Some(inside) => format!("$VIRTUAL_ENV/{}", inside.display()),
        None => condgen::data::display_path(path),
    }
}
