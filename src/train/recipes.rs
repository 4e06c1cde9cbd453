//! The recipes of the report's runs: which configuration each row of the report
//! (and `condgen train --recipe`) starts from.

use crate::model::ModelKind;
use crate::task::Experiment;
use crate::train::{Profile, TrainConfig};

/// Which recipe a run of the report follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recipe {
    /// The profile's config ([`TrainConfig::new`]): for the CGAN, the improved
    /// recipe on the sign tasks and the study's MLP CGAN on K49.
    Profile,
    /// K49's second CGAN and CVAE: the improved conv CGAN ([`TrainConfig::improved_cgan`])
    /// and conv CVAE ([`TrainConfig::improved_cvae`]).
    Improved,
    /// K49's study MLP CGAN trained with WGAN-GP as its paper prescribes ([`TrainConfig::with_wgan_gp`]).
    WganGp,
    /// The sign-letter CVAE's network as an unconditional VAE (the sign study's section 3).
    Vae,
    /// The same VAE trained without the letters of [`HELD_OUT_LETTERS`], which it is then asked to flag.
    VaeHeldOut,
    /// Row `i` of the CVAE remedies table ([`TrainConfig::cvae_ablation`]).
    Ablation(usize),
}

impl Recipe {
    /// The configuration of this recipe for `experiment` × `model` in `profile` (seed 0).
    pub fn config(self, experiment: Experiment, model: ModelKind, profile: Profile) -> TrainConfig {
        match self {
            Recipe::Profile => TrainConfig::new(experiment, model, profile),
            Recipe::Improved if model == ModelKind::Cvae => TrainConfig::improved_cvae(experiment, profile),
            Recipe::Improved => TrainConfig::improved_cgan(experiment, profile),
            Recipe::WganGp => TrainConfig::new(experiment, model, profile).with_wgan_gp(),
            Recipe::Vae => TrainConfig { unconditional: true, ..TrainConfig::new(experiment, model, profile) },
            Recipe::VaeHeldOut => TrainConfig {
                unconditional: true,
                held_out_classes: HELD_OUT_LETTERS.to_vec(),
                ..TrainConfig::new(experiment, model, profile)
            },
            Recipe::Ablation(i) => TrainConfig::cvae_ablation(experiment, profile).swap_remove(i).1,
        }
    }

    /// A row of the report's main tables (the VAEs and the ablation have their own sections).
    pub fn is_main(self) -> bool {
        matches!(self, Recipe::Profile | Recipe::Improved | Recipe::WganGp)
    }
}

/// The letters the anomaly-detection VAE never sees: V, W, X, Y (the last four classes).
pub const HELD_OUT_LETTERS: [u8; 4] = [20, 21, 22, 23];
