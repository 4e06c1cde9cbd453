//! The sign study's section 3: CVAE against an unconditional VAE, and the
//! VAE as an anomaly detector.

use std::fmt::Write as _;

use crate::eval;
use crate::eval::anomaly::{self, Detection};
use crate::figures;
use crate::model::ModelKind;
use crate::sample::{LatentSource, TrainedModel};
use crate::stats;
use crate::table;
use crate::task::Experiment;
use crate::train::recipes::{Recipe, HELD_OUT_LETTERS};
use crate::Result;

use super::super::context::{Context, FigureWriter, Judges};
use super::super::runs::Runs;

/// The sign study's section 3: the CVAE beside an unconditional VAE of the
/// same network (their samples as the letter judge sees them), and the VAE's
/// use as an anomaly detector: letters it never saw, and rotated hands.
pub fn write(fig: &mut FigureWriter, ctx: &Context, runs: &Runs, judges: &Judges) -> Result<()> {
    let letters = ctx.task(Experiment::SignLetter);
    let judge = judges.of(Experiment::SignLetter);
    let eval_opts = &ctx.eval_opts;
    let cvae = runs.first(Experiment::SignLetter, ModelKind::Cvae);
    let vae = runs.first_of(Experiment::SignLetter, ModelKind::Cvae, Recipe::Vae);
    fig.md.push_str(
        "\n## CVAE vs VAE (the sign study's section 3)\n\nThe same network trained twice on sign-letter: as the CVAE, \
         told the letter, and as an unconditional VAE, whose condition input is held at zero. Asked for a letter, the CVAE \
         draws it; the VAE can only draw whatever its latent code lands on, so the letter judge's histogram of its samples \
         shows which letters it covers. Both as they draw: z from the prior each was trained with.\n\n",
    );
    let vae_model = ctx.model_with_prior(&vae.run, Experiment::SignLetter)?;
    let vae_sampler = vae_model.sampler(LatentSource::TrainedPrior)?;
    let samples = vae_sampler.sample_all_conditions(eval_opts.samples.div_ceil(24), eval_opts.seed)?;
    fig.add(
        "sign-letter-vae-samples",
        &format!("VAE samples ({})", vae_sampler.caption()),
        &figures::unconditional_grid(&samples, 6, 12, "unconditional VAE: samples")?,
    )?;
    let shares = eval::predicted_condition_shares(judge, Experiment::SignLetter, &samples)?;
    fig.add(
        "sign-letter-vae-letter-shares",
        "The letters the judge sees in the VAE's samples",
        &figures::condition_share_chart(letters, &shares, "VAE samples: the letter judge's verdicts")?,
    )?;
    // The judge's verdicts on the CVAE's samples too: asked for every letter evenly, what it draws.
    let cvae_model = ctx.model(&cvae.run)?;
    let cvae_samples = cvae_model
        .sampler(LatentSource::TrainedPrior)?
        .sample_all_conditions(eval_opts.samples.div_ceil(24), eval_opts.seed)?;
    let cvae_shares = eval::predicted_condition_shares(judge, Experiment::SignLetter, &cvae_samples)?;
    let spread = |shares: &[f64]| {
        (shares.iter().filter(|&&s| s >= 0.01).count(), 100.0 * shares.iter().copied().fold(0.0, f64::max))
    };
    let ((cvae_covered, cvae_largest), (covered, largest)) = (spread(&cvae_shares), spread(&shares));
    fig.md.push_str("| model | letter drawn as asked | letters with ≥ 1 % of samples | largest letter share | Fréchet distance | precision | recall |\n|---|---:|---:|---:|---:|---:|---:|\n");
    // With their bootstrap intervals, as every metrics table shows them.
    let shown = |measure: &table::Measure, m: &eval::SampleMetrics| measure.shown(m).unwrap_or_else(|| "-".into());
    let c = cvae.metrics.as_trained();
    let _ = writeln!(
        fig.md,
        "| CVAE | {} % | {cvae_covered} of 24 (all asked evenly) | {cvae_largest:.1} % | {} | {} | {} |",
        shown(&table::ACCURACY, c),
        shown(&table::FRECHET, c),
        shown(&table::PRECISION, c),
        shown(&table::RECALL, c)
    );
    let v = vae.metrics.as_trained();
    let _ = writeln!(
        fig.md,
        "| VAE | - (no condition) | {covered} of 24 | {largest:.1} % | {} | {} | {} |\n",
        shown(&table::FRECHET, v),
        shown(&table::PRECISION, v),
        shown(&table::RECALL, v)
    );

    write_anomaly_detection(fig, ctx, runs, &vae_model)
}

/// The study's example use of a VAE: anomaly detection by reconstruction error,
/// for letters a VAE never saw and for rotated hands.
fn write_anomaly_detection(fig: &mut FigureWriter, ctx: &Context, runs: &Runs, vae_model: &TrainedModel) -> Result<()> {
    let letters = ctx.task(Experiment::SignLetter);
    let rotations = ctx.task(Experiment::SignRotation);
    let held_out = runs.first_of(Experiment::SignLetter, ModelKind::Cvae, Recipe::VaeHeldOut);
    let held_model = ctx.model(&held_out.run)?;
    let is_held = |l: &u8| HELD_OUT_LETTERS.contains(l);
    let rows = |keep: &dyn Fn(&u8) -> bool| -> Vec<usize> {
        (0..letters.test.len()).filter(|&i| keep(&letters.test.labels[i])).collect()
    };
    let seen = letters.test.select(&rows(&|l| !is_held(l)));
    let unseen = letters.test.select(&rows(&is_held));
    // Upright test hands against the same hands rotated by 90, 180 or 270 degrees.
    let n = letters.test.len().min(rotations.test.len() / 4);
    let upright: Vec<usize> = (0..n).map(|i| 4 * i).collect();
    let turned: Vec<usize> = (0..n).map(|i| 4 * i + 1 + i % 3).collect();
    let detections = [
        Detection {
            name: "letters V W X Y, never seen".into(),
            normal: anomaly::reconstruction_scores(&held_model, &seen)?,
            anomalous: anomaly::reconstruction_scores(&held_model, &unseen)?,
        },
        Detection {
            name: "rotated hands".into(),
            normal: anomaly::reconstruction_scores(vae_model, &rotations.test.select(&upright))?,
            anomalous: anomaly::reconstruction_scores(vae_model, &rotations.test.select(&turned))?,
        },
    ];
    fig.md.push_str(
        "The study's example use of a VAE: anomaly detection by reconstruction error (the reconstruction negative \
         log-likelihood of the posterior mean). Two tests on the real test split: a VAE trained without the letters V, W, X, Y \
         scores test images of those letters against test images of the other 20; and the VAE trained on every letter \
         scores upright test hands against the same hands rotated by 90, 180 or 270°.\n\n",
    );
    fig.add(
        "sign-letter-vae-anomaly-roc",
        "VAE anomaly detection by reconstruction error: ROC curves",
        &figures::roc_chart(&detections, "VAE anomaly detection: ROC")?,
    )?;
    fig.md.push_str("| anomalies | normal images | anomalous images | mean score, normal | mean score, anomalous | ROC AUC [95 %, Hanley & McNeil] |\n|---|---:|---:|---:|---:|---:|\n");
    for d in &detections {
        let (low, high) = anomaly::auc_interval(d.auc(), d.normal.len(), d.anomalous.len());
        let _ = writeln!(
            fig.md,
            "| {} | {} | {} | {:.1} | {:.1} | {:.3} [{:.3}, {:.3}] |",
            d.name,
            d.normal.len(),
            d.anomalous.len(),
            stats::mean(&d.normal),
            stats::mean(&d.anomalous),
            d.auc(),
            low,
            high
        );
    }
    fig.md.push('\n');
    Ok(())
}
