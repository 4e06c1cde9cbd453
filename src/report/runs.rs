//! Training (or reusing) and evaluating the planned runs, and finding them again by name.

use std::path::PathBuf;

use tch::Device;

use crate::eval::{self, RunMetrics};
use crate::model::ModelKind;
use crate::task::Experiment;
use crate::train::recipes::Recipe;
use crate::train::{self, TrainConfig, TrainOptions};
use crate::Result;

use super::context::Context;
use super::parallel;
use super::plan::{estimated_cost, exp_train_len, run_label, PlannedRun};

/// One trained and evaluated run.
pub struct RunResult {
    pub experiment: Experiment,
    pub model: ModelKind,
    pub recipe: Recipe,
    pub seed: u64,
    pub run: PathBuf,
    pub history: Vec<train::EpochRecord>,
    pub metrics: RunMetrics,
    pub parameters: String,
}

impl RunResult {
    /// The run's name in tables ([`run_label`]).
    pub fn label(&self) -> String {
        run_label(self.experiment, self.model, self.recipe)
    }

    /// The history's record of the model's epoch (the last, or an early-stopped
    /// CVAE's best validation epoch: the epoch its metrics were measured at).
    pub fn model_record(&self) -> Option<&train::EpochRecord> {
        self.metrics.epoch.checked_sub(1).and_then(|i| self.history.get(i))
    }

    /// One of the K49 study's own models ([`Recipe::is_study_model`]).
    pub fn is_study_model(&self) -> bool {
        self.recipe.is_study_model(self.experiment)
    }
}

/// Every run of the report, trained and evaluated.
pub struct Runs {
    pub all: Vec<RunResult>,
    /// The seed of the figures and the single-seed tables.
    pub first_seed: u64,
}

impl Runs {
    /// The first seed's run of `model` on `experiment` with `recipe` (planned by [`super::plan::plan`]).
    pub fn first_of(&self, experiment: Experiment, model: ModelKind, recipe: Recipe) -> &RunResult {
        self.all
            .iter()
            .find(|r| r.experiment == experiment && r.model == model && r.recipe == recipe && r.seed == self.first_seed)
            .expect("every recipe the report reads is planned for the first seed")
    }

    /// The first seed's run of the profile's `model` on `experiment`.
    pub fn first(&self, experiment: Experiment, model: ModelKind) -> &RunResult {
        self.first_of(experiment, model, Recipe::Profile)
    }

    /// The first seed's rows of the main tables ([`Recipe::is_main`]).
    pub fn main_first_seed(&self) -> impl Iterator<Item = &RunResult> {
        self.all.iter().filter(|r| r.seed == self.first_seed && r.recipe.is_main())
    }
}

/// Trains every planned run that has not finished: in parallel processes,
/// longest first, when the options ask for it, else one after another here.
pub fn train_missing(ctx: &Context, planned: &[PlannedRun]) -> Result<()> {
    let opts = ctx.opts;
    let Some(parallel) = &opts.parallel else {
        return planned.iter().try_for_each(|p| train_or_load(ctx, p).map(drop));
    };
    let mut configs: Vec<&PlannedRun> = planned.iter().collect();
    let cost = |p: &PlannedRun| estimated_cost(&p.config, exp_train_len(p.experiment, ctx.dataset(p.experiment)));
    configs.sort_by(|a, b| cost(b).total_cmp(&cost(a)));
    let configs: Vec<TrainConfig> = configs.into_iter().map(|p| p.config.clone()).collect();
    parallel::train_all(&configs, parallel, &opts.runs_root, &opts.data, opts.progress)
}

/// Evaluates every planned run (training any still missing first, here).
pub fn evaluate(ctx: &Context, planned: &[PlannedRun]) -> Result<Runs> {
    let all = planned.iter().map(|p| evaluate_one(ctx, p)).collect::<Result<_>>()?;
    Ok(Runs { all, first_seed: ctx.opts.seeds[0] })
}

/// The run of `p`: loaded when finished, else trained (resuming a checkpoint).
fn train_or_load(ctx: &Context, p: &PlannedRun) -> Result<train::TrainOutcome> {
    let opts = ctx.opts;
    let train_opts = TrainOptions {
        runs_root: opts.runs_root.clone(),
        resume: true,
        device: opts.device,
        progress: opts.progress,
        ..TrainOptions::default()
    };
    train::train(&p.config, ctx.task(p.experiment), &train_opts)
}

fn evaluate_one(ctx: &Context, p: &PlannedRun) -> Result<RunResult> {
    let opts = ctx.opts;
    let (exp, model, seed) = (p.experiment, p.model, p.seed);
    let data = ctx.task(exp);
    let outcome = train_or_load(ctx, p)?;
    let metrics = eval::evaluate_run(&outcome.run.path, ctx.dataset(exp), &ctx.eval_opts, opts.device)?;
    let line = format!(
        "report: {exp} {} seed {seed}, as drawn: {}",
        run_label(exp, model, p.recipe),
        crate::table::summary(metrics.as_trained())
    );
    crate::progress::notice(opts.progress, &line);
    Ok(RunResult {
        experiment: exp,
        model,
        recipe: p.recipe,
        seed,
        run: outcome.run.path.clone(),
        history: outcome.history,
        metrics,
        // Built on the CPU only to count its parameters: milliseconds.
        parameters: p.config.build(data.spec.dim(), Device::Cpu).describe_parameters(),
    })
}
