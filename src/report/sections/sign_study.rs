//! The Sign Language MNIST study: each task's samples, chosen and framed by the
//! judge, and the letter CVAE's interpolation and reconstructions.

use crate::figures;
use crate::model::ModelKind;
use crate::sample::LatentSource;
use crate::task::Experiment;
use crate::Result;

use super::super::context::{Context, FigureWriter, Judges};
use super::super::runs::Runs;

/// Writes the section.
pub fn write(fig: &mut FigureWriter, ctx: &Context, runs: &Runs, judges: &Judges) -> Result<()> {
    fig.md.push_str("\n## Sign Language MNIST study: conditional VAE (and a conditional GAN beside it)\n\n");
    fig.md.push_str(
        "Good and bad examples are chosen by the judge, not by hand: a red frame marks a sample the judge \
         recognises as the requested condition with at least 90 % confidence, a yellow frame one it takes \
         for another condition (the study marked good examples red and bad ones yellow).\n\n",
    );
    for model in [ModelKind::Cvae, ModelKind::Cgan] {
        let tag = model.name();
        for exp in [Experiment::SignVowel, Experiment::SignLetter, Experiment::SignRotation] {
            let m = ctx.model(&runs.first(exp, model).run)?;
            // As the model draws: a CVAE's z from the prior it was trained with.
            let sampler = m.sampler(LatentSource::TrainedPrior)?;
            let data = ctx.task(exp);
            for spec in figures::SIGN_SAMPLE_FIGURES.iter().filter(|f| f.experiment == exp) {
                fig.add(
                    &format!("{exp}-{tag}-{}", spec.name),
                    &format!("{tag}: {} ({exp}; {})", spec.title, sampler.caption()),
                    &spec.draw(&sampler, data, Some(judges.of(exp)))?,
                )?;
            }
        }
    }
    {
        let m = ctx.model(&runs.first(Experiment::SignLetter, ModelKind::Cvae).run)?;
        let data = ctx.task(Experiment::SignLetter);
        fig.add(
            "sign-letter-cvae-interpolation",
            "CVAE latent interpolation: the condition moves from A to B with z fixed",
            &figures::interpolation_grid(&m, data, 0, 1, 8, 4, 18)?,
        )?;
        fig.add(
            "sign-letter-cvae-reconstructions",
            "CVAE: test images and reconstructions",
            &figures::reconstruction_grid(&m, data, 10)?,
        )?;
    }
    Ok(())
}
