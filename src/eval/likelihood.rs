//! How well a CVAE explains held-out images: the ELBO and the
//! importance-weighted bound (Burda, Grosse & Salakhutdinov 2016).
//!
//! With K codes z_k drawn from the encoder's q(z | x, c),
//! IWAE_K = E[log (1/K) Σ_k p(x | z_k, c) p(z_k) / q(z_k | x, c)].
//! IWAE_1 is the ELBO, the bound grows with K, and it tends to log p(x | c):
//! the gap between the ELBO and the limit is KL(q(z | x, c) ‖ p(z | x, c)),
//! how far the encoder is from the true posterior. p(z) is N(0, I), the
//! prior the CVAE was trained with.

use tch::{Kind, Tensor};

use crate::data::Split;
use crate::model::Net;
use crate::sample::TrainedModel;
use crate::task::TaskData;
use crate::{Error, Result};

/// log N(z; mean, exp(logvar)) summed over the last dimension.
/// z, mean, logvar: [..., latent] → [...]
fn gaussian_log_density(z: &Tensor, mean: &Tensor, logvar: &Tensor) -> Tensor {
    let ln_2pi = (2.0 * std::f64::consts::PI).ln();
    (((z - mean).square() * (-logvar).exp() + logvar + ln_2pi) * -0.5).sum_dim_intlist(-1, false, Kind::Float)
}

/// The importance-weighted bound of each of the first `n` images of `split`,
/// averaged, for every K in `ks` (nats per image; K = 1 is the ELBO). The same
/// seed draws the same codes for every K's first draws.
pub fn importance_weighted_bounds(
    model: &TrainedModel,
    split: &Split,
    n: usize,
    ks: &[usize],
    seed: u64,
) -> Result<Vec<(usize, f64)>> {
    let Net::Cvae(cvae) = &model.built.net else {
        return Err(Error::Unsupported("a likelihood bound needs a CVAE; a CGAN has no likelihood".into()));
    };
    let device = model.built.vs.device();
    let head = split.head(n);
    let likelihood = &model.built.likelihood;
    tch::no_grad(|| {
        let xs = TaskData::images_tensor(&head, device);
        let cond = model.spec.encode(&head.labels, head.styles.as_deref(), device);
        let (mean, logvar) = cvae.encode(&xs, &cond, false);
        let latent = mean.size()[1];
        ks.iter()
            .map(|&k| {
                tch::manual_seed(seed as i64);
                let mut per_image = Vec::with_capacity(head.len());
                for i in 0..head.len() as i64 {
                    let (m, lv) = (mean.narrow(0, i, 1), logvar.narrow(0, i, 1));
                    let eps = Tensor::randn([k as i64, latent], (Kind::Float, device));
                    let z = &m + (&lv * 0.5).exp() * eps;
                    let x = xs.narrow(0, i, 1).expand([k as i64, -1, -1, -1], false);
                    let c = cond.narrow(0, i, 1).expand([k as i64, -1], false);
                    let log_px = -likelihood.nll_each(&cvae.decode(&z, &c, false), &x);
                    let log_pz = gaussian_log_density(&z, &z.zeros_like(), &z.zeros_like());
                    let log_q = gaussian_log_density(&z, &m, &lv);
                    let weights = log_px + log_pz - log_q;
                    per_image.push(weights.logsumexp([0], false).double_value(&[]) - (k as f64).ln());
                }
                Ok((k, per_image.iter().sum::<f64>() / per_image.len().max(1) as f64))
            })
            .collect()
    })
}
