//! The pixel likelihood p(x | z, c) of a CVAE's decoder.
//!
//! The decoder always outputs one real number per pixel (called logits); the
//! likelihood says what they mean:
//!
//! - [`Likelihood::Bernoulli`] (the studies'): logits of a Bernoulli per pixel,
//!   the reconstruction term is the BCE. Grey pixels are not Bernoulli outcomes,
//!   so this is not a normalised density for grey images.
//! - [`Likelihood::ContinuousBernoulli`] (Loaiza-Ganem & Cunningham 2019): the
//!   normalised version for x ∈ [0, 1]: BCE − log C(λ).
//! - [`Likelihood::Gaussian`]: mean σ(logits), one learned scale for all pixels
//!   (a model parameter `lik.log_scale`, saved with the weights).
//!
//! [`Likelihood::mean`] is the one place where decoder outputs become images.

use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

use crate::loss;

/// What the decoder's outputs parameterise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Likelihood {
    /// Bernoulli per pixel with the decoder's logits: the reconstruction term is the BCE (the studies').
    #[default]
    Bernoulli,
    /// The continuous Bernoulli, a normalised density on [0, 1]: BCE − log C(λ).
    ContinuousBernoulli,
    /// A Gaussian with mean σ(logits) and one learned scale shared by every pixel and image.
    Gaussian,
}

impl Likelihood {
    pub fn name(self) -> &'static str {
        match self {
            Likelihood::Bernoulli => "bernoulli",
            Likelihood::ContinuousBernoulli => "continuous-bernoulli",
            Likelihood::Gaussian => "gaussian",
        }
    }

    /// The image a decoder output stands for: the mean of the pixel distribution,
    /// in [0, 1]. Bernoulli and Gaussian: σ(logits); continuous Bernoulli: its
    /// mean, which lies between λ = σ(logits) and ½ ([`loss::continuous_bernoulli_mean`]).
    /// logits: [b, 1, 28, 28] → [b, 1, 28, 28]
    pub fn mean(self, logits: &Tensor) -> Tensor {
        match self {
            Likelihood::Bernoulli | Likelihood::Gaussian => logits.sigmoid(),
            Likelihood::ContinuousBernoulli => loss::continuous_bernoulli_mean(logits),
        }
    }

    /// Whether the likelihood has a learned scale parameter.
    pub fn has_scale(self) -> bool {
        self == Likelihood::Gaussian
    }
}

impl std::fmt::Display for Likelihood {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a likelihood's parameters live in the var store (`lik.log_scale`).
pub const LIKELIHOOD_PATH: &str = "lik";

/// A likelihood with its parameters: the Gaussian's learned log-scale
/// (`lik.log_scale`, shape [1], initialised to 0: s = 1) is a variable of the
/// model's var store, trained with the rest and saved in the checkpoint. The
/// other likelihoods have no parameters and add no variable.
#[derive(Debug)]
pub struct PixelLikelihood {
    pub kind: Likelihood,
    /// Gaussian only: log s, [1].
    pub log_scale: Option<Tensor>,
}

impl Default for PixelLikelihood {
    fn default() -> Self {
        PixelLikelihood { kind: Likelihood::Bernoulli, log_scale: None }
    }
}

impl PixelLikelihood {
    /// Creates the likelihood's variables (if any) under `path`.
    pub fn new(path: &nn::Path, kind: Likelihood) -> Self {
        let log_scale = kind.has_scale().then(|| path.var("log_scale", &[1], nn::Init::Const(0.0)));
        PixelLikelihood { kind, log_scale }
    }

    /// The reconstruction term: −log p(x | z, c) summed over pixels, averaged over the batch.
    /// Bernoulli: the BCE; continuous Bernoulli: BCE − Σ log C(λ); Gaussian: see
    /// [`loss::gaussian_nll_per_image`]. The two densities can be negative.
    /// logits, targets: [b, 1, 28, 28] with targets in [0, 1] → scalar
    pub fn nll_per_image(&self, logits: &Tensor, targets: &Tensor) -> Tensor {
        match self.kind {
            Likelihood::Bernoulli => loss::bce_logits_per_image(logits, targets),
            Likelihood::ContinuousBernoulli => loss::continuous_bernoulli_nll_per_image(logits, targets),
            Likelihood::Gaussian => {
                let log_scale = self.log_scale.as_ref().expect("a Gaussian likelihood has a log-scale variable");
                loss::gaussian_nll_per_image(&self.kind.mean(logits), targets, log_scale)
            }
        }
    }

    /// The reconstruction term of each image on its own ([`PixelLikelihood::nll_per_image`]
    /// per row). logits, targets: [b, 1, 28, 28] → [b]
    pub fn nll_each(&self, logits: &Tensor, targets: &Tensor) -> Tensor {
        let rows: Vec<Tensor> = (0..logits.size()[0])
            .map(|i| self.nll_per_image(&logits.narrow(0, i, 1), &targets.narrow(0, i, 1)))
            .collect();
        Tensor::stack(&rows, 0)
    }

    /// Decoder outputs → image means; see [`Likelihood::mean`].
    pub fn mean(&self, logits: &Tensor) -> Tensor {
        self.kind.mean(logits)
    }

    /// The Gaussian's current scale s (after the clamp), for logs; None for the others.
    pub fn scale(&self) -> Option<f64> {
        self.log_scale.as_ref().map(|t| t.double_value(&[0]).max(loss::GAUSSIAN_LOG_SCALE_MIN).exp())
    }
}
