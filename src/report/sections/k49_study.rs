//! The Kuzushiji-49 study: MLP CVAE against MLP CGAN (losses, reconstructions,
//! real vs fake over epochs, samples per class and style), and beyond it the
//! improved conv models and the study's CGAN with WGAN-GP.

use crate::figures;
use crate::model::ModelKind;
use crate::sample::LatentSource;
use crate::task::Experiment;
use crate::train::recipes::Recipe;
use crate::Result;

use super::super::context::{Context, FigureWriter};
use super::super::runs::Runs;

/// Writes the section.
pub fn write(fig: &mut FigureWriter, ctx: &Context, runs: &Runs) -> Result<()> {
    fig.md.push_str(&format!("\n## Kuzushiji-49 study: MLP CVAE vs MLP CGAN\n\nData: {}.\n\n", ctx.k49.source));
    let k49_data = ctx.task(Experiment::K49);
    let cvae = runs.first(Experiment::K49, ModelKind::Cvae);
    let cgan = runs.first(Experiment::K49, ModelKind::Cgan);
    fig.add(
        "k49-cvae-loss",
        "CVAE loss over epochs (BCE and KL parts)",
        &figures::cvae_loss_chart(&cvae.history, "K49 MLP CVAE: loss per image")?,
    )?;
    let m_cvae = ctx.model(&cvae.run)?;
    let m_cgan = ctx.model(&cgan.run)?;
    fig.add(
        "k49-cvae-reconstructions",
        "10 originals vs 10 reconstructions",
        &figures::reconstruction_grid(&m_cvae, k49_data, 10)?,
    )?;
    fig.add(
        "k49-cgan-loss",
        "CGAN generator and discriminator losses over epochs",
        &figures::gan_loss_chart(&cgan.history, "K49 MLP CGAN: losses")?,
    )?;
    for (m, tag) in [(&*m_cvae, "cvae"), (&*m_cgan, "cgan")] {
        fig.add(
            &format!("k49-{tag}-real-vs-fake"),
            &format!("{tag}: real vs fake at epochs {:?}", m.config.snapshot_epochs),
            &figures::real_vs_fake_grid(m, k49_data, &m.config.snapshot_epochs, 12)?,
        )?;
        fig.add(
            &format!("k49-{tag}-styles"),
            &format!("{tag}: samples per class and style, as the study drew them (z from N(0, I))"),
            &figures::style_grid(&m.sampler(LatentSource::TrainedPrior)?, k49_data, 12, 4, 19)?,
        )?;
    }
    fig.add(
        "k49-cvae-interpolation",
        "CVAE latent interpolation from class 0 (a) to class 1 (i)",
        &figures::interpolation_grid(&m_cvae, k49_data, 0, 1, 8, 4, 20)?,
    )?;
    fig.md.push_str(
        "\nBeyond the study: the improved conv CVAE (the sign tasks' conv CVAE with its remedies: Gaussian likelihood \
         with a learned scale, KL warm-up, 4×4 decoder kernels) and the improved conv CGAN (projection discriminator \
         with spectral norm and an AC-GAN head, conditional batch norm generator, weight average, hinge loss) on the same task, and the \
         study's MLP CGAN trained with WGAN-GP.\n\n",
    );
    let improved_cvae = ctx.model(&runs.first_of(Experiment::K49, ModelKind::Cvae, Recipe::Improved).run)?;
    let sampler = improved_cvae.sampler(LatentSource::TrainedPrior)?;
    fig.add(
        "k49-cvae-improved-styles",
        &format!("improved conv CVAE: samples per class and style ({})", sampler.caption()),
        &figures::style_grid(&sampler, k49_data, 12, 4, 19)?,
    )?;
    for (recipe, tag, what) in [
        (Recipe::Improved, "cgan-improved", "improved conv CGAN"),
        (Recipe::WganGp, "cgan-wgan-gp", "study MLP CGAN, WGAN-GP"),
    ] {
        let r = runs.first_of(Experiment::K49, ModelKind::Cgan, recipe);
        let m = ctx.model(&r.run)?;
        fig.add(
            &format!("k49-{tag}-loss"),
            &format!("{what}: losses over epochs"),
            &figures::gan_loss_chart(&r.history, &format!("K49 {what}: losses"))?,
        )?;
        fig.add(
            &format!("k49-{tag}-styles"),
            &format!("{what}: samples per class and style"),
            &figures::style_grid(&m.sampler(LatentSource::TrainedPrior)?, k49_data, 12, 4, 19)?,
        )?;
    }
    Ok(())
}
