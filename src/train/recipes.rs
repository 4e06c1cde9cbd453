//! Recipes: the configurations built on a profile's ([`TrainConfig::new`]) —
//! the improved CGAN and CVAE, the CVAE's remedies, WGAN-GP, the ablations —
//! and the catalogue of the report's runs ([`Recipe`]), which `condgen train
//! --recipe` shares.

use crate::model::conv_cvae::DecoderUpsampling;
use crate::model::{Architecture, ConvCganConfig, ConvCvaeConfig, Likelihood, ModelKind};
use crate::task::Experiment;
use crate::train::profiles::{first_middle_last, LEARNED_PRIOR_COMPONENTS};
use crate::train::{GanLoss, Profile, TrainConfig};

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

    /// One of the K49 study's own MLP models (the CVAE, or the CGAN with either loss), reproduced
    /// faithfully and reported without bars ([`crate::report::targets`]).
    pub fn is_study_model(self, experiment: Experiment) -> bool {
        experiment == Experiment::K49 && matches!(self, Recipe::Profile | Recipe::WganGp)
    }

    /// A row of the report's main tables (the VAEs and the ablation have their own sections).
    pub fn is_main(self) -> bool {
        matches!(self, Recipe::Profile | Recipe::Improved | Recipe::WganGp)
    }
}

/// The letters the anomaly-detection VAE never sees: V, W, X, Y (the last four classes).
pub const HELD_OUT_LETTERS: [u8; 4] = [20, 21, 22, 23];

/// The improved CGAN's weight on its AC-GAN term in the generator's loss
/// ([`TrainConfig::generator_auxiliary_weight`]), per task: 6 on K49, 3 elsewhere.
/// Chosen by measurement: report/DECISIONS.md, "Improved CGAN: the generator's AC-GAN weight".
pub fn improved_generator_auxiliary_weight(experiment: Experiment) -> f64 {
    match experiment {
        Experiment::K49 => 6.0,
        Experiment::SignVowel | Experiment::SignLetter | Experiment::SignRotation => 3.0,
    }
}

/// Epochs of each row of the CVAE remedies table ([`TrainConfig::cvae_ablation`]).
pub const CVAE_ABLATION_EPOCHS: usize = 4;

impl TrainConfig {
    /// The improved conditional GAN of `profile` for `experiment`: the sign
    /// tasks' CGAN in the quick and default profiles, and K49's second CGAN
    /// beside the study's MLP. See [`TrainConfig::into_improved_cgan`].
    pub fn improved_cgan(experiment: Experiment, profile: Profile) -> Self {
        let cfg = TrainConfig::new(experiment, ModelKind::Cgan, profile).into_improved_cgan();
        if experiment != Experiment::K49 {
            return cfg;
        }
        // K49 has 8.5× the sign tasks' images: 3 epochs are 10,900 generator steps
        // at batch 64 and at least the wall-clock of K49's CVAE (fair budgets); the
        // paper profile keeps the study's 50. Measured: report/DECISIONS.md, "K49 improved CGAN: 3 epochs".
        let epochs: usize = match profile {
            Profile::Quick => 2,
            Profile::Default => 3,
            Profile::Paper => 50,
        };
        TrainConfig { epochs, snapshot_epochs: first_middle_last(epochs), ..cfg }
    }

    /// The improved conditional VAE of `profile` for `experiment`: the sign
    /// tasks' CVAE of the profile, and K49's second CVAE beside the study's MLP:
    /// the sign tasks' conv CVAE with its remedies ([`TrainConfig::with_cvae_remedies`]),
    /// 2 epochs (the paper profile 50). Measured against the MLP CVAE: report/DECISIONS.md, "K49's improved CVAE".
    pub fn improved_cvae(experiment: Experiment, profile: Profile) -> Self {
        if experiment != Experiment::K49 {
            return TrainConfig::new(experiment, ModelKind::Cvae, profile);
        }
        // The learned prior was chosen on sign-letter's validation split; on K49 it is
        // not yet measured, so K49's conv CVAE keeps N(0, I).
        let conv = TrainConfig::new(Experiment::SignLetter, ModelKind::Cvae, profile)
            .with_cvae_remedies()
            .with_standard_normal_prior();
        let epochs: usize = if profile == Profile::Paper { 50 } else { 2 };
        TrainConfig {
            experiment,
            epochs,
            kl_warmup_epochs: conv.kl_warmup_epochs.min(epochs),
            snapshot_epochs: first_middle_last(epochs),
            snapshot_per_condition: 4,
            ..conv
        }
    }

    /// This CGAN config with the improved recipe: the conv CGAN with a
    /// projection discriminator under spectral norm and an auxiliary classifier
    /// head, conditional batch norm in the generator and a weight average for sampling
    /// ([`ConvCganConfig::improved`]), trained with the hinge loss, Adam (0, 0.9)
    /// and lr 2e-4 for both networks (the two time scales of Zhang et al. 2019 remain
    /// an option, `discriminator_learning_rate`), batch 64. The generator's AC-GAN term
    /// weighs 3, on K49 6 ([`improved_generator_auxiliary_weight`]).
    /// Each choice was measured: report/DECISIONS.md, "CGAN".
    pub fn into_improved_cgan(self) -> Self {
        let (noise, base) = match self.profile {
            Profile::Quick => (16, 8),
            Profile::Default => (64, 32),
            Profile::Paper => (128, 64),
        };
        TrainConfig {
            architecture: Architecture::ConvCgan(ConvCganConfig::improved(noise, base)),
            gan_loss: GanLoss::Hinge,
            learning_rate: 2e-4,
            discriminator_learning_rate: None,
            adam_betas: [0.0, 0.9],
            batch_size: 64,
            discriminator_steps: 1,
            generator_auxiliary_weight: Some(improved_generator_auxiliary_weight(self.experiment)),
            ..self
        }
    }

    /// The CVAE's remedies for posterior collapse one at a time, then the
    /// combination the quick and default profiles use ([`TrainConfig::with_cvae_remedies`]),
    /// each on the same budget ([`CVAE_ABLATION_EPOCHS`] epochs of the profile's
    /// conv CVAE; the first row has none): (name, config). The sign tasks only
    /// (the conv CVAE's decoder options).
    pub fn cvae_ablation(experiment: Experiment, profile: Profile) -> Vec<(&'static str, TrainConfig)> {
        // The quick profile: its own 2 epochs, room for the 2-epoch KL warm-up.
        let epochs = if profile == Profile::Quick { 2 } else { CVAE_ABLATION_EPOCHS };
        let base = TrainConfig::new(experiment, ModelKind::Cvae, profile);
        // Every row trains its whole budget (no early stopping): like with like.
        let base =
            TrainConfig { epochs, snapshot_epochs: vec![epochs], early_stopping: None, ..base.without_cvae_remedies() };
        let with_arch = |f: &dyn Fn(&mut ConvCvaeConfig)| {
            let mut cfg = base.clone();
            if let Architecture::ConvCvae(c) = &mut cfg.architecture {
                f(c);
            }
            cfg
        };
        vec![
            ("none (the study's settings)", base.clone()),
            ("KL warm-up over 2 epochs", TrainConfig { kl_warmup_epochs: 2, ..base.clone() }),
            ("free bits, 0.25 nats per dimension", TrainConfig { free_bits: 0.25, ..base.clone() }),
            (
                "continuous Bernoulli likelihood",
                TrainConfig { likelihood: Likelihood::ContinuousBernoulli, ..base.clone() },
            ),
            ("Gaussian likelihood, learned scale", TrainConfig { likelihood: Likelihood::Gaussian, ..base.clone() }),
            ("resize-conv decoder", with_arch(&|c| c.decoder_upsampling = DecoderUpsampling::ResizeConv)),
            (
                "condition embedded (16) and fed to every decoder stage",
                with_arch(&|c| {
                    c.condition_embedding = 16;
                    c.condition_every_stage = true;
                }),
            ),
            (
                "KL warm-up, Gaussian likelihood and 4×4 transposed decoder (the default profile's remedies)",
                base.clone().with_cvae_remedies(),
            ),
            (
                "the default profile's remedies with KL weight β = 2",
                TrainConfig { kl_weight: 2.0, ..base.clone().with_cvae_remedies() },
            ),
            (
                "the default profile's remedies with the conditional MMD to N(0, I), λ = 1000",
                TrainConfig { mmd_weight: 1000.0, ..base.clone().with_cvae_remedies() },
            ),
            (
                "the default profile's remedies with a learned conditional prior p(z | c) (Sohn et al. 2015)",
                base.clone().with_cvae_remedies().with_learned_prior(1),
            ),
            (
                "the default profile's remedies with a learned mixture of 4 Gaussians per condition p(z | c)",
                base.clone().with_cvae_remedies().with_learned_prior(LEARNED_PRIOR_COMPONENTS),
            ),
            (
                "the default profile's remedies with a conditional VampPrior, 4 pseudo-inputs per condition \
                 (Tomczak & Welling 2018; the default profile's choice)",
                base.clone().with_cvae_remedies().with_vamp_prior(LEARNED_PRIOR_COMPONENTS),
            ),
        ]
    }

    /// The improved conv CGAN built up one part at a time from the DCGAN
    /// baseline (condition tiled into D's input, BCE, Adam (0.5, 0.999)), each
    /// row adding one part to the row before, the last being
    /// [`TrainConfig::improved_cgan`] itself: (name, config). Every row has the
    /// improved recipe's epochs, widths and batch; callers cap the images for a short run.
    pub fn cgan_ablation(experiment: Experiment, profile: Profile) -> Vec<(&'static str, TrainConfig)> {
        let improved = TrainConfig::improved_cgan(experiment, profile);
        let Architecture::ConvCgan(arch) = &improved.architecture else {
            unreachable!("the improved CGAN is a conv CGAN")
        };
        let with_arch = |cfg: &TrainConfig, f: &dyn Fn(&mut ConvCganConfig)| {
            let mut cfg = cfg.clone();
            if let Architecture::ConvCgan(c) = &mut cfg.architecture {
                f(c);
            }
            cfg
        };
        let baseline = TrainConfig {
            architecture: Architecture::ConvCgan(ConvCganConfig {
                noise: arch.noise,
                base_channels: arch.base_channels,
                ..Default::default()
            }),
            gan_loss: GanLoss::Bce,
            adam_betas: [0.5, 0.999],
            generator_auxiliary_weight: None,
            ..improved.clone()
        };
        let projection =
            with_arch(&baseline, &|c| c.discriminator = crate::model::conv_cgan::DiscriminatorConditioning::Projection);
        let spectral = with_arch(&projection, &|c| c.spectral_norm = true);
        let hinge = TrainConfig { gan_loss: GanLoss::Hinge, ..spectral.clone() };
        vec![
            ("DCGAN baseline: condition tiled into D's input, BCE loss", baseline),
            ("+ projection discriminator", projection),
            ("+ spectral normalisation in D", spectral),
            ("+ hinge loss", hinge),
            ("+ conditional batch norm, resize-conv, weight average, AC-GAN head, Adam (0, 0.9): the improved recipe", improved),
        ]
    }

    /// This conv CVAE config with the study's settings: no KL warm-up or free
    /// bits, the Bernoulli likelihood, transposed 3×3 upsampling, the raw
    /// condition at the decoder's input only.
    pub fn without_cvae_remedies(self) -> Self {
        let mut cfg = TrainConfig { kl_warmup_epochs: 0, free_bits: 0.0, likelihood: Likelihood::Bernoulli, ..self };
        if let Architecture::ConvCvae(c) = &mut cfg.architecture {
            c.decoder_upsampling = DecoderUpsampling::Transposed3;
            c.condition_embedding = 0;
            c.condition_every_stage = false;
        }
        cfg.with_standard_normal_prior()
    }

    /// This CVAE config with a learned prior p(z | c) of `components` diagonal
    /// Gaussians per condition, trained inside the ELBO ([`crate::model::prior_net`]).
    pub fn with_learned_prior(self, components: i64) -> Self {
        self.with_prior(true, components, false)
    }

    /// This conv CVAE config with a conditional VampPrior of `components` learned
    /// pseudo-inputs per condition ([`crate::model::vamp_prior`]).
    pub fn with_vamp_prior(self, components: i64) -> Self {
        self.with_prior(true, components, true)
    }

    /// This CVAE config with the studies' fixed prior N(0, I).
    pub fn with_standard_normal_prior(self) -> Self {
        self.with_prior(false, 1, false)
    }

    /// The prior fields of a CVAE's architecture, all three at once (the MLP CVAE has no VampPrior).
    fn with_prior(self, learned: bool, components: i64, vamp: bool) -> Self {
        let mut cfg = self;
        match &mut cfg.architecture {
            Architecture::ConvCvae(c) => {
                (c.learned_prior, c.prior_components, c.vamp_prior) = (learned, components, vamp)
            }
            Architecture::MlpCvae(c) => (c.learned_prior, c.prior_components) = (learned, components),
            _ => {}
        }
        cfg
    }

    /// This CVAE config with the remedies that paid together: KL warm-up over
    /// 2 epochs, the Gaussian likelihood with a learned scale and, for the conv
    /// CVAE, a decoder of 4×4 stride-2 transposed convolutions (no checkerboard).
    /// The KL weight stays 1, with no MMD penalty (`mmd_weight`, [`crate::loss::conditional_mmd`]).
    /// Each choice was measured, as were β and the MMD weight: report/DECISIONS.md, "CVAE".
    pub fn with_cvae_remedies(self) -> Self {
        let mut cfg = TrainConfig { kl_warmup_epochs: 2, likelihood: Likelihood::Gaussian, ..self };
        if let Architecture::ConvCvae(c) = &mut cfg.architecture {
            c.decoder_upsampling = DecoderUpsampling::Transposed4;
        }
        cfg
    }

    /// This CGAN config trained with WGAN-GP as its paper prescribes
    /// (Gulrajani et al. 2017, Algorithm 1): 5 critic steps per generator
    /// step, Adam lr 1e-4 with (β1, β2) = (0, 0.9), penalty weight 10, one
    /// learning rate for both. The epochs, so the real images the critic sees, stay.
    pub fn with_wgan_gp(&self) -> Self {
        TrainConfig {
            gan_loss: GanLoss::WganGp,
            discriminator_steps: 5,
            learning_rate: 1e-4,
            discriminator_learning_rate: None,
            adam_betas: [0.0, 0.9],
            gradient_penalty_weight: 10.0,
            ..self.clone()
        }
    }
}
