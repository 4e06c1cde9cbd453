//! The runs the report trains (or reuses): which, with which recipe and seed,
//! and roughly what each costs, so the longest start first.

use std::fmt::Write as _;

use crate::data::Dataset;
use crate::model::ModelKind;
use crate::task::Experiment;
use crate::train::recipes::Recipe;
use crate::train::TrainConfig;
use crate::{Error, Result};

use super::ReportOptions;

/// One run the report trains (or reuses) and evaluates.
#[derive(Clone, Debug)]
pub struct PlannedRun {
    pub experiment: Experiment,
    pub model: ModelKind,
    pub recipe: Recipe,
    pub seed: u64,
    pub config: TrainConfig,
}

/// The name of a run in tables: the model, and for CGANs which recipe.
pub fn run_label(experiment: Experiment, model: ModelKind, recipe: Recipe) -> String {
    match (model, recipe, experiment) {
        (_, Recipe::Vae, _) => "vae".into(),
        (_, Recipe::VaeHeldOut, _) => "vae (V W X Y held out)".into(),
        (_, Recipe::Ablation(i), _) => format!("cvae, remedies row {i}"),
        (ModelKind::Cvae, Recipe::Improved, _) => "cvae (improved)".into(),
        (ModelKind::Cvae, _, _) => "cvae".into(),
        (_, Recipe::Profile, Experiment::K49) => "cgan (study model)".into(),
        (_, Recipe::Profile | Recipe::Improved, _) => "cgan (improved)".into(),
        (_, Recipe::WganGp, _) => "cgan (study model, WGAN-GP)".into(),
    }
}

/// Every run of the report: per experiment the CVAE and the CGAN of the
/// profile, and for K49 also the improved conv CGAN and conv CVAE (beside the
/// study's MLPs; the CVAE first seed only) and the study's CGAN with WGAN-GP
/// (first seed only). The stability experiments get every seed.
pub fn plan(opts: &ReportOptions) -> Result<Vec<PlannedRun>> {
    if opts.seeds.is_empty() {
        return Err(Error::InvalidInput("the report needs at least one seed".into()));
    }
    let mut runs = Vec::new();
    for exp in Experiment::ALL {
        let mut recipes = vec![(ModelKind::Cvae, Recipe::Profile), (ModelKind::Cgan, Recipe::Profile)];
        if exp == Experiment::K49 {
            recipes.extend([
                (ModelKind::Cvae, Recipe::Improved),
                (ModelKind::Cgan, Recipe::Improved),
                (ModelKind::Cgan, Recipe::WganGp),
            ]);
        }
        if exp == Experiment::SignLetter {
            recipes.extend([(ModelKind::Cvae, Recipe::Vae), (ModelKind::Cvae, Recipe::VaeHeldOut)]);
            let rows = TrainConfig::cvae_ablation(exp, opts.profile).len();
            recipes.extend((0..rows).map(|i| (ModelKind::Cvae, Recipe::Ablation(i))));
        }
        for (model, recipe) in recipes {
            // The stability comparison is the study's two models and the improved CGAN.
            let stable = match recipe {
                Recipe::Profile => true,
                Recipe::Improved => model == ModelKind::Cgan,
                _ => false,
            };
            let every_seed = opts.stability_experiments.contains(&exp) && stable;
            let seeds = if every_seed { &opts.seeds[..] } else { &opts.seeds[..1] };
            for &seed in seeds {
                let config = recipe.config(exp, model, opts.profile).set(&[format!("seed={seed}")])?;
                runs.push(PlannedRun { experiment: exp, model, recipe, seed, config });
            }
        }
    }
    Ok(runs)
}

/// The runs of [`plan`] as a table: label, seed, run folder and epochs done of planned.
pub fn plan_table(opts: &ReportOptions) -> Result<String> {
    let mut out = String::new();
    for p in plan(opts)? {
        let run = crate::train::run::RunDir::for_config(&opts.runs_root, &p.config);
        let history = run.history()?;
        let label = run_label(p.experiment, p.model, p.recipe);
        let stopped = match p.config.stop_reason(&history) {
            Some(crate::train::StopReason::NoImprovement { best, .. }) => {
                format!("  (stopped early; model: epoch {best})")
            }
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{:<14} {:<34} seed {}  {:>3}/{:<3} epochs  {}{stopped}",
            p.experiment.name(),
            label,
            p.seed,
            history.len(),
            p.config.epochs,
            run.path.display()
        );
    }
    Ok(out)
}

/// Train images of `exp` (the rotation task holds every image four times).
pub(super) fn exp_train_len(exp: Experiment, ds: &Dataset) -> usize {
    if exp == Experiment::SignRotation {
        4 * ds.train.len()
    } else {
        ds.train.len()
    }
}

/// A rough cost of training `cfg` on `train_images` images, to start the longest runs first.
pub(super) fn estimated_cost(cfg: &TrainConfig, train_images: usize) -> f64 {
    let per_image = match &cfg.architecture {
        crate::model::Architecture::ConvCvae(_) | crate::model::Architecture::ConvCgan(_) => 10.0,
        crate::model::Architecture::MlpCgan(_) => 3.0 * cfg.discriminator_steps as f64,
        crate::model::Architecture::MlpCvae(_) => 0.3,
    };
    let images = cfg.max_train_images.unwrap_or(usize::MAX).min(train_images);
    per_image * (cfg.epochs * images) as f64
}
