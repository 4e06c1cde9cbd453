//! The report's tables: architectures and training time, every measure of the
//! main runs, and their stability over seeds.

use std::fmt::Write as _;

use crate::eval::RunMetrics;
use crate::model::ModelKind;
use crate::table;
use crate::task::Experiment;
use crate::train::recipes::Recipe;
use crate::Result;

use super::super::consistency;
use super::super::context::Context;
use super::super::plan::run_label;
use super::super::runs::{RunResult, Runs};

/// Writes the three tables.
pub fn write(md: &mut String, ctx: &Context, runs: &Runs) -> Result<()> {
    write_architectures(md, ctx, runs)?;
    write_metrics(md, ctx, runs)?;
    write_stability(md, ctx, runs)
}

/// Architectures, training time and losses (at the model's epoch) of the first seed's main runs.
fn write_architectures(md: &mut String, ctx: &Context, runs: &Runs) -> Result<()> {
    let opts = ctx.opts;
    md.push_str("\n## Architectures, training time and losses (seed ");
    let _ = writeln!(md, "{})\n", opts.seeds[0]);
    md.push_str(
        "A CVAE's fitted prior is a second model on its decoder: its parameters and fitting time (the choice among \
         every candidate shape on validation codes) are the last columns, on top of the network's; the fitted-prior \
         rows' wall-clock is the training time and the fitting time together.\n\n\
         | experiment | model | parameters | epochs | train time (s) | images/s | loss at the model's epoch | fitted prior: parameters | fitted prior: seconds | train and prior fit (s) |\n\
         |---|---|---|---:|---:|---:|---|---:|---:|---:|\n",
    );
    for r in runs.main_first_seed() {
        let secs: f64 = r.history.iter().map(|h| h.seconds).sum();
        let prior = match r.model {
            ModelKind::Cvae => ctx.model_with_prior(&r.run, r.experiment)?.prior_selection()?,
            ModelKind::Cgan => None,
        };
        let (prior_parameters, prior_seconds, with_prior) = prior
            .map_or(("-".to_string(), "-".to_string(), "-".to_string()), |s| {
                (s.chosen().parameters.to_string(), format!("{:.1}", s.seconds), format!("{:.0}", secs + s.seconds))
            });
        let rate = r.history.iter().map(|h| h.images_per_second).sum::<f64>() / r.history.len().max(1) as f64;
        // The model's epoch: the last, or the best validation epoch of an early-stopped CVAE.
        let model_epoch = r.metrics.epoch;
        let epochs = match r.history.len() {
            n if n == model_epoch => n.to_string(),
            n => format!("{n} (model: epoch {model_epoch}, best validation loss)"),
        };
        let loss = match (r.model, r.model_record()) {
            (ModelKind::Cvae, Some(h)) => {
                format!("train {:.2}, validation {:.2}", h.loss.unwrap_or(f64::NAN), h.test_loss.unwrap_or(f64::NAN))
            }
            (ModelKind::Cgan, Some(h)) => {
                format!("D {:.3}, G {:.3}", h.d_loss.unwrap_or(f64::NAN), h.g_loss.unwrap_or(f64::NAN))
            }
            _ => "-".into(),
        };
        let _ = writeln!(
            md,
            "| {} | {} ({}) | {} | {} | {:.0} | {:.0} | {} | {prior_parameters} | {prior_seconds} | {with_prior} |",
            r.experiment,
            r.label(),
            r.metrics.architecture,
            r.parameters,
            epochs,
            secs,
            rate,
            loss
        );
    }
    Ok(())
}

/// The first seed's main runs, every measure.
fn write_metrics(md: &mut String, ctx: &Context, runs: &Runs) -> Result<()> {
    let opts = ctx.opts;
    md.push_str("\n## Metrics (seed ");
    let _ = writeln!(md, "{}; {} samples per run, judged)\n", opts.seeds[0], opts.eval_samples);
    let main_runs: Vec<&RunResult> = runs.main_first_seed().collect();
    let labels: Vec<String> = main_runs.iter().map(|r| format!("{} {}", r.experiment, r.label())).collect();
    let rows: Vec<(&str, &RunMetrics)> =
        labels.iter().map(String::as_str).zip(main_runs.iter().map(|r| &r.metrics)).collect();
    md.push_str(&table::metrics_table(&rows)?.to_markdown());
    let _ = writeln!(
        md,
        "\nCVAE samples are drawn two ways from the same decoder. *As trained*: z from the prior the CVAE was trained \
         with — N(0, I) as the studies sampled, or the learned p(z | c) trained inside the ELBO (the sign tasks' \
         default CVAEs: a conditional VampPrior, the encoder's posteriors of learned pseudo-inputs per condition; \
         the caption names it); the CVAE is judged by \
         these samples (the targets below). *Fitted prior*: z from a \
         Gaussian mixture per condition whose size and covariance were chosen on the validation images' codes, fitted \
         by EM after training to the posterior means of that condition's training images (ex-post density estimation, Ghosh et al. 2020): a second \
         model built on the decoder, with parameters of its own, reported as its own row; the CVAE figures of this \
         report are drawn from it where their caption says so. The fixed-noise snapshots over epochs use the prior of training."
    );
    md.push_str("\nFréchet distance, precision/recall (k = 3), KID and density/coverage (k = 5) use the judges' 128-unit feature layer, against real test images drawn per condition with the samples' counts (like with like). KID: the unbiased MMD² with the kernel (xᵀy/d + 1)³, mean ± standard deviation over 100 subsets of up to 1,000 a side; per condition: the mean over conditions of each condition's KID against its own real images, which a generator collapsing inside a class cannot hide. Density and coverage (Naeem et al. 2020): how many real k-NN balls hold a sample (per sample, over k; ≈ 1 for real data) and the share of real balls holding one. Memorized: share of samples closer to one of 5,000 real train images than those images' own 1st-percentile nearest-neighbour distance.\n\n\
        The columns: *accuracy* is the judge's top-1 agreement with the condition asked for; *worst condition* the \
        lowest per-condition accuracy; *confidence* the judge's mean probability of its top class; *diversity / \
        real* the mean pairwise feature distance within a condition's samples over the same within real images of \
        that condition (1: as varied as the data, 0: one image per condition); *style accuracy* (K49) the share of \
        samples whose ink count falls on the side of the class's train median that the style bit asks for. KID is \
        the unbiased MMD² as it is, not scaled by 10³ as some papers print it. *Copying C_T* (Meehan et al. 2020) is a z-score: each \
        sample's and each validation image's distance to the nearest train image, compared by a Mann–Whitney test \
        within the cells of a k-means partition of the train features and averaged over cells. Below about −3, the \
        samples sit closer to the train images than new real images do (copying); near 0, as close as new real \
        images; above 0, farther (what an imperfect generator shows). The reference rows' real train images are \
        other train images than the ones searched, so they read as new real images.\n");

    Ok(())
}

/// Mean and spread of every main run over the seeds it was trained with.
fn write_stability(md: &mut String, ctx: &Context, runs: &Runs) -> Result<()> {
    let opts = ctx.opts;
    let _ = writeln!(md, "\n## CVAE vs CGAN: stability over seeds {:?} (mean ± standard deviation)\n", opts.seeds);
    if opts.seeds.len() > 1 {
        let names: Vec<&str> = opts.stability_experiments.iter().map(|e| e.name()).collect();
        let _ = writeln!(
            md,
            "Trained with every seed: the study's two models and the improved CGAN of {}; every other run (the \
             other experiments' runs, and {}'s improved CVAE and WGAN-GP CGAN) with seed {} only (its value with the \
             bootstrap 95 % interval over samples, no spread over seeds), to keep the profile's training time in \
             budget. Every run as its model draws (a CVAE's z from the prior it was trained with, so no fitted prior's time belongs in its \
             train seconds).\n",
            names.join(", "),
            names.join(", "),
            opts.seeds[0]
        );
    }
    let mut groups: Vec<(Experiment, ModelKind, Recipe)> = Vec::new();
    for r in runs.all.iter().filter(|r| r.recipe.is_main()) {
        if !groups.contains(&(r.experiment, r.model, r.recipe)) {
            groups.push((r.experiment, r.model, r.recipe));
        }
    }
    let labels: Vec<String> =
        groups.iter().map(|&(exp, model, recipe)| format!("{exp} {}", run_label(exp, model, recipe))).collect();
    let runs: Vec<Vec<(RunMetrics, f64)>> = groups
        .iter()
        .map(|&(exp, model, recipe)| {
            runs.all
                .iter()
                .filter(|r| r.experiment == exp && r.model == model && r.recipe == recipe)
                .map(|r| (r.metrics.clone(), r.history.iter().map(|h| h.seconds).sum()))
                .collect()
        })
        .collect();
    let named: Vec<(&str, Vec<(RunMetrics, f64)>)> = labels.iter().map(String::as_str).zip(runs).collect();
    md.push_str(&table::stability_table(&named)?.to_markdown());
    Ok(())
}

/// Every run's fingerprint ([`consistency::fingerprint`]): the lines the notebooks' outputs are checked against.
pub fn write_fingerprints(md: &mut String, runs: &Runs) {
    md.push_str(
        "\n## Runs\n\nEvery run of this report with its headline measures as drawn, one line each; a notebook that \
         judges one of these runs prints the same line (`condgen check-docs` compares them).\n\n```text\n",
    );
    for r in &runs.all {
        let _ = writeln!(md, "{}", consistency::fingerprint(&r.metrics));
    }
    md.push_str("```\n");
}
