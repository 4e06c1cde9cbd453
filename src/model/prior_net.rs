//! A learned conditional prior p(z | c) = N(μ(c), diag σ²(c)), trained with the
//! CVAE inside its ELBO: the prior network of the CVAE's own paper (Sohn, Lee &
//! Yan 2015), here one linear layer on the condition vector — with one-hot
//! conditions, a mean and a variance per condition (K49's style bit shifts them).
//!
//! Zero-initialised, so training starts from N(0, I), the studies' prior; the
//! KL term then pulls each posterior towards its own condition's Gaussian and
//! the Gaussian towards the condition's codes. Sampling draws from it, so the
//! model's own prior is the one it was trained with.

use tch::nn::{self, Init, LinearConfig};
use tch::Tensor;

/// p(z | c)'s mean and log-variance from the condition vector.
#[derive(Debug)]
pub struct PriorNet {
    out: nn::Linear,
}

impl PriorNet {
    /// cond_dim: length of the condition vector; latent: dimensions of z.
    pub fn new(vs: &nn::Path, cond_dim: i64, latent: i64) -> Self {
        let zero = LinearConfig { ws_init: Init::Const(0.0), bs_init: Some(Init::Const(0.0)), bias: true };
        PriorNet { out: nn::linear(vs / "out", cond_dim, 2 * latent, zero) }
    }

    /// cond: [b, c] → (mean, logvar): [b, latent]
    pub fn forward(&self, cond: &Tensor) -> (Tensor, Tensor) {
        let stats = cond.apply(&self.out);
        let halves = stats.chunk(2, 1);
        (halves[0].shallow_clone(), halves[1].shallow_clone())
    }
}
