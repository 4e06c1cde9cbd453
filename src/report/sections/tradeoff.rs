//! Quality against training time: the sign-letter conv CVAE's snapshot accuracy
//! over training minutes and over the share of the paper profile's compute.

use std::fmt::Write as _;

use crate::eval;
use crate::model::ModelKind;
use crate::plot;
use crate::task::Experiment;
use crate::train::{Profile, TrainConfig};
use crate::Result;

use super::super::context::{Context, FigureWriter, Judges};
use super::super::runs::Runs;
use super::super::targets;

/// The sign-letter CVAE's judge accuracy (fixed-noise snapshots) against
/// training minutes and against the share of the paper profile's compute.
pub fn write(fig: &mut FigureWriter, ctx: &Context, runs: &Runs, judges: &Judges) -> Result<()> {
    let r = runs.first(Experiment::SignLetter, ModelKind::Cvae);
    let model = ctx.model(&r.run)?;
    let points = eval::snapshot_accuracy(&model, judges.of(Experiment::SignLetter))?;
    let (history, train_images) = (&r.history, ctx.sign.train.len());
    let crate::model::Architecture::ConvCvae(arch) = &model.config.architecture else { return Ok(()) };
    let cond = model.spec.dim() as i64;
    let paper = TrainConfig::new(Experiment::SignLetter, ModelKind::Cvae, Profile::Paper);
    let crate::model::Architecture::ConvCvae(paper_arch) = &paper.architecture else { return Ok(()) };
    let paper_flops = paper_arch.training_flops_per_image(cond) * (paper.epochs * train_images) as f64;
    // A VampPrior's pseudo-inputs cost per step, at most every condition in every batch.
    let steps = train_images.div_ceil(model.config.batch_size.max(1));
    let per_epoch = arch.training_flops_per_image(cond) * train_images as f64
        + arch.prior_training_flops_per_step(cond, model.spec.classes()) * steps as f64;
    let minutes_at = |epoch: usize| history.iter().take(epoch).map(|h| h.seconds).sum::<f64>() / 60.0;
    let curve: Vec<(f64, f64)> = points.iter().map(|&(e, acc)| (minutes_at(e as usize), acc)).collect();
    let bar = 100.0 * targets::quality_bar(Experiment::SignLetter);
    let last_minute = curve.last().map_or(1.0, |p| p.0);
    let series = [
        plot::Series::new(format!("{} ({})", model.config.profile, arch_label(arch)), curve.clone()),
        plot::Series::new("quality bar", vec![(0.0, bar), (last_minute, bar)]),
    ];
    fig.md.push_str("\n## Quality vs training time: the sign-letter conv CVAE\n\n");
    fig.add(
        "sign-letter-cvae-quality-vs-minutes",
        "Judge accuracy of the fixed-noise snapshots (8 per letter; the CVAE's z from the prior it was trained with) against training minutes",
        &plot::line_chart(
            "sign-letter CVAE: accuracy vs training minutes",
            "training minutes",
            "judge accuracy (%)",
            &series,
        )?,
    )?;
    let _ = writeln!(
        fig.md,
        "The paper profile (the study's widths, {} epochs) costs {:.2e} FLOP of training on {} images; \
         this run costs {:.2e} FLOP per epoch (each epoch {:.2} % of the paper's whole training; counted layer by layer: \
         2 FLOP per multiply-accumulate, forward and both backward passes, as PyTorch's FlopCounterMode counts; a \
         VampPrior's pseudo-inputs counted as if every condition were in every batch).\n",
        paper.epochs,
        paper_flops,
        train_images,
        per_epoch,
        100.0 * per_epoch / paper_flops
    );
    // The snapshots' images: a fixed number per condition (Wilson intervals over them).
    let snapshot_images = model.config.snapshot_per_condition * model.spec.all_conditions().0.len();
    let _ = writeln!(
        fig.md,
        "Snapshot accuracy over {snapshot_images} images, with its Wilson 95 % interval.\n\n\
         | epoch | training minutes | share of the paper's training compute | snapshot accuracy |\n|---:|---:|---:|---:|"
    );
    for &(e, acc) in &points {
        let e = e as usize;
        let (low, high) = crate::stats::wilson_interval(acc / 100.0, snapshot_images);
        let _ = writeln!(
            fig.md,
            "| {e} | {:.1} | {:.1} % | {acc:.1} [{:.1}, {:.1}] % |",
            minutes_at(e),
            100.0 * per_epoch * e as f64 / paper_flops,
            100.0 * low,
            100.0 * high
        );
    }
    fig.md.push('\n');
    Ok(())
}

fn arch_label(arch: &crate::model::ConvCvaeConfig) -> String {
    format!("filters {:?}, latent {}", arch.encoder_filters, arch.latent)
}
