//! A conditional VampPrior (Tomczak & Welling 2018): p(z | c) = 1/K Σ_k q(z | u_k(c), c),
//! the mixture of the encoder's own posteriors of K learned pseudo-inputs per
//! condition. Where a mixture of free Gaussians ([`super::prior_net`]) has to
//! find the aggregate posterior, these components are posteriors by construction,
//! so the prior can follow the codes the encoder gives real images.
//!
//! The pseudo-inputs come from one linear layer on the condition vector, clipped
//! to the pixels' range [0, 1] (a hard tanh onto [0, 1], as pythae's VampPrior): with one-hot
//! conditions, K images per condition. Their bias starts at mid-grey with small
//! noise and their per-condition weights at zero, so every condition starts from
//! the same K distinct images (an unconditional VAE, whose condition is zero, too).
//!
//! The encoder reads the pseudo-inputs in eval mode: its batch norm uses its running
//! statistics, which only real images update, so the prior trained is the prior sampled.
//! It runs once per distinct condition of a batch, not once per image.

use tch::nn::{self, Init, LinearConfig};
use tch::{Kind, Tensor};

use super::prior_net::ConditionalPrior;
use crate::data::{PIXELS_I64, SIDE_I64};

/// K pseudo-inputs per condition: [`VampPrior::pseudo_inputs`].
#[derive(Debug)]
pub struct VampPrior {
    pseudo: nn::Linear,
    components: i64,
}

impl VampPrior {
    /// cond_dim: length of the condition vector; components: pseudo-inputs per condition.
    pub fn new(vs: &nn::Path, cond_dim: i64, components: i64) -> Self {
        let components = components.max(1);
        let config = LinearConfig { ws_init: Init::Const(0.0), bs_init: Some(Init::Const(0.5)), bias: true };
        let pseudo = nn::linear(vs / "pseudo", cond_dim, components * PIXELS_I64, config);
        if let Some(bias) = &pseudo.bs {
            tch::no_grad(|| {
                let mut bias = bias.shallow_clone();
                bias += Tensor::randn_like(&bias) * 0.1;
            });
        }
        VampPrior { pseudo, components }
    }

    /// The pseudo-images of each condition. cond: [u, c] → [u·K, 1, 28, 28] in [0, 1]
    pub fn pseudo_inputs(&self, cond: &Tensor) -> Tensor {
        let u = cond.size()[0];
        cond.apply(&self.pseudo).clamp(0.0, 1.0).view([u * self.components, 1, SIDE_I64, SIDE_I64])
    }

    /// The prior of each row of `cond`, the encoder (`encode(images, conditions)`,
    /// eval mode) run on the pseudo-inputs of each distinct condition once.
    /// cond: [b, c] → means, log-variances [b, K, latent], equal weights
    pub fn forward(&self, cond: &Tensor, encode: impl Fn(&Tensor, &Tensor) -> (Tensor, Tensor)) -> ConditionalPrior {
        let k = self.components;
        let (distinct, index, _) = cond.unique_dim(0, false, true, false);
        let u = distinct.size()[0];
        let repeated = distinct.repeat_interleave_self_int(k, Some(0), None);
        let (mean, logvar) = encode(&self.pseudo_inputs(&distinct), &repeated);
        let latent = mean.size()[1];
        let per_row = |t: Tensor| t.view([u, k, latent]).index_select(0, &index);
        let b = cond.size()[0];
        let log_weights = Tensor::full([b, k], -(k as f64).ln(), (Kind::Float, cond.device()));
        ConditionalPrior { log_weights, means: per_row(mean), logvars: per_row(logvar) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn::VarStore, Device};

    #[test]
    fn each_row_gets_its_conditions_components_from_one_pass_per_condition() {
        let _rng = crate::test_support::torch_rng();
        tch::manual_seed(0);
        let vs = VarStore::new(Device::Cpu);
        let vamp = VampPrior::new(&vs.root(), 3, 2);
        let pseudo = vamp.pseudo_inputs(&Tensor::eye(3, (Kind::Float, Device::Cpu)));
        assert_eq!(pseudo.size(), [6, 1, 28, 28]);
        let (low, high) = (pseudo.min().double_value(&[]), pseudo.max().double_value(&[]));
        assert!((0.0..=1.0).contains(&low) && (0.0..=1.0).contains(&high), "pixels in [0, 1]: {low}..{high}");
        // A stand-in encoder: the mean image's brightness and the condition's index.
        let seen = std::cell::Cell::new(0);
        let encode = |x: &Tensor, c: &Tensor| {
            seen.set(seen.get() + x.size()[0]);
            let mean = Tensor::stack(
                &[x.mean_dim(&[1i64, 2, 3][..], false, Kind::Float), c.argmax(1, false).to_kind(Kind::Float)],
                1,
            );
            (mean, Tensor::zeros([x.size()[0], 2], (Kind::Float, Device::Cpu)))
        };
        let rows = Tensor::from_slice(&[0i64, 2, 0, 1, 2]).one_hot(3).to_kind(Kind::Float);
        let prior = vamp.forward(&rows, encode);
        assert_eq!(seen.get(), 3 * 2, "one pass over the pseudo-inputs of each distinct condition");
        assert_eq!(prior.means.size(), [5, 2, 2]);
        let condition_of = Vec::<f32>::try_from(prior.means.select(2, 1).select(1, 0)).unwrap();
        assert_eq!(condition_of, vec![0.0, 2.0, 0.0, 1.0, 2.0], "each row's components are its own condition's");
        assert!(prior.means.get(0).allclose(&prior.means.get(2), 1e-6, 1e-6, false));
        let weights = prior.log_weights.exp().sum_dim_intlist(1, false, Kind::Float);
        assert!(weights.allclose(&Tensor::ones([5], (Kind::Float, Device::Cpu)), 1e-6, 1e-6, false));
        // Components start distinct: the bias's noise.
        let first = prior.means.get(0);
        assert!((first.get(0).get(0) - first.get(1).get(0)).abs().double_value(&[]) > 1e-4);
    }
}
