//! The `condgen` command line. Library errors become anyhow errors only here.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use condgen::data::{self, DataOptions, DatasetKind};
use condgen::model::ModelKind;
use condgen::progress::ProgressMode;
use condgen::sample::{self, TrainedModel};
use condgen::train::Recipe;
use condgen::train::{self, Profile, TrainConfig, TrainOptions};
use condgen::Experiment;

#[derive(Parser)]
#[command(name = "condgen", version, about = "Conditional VAEs and GANs on 28x28 images")]
struct Cli {
    /// Data directory with one sub-folder per dataset [env: CONDGEN_DATA] [default: data]
    #[arg(long, global = true)]
    data: Option<PathBuf>,
    /// A K49-format folder to use instead of <data>/kuzushiji-49 (path, or sub-folder name) [env: CONDGEN_K49]
    #[arg(long, global = true)]
    k49: Option<PathBuf>,
    /// Fail instead of generating the embedded stand-in when a dataset is absent
    #[arg(long, global = true)]
    no_standin: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Inspect or download datasets
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// Train a model on an experiment (checkpoints every epoch; --resume continues)
    Train(TrainArgs),
    /// Write samples of a trained run: images, labels (and styles for k49) as .npz
    Sample {
        /// The run folder
        #[arg(long)]
        run: PathBuf,
        /// Samples per condition
        #[arg(long, default_value_t = 10)]
        per_condition: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
        /// Also draw the samples as a labelled PNG grid (one row per condition)
        #[arg(long)]
        grid: Option<PathBuf>,
        /// CVAE: draw z from N(0, I) (the training prior) instead of the
        /// per-condition Gaussians fitted to the training codes
        #[arg(long)]
        standard_normal: bool,
    },
    /// Judge a trained run's samples: conditional accuracy, Fréchet distance, precision/recall, ... (writes metrics.json)
    Eval {
        #[arg(long)]
        run: PathBuf,
        /// Samples in total, spread evenly over the conditions
        #[arg(long, default_value_t = condgen::eval::samples_for(condgen::train::Profile::Default))]
        n: usize,
        /// Where judge classifiers are cached
        #[arg(long, default_value = "runs/judges")]
        judges: PathBuf,
        /// Retrain the judge even if a cached one exists
        #[arg(long)]
        retrain_judges: bool,
        /// Also measure real data as if it were samples (half vs half, train vs the split,
        /// the split blurred with σ = 0.5–2 px): the rows a generator's figures are read against
        #[arg(long)]
        references: bool,
        /// Also judge the fixed-noise snapshots saved after each epoch (accuracy over training)
        #[arg(long)]
        snapshots: bool,
        /// The real split samples are measured against: validation for any choice (writes
        /// metrics-validation.json), test for the final numbers (writes metrics.json)
        #[arg(long, value_enum, default_value_t = condgen::eval::HeldOut::Test)]
        split: condgen::eval::HeldOut,
    },
    /// Train what is missing, evaluate, draw every figure and write report/REPORT.md
    Report {
        #[arg(long, value_enum, default_value_t = Profile::Default)]
        profile: Profile,
        /// Seeds of the stability comparison [default: 0 1 2 for the default profile, else 0]
        #[arg(long, num_args = 1..)]
        seeds: Option<Vec<u64>>,
        /// Experiments trained with every seed (others: the first seed only) [default: k49]
        #[arg(long, value_enum, num_args = 1..)]
        stability_on: Option<Vec<Experiment>>,
        /// Output folder
        #[arg(long, default_value = "report")]
        out: PathBuf,
        #[arg(long, default_value = "runs")]
        runs: PathBuf,
        /// Runs trained at once, each in its own process with its share of the cores
        /// [default: 2 on a CPU with at least 2 cores, else 1; 1 trains in this process]
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
        jobs: Option<u16>,
        /// Only list the runs the report needs (folder, epochs done), then stop
        #[arg(long)]
        plan: bool,
    },
    /// Check that the notebooks' outputs print every run REPORT.md prints with the same numbers
    CheckDocs {
        #[arg(long, default_value = "report/REPORT.md")]
        report: PathBuf,
        #[arg(long, default_value = "notebooks")]
        notebooks: PathBuf,
    },
    /// Reconstruct test images with a trained CVAE (originals and reconstructions as .npz)
    Reconstruct {
        #[arg(long)]
        run: PathBuf,
        #[arg(long, default_value_t = 10)]
        n: usize,
        /// Output file [default: <run>/reconstructions.npz]
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct TrainArgs {
    #[arg(value_enum)]
    experiment: Experiment,
    #[arg(long, value_enum)]
    model: ModelKind,
    #[arg(long, value_enum, default_value_t = Profile::Default)]
    profile: Profile,
    /// Which of the report's recipes: the profile's model, the improved conv
    /// model (K49's second CVAE and CGAN rows), or the profile's CGAN with WGAN-GP
    #[arg(long, value_enum, default_value_t = TrainRecipe::Profile)]
    recipe: TrainRecipe,
    #[arg(long)]
    seed: Option<u64>,
    #[arg(long)]
    epochs: Option<usize>,
    #[arg(long)]
    batch_size: Option<usize>,
    #[arg(long)]
    learning_rate: Option<f64>,
    /// A TOML or JSON file of overrides (any config key)
    #[arg(long)]
    config: Option<PathBuf>,
    /// Override any config key, e.g. --set architecture.latent=32 --set gan_loss=wgan-gp
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// A complete configuration (JSON, as in a run folder's config.json), trained as it is
    #[arg(long, conflicts_with_all = ["config", "set", "seed", "epochs", "batch_size", "learning_rate", "recipe"])]
    full_config: Option<PathBuf>,
    /// Continue from the last complete epoch of the same configuration
    #[arg(long)]
    resume: bool,
    /// Where run folders go
    #[arg(long, default_value = "runs")]
    runs: PathBuf,
    /// Print the resolved configuration and exit
    #[arg(long)]
    dry_run: bool,
}

/// The starting configuration of `condgen train`: the report's main recipes ([`Recipe`]).
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TrainRecipe {
    /// The profile's configuration (`TrainConfig::new`)
    Profile,
    /// The improved conv CVAE or CGAN (`TrainConfig::improved_cvae` / `improved_cgan`)
    Improved,
    /// The profile's CGAN trained with WGAN-GP as its paper prescribes (`TrainConfig::with_wgan_gp`)
    WganGp,
}

#[derive(Subcommand)]
enum DataCommand {
    /// Per dataset: source, split sizes, per-class counts, pixel mean/std, style balance
    Summary {
        #[arg(long, value_enum, default_value_t = WhichData::All)]
        dataset: WhichData,
    },
    /// Download a dataset's official files (verified by md5)
    Fetch {
        #[arg(value_enum)]
        dataset: FetchTarget,
        /// Base URL of a mirror [env: CONDGEN_K49_URL]
        #[arg(long)]
        url: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum WhichData {
    All,
    Sign,
    K49,
}

#[derive(Clone, Copy, ValueEnum)]
enum FetchTarget {
    K49,
    Sign,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if matches!(e.downcast_ref::<condgen::Error>(), Some(condgen::Error::Interrupted)) => {
            eprintln!("interrupted: the last complete epoch is saved; run the same command with --resume to continue");
            // The shell convention for a process ended by SIGINT.
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn data_options(cli: &Cli) -> DataOptions {
    let mut opts = DataOptions::from_env();
    if let Some(root) = &cli.data {
        opts.root = root.clone();
    }
    if let Some(k49) = &cli.k49 {
        opts.k49_folder = Some(k49.clone());
    }
    opts.allow_standin = !cli.no_standin;
    opts
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let opts = data_options(&cli);
    match &cli.command {
        Command::Data { command: DataCommand::Summary { dataset } } => data_summary(&opts, *dataset),
        Command::Data { command: DataCommand::Fetch { dataset: FetchTarget::K49, url } } => fetch_k49(&opts, url),
        Command::Data { command: DataCommand::Fetch { dataset: FetchTarget::Sign, .. } } => fetch_sign(&opts),
        Command::Train(args) => train_command(&opts, args),
        Command::Sample { run, per_condition, seed, out, grid, standard_normal } => {
            sample_command(&opts, run, *per_condition, *seed, out, grid.as_deref(), *standard_normal)
        }
        Command::Eval { run, n, judges, retrain_judges, references, snapshots, split } => {
            let eval_opts = condgen::eval::EvalOptions {
                samples: *n,
                judges_root: judges.clone(),
                retrain_judges: *retrain_judges,
                split: *split,
                ..Default::default()
            };
            eval_command(&opts, run, &eval_opts, *references, *snapshots)
        }
        Command::Report { profile, seeds, stability_on, out, runs, jobs, plan } => {
            let mut ropts = condgen::report::ReportOptions::new(*profile);
            if let Some(seeds) = seeds {
                ropts.seeds = seeds.clone();
            }
            if let Some(exps) = stability_on {
                ropts.stability_experiments = exps.clone();
            }
            ropts.out_dir = out.clone();
            ropts.runs_root = runs.clone();
            ropts.data = opts.clone();
            report_command(ropts, *jobs, *plan)
        }
        Command::CheckDocs { report, notebooks } => check_docs(report, notebooks),
        Command::Reconstruct { run, n, out } => reconstruct_command(&opts, run, *n, out.as_deref()),
    }
}

/// `condgen check-docs`: fails listing every run a notebook prints with other numbers than the report,
/// or when no run is printed by both.
fn check_docs(report: &std::path::Path, notebooks: &std::path::Path) -> anyhow::Result<()> {
    let (disagreements, shared) = condgen::report::consistency::check_files(report, notebooks)?;
    if disagreements.is_empty() && shared == 0 {
        // A check that compared nothing would pass whatever the documents say.
        anyhow::bail!(
            "no run is printed by both {} and the notebooks: nothing was compared (regenerate both: `make docs`)",
            report.display()
        );
    }
    if disagreements.is_empty() {
        println!("{shared} run(s) printed by both {} and the notebooks: the same numbers", report.display());
        return Ok(());
    }
    for d in &disagreements {
        eprintln!("{d}");
    }
    anyhow::bail!("{} run(s) printed with other numbers than {}", disagreements.len(), report.display())
}

/// `condgen data summary`: what data is there, from which source.
fn data_summary(opts: &DataOptions, dataset: WhichData) -> anyhow::Result<()> {
    let kinds: &[DatasetKind] = match dataset {
        WhichData::All => &[DatasetKind::SignMnist, DatasetKind::K49],
        WhichData::Sign => &[DatasetKind::SignMnist],
        WhichData::K49 => &[DatasetKind::K49],
    };
    println!("data directory: {}", opts.root.display());
    for &kind in kinds {
        let ds = opts.load(kind).with_context(|| format!("loading {}", kind.title()))?;
        data::summary::print(&ds)?;
    }
    Ok(())
}

/// `condgen data fetch k49`: the official files, md5-verified.
fn fetch_k49(opts: &DataOptions, url: &Option<String>) -> anyhow::Result<()> {
    let base = url
        .clone()
        .or_else(|| std::env::var(data::fetch::ENV_K49_URL).ok())
        .unwrap_or_else(|| data::fetch::K49_BASE_URL.to_string());
    let dest = opts.root.join(data::K49_DIR);
    let files = data::fetch::fetch_k49(&dest, &base, |msg| eprintln!("{msg}"))?;
    println!("Kuzushiji-49: {} files verified in {}", files.len(), dest.display());
    Ok(())
}

/// `condgen data fetch sign`: not possible; says where to put the files.
fn fetch_sign(opts: &DataOptions) -> anyhow::Result<()> {
    anyhow::bail!(
        "Sign Language MNIST is distributed by Kaggle behind a login, so condgen cannot fetch it.\n\
         Download `sign_mnist_train.csv` and `sign_mnist_test.csv` from\n\
         https://www.kaggle.com/datasets/datamunge/sign-language-mnist and put them in {}",
        opts.sign_dir().display()
    );
}

/// `condgen sample`: samples of every condition as an npz, and optionally their grid.
fn sample_command(
    opts: &DataOptions,
    run: &Path,
    per_condition: usize,
    seed: u64,
    out: &Path,
    grid: Option<&Path>,
    standard_normal: bool,
) -> anyhow::Result<()> {
    let mut model = TrainedModel::load(run, condgen::default_device())?;
    // Samples that cannot fit in memory, or their file on its disk, are refused before any work.
    sample::footprint(&model.spec, per_condition, Some(out)).check()?;
    let data = model.experiment().prepare(&opts.load(model.experiment().dataset())?);
    let labels = condgen::figures::condition_labels(&data, &model.spec);
    let title = format!("{} samples, epoch {}", model.config.architecture.name(), model.epoch);
    let grid_spec = condgen::plot::GridSpec {
        row_labels: &labels,
        ..condgen::plot::GridSpec::new(&title, labels.len(), per_condition)
    };
    if grid.is_some() {
        // So is a grid too large to draw.
        condgen::plot::GridLayout::new(&grid_spec, condgen::data::SIDE, condgen::data::SIDE)?;
    }
    let source = if standard_normal {
        sample::LatentSource::TrainedPrior
    } else {
        model.ensure_latent_prior(&data)?;
        sample::LatentSource::FittedPrior
    };
    let samples = model.sampler(source)?.sample_all_conditions(per_condition, seed)?;
    samples.write_npz(out)?;
    if let Some(grid) = grid {
        condgen::plot::image_grid(samples.images.view(), &grid_spec)?.save(grid)?;
        println!("grid -> {}", grid.display());
    }
    println!(
        "{} samples ({} per condition) from {} (epoch {}) -> {}",
        samples.len(),
        per_condition,
        run.display(),
        model.epoch,
        out.display()
    );
    Ok(())
}

/// `condgen eval`: judges a run's samples (metrics.json), and optionally its
/// snapshots over epochs and the reference rows of real data.
fn eval_command(
    opts: &DataOptions,
    run: &Path,
    eval_opts: &condgen::eval::EvalOptions,
    references: bool,
    snapshots: bool,
) -> anyhow::Result<()> {
    let cfg = train::run::RunDir::open(run).read_config()?;
    // Refused before the data is loaded when the samples cannot fit in memory.
    condgen::eval::run_footprint(&cfg.condition_spec(), eval_opts).check()?;
    let dataset = opts.load(cfg.experiment.dataset())?;
    let device = condgen::default_device();
    let m = condgen::eval::evaluate_run(run, &dataset, eval_opts, device)?;
    print_metrics(&m, eval_opts.split)?;
    println!("metrics written to {}", run.join(condgen::eval::metrics_file(eval_opts.split)).display());
    if snapshots {
        let judge = condgen::eval::judge_for(cfg.experiment, &dataset, eval_opts, device)?;
        let model = condgen::sample::TrainedModel::load(run, device)?;
        let points = condgen::eval::snapshot_accuracy(&model, &judge)?;
        let line: Vec<String> = points.iter().map(|(e, acc)| format!("{e}: {acc:.1} %")).collect();
        println!("snapshot accuracy by epoch ({}): {}", model.snapshot_latent_source(), line.join(", "));
    }
    if references {
        let judge = condgen::eval::judge_for(cfg.experiment, &dataset, eval_opts, device)?;
        let data = cfg.experiment.prepare(&dataset);
        println!("reference rows ({} images a side, the same judge):", m.metrics.samples);
        for row in condgen::eval::reference_rows(&data, &judge, m.metrics.samples, eval_opts)? {
            println!("  {:<36} {}", row.name, condgen::table::summary(&row.metrics));
        }
    }
    Ok(())
}

/// `condgen report`: the plan only, or the whole report (training the missing
/// runs `jobs` at a time: 2 on a CPU with 2 or more cores unless told).
fn report_command(mut ropts: condgen::report::ReportOptions, jobs: Option<u16>, plan: bool) -> anyhow::Result<()> {
    if plan {
        print!("{}", condgen::report::plan_table(&ropts)?);
        return Ok(());
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let on_cpu = condgen::default_device() == tch::Device::Cpu;
    let jobs = jobs.map_or(if on_cpu && cores >= 2 { 2 } else { 1 }, usize::from);
    if jobs > 1 {
        ropts.parallel = Some(condgen::report::parallel::ParallelTraining::with_current_binary(jobs)?);
    }
    let path = condgen::report::run(&ropts)?;
    println!("report written to {}", path.display());
    Ok(())
}

/// `condgen reconstruct`: the first `n` test images and a CVAE's reconstructions as an npz.
fn reconstruct_command(opts: &DataOptions, run: &Path, n: usize, out: Option<&Path>) -> anyhow::Result<()> {
    let model = TrainedModel::load(run, condgen::default_device())?;
    let task = model.experiment().load(opts)?;
    let (originals, reconstructions) = sample::reconstruct(&model.built, &model.spec, &task.test, n)?;
    let out = out.map_or_else(|| run.join("reconstructions.npz"), Path::to_path_buf);
    sample::write_reconstructions_npz(&out, &originals, &reconstructions)?;
    println!("{} test images and their reconstructions -> {}", originals.shape()[0], out.display());
    Ok(())
}

fn train_command(opts: &DataOptions, args: &TrainArgs) -> anyhow::Result<()> {
    let mut cfg = match &args.full_config {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            let cfg: TrainConfig = serde_json::from_str(&text)
                .with_context(|| format!("{}: not a complete configuration", path.display()))?;
            cfg.validate()?;
            anyhow::ensure!(
                cfg.experiment == args.experiment && cfg.model() == args.model && cfg.profile == args.profile,
                "{}: a {} {} ({}) configuration, not {} {} ({})",
                path.display(),
                cfg.experiment,
                cfg.model(),
                cfg.profile,
                args.experiment,
                args.model,
                args.profile
            );
            cfg
        }
        None => {
            let recipe = match args.recipe {
                TrainRecipe::Profile => Recipe::Profile,
                TrainRecipe::Improved => Recipe::Improved,
                TrainRecipe::WganGp => Recipe::WganGp,
            };
            anyhow::ensure!(
                !(recipe == Recipe::WganGp && args.model == ModelKind::Cvae),
                "--recipe wgan-gp is a CGAN recipe, not a CVAE's"
            );
            recipe.config(args.experiment, args.model, args.profile)
        }
    };
    if let Some(path) = &args.config {
        cfg = cfg.merge_file(path)?;
    }
    let mut sets = args.set.clone();
    for (key, value) in [
        ("seed", args.seed.map(|v| v.to_string())),
        ("epochs", args.epochs.map(|v| v.to_string())),
        ("batch_size", args.batch_size.map(|v| v.to_string())),
        ("learning_rate", args.learning_rate.map(|v| if v.is_finite() { v.to_string() } else { "null".into() })),
    ] {
        if let Some(v) = value {
            sets.push(format!("{key}={v}"));
        }
    }
    cfg = cfg.set(&sets)?;
    if args.dry_run {
        println!("{}", serde_json::to_string_pretty(&cfg)?);
        return Ok(());
    }
    let task = args.experiment.load(opts)?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || {
        eprintln!("\ninterrupt: finishing the current step; the last complete epoch stays saved");
        flag.store(true, Ordering::SeqCst);
    })
    .context("installing the Ctrl-C handler")?;
    let train_opts = TrainOptions {
        runs_root: args.runs.clone(),
        resume: args.resume,
        device: condgen::default_device(),
        // Runs trained side by side by `condgen report` print lines, not bars that overwrite each other.
        progress: if args.full_config.is_some() { ProgressMode::Lines } else { ProgressMode::Auto },
        stop,
    };
    let outcome = train::train(&cfg, &task, &train_opts)?;
    let last = outcome.history.last();
    println!("run folder: {}", outcome.run.path.display());
    if let Some(r) = last {
        println!(
            "epochs {}; last epoch {:.1}s at {:.0} img/s; total {:.1}s",
            r.epoch,
            r.seconds,
            r.images_per_second,
            outcome.history.iter().map(|r| r.seconds).sum::<f64>()
        );
    }
    Ok(())
}

/// How the like-with-like reference was drawn and KID, density and coverage measured.
fn print_reference_measures(s: &condgen::eval::SampleMetrics) {
    let Some(shortfall) = s.reference_shortfall else { return };
    let matched = if shortfall == 0 {
        "every condition matched".to_string()
    } else {
        format!("{shortfall} samples without a real image of their condition")
    };
    println!("  the real reference is drawn per condition with the samples' counts ({matched})");
    if let (Some(size), Some(k)) = (s.kid_subset_size, s.density_coverage_k) {
        let worst = condgen::table::KID_WORST_CONDITION.phrase(s).map_or(String::new(), |w| format!(", {w}"));
        println!(
            "  KID: unbiased MMD², kernel (xᵀy/d + 1)³, {} subsets of {size} a side{worst}; density/coverage: k = {k}",
            condgen::eval::metrics::KID_SUBSETS
        );
    }
}

fn print_metrics(m: &condgen::eval::RunMetrics, split: condgen::eval::HeldOut) -> anyhow::Result<()> {
    let s = &m.metrics;
    println!("run {} ({} {}, epoch {}) on {}", m.run.display(), s.experiment, m.architecture, m.epoch, m.data_source);
    let pct = |v: f64| format!("{:.1} %", 100.0 * v);
    println!("  {} samples ({} per condition) from every source below", s.samples, s.per_condition);
    println!("  judge: {} (its own test accuracy {})", s.judge.name(), pct(s.judge_test_accuracy));
    println!(
        "  Fréchet distance and precision/recall (k = {}) against {} real {split} images; memorized: closer to one \
         of {} train images than {:.3}",
        s.precision_recall_k, s.real_reference_images, s.memorization_reference_images, s.memorization_threshold
    );
    print_reference_measures(s);
    let table = condgen::table::metrics_table(&[("this run", m)])?;
    for line in table.to_text_by_column().lines().skip(1) {
        println!("  {line}");
    }
    if let Some(active) = m.cvae_active_units {
        let dims = m.cvae_kl_per_dim.as_ref().map_or(0, Vec::len);
        println!("  CVAE active units (validation split): {active} of {dims} (posterior-mean variance > 0.01)");
    }
    if let Some(kl) = &m.cvae_kl_per_dim {
        // Latent order, 16 a line; a collapsed dimension shows 0.00.
        println!(
            "  CVAE KL per latent dimension on the validation split (nats per image, total {:.3}):",
            kl.iter().sum::<f64>()
        );
        for (i, chunk) in kl.chunks(16).enumerate() {
            let values: Vec<String> = chunk.iter().map(|v| format!("{v:.2}")).collect();
            println!("    z{:<4} {}", i * 16, values.join(" "));
        }
    }
    Ok(())
}
