//! Where a CVAE draws z (N(0, I), one fitted Gaussian per condition, or the
//! fitted mixture), and the sampling temperature's precision/recall trade-off.

use crate::eval;
use crate::figures;
use crate::model::latent_prior::SELECTION_COMPONENTS;
use crate::model::ModelKind;
use crate::sample::{LatentSource, TrainedModel};
use crate::table;
use crate::task::Experiment;
use crate::Result;

use super::super::context::{Context, FigureWriter, Judges};
use super::super::runs::Runs;

/// The same decoders sampled from three sources of z, judged as drawn.
pub fn write_latent_sources(md: &mut String, ctx: &Context, runs: &Runs, judges: &Judges) -> Result<()> {
    let eval_opts = &ctx.eval_opts;
    md.push_str(&format!(
        "\n## Where a CVAE draws z: the prior of training, one Gaussian per condition, or the fitted prior\n\nThe same decoders, three \
         sources of z. The prior of training (N(0, I), how the studies sample, or a learned p(z | c)) is how each CVAE is judged. The fitted \
         priors are fitted after training to the posterior means of each condition's training images (ex-post density \
         estimation, Ghosh et al. 2020): one full-covariance Gaussian, or the shape chosen on the validation images' \
         codes (up to {} components per condition, full, diagonal or tied covariances; its choice and size are tabled \
         under \"Beyond accuracy\"). A condition whose images come in several looks (\"consonant\" holds 19 letters; a \
         letter is signed by different hands) can get a cluster per look instead of one Gaussian whose mass falls \
         between them. Every row is judged as drawn (about {} samples per row, the same number per condition).\n\n",
        SELECTION_COMPONENTS.iter().max().copied().unwrap_or(1),
        ctx.opts.eval_samples
    ));
    let mut labels = Vec::new();
    let mut measured = Vec::new();
    for exp in Experiment::ALL {
        let data = ctx.task(exp);
        let run = &runs.first(exp, ModelKind::Cvae).run;
        let per_condition = eval_opts.per_condition(&data.spec);
        // The prior chosen on validation codes, saved in the run by its evaluation.
        let mixture = ctx.model_with_prior(run, exp)?;
        // One Gaussian per condition: a model of its own, since its prior differs from the cached one's.
        let mut single = TrainedModel::load(run, ctx.opts.device)?;
        single.latent_prior = single.fitted_prior(data, 1);
        for sampler in [
            mixture.sampler(LatentSource::TrainedPrior)?,
            single.sampler(LatentSource::FittedPrior)?,
            mixture.sampler(LatentSource::FittedPrior)?,
        ] {
            let samples = sampler.sample_all_conditions(per_condition, eval_opts.seed)?;
            measured.push(eval::evaluate_samples(&samples, data, judges.of(exp), eval_opts)?);
            labels.push(format!("{exp}: {}", sampler.caption()));
        }
    }
    let rows: Vec<(&str, &eval::SampleMetrics)> = labels.iter().map(String::as_str).zip(&measured).collect();
    md.push_str(&table::sample_metrics_table(&rows)?.to_markdown());
    Ok(())
}

/// The CVAEs' precision, recall and accuracy against the sampling temperature.
pub fn write_temperature(fig: &mut FigureWriter, ctx: &Context, runs: &Runs, judges: &Judges) -> Result<()> {
    fig.md.push_str(
        "\n## Sampling temperature: the CVAEs' precision/recall trade-off\n\nz from the fitted per-condition prior with its \
         standard normal noise scaled by the temperature T (T = 1 is how every other CVAE number here is sampled). Low T \
         draws near each condition's mode: more precise, less diverse.\n\n",
    );
    for exp in [Experiment::SignLetter, Experiment::K49] {
        let data = ctx.task(exp);
        let m = ctx.model_with_prior(&runs.first(exp, ModelKind::Cvae).run, exp)?;
        let sampler = m.sampler(LatentSource::FittedPrior)?;
        let sweep = eval::temperature_sweep(&sampler, data, judges.of(exp), &eval::SWEEP_TEMPERATURES, &ctx.eval_opts)?;
        fig.add(
            &format!("{exp}-cvae-temperature"),
            &format!(
                "{exp} CVAE: precision, recall and accuracy against the sampling temperature ({})",
                sampler.caption()
            ),
            &figures::temperature_sweep_chart(&sweep, &format!("{exp} CVAE: sampling temperature"))?,
        )?;
        let labels: Vec<String> = sweep.iter().map(|(t, _)| format!("{exp}, T = {t}")).collect();
        let rows: Vec<(&str, &eval::SampleMetrics)> =
            labels.iter().map(String::as_str).zip(sweep.iter().map(|(_, m)| m)).collect();
        fig.md.push_str(&table::sample_metrics_table(&rows)?.to_markdown());
        fig.md.push('\n');
    }
    Ok(())
}
