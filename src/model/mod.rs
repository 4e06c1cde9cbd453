//! The models of both studies, each a plain struct built from a `nn::Path`.
//!
//! - [`conv_cvae`]: the Sign Language MNIST study's convolutional CVAE.
//! - [`mlp_cvae`]: the Kuzushiji-49 study's MLP CVAE.
//! - [`mlp_cgan`]: the Kuzushiji-49 study's MLP CGAN.
//! - [`conv_cgan`]: a DCGAN-style CGAN for the sign tasks.
//! - [`latent_prior`]: per-condition Gaussians fitted to a trained CVAE's codes, for sampling.
//! - [`prior_net`]: a learned conditional prior p(z | c), trained with the CVAE (an option).
//! - [`layers`]: spectral normalisation and conditional batch norm, for the improved CGAN.
//! - [`augment`]: DiffAugment's translation and cutout of the CGAN discriminator's inputs (an option).
//! - [`likelihood`]: what a CVAE decoder's outputs mean (Bernoulli, continuous Bernoulli, Gaussian).

pub mod augment;
pub mod conv_cgan;
pub mod conv_cvae;
pub mod flops;
pub mod latent_prior;
pub mod layers;
pub mod likelihood;
pub mod mlp_cgan;
pub mod mlp_cvae;
pub mod prior_net;
pub mod vamp_prior;

use serde::{Deserialize, Serialize};
use tch::{nn, Device, Tensor};

pub use conv_cgan::{ConvCganConfig, DiscriminatorLayout};
pub use conv_cvae::ConvCvaeConfig;
pub use latent_prior::{Covariance, LatentPrior, PriorSelection, PriorShape};
pub use likelihood::{Likelihood, PixelLikelihood};
pub use mlp_cgan::MlpCganConfig;
pub use mlp_cvae::MlpCvaeConfig;

/// Variables of a CGAN's generator live under this prefix, the discriminator's under [`DISC`],
/// the moving average of the generator's weights (when configured) under [`GEN_AVERAGE`].
pub const GEN: &str = "gen";
pub const DISC: &str = "disc";
pub const GEN_AVERAGE: &str = "gen_ema";

/// A conditional VAE.
pub trait Cvae: std::fmt::Debug {
    /// Posterior parameters. xs: [b, 1, 28, 28] in [0, 1], cond: [b, c] → (mean, logvar): [b, latent]
    fn encode(&self, xs: &Tensor, cond: &Tensor, train: bool) -> (Tensor, Tensor);
    /// Pixel logits. z: [b, latent], cond: [b, c] → [b, 1, 28, 28]
    fn decode(&self, z: &Tensor, cond: &Tensor, train: bool) -> Tensor;
    fn latent(&self) -> i64;

    /// The learned prior p(z | c) the model was trained with, when it has one
    /// ([`prior_net::PriorNet`]); None: N(0, I). cond: [b, c] → each row's prior
    fn prior(&self, _cond: &Tensor) -> Option<prior_net::ConditionalPrior> {
        None
    }

    /// A VampPrior's pseudo-inputs ([`vamp_prior`]), K per condition; None for other priors.
    /// cond: [u, c] → [u·K, 1, 28, 28] in [0, 1]
    fn pseudo_inputs(&self, _cond: &Tensor) -> Option<Tensor> {
        None
    }

    /// z from the prior the model was trained with, from standard normal noise:
    /// ε itself under N(0, I), μ_k(c) + σ_k(c) ⊙ ε under a learned prior (k drawn
    /// from a mixture's weights). eps: [b, latent], cond: [b, c] → [b, latent]
    fn prior_sample(&self, eps: &Tensor, cond: &Tensor) -> Tensor {
        match self.prior(cond) {
            Some(prior) => prior.sample(eps),
            None => eps.shallow_clone(),
        }
    }

    /// Encode, sample z by the reparameterization trick, decode: (logits, mean, logvar).
    fn forward(&self, xs: &Tensor, cond: &Tensor, train: bool) -> (Tensor, Tensor, Tensor) {
        let (mean, logvar) = self.encode(xs, cond, train);
        let z = reparameterize(&mean, &logvar);
        (self.decode(&z, cond, train), mean, logvar)
    }
}

/// z = μ + σ·ε with ε ~ N(0, I), so gradients flow through μ and σ.
pub fn reparameterize(mean: &Tensor, logvar: &Tensor) -> Tensor {
    mean + (logvar * 0.5).exp() * mean.randn_like()
}

/// A CGAN generator. noise: [b, noise], cond: [b, c] → images [b, 1, 28, 28] in [-1, 1]
pub trait Generator: std::fmt::Debug {
    fn generate(&self, noise: &Tensor, cond: &Tensor, train: bool) -> Tensor;
    fn noise_dim(&self) -> i64;
}

/// A CGAN discriminator (or WGAN critic). xs: [b, 1, 28, 28] in [-1, 1] → logits/scores [b]
pub trait Discriminator: std::fmt::Debug {
    fn discriminate(&self, xs: &Tensor, cond: &Tensor, train: bool) -> Tensor;

    /// Scores [b] and, for a discriminator with an auxiliary classifier head
    /// (AC-GAN), condition logits [b, c].
    fn discriminate_and_classify(&self, xs: &Tensor, cond: &Tensor, train: bool) -> (Tensor, Option<Tensor>) {
        (self.discriminate(xs, cond, train), None)
    }
}

/// LeakyReLU with slope 0.2, as in DCGAN (tch's `leaky_relu` has slope 0.01 only).
/// A PReLU with a fixed slope: the values and gradients of max(x, 0.2 x), except at
/// x = 0 exactly (max splits the gradient there), with one fused kernel each way
/// instead of max's masks (timed: report/DECISIONS.md, "LeakyReLU as a fixed-slope PReLU").
pub fn leaky_relu_02(xs: &Tensor) -> Tensor {
    xs.prelu(&Tensor::full([1], 0.2, (xs.kind(), xs.device())))
}

/// Which family of model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    Cvae,
    Cgan,
}

impl ModelKind {
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Cvae => "cvae",
            ModelKind::Cgan => "cgan",
        }
    }
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A model's architecture and its hyper-parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Architecture {
    ConvCvae(ConvCvaeConfig),
    MlpCvae(MlpCvaeConfig),
    MlpCgan(MlpCganConfig),
    ConvCgan(ConvCganConfig),
}

impl Architecture {
    /// A CVAE trained with a learned prior p(z | c) ([`prior_net`]).
    pub fn learned_prior(&self) -> bool {
        self.learned_prior_components().is_some()
    }

    /// A CVAE whose learned prior is a conditional VampPrior ([`vamp_prior`]).
    pub fn vamp_prior(&self) -> bool {
        matches!(self, Architecture::ConvCvae(c) if c.learned_prior && c.vamp_prior)
    }

    /// Gaussians per condition of a CVAE's learned prior; None without one.
    pub fn learned_prior_components(&self) -> Option<i64> {
        match self {
            Architecture::ConvCvae(c) => c.learned_prior.then_some(c.prior_components),
            Architecture::MlpCvae(c) => c.learned_prior.then_some(c.prior_components),
            Architecture::MlpCgan(_) | Architecture::ConvCgan(_) => None,
        }
    }

    pub fn kind(&self) -> ModelKind {
        match self {
            Architecture::ConvCvae(_) | Architecture::MlpCvae(_) => ModelKind::Cvae,
            Architecture::MlpCgan(_) | Architecture::ConvCgan(_) => ModelKind::Cgan,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Architecture::ConvCvae(_) => "conv CVAE",
            Architecture::MlpCvae(_) => "MLP CVAE",
            Architecture::MlpCgan(_) => "MLP CGAN",
            Architecture::ConvCgan(_) => "conv CGAN",
        }
    }

    /// Builds the networks in a fresh var store on `device`; a CVAE gets the studies'
    /// Bernoulli likelihood (see [`Built::with_likelihood`]).
    pub fn build(&self, cond_dim: usize, device: Device) -> Built {
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let c = cond_dim as i64;
        let net = match self {
            Architecture::ConvCvae(cfg) => Net::Cvae(Box::new(conv_cvae::ConvCvae::new(&root, cfg, c))),
            Architecture::MlpCvae(cfg) => Net::Cvae(Box::new(mlp_cvae::MlpCvae::new(&root, cfg, c))),
            Architecture::MlpCgan(cfg) => Net::Gan {
                generator: Box::new(mlp_cgan::MlpGenerator::new(&(&root / GEN), cfg, c)),
                discriminator: Box::new(mlp_cgan::MlpDiscriminator::new(&(&root / DISC), cfg, c)),
                average: None,
            },
            Architecture::ConvCgan(cfg) => Net::Gan {
                generator: Box::new(conv_cgan::ConvGenerator::new(&(&root / GEN), cfg, c)),
                discriminator: Box::new(conv_cgan::ConvDiscriminator::new(&(&root / DISC), cfg, c)),
                average: (cfg.generator_ema > 0.0).then(|| {
                    Box::new(conv_cgan::ConvGenerator::new(&(&root / GEN_AVERAGE), cfg, c)) as Box<dyn Generator>
                }),
            },
        };
        // The average is not trained by gradients: keep it out of optimizers and parameter counts.
        for (name, t) in vs.variables() {
            if name.starts_with(&format!("{GEN_AVERAGE}.")) {
                let _ = t.set_requires_grad(false);
            }
        }
        Built { vs, net, likelihood: PixelLikelihood::default() }
    }
}

/// The networks of a model.
#[derive(Debug)]
pub enum Net {
    Cvae(Box<dyn Cvae>),
    Gan {
        generator: Box<dyn Generator>,
        discriminator: Box<dyn Discriminator>,
        /// A moving average of the generator's weights (same architecture), when configured.
        average: Option<Box<dyn Generator>>,
    },
}

impl Net {
    /// The generator that draws a CGAN's samples: the weight average when there is one.
    pub fn sampling_generator(&self) -> Option<&dyn Generator> {
        match self {
            Net::Gan { generator, average, .. } => Some(average.as_deref().unwrap_or(generator.as_ref())),
            Net::Cvae(_) => None,
        }
    }
}

/// A built model: its variables and its networks.
pub struct Built {
    pub vs: nn::VarStore,
    pub net: Net,
    /// CVAE only: what the decoder's outputs mean, with its parameters (Bernoulli for a CGAN).
    pub likelihood: PixelLikelihood,
}

impl Built {
    /// Gives a CVAE the likelihood `kind`, creating its variables under
    /// [`likelihood::LIKELIHOOD_PATH`] (only the Gaussian has one). A CGAN stays as it is.
    pub fn with_likelihood(mut self, kind: Likelihood) -> Self {
        if matches!(self.net, Net::Cvae(_)) {
            self.likelihood = PixelLikelihood::new(&(self.vs.root() / likelihood::LIKELIHOOD_PATH), kind);
        }
        self
    }

    /// Trainable parameters, in total and under a name prefix ("" for all).
    pub fn parameter_count(&self, prefix: &str) -> i64 {
        self.vs
            .variables()
            .iter()
            .filter(|(name, t)| name.starts_with(prefix) && t.requires_grad())
            .map(|(_, t)| t.numel() as i64)
            .sum()
    }

    /// A one-line description of the parameter counts.
    pub fn describe_parameters(&self) -> String {
        match self.net {
            Net::Cvae(_) => format!(
                "{} parameters (encoder {}, decoder {})",
                fmt_count(self.parameter_count("")),
                fmt_count(self.parameter_count("enc.")),
                fmt_count(self.parameter_count("dec."))
            ),
            Net::Gan { .. } => format!(
                "{} parameters (generator {}, discriminator {})",
                fmt_count(self.parameter_count("")),
                fmt_count(self.parameter_count(&format!("{GEN}."))),
                fmt_count(self.parameter_count(&format!("{DISC}.")))
            ),
        }
    }
}

/// An exponential moving average of a generator's variables (weights and
/// batch-norm statistics): average ← d·average + (1 − d)·live after every
/// generator step (Yazıcı et al. 2019). Early on d is capped at (1 + t)/(10 + t),
/// so the average does not remember the random initialisation for long.
pub struct WeightAverage {
    /// (average, live) pairs sharing storage with the var store.
    pairs: Vec<(Tensor, Tensor)>,
    pub decay: f64,
}

impl WeightAverage {
    /// Pairs each variable under `average_prefix` with the one of the same name under `live_prefix`.
    pub fn new(vs: &nn::VarStore, live_prefix: &str, average_prefix: &str, decay: f64) -> Self {
        let vars = vs.variables();
        let pairs = vars
            .iter()
            .filter_map(|(name, avg)| {
                let rest = name.strip_prefix(average_prefix)?.strip_prefix('.')?;
                let live = vars.get(&format!("{live_prefix}.{rest}"))?;
                Some((avg.shallow_clone(), live.shallow_clone()))
            })
            .collect();
        WeightAverage { pairs, decay }
    }

    /// Sets the average to the live weights (at the start of training).
    pub fn reset(&self) {
        tch::no_grad(|| {
            for (avg, live) in &self.pairs {
                let mut avg = avg.shallow_clone();
                avg.copy_(live);
            }
        });
    }

    /// The decay used after generator step `step` (1-based).
    pub fn decay_at(&self, step: i64) -> f64 {
        self.decay.min((1.0 + step as f64) / (10.0 + step as f64))
    }

    /// One update after generator step `step` (1-based).
    pub fn update(&self, step: i64) {
        let weight = 1.0 - self.decay_at(step);
        tch::no_grad(|| {
            for (avg, live) in &self.pairs {
                let mut avg = avg.shallow_clone();
                let _ = avg.lerp_(live, weight);
            }
        });
    }

    /// Number of variables averaged.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

/// 1234567 → "1,234,567"
pub fn fmt_count(n: i64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}
