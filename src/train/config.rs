//! The training configuration: its fields, overrides from a TOML/JSON file or
//! `key=value` pairs, validation, and the digest that names its run folder.
//! A profile's settings are in [`super::profiles`], the recipes in [`super::recipes`].

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::history::EpochRecord;
use crate::model::{Architecture, ModelKind};
use crate::model::{Built, Likelihood};
use crate::serde_helpers::{merge_checked, omitted_at_default, with_every_field};
use crate::task::{ConditionSpec, Experiment, TaskData};
use crate::{Error, Result};

/// How the learning rates change over a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LrSchedule {
    /// The same rate every step (the studies').
    #[default]
    Constant,
    /// Cosine decay (Loshchilov & Hutter 2017), per epoch: epoch e of E trains at
    /// lr · ½(1 + cos(π (e − 1)/E)), from the full rate down towards 0.
    Cosine,
}

impl LrSchedule {
    /// The factor on the base learning rates during `epoch` (1-based) of `epochs`.
    pub fn factor(self, epoch: usize, epochs: usize) -> f64 {
        match self {
            LrSchedule::Constant => 1.0,
            LrSchedule::Cosine => {
                let progress = epoch.saturating_sub(1) as f64 / epochs.max(1) as f64;
                0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        }
    }
}

/// How much compute a run gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// A smoke run under a minute: a slice of the data, narrow models, 2 epochs.
    Quick,
    /// Full datasets with an epoch and width budget that fits the whole report
    /// in about two hours on 2 CPU cores.
    Default,
    /// The studies' own settings (conv CVAE 100 epochs, K49 models 50 epochs); meant for a GPU.
    Paper,
}

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Profile::Quick => "quick",
            Profile::Default => "default",
            Profile::Paper => "paper",
        }
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The loss a CGAN trains with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum GanLoss {
    /// The original minimax loss (non-saturating generator), as in the study.
    Bce,
    /// Wasserstein loss with gradient penalty (the study's suggested improvement).
    WganGp,
    /// Hinge loss (Lim & Ye 2017), as SNGAN and the projection discriminator train.
    Hinge,
}

impl std::fmt::Display for GanLoss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GanLoss::Bce => "BCE (non-saturating generator)",
            GanLoss::WganGp => "WGAN-GP",
            GanLoss::Hinge => "hinge",
        })
    }
}

/// Everything a training run needs; saved as `config.json` in the run folder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// The conditioning task.
    pub experiment: Experiment,
    /// The profile these settings started from.
    pub profile: Profile,
    /// Seed of initialisation, shuffling and noise.
    pub seed: u64,
    /// Passes over the training images.
    pub epochs: usize,
    /// Images per optimisation step.
    pub batch_size: usize,
    /// Adam learning rate (a CGAN's generator).
    pub learning_rate: f64,
    /// CGAN only: the discriminator's learning rate when it differs from the
    /// generator's (two time-scale update rule, Heusel et al. 2017); None = the same.
    pub discriminator_learning_rate: Option<f64>,
    /// Adam (β1, β2).
    pub adam_betas: [f64; 2],
    /// How the learning rates change over the run ([`LrSchedule`]; constant is the studies' choice).
    #[serde(default, skip_serializing_if = "omitted_at_default")]
    pub lr_schedule: LrSchedule,
    /// CVAE only: weight of the KL term (1 = the plain ELBO; β-VAE otherwise).
    pub kl_weight: f64,
    /// CVAE only: KL warm-up. The KL weight rises linearly from 0 to `kl_weight`
    /// over the first this many epochs, step by step (see [`crate::loss::kl_warmup_weight`]).
    /// 0 (the studies'): `kl_weight` from the first step.
    #[serde(default)]
    pub kl_warmup_epochs: usize,
    /// CVAE only: free bits λ in nats per latent dimension (Kingma et al. 2016): the
    /// KL term trained is Σ_j max(λ, KL_j), KL_j the batch-mean KL of dimension j
    /// (see [`crate::loss::free_bits_kl`]). 0 (the studies'): off. The recorded `kl`
    /// and the test loss are the plain KL whatever λ.
    #[serde(default)]
    pub free_bits: f64,
    /// CVAE only: weight λ of the conditional MMD between posterior draws and
    /// N(0, I) added to the loss (InfoVAE; see [`crate::loss::conditional_mmd`]),
    /// for samples drawn with z ~ N(0, I). 0 (the studies'): off.
    #[serde(default, skip_serializing_if = "omitted_at_default")]
    pub mmd_weight: f64,
    /// CVAE only: early stopping on the validation split. With `Some(p)`, training stops
    /// once the validation loss (negative ELBO, [`super::cvae_test_loss`]) has not improved
    /// for `p` epochs, and the run's model is the epoch with the lowest validation loss
    /// ([`TrainConfig::model_epoch`]); `epochs` stays the most it trains. None (the
    /// studies'): every epoch, and the model is the last.
    #[serde(default, skip_serializing_if = "omitted_at_default")]
    pub early_stopping: Option<usize>,
    /// Decoupled weight decay λ of every optimizer ([`crate::optim::Adam::weight_decay`]);
    /// 0 (the studies'): off.
    #[serde(default, skip_serializing_if = "omitted_at_default")]
    pub weight_decay: f64,
    /// CVAE only: every training batch shifted at random by up to 1/8 of the image
    /// (DiffAugment's translation, [`crate::model::augment::diff_augment`]), the
    /// reconstruction target alike, as a regulariser against overfitting. false (the studies'): off.
    #[serde(default, skip_serializing_if = "omitted_at_default")]
    pub translate_train_images: bool,
    /// CVAE only: what the decoder's outputs parameterise (see [`Likelihood`]); the
    /// studies' `bernoulli` by default. history.csv's `bce` columns hold the
    /// reconstruction negative log-likelihood under this likelihood.
    #[serde(default)]
    pub likelihood: Likelihood,
    /// CVAE only: an unconditional VAE, the same network with its condition
    /// input held at zero ([`ConditionSpec::Ignored`]; the sign study's section 3).
    #[serde(default)]
    pub unconditional: bool,
    /// Classes left out of the training and test images (e.g. the letters an
    /// anomaly detector is later asked to flag). Empty: every class.
    #[serde(default)]
    pub held_out_classes: Vec<u8>,
    /// CGAN only: the adversarial loss.
    pub gan_loss: GanLoss,
    /// CGAN only (WGAN-GP): weight of the gradient penalty.
    pub gradient_penalty_weight: f64,
    /// CGAN only: discriminator steps per generator step.
    pub discriminator_steps: usize,
    /// CGAN with an auxiliary classifier head: the weight of the head's loss in the
    /// generator's objective (how hard G is pushed to make its condition
    /// recognisable); the head itself always learns from real images at weight 1.
    /// None: 1, AC-GAN's (Odena et al. 2017). Without a head it has no effect. The
    /// improved recipe sets [`improved_generator_auxiliary_weight`].
    #[serde(default, skip_serializing_if = "omitted_at_default")]
    pub generator_auxiliary_weight: Option<f64>,
    /// The version of the data protocol the run follows ([`crate::data::DATA_PROTOCOL`]):
    /// which images are held out as the validation split ([`crate::data::validation`]),
    /// never trained on, on which the per-epoch held-out loss is measured. Every config
    /// made here carries the current version, so no run shares a run id with a run
    /// trained on other images. Absent (0) in the configs of runs from before the
    /// validation split: they trained on the whole train split and measured that loss
    /// on test; they can be loaded and evaluated, not trained further.
    #[serde(default, skip_serializing_if = "omitted_at_default")]
    pub data_protocol: u32,
    /// Use at most this many training images (None = all).
    pub max_train_images: Option<usize>,
    /// Use at most this many validation and test images each (None = all).
    pub max_test_images: Option<usize>,
    /// Epochs (1-based) after which fixed-noise samples are saved.
    pub snapshot_epochs: Vec<usize>,
    /// Samples per condition in each snapshot.
    pub snapshot_per_condition: usize,
    /// The networks and their sizes.
    pub architecture: Architecture,
}

/// Why a run's training ended ([`TrainConfig::stop_reason`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// Every configured epoch is done.
    AllEpochs,
    /// Early stopping: the validation loss was lowest at epoch `best` and did not
    /// improve in the `patience` epochs after it.
    NoImprovement { best: usize, patience: usize },
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::AllEpochs => write!(f, "every epoch trained"),
            StopReason::NoImprovement { best, patience } => write!(
                f,
                "stopped early: the validation loss was lowest at epoch {best} and did not improve in the {patience} epochs after it"
            ),
        }
    }
}

impl TrainConfig {
    /// CGAN: whether the `n`-th discriminator step of an epoch (counted from 1) is
    /// followed by a generator step (one every `discriminator_steps`).
    pub fn is_generator_step(&self, n: usize) -> bool {
        n.is_multiple_of(self.discriminator_steps.max(1))
    }

    /// How the condition reaches the model: the task's, or held at zero when `unconditional`.
    pub fn condition_spec(&self) -> ConditionSpec {
        let spec = self.experiment.condition_spec();
        if self.unconditional {
            spec.ignored()
        } else {
            spec
        }
    }

    /// The images and conditions this run trains on (and validates on): `data`
    /// without the held-out classes, cut to the image limits, with [`TrainConfig::condition_spec`].
    pub fn training_data(&self, data: &TaskData) -> TaskData {
        let mut data = data.without_classes(&self.held_out_classes);
        data.truncate(self.max_train_images.unwrap_or(usize::MAX), self.max_test_images.unwrap_or(usize::MAX));
        data.spec = self.condition_spec();
        data
    }

    pub fn model(&self) -> ModelKind {
        self.architecture.kind()
    }

    /// Applies overrides: a JSON/TOML object (from a config file) merged over
    /// this config. Unknown keys are rejected with the list of valid ones.
    pub fn merge(&self, overrides: &Value) -> Result<Self> {
        let mut base = with_every_field(|| serde_json::to_value(self).expect("config serializes"));
        merge_checked(&mut base, overrides, "")?;
        let merged: TrainConfig =
            serde_json::from_value(base).map_err(|e| Error::Config(format!("invalid value: {e}")))?;
        merged.validate()?;
        Ok(merged)
    }

    /// Reads a `.toml` or `.json` file of overrides and merges it.
    pub fn merge_file(&self, path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let value: Value = if path.extension().is_some_and(|e| e == "toml") {
            let table: toml::Table =
                toml::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
            serde_json::to_value(table).expect("toml is json-compatible")
        } else {
            serde_json::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?
        };
        self.merge(&value).map_err(|e| match e {
            Error::Config(m) => Error::Config(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// Applies `key=value` overrides with dotted keys, e.g.
    /// `architecture.latent=32`. Values parse as JSON, else as strings.
    pub fn set(&self, assignments: &[String]) -> Result<Self> {
        let mut overrides = Value::Object(Default::default());
        for a in assignments {
            let (key, raw) = a.split_once('=').ok_or_else(|| Error::Config(format!("`{a}`: expected key=value")))?;
            let value: Value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
            let mut slot = &mut overrides;
            let parts: Vec<&str> = key.split('.').collect();
            for (i, part) in parts.iter().enumerate() {
                // An earlier assignment may have set a prefix of this key to a value.
                let Some(obj) = slot.as_object_mut() else {
                    let prefix = parts[..i].join(".");
                    return Err(Error::Config(format!("`{a}`: `{prefix}` is already set to a value, not a table")));
                };
                if i + 1 == parts.len() {
                    obj.insert(part.to_string(), value.clone());
                    break;
                }
                slot = obj.entry(part.to_string()).or_insert_with(|| Value::Object(Default::default()));
            }
        }
        self.merge(&overrides)
    }

    /// Rejects values no run can use.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if self.unconditional && self.model() != ModelKind::Cvae {
            return bad("unconditional applies to the CVAE (an unconditional VAE); a CGAN needs its condition".into());
        }
        let classes = self.experiment.condition_spec().classes();
        if let Some(&c) = self.held_out_classes.iter().find(|&&c| c as usize >= classes) {
            return bad(format!("held_out_classes: class {c} does not exist ({} has {classes})", self.experiment));
        }
        if self.held_out_classes.len() >= classes {
            return bad("held_out_classes leaves no class to train on".into());
        }
        if self.data_protocol != crate::data::DATA_PROTOCOL {
            let protocol = crate::data::DATA_PROTOCOL;
            return bad(if self.data_protocol == 0 {
                format!(
                    "this configuration is from before the validation split (no data_protocol): it trained on the \
                     whole train split, which no run does now; start from a profile or recipe instead (data_protocol \
                     {protocol})"
                )
            } else {
                format!(
                    "data_protocol {} is not this version's data (data::DATA_PROTOCOL = {protocol})",
                    self.data_protocol
                )
            });
        }
        if self.epochs == 0 {
            return bad("epochs must be at least 1".into());
        }
        if self.batch_size == 0 {
            return bad("batch_size must be at least 1".into());
        }
        for (name, lr) in [
            ("learning_rate", Some(self.learning_rate)),
            ("discriminator_learning_rate", self.discriminator_learning_rate),
        ] {
            if let Some(lr) = lr.filter(|lr| !(lr.is_finite() && *lr > 0.0)) {
                return bad(format!("{name} must be a positive number, got {lr}"));
            }
        }
        if !self.kl_weight.is_finite() || self.kl_weight < 0.0 {
            return bad(format!("kl_weight must be a non-negative number, got {}", self.kl_weight));
        }
        if !self.free_bits.is_finite() || self.free_bits < 0.0 {
            return bad(format!("free_bits must be a non-negative number of nats, got {}", self.free_bits));
        }
        if !self.mmd_weight.is_finite() || self.mmd_weight < 0.0 {
            return bad(format!("mmd_weight must be a non-negative number, got {}", self.mmd_weight));
        }
        if self.kl_warmup_epochs > self.epochs {
            return bad(format!(
                "kl_warmup_epochs ({}) exceeds epochs ({}): the KL weight would never reach kl_weight",
                self.kl_warmup_epochs, self.epochs
            ));
        }
        let cvae_options = self.kl_warmup_epochs > 0
            || self.free_bits > 0.0
            || self.mmd_weight > 0.0
            || self.early_stopping.is_some()
            || self.translate_train_images
            || self.likelihood != Likelihood::Bernoulli;
        if cvae_options && self.model() != ModelKind::Cvae {
            return bad("kl_warmup_epochs, free_bits, mmd_weight, early_stopping and likelihood apply to a CVAE only \
                 (early stopping watches the CVAE's validation loss; a CGAN has none)"
                .into());
        }
        if !self.weight_decay.is_finite() || self.weight_decay < 0.0 || self.weight_decay * self.learning_rate >= 1.0 {
            return bad(format!(
                "weight_decay must be a non-negative number with weight_decay × learning_rate below 1, got {}",
                self.weight_decay
            ));
        }
        if self.early_stopping == Some(0) {
            return bad("early_stopping is a patience in epochs: at least 1 (or omit it to train every epoch)".into());
        }
        if self.adam_betas.iter().any(|b| !(0.0..1.0).contains(b)) {
            return bad(format!("adam_betas must lie in [0, 1), got {:?}", self.adam_betas));
        }
        if !self.gradient_penalty_weight.is_finite() || self.gradient_penalty_weight < 0.0 {
            return bad("gradient_penalty_weight must be a non-negative number".into());
        }
        if self.discriminator_steps == 0 {
            return bad("discriminator_steps must be at least 1".into());
        }
        if let Some(w) = self.generator_auxiliary_weight {
            if !(w.is_finite() && w >= 0.0) {
                return bad(format!("generator_auxiliary_weight must be a non-negative number, got {w}"));
            }
            if self.model() != ModelKind::Cgan {
                return bad("generator_auxiliary_weight applies to a CGAN only".into());
            }
        }
        if self.max_train_images == Some(0) || self.max_test_images == Some(0) {
            return bad("max_train_images / max_test_images must be at least 1".into());
        }
        self.validate_architecture()
    }

    /// Rejects network sizes no model can have, and an architecture that does not fit the experiment.
    fn validate_architecture(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        let prior = match &self.architecture {
            Architecture::ConvCvae(c) => Some((c.learned_prior, c.prior_components)),
            Architecture::MlpCvae(c) => Some((c.learned_prior, c.prior_components)),
            Architecture::MlpCgan(_) | Architecture::ConvCgan(_) => None,
        };
        if let Architecture::ConvCvae(c) = &self.architecture {
            if c.vamp_prior && !c.learned_prior {
                return bad("architecture.vamp_prior needs architecture.learned_prior = true".into());
            }
        }
        match prior {
            Some((_, k)) if k < 1 => return bad(format!("architecture.prior_components must be at least 1, got {k}")),
            Some((false, k)) if k > 1 => {
                return bad("architecture.prior_components > 1 needs architecture.learned_prior = true".into())
            }
            _ => {}
        }
        let sizes: Vec<(&str, i64)> = match &self.architecture {
            Architecture::ConvCvae(c) => {
                if c.condition_embedding < 0 {
                    return bad(format!(
                        "architecture.condition_embedding must be 0 (off) or positive, got {}",
                        c.condition_embedding
                    ));
                }
                let mut v = vec![("latent", c.latent), ("dense_channels", c.dense_channels)];
                v.extend(c.encoder_filters.iter().map(|&f| ("encoder_filters", f)));
                v.extend(c.decoder_filters.iter().map(|&f| ("decoder_filters", f)));
                v
            }
            Architecture::MlpCvae(c) => vec![("latent", c.latent), ("hidden", c.hidden)],
            Architecture::MlpCgan(c) => {
                let mut v = vec![("noise", c.noise)];
                v.extend(c.generator_hidden.iter().map(|&f| ("generator_hidden", f)));
                v.extend(c.discriminator_hidden.iter().map(|&f| ("discriminator_hidden", f)));
                v
            }
            Architecture::ConvCgan(c) => {
                if !(0.0..1.0).contains(&c.generator_ema) {
                    return bad(format!("architecture.generator_ema must lie in [0, 1), got {}", c.generator_ema));
                }
                let mut v = vec![("noise", c.noise), ("base_channels", c.base_channels)];
                v.extend(c.discriminator_channels.map(|d| ("discriminator_channels", d)));
                v
            }
        };
        if let Some((name, v)) = sizes.iter().find(|(_, v)| *v <= 0) {
            return bad(format!("architecture.{name} must be at least 1, got {v}"));
        }
        // The MLP models are the K49 study's; the conv models also serve K49 as its improved ones.
        let mlp = matches!(self.architecture, Architecture::MlpCvae(_) | Architecture::MlpCgan(_));
        let k49 = self.experiment == Experiment::K49;
        let fits = match self.architecture {
            Architecture::ConvCgan(_) | Architecture::ConvCvae(_) => true,
            _ => mlp == k49,
        };
        if !fits {
            return bad(format!(
                "architecture `{}` does not fit experiment `{}` (k49 uses the MLP or the conv models, the sign tasks the conv models)",
                self.architecture.name(),
                self.experiment
            ));
        }
        Ok(())
    }

    /// Builds the model this config trains, in a fresh var store on `device`: the
    /// architecture, and for a CVAE its likelihood's parameters (see [`Built::with_likelihood`]).
    pub fn build(&self, cond_dim: usize, device: tch::Device) -> Built {
        self.architecture.build(cond_dim, device).with_likelihood(self.likelihood)
    }

    /// The epoch (1-based) whose weights are the run's model after the epochs of
    /// `history`: the one with the lowest validation loss under early stopping,
    /// else the last.
    pub fn model_epoch(&self, history: &[EpochRecord]) -> usize {
        self.early_stopping.and_then(|_| super::history::best_validation_epoch(history)).unwrap_or(history.len())
    }

    /// Why training ends after the epochs of `history`, or None while it goes on.
    pub fn stop_reason(&self, history: &[EpochRecord]) -> Option<StopReason> {
        let done = history.len();
        if let Some(patience) = self.early_stopping {
            let best = self.model_epoch(history);
            if done < self.epochs && done >= best + patience {
                return Some(StopReason::NoImprovement { best, patience });
            }
        }
        (done >= self.epochs).then_some(StopReason::AllEpochs)
    }

    /// A short stable digest of the config (hex), naming its run folder.
    pub fn digest(&self) -> String {
        crate::serde_helpers::json_digest(self)
    }
}
