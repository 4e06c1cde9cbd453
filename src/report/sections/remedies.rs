//! The CVAE's remedies for posterior collapse, one at a time, on one budget (sign-letter).

use std::fmt::Write as _;

use crate::table::{self, Measure};
use crate::task::Experiment;
use crate::train::recipes::Recipe;
use crate::train::{Profile, TrainConfig};
use crate::Result;

use super::super::runs::{RunResult, Runs};

/// The table of the CVAE's remedies: each option alone, then together, on one budget.
pub fn write(md: &mut String, runs: &Runs, profile: Profile) -> Result<()> {
    let rows: Vec<&RunResult> = runs.all.iter().filter(|r| matches!(r.recipe, Recipe::Ablation(_))).collect();
    let variants = TrainConfig::cvae_ablation(Experiment::SignLetter, profile);
    let Some(first) = variants.first() else { return Ok(()) };
    let _ = writeln!(
        md,
        "\n## Ending the posterior collapse: the CVAE's remedies one at a time (sign-letter)\n\nEach row is the \
         sign-letter conv CVAE of this profile trained for {} epochs (the same budget for every row) with the option \
         named, its samples drawn as the model draws them: z from the prior it was trained with (N(0, I), or the \
         learned p(z | c) of the last three rows); the post-hoc fitted prior's accuracy stands beside them as its own column \
         (a second model, fitted after training). Active units: latent \
         dimensions whose posterior mean varies across the validation images (Cov > 0.01; Burda et al. 2016). The \
         validation loss is the negative ELBO in nats per image under the row's own likelihood: comparable between rows of the \
         same likelihood only (the Gaussian and continuous Bernoulli are densities).\n",
        first.1.epochs
    );
    let rows: Vec<(&str, &RunResult)> = rows
        .iter()
        .filter_map(|r| match r.recipe {
            Recipe::Ablation(i) => Some((variants.get(i).map_or("?", |v| v.0), *r)),
            _ => None,
        })
        .collect();
    // As drawn, with intervals; the fitted prior (post hoc) beside it.
    let measure = |m: &Measure| rows.iter().map(|(_, r)| m.shown(r.metrics.as_trained())).collect::<Vec<_>>();
    let fitted = rows
        .iter()
        .map(|(_, r)| r.metrics.standard_prior_metrics.as_ref().and(table::ACCURACY.shown(&r.metrics.metrics)))
        .collect::<Vec<_>>();
    let df = polars::df!(
        "remedy" => rows.iter().map(|(name, _)| name.to_string()).collect::<Vec<_>>(),
        table::ACCURACY.name => measure(&table::ACCURACY),
        "accuracy %, fitted prior (post hoc)" => fitted,
        table::FRECHET.name => measure(&table::FRECHET),
        table::PRECISION.name => measure(&table::PRECISION),
        table::RECALL.name => measure(&table::RECALL),
        table::DIVERSITY.name => measure(&table::DIVERSITY),
        "active units" => rows.iter().map(|(_, r)| r.metrics.cvae_active_units.map(|a| a as u64)).collect::<Vec<_>>(),
        "KL (nats)" => rows.iter().map(|(_, r)| r.model_record().and_then(|h| h.test_kl).map(|v| table::round_to(v, 1))).collect::<Vec<_>>(),
        "validation loss" => rows.iter().map(|(_, r)| r.metrics.cvae_test_loss.map(|v| table::round_to(v, 1))).collect::<Vec<_>>(),
        "train time (s)" => rows.iter().map(|(_, r)| r.history.iter().map(|h| h.seconds).sum::<f64>().round()).collect::<Vec<_>>(),
    )?;
    md.push_str(&table::Table(df).to_markdown());
    Ok(())
}
