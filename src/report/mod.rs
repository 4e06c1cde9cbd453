//! `condgen report`: trains what is missing (reusing runs of the same
//! configuration), evaluates every run, draws every figure into
//! `report/figures/` and writes `report/REPORT.md`.
//!
//! - [`plan`]: the runs the report needs and what each costs.
//! - [`runs`]: training (or reusing) and evaluating them.
//! - [`context`]: the data, judges and models every section reads, each prepared or loaded once.
//! - [`sections`]: one file per section of REPORT.md.
//! - [`targets`]: the bars a run is held to.
//! - [`parallel`]: training several runs at once, a process each.

pub mod consistency;
pub mod context;
pub mod measures;
pub mod parallel;
pub mod plan;
pub mod runs;
pub mod sections;
pub mod targets;

use std::path::PathBuf;
use std::time::Instant;

use tch::Device;

use crate::data::DataOptions;
use crate::eval;
use crate::progress::ProgressMode;
use crate::task::Experiment;
use crate::train::Profile;
use crate::Result;

pub use plan::{plan, plan_table, run_label, PlannedRun};
pub use runs::{RunResult, Runs};
pub use targets::{quality_bar, targets, Targets, STYLE_BAR};

use context::{Context, FigureWriter, Judges};
use sections::{beyond, intro, k49_study, priors, remedies, sign_study, tables, tradeoff, trust, vae};

/// What a report run does.
#[derive(Clone, Debug)]
pub struct ReportOptions {
    pub profile: Profile,
    /// Seeds of the stability comparison (the first one also makes every figure).
    pub seeds: Vec<u64>,
    /// Experiments trained with every seed; the others with the first seed only
    /// (the default profile's hour allows three seeds for K49, not for the conv models).
    pub stability_experiments: Vec<Experiment>,
    /// Where REPORT.md and figures/ go.
    pub out_dir: PathBuf,
    pub runs_root: PathBuf,
    pub data: DataOptions,
    pub device: Device,
    /// Samples per evaluation.
    pub eval_samples: usize,
    pub progress: ProgressMode,
    /// Train the missing runs several at a time in child processes first
    /// (None: one after the other, in this process).
    pub parallel: Option<parallel::ParallelTraining>,
}

impl ReportOptions {
    /// Defaults of a profile: 3 seeds for `default` (stability), 1 otherwise.
    pub fn new(profile: Profile) -> Self {
        ReportOptions {
            profile,
            seeds: if profile == Profile::Default { vec![0, 1, 2] } else { vec![0] },
            stability_experiments: vec![Experiment::K49],
            out_dir: PathBuf::from("report"),
            runs_root: PathBuf::from("runs"),
            data: DataOptions::from_env(),
            device: crate::default_device(),
            eval_samples: eval::samples_for(profile),
            progress: ProgressMode::Auto,
            parallel: None,
        }
    }
}

/// Runs the whole report: trains and evaluates every planned run, then writes
/// REPORT.md section by section with its figures.
pub fn run(opts: &ReportOptions) -> Result<PathBuf> {
    let mut clock = PhaseClock::start();
    let figures_dir = opts.out_dir.join("figures");
    std::fs::create_dir_all(&figures_dir).map_err(|e| crate::Error::io(&figures_dir, e))?;
    let ctx = Context::new(opts)?;
    let planned = plan(opts)?;
    runs::train_missing(&ctx, &planned)?;
    clock.lap("train the runs");
    let judges = Judges::load(&ctx)?;
    clock.lap("train or load the judges");
    let runs = runs::evaluate(&ctx, &planned)?;
    clock.lap("evaluate every run");

    let mut md = String::new();
    intro::write_header(&mut md, &ctx);
    intro::write_judges(&mut md, &judges);
    let references = intro::write_references(&mut md, &ctx, &judges)?;
    let mut fig = FigureWriter { dir: &figures_dir, md: &mut md };
    sign_study::write(&mut fig, &ctx, &runs, &judges)?;
    vae::write(&mut fig, &ctx, &runs, &judges)?;
    remedies::write(fig.md, &runs, opts.profile)?;
    tradeoff::write(&mut fig, &ctx, &runs, &judges)?;
    priors::write_latent_sources(fig.md, &ctx, &runs, &judges)?;
    priors::write_temperature(&mut fig, &ctx, &runs, &judges)?;
    k49_study::write(&mut fig, &ctx, &runs)?;
    beyond::write(&mut fig, &ctx, &runs, &judges)?;
    tables::write(fig.md, &ctx, &runs)?;
    targets::write(fig.md, &ctx, &runs, &references)?;
    clock.lap("draw the figures and tables");
    trust::write(&mut fig, &ctx, &runs, &judges)?;
    clock.lap("measure beyond accuracy (likelihood, CAS, recognisability, galleries)");
    tables::write_fingerprints(&mut md, &runs);
    write_footer(&mut md, &clock);
    let path = opts.out_dir.join("REPORT.md");
    crate::train::run::write_atomic(&path, md.as_bytes())?;
    Ok(path)
}

/// Wall-clock seconds of the report's phases, in order.
struct PhaseClock {
    start: Instant,
    last: Instant,
    phases: Vec<(&'static str, f64)>,
}

impl PhaseClock {
    fn start() -> Self {
        let now = Instant::now();
        PhaseClock { start: now, last: now, phases: Vec::new() }
    }

    /// Ends the phase named `name` now.
    fn lap(&mut self, name: &'static str) {
        let now = Instant::now();
        self.phases.push((name, (now - self.last).as_secs_f64()));
        self.last = now;
    }
}

/// The pointer to the speed benchmarks and the report's own wall-clock, phase by phase.
fn write_footer(md: &mut String, clock: &PhaseClock) {
    md.push_str(
        "\n## Speed\n\ncondgen against the same models in PyTorch on this machine, side by side in one run: \
         [benchmarks.md](benchmarks.md) (`make bench`); findings behind its missed targets: \
         [benchmark-findings.md](benchmark-findings.md).\n",
    );
    let phases: Vec<String> = clock.phases.iter().map(|(name, secs)| format!("{name} {secs:.0} s")).collect();
    md.push_str(&format!(
        "\n---\nReport generated in {:.0} s: {} (runs and judges already on disk are loaded, not retrained).\n",
        clock.start.elapsed().as_secs_f64(),
        phases.join(", ")
    ));
}
