//! A learned conditional prior p(z | c), trained with the CVAE inside its ELBO:
//! the prior network of the CVAE's own paper (Sohn, Lee & Yan 2015), here one
//! linear layer on the condition vector — with one-hot conditions, parameters
//! per condition (K49's style bit shifts them).
//!
//! With one component it is N(μ(c), diag σ²(c)), zero-initialised, so training
//! starts from N(0, I), the studies' prior. With K > 1 it is a mixture of K
//! diagonal Gaussians per condition, Σ_k π_k(c) N(μ_k(c), diag σ_k²(c)): the
//! shape a prior fitted to a trained CVAE's codes takes when it is chosen on
//! held-out codes, here trained with the model. Its means start as N(0, I)
//! draws shared by every condition (identical components would stay identical),
//! its variances at 1 and its weights equal.
//!
//! A mixture has no closed-form KL. The ELBO then uses the variational upper
//! bound of Hershey & Olsen (2007), KL(q ‖ Σ_k π_k p_k) ≤ −log Σ_k π_k exp(−KL(q ‖ p_k)),
//! so it stays a lower bound on log p(x | c) (looser by at most the entropy of
//! the component a code belongs to, and tight when components are far apart) and
//! has no sampling noise. Sampling draws a component, then a Gaussian: the model's
//! own prior is the one it was trained with.

use tch::nn::{self, Init, LinearConfig};
use tch::{Kind, Tensor};

use crate::loss;

/// p(z | c)'s mean and log-variance per component, and its log mixture weights.
#[derive(Debug)]
pub struct PriorNet {
    out: nn::Linear,
    components: i64,
    latent: i64,
}

impl PriorNet {
    /// cond_dim: length of the condition vector; latent: dimensions of z;
    /// components: Gaussians per condition (1: one Gaussian).
    pub fn new(vs: &nn::Path, cond_dim: i64, latent: i64, components: i64) -> Self {
        let components = components.max(1);
        let zero = LinearConfig { ws_init: Init::Const(0.0), bs_init: Some(Init::Const(0.0)), bias: true };
        // [means K·latent | log-variances K·latent | mixture logits K (only when K > 1)]
        let width = 2 * components * latent + if components > 1 { components } else { 0 };
        let out = nn::linear(vs / "out", cond_dim, width, zero);
        if components > 1 {
            // The means' bias, so every condition starts from the same K distinct means
            // — an unconditional VAE too, whose condition is held at zero.
            if let Some(bias) = &out.bs {
                tch::no_grad(|| {
                    let _ = bias.narrow(0, 0, components * latent).normal_(0.0, 1.0);
                });
            }
        }
        PriorNet { out, components, latent }
    }

    /// cond: [b, c] → the prior of each row.
    pub fn forward(&self, cond: &Tensor) -> ConditionalPrior {
        let (k, d) = (self.components, self.latent);
        let stats = cond.apply(&self.out);
        let b = stats.size()[0];
        let means = stats.narrow(1, 0, k * d).view([b, k, d]);
        let logvars = stats.narrow(1, k * d, k * d).view([b, k, d]);
        let log_weights = match k {
            1 => Tensor::zeros([b, 1], (Kind::Float, stats.device())),
            _ => stats.narrow(1, 2 * k * d, k).log_softmax(1, Kind::Float),
        };
        ConditionalPrior { log_weights, means, logvars }
    }
}

/// A prior over z for each row of a batch: a mixture of diagonal Gaussians
/// (one component: a Gaussian).
#[derive(Debug)]
pub struct ConditionalPrior {
    /// log π_k: [b, K], normalised over k.
    pub log_weights: Tensor,
    /// μ_k: [b, K, latent]
    pub means: Tensor,
    /// log σ_k²: [b, K, latent]
    pub logvars: Tensor,
}

impl ConditionalPrior {
    /// Components per row.
    pub fn components(&self) -> i64 {
        self.log_weights.size()[1]
    }

    /// KL(q(z | x, c) ‖ p(z | c)) per latent dimension, batch mean: closed form for
    /// one Gaussian; for a mixture the variational upper bound (module docs), of
    /// which each dimension holds its responsibility-weighted KL to the components
    /// and an equal share of the component term Σ_k ω_k log(ω_k / π_k), so the
    /// dimensions sum to the bound. mean, logvar: [b, latent] → [latent]
    pub fn kl_per_dimension(&self, mean: &Tensor, logvar: &Tensor) -> Tensor {
        if self.components() == 1 {
            return loss::kl_per_dimension_to(mean, logvar, &self.means.select(1, 0), &self.logvars.select(1, 0));
        }
        // [b, K, latent]: the KL of each dimension to each component.
        let kl = loss::gaussian_kl(&mean.unsqueeze(1), &logvar.unsqueeze(1), &self.means, &self.logvars);
        let scores = &self.log_weights - kl.sum_dim_intlist(2, false, Kind::Float);
        let bound = -scores.logsumexp([1], false);
        let responsibilities = scores.softmax(1, Kind::Float);
        let weighted = (kl * responsibilities.unsqueeze(2)).sum_dim_intlist(1, false, Kind::Float);
        let component_term = &bound - weighted.sum_dim_intlist(1, false, Kind::Float);
        let latent = weighted.size()[1] as f64;
        (weighted + component_term.unsqueeze(1) / latent).mean_dim(0, false, Kind::Float)
    }

    /// log p(z | c) of each row. z: [b, latent] → [b]
    pub fn log_density(&self, z: &Tensor) -> Tensor {
        let per_component = loss::gaussian_log_density(&z.unsqueeze(1), &self.means, &self.logvars);
        (per_component + &self.log_weights).logsumexp([1], false)
    }

    /// z from standard normal noise: a component drawn from π (torch's global
    /// generator, so a seeded draw repeats) and μ_k + σ_k ⊙ ε. eps: [b, latent] → [b, latent]
    pub fn sample(&self, eps: &Tensor) -> Tensor {
        let (mean, logvar) = match self.components() {
            1 => (self.means.select(1, 0), self.logvars.select(1, 0)),
            _ => {
                let chosen = self.log_weights.exp().multinomial(1, true); // [b, 1]
                let index = chosen.unsqueeze(2).expand([-1, 1, self.means.size()[2]], false);
                (
                    self.means.gather(1, &index, false).squeeze_dim(1),
                    self.logvars.gather(1, &index, false).squeeze_dim(1),
                )
            }
        };
        mean + (logvar * 0.5).exp() * eps
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn::VarStore, Device};

    #[test]
    fn a_mixture_priors_kl_bound_lies_above_the_monte_carlo_kl() {
        let _rng = crate::test_support::torch_rng();
        tch::manual_seed(0);
        let vs = VarStore::new(Device::Cpu);
        let net = PriorNet::new(&vs.root(), 2, 3, 4);
        let cond = Tensor::from_slice(&[1.0f32, 0.0]).view([1, 2]);
        let prior = net.forward(&cond);
        assert_eq!(prior.means.size(), [1, 4, 3]);
        let (mean, logvar) = (
            Tensor::from_slice(&[0.3f32, -0.2, 0.5]).view([1, 3]),
            Tensor::full([1, 3], -1.0, (Kind::Float, Device::Cpu)),
        );
        let dims = prior.kl_per_dimension(&mean, &logvar);
        let bound = dims.sum(Kind::Float).double_value(&[]);
        // Monte Carlo KL(q ‖ p) = E_q[log q(z) − log p(z)].
        let n = 200_000;
        let z = mean.expand([n, 3], false)
            + (logvar.expand([n, 3], false) * 0.5).exp() * Tensor::randn([n, 3], (Kind::Float, Device::Cpu));
        // The batch of one broadcasts over the draws.
        let log_q = crate::loss::gaussian_log_density(&z, &mean, &logvar);
        let log_p = prior.log_density(&z);
        let monte_carlo = (log_q - log_p).mean(Kind::Float).double_value(&[]);
        assert!(bound >= monte_carlo - 0.02, "bound {bound} below the KL {monte_carlo}");
        assert!(bound - monte_carlo < 1.5, "bound {bound} far above the KL {monte_carlo}");
        // The draws follow the mixture: every component is drawn from equal weights.
        let draws = prior.sample(&Tensor::zeros([1, 3], (Kind::Float, Device::Cpu)));
        assert_eq!(draws.size(), [1, 3]);
    }

    #[test]
    fn a_mixture_starts_with_distinct_components_under_a_zero_condition() {
        let _rng = crate::test_support::torch_rng();
        tch::manual_seed(0);
        let vs = VarStore::new(Device::Cpu);
        // An unconditional VAE holds its condition at zero.
        let prior = PriorNet::new(&vs.root(), 3, 2, 4).forward(&Tensor::zeros([1, 3], (Kind::Float, Device::Cpu)));
        let means = prior.means.select(0, 0); // [K, latent]
        let gaps = (means.unsqueeze(0) - means.unsqueeze(1)).square().sum_dim_intlist(2, false, Kind::Float);
        let closest = (gaps + Tensor::eye(4, (Kind::Float, Device::Cpu)) * 1e9).min().double_value(&[]);
        assert!(closest > 1e-3, "two components start at the same mean ({closest})");
    }

    #[test]
    fn one_component_is_the_closed_form_gaussian_kl() {
        let vs = VarStore::new(Device::Cpu);
        let prior = PriorNet::new(&vs.root(), 2, 3, 1).forward(&Tensor::ones([2, 2], (Kind::Float, Device::Cpu)));
        let mean = Tensor::from_slice(&[0.5f32, 0.0, -1.0, 1.0, 2.0, 0.0]).view([2, 3]);
        let logvar = Tensor::zeros([2, 3], (Kind::Float, Device::Cpu));
        let expected = crate::loss::kl_per_dimension(&mean, &logvar);
        assert!(prior.kl_per_dimension(&mean, &logvar).allclose(&expected, 1e-6, 1e-6, false));
    }
}
