//! The Kuzushiji-49 study's MLP CVAE.
//!
//! Encoder: [784 ⊕ condition] → 144 ReLU → (mean, log-variance), latent 20.
//! Decoder: [z ⊕ condition] → 144 ReLU → 784 logits.

use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

use super::prior_net::{ConditionalPrior, PriorNet};
use super::Cvae;
use crate::data::{PIXELS_I64, SIDE_I64};

/// Architecture of the MLP CVAE. Defaults are the study's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MlpCvaeConfig {
    /// Hidden units of the encoder and of the decoder.
    pub hidden: i64,
    /// Latent dimensions.
    pub latent: i64,
    /// Train a learned conditional prior p(z | c) with the model and sample from
    /// it ([`super::prior_net::PriorNet`], under `prior`); off (the study): N(0, I).
    #[serde(skip_serializing_if = "crate::serde_helpers::omitted_at_default")]
    pub learned_prior: bool,
    /// Gaussians per condition in the learned prior (1: one Gaussian; K > 1: a
    /// mixture of K diagonal Gaussians, [`super::prior_net`]). Only with `learned_prior`.
    #[serde(default = "crate::serde_helpers::one", skip_serializing_if = "crate::serde_helpers::omitted_at_one")]
    pub prior_components: i64,
}

impl Default for MlpCvaeConfig {
    fn default() -> Self {
        MlpCvaeConfig { hidden: 144, latent: 20, learned_prior: false, prior_components: 1 }
    }
}

#[derive(Debug)]
pub struct MlpCvae {
    enc_hidden: nn::Linear,
    enc_mean: nn::Linear,
    enc_logvar: nn::Linear,
    dec_hidden: nn::Linear,
    dec_out: nn::Linear,
    latent: i64,
    prior: Option<PriorNet>,
}

impl MlpCvae {
    pub fn new(vs: &nn::Path, cfg: &MlpCvaeConfig, cond_dim: i64) -> Self {
        let (enc, dec) = (vs / "enc", vs / "dec");
        let c = Default::default();
        MlpCvae {
            enc_hidden: nn::linear(&enc / "hidden", PIXELS_I64 + cond_dim, cfg.hidden, c),
            enc_mean: nn::linear(&enc / "mean", cfg.hidden, cfg.latent, c),
            enc_logvar: nn::linear(&enc / "logvar", cfg.hidden, cfg.latent, c),
            dec_hidden: nn::linear(&dec / "hidden", cfg.latent + cond_dim, cfg.hidden, c),
            dec_out: nn::linear(&dec / "out", cfg.hidden, PIXELS_I64, c),
            latent: cfg.latent,
            prior: cfg
                .learned_prior
                .then(|| PriorNet::new(&(vs / "prior"), cond_dim, cfg.latent, cfg.prior_components)),
        }
    }
}

impl Cvae for MlpCvae {
    fn encode(&self, xs: &Tensor, cond: &Tensor, _train: bool) -> (Tensor, Tensor) {
        let b = xs.size()[0];
        let h = Tensor::cat(&[&xs.view([b, PIXELS_I64]), cond], 1).apply(&self.enc_hidden).relu();
        (h.apply(&self.enc_mean), h.apply(&self.enc_logvar))
    }

    fn decode(&self, z: &Tensor, cond: &Tensor, _train: bool) -> Tensor {
        let b = z.size()[0];
        Tensor::cat(&[z, cond], 1).apply(&self.dec_hidden).relu().apply(&self.dec_out).view([b, 1, SIDE_I64, SIDE_I64])
    }

    fn latent(&self) -> i64 {
        self.latent
    }

    fn prior(&self, cond: &Tensor) -> Option<ConditionalPrior> {
        self.prior.as_ref().map(|p| p.forward(cond))
    }
}
