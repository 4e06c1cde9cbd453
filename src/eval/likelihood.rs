//! How well a CVAE explains held-out images: the ELBO and the
//! importance-weighted bound (Burda, Grosse & Salakhutdinov 2016).
//!
//! With K codes z_k drawn from the encoder's q(z | x, c),
//! IWAE_K = E[log (1/K) Σ_k p(x | z_k, c) p(z_k) / q(z_k | x, c)].
//! IWAE_1 is the ELBO, the bound grows with K, and it tends to log p(x | c):
//! the gap between the ELBO and the limit is KL(q(z | x, c) ‖ p(z | x, c)),
//! how far the encoder is from the true posterior. p(z) is the prior the CVAE
//! was trained with (N(0, I), or its learned p(z | c)), or the fitted prior that draws its
//! post-hoc samples ([`LatentSource`]): the same bound with the same codes,
//! each weighed by that density instead (the encoder stays the proposal, so
//! the bound holds for any prior; only its tightness depends on the fit).

use tch::{Kind, Tensor};

use crate::data::Split;
use crate::model::{Likelihood, Net};
use crate::sample::{LatentSource, TrainedModel};
use crate::task::TaskData;
use crate::{Error, Result};

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
    let head = split.head(n);
    let xs = TaskData::images_tensor(&head, model.built.vs.device());
    ks.iter()
        .map(|&k| {
            let per_image = bounds_per_image(model, &head, &xs, k, seed, LatentSource::TrainedPrior)?;
            Ok((k, per_image.iter().sum::<f64>() / per_image.len().max(1) as f64))
        })
        .collect()
}

/// A CVAE's negative log-likelihood of held-out images in standard units.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NegativeLogLikelihood {
    /// Importance samples per image.
    pub k: usize,
    pub images: usize,
    /// The prior p(z | c) of the bound: N(0, I) or the fitted prior.
    pub prior: LatentSource,
    /// −IWAE_K per image in nats (an upper bound on −log p(x | c)).
    pub nats: f64,
    /// The standard error of `nats` over the images.
    pub standard_error: f64,
    /// The same bound in bits per pixel of the 8-bit images: (nats + D ln 256) / (D ln 2)
    /// on uniformly dequantised pixels, x = (v + u) / 256. None for the Bernoulli
    /// likelihood, which is no density for grey pixels.
    pub bits_per_dim: Option<f64>,
}

/// The negative log-likelihood of the first `n` images of `split` by the
/// importance-weighted bound with `k` samples, with `prior` as p(z | c) (the
/// fitted one must be loaded: [`TrainedModel::ensure_latent_prior`]). Under a density (Gaussian,
/// continuous Bernoulli) the pixels are dequantised first, so the figure in
/// bits per dimension is the discrete 8-bit likelihood's bound, the unit of
/// published image-likelihood results; under the Bernoulli likelihood the
/// pixels are taken as they are trained (v / 255) and only nats are given.
pub fn negative_log_likelihood(
    model: &TrainedModel,
    split: &Split,
    n: usize,
    k: usize,
    seed: u64,
    prior: LatentSource,
) -> Result<NegativeLogLikelihood> {
    let head = split.head(n);
    let device = model.built.vs.device();
    let density = model.built.likelihood.kind != Likelihood::Bernoulli;
    let xs = if density {
        tch::manual_seed(seed as i64 ^ 0xDE0);
        let values = TaskData::images_tensor(&head, device) * 255.0;
        (values + Tensor::rand_like(&TaskData::images_tensor(&head, device))) / 256.0
    } else {
        TaskData::images_tensor(&head, device)
    };
    let bounds = bounds_per_image(model, &head, &xs, k, seed, prior)?;
    let count = bounds.len().max(1) as f64;
    let nats = -bounds.iter().sum::<f64>() / count;
    let variance = bounds.iter().map(|b| (-b - nats).powi(2)).sum::<f64>() / (count - 1.0).max(1.0);
    let dims = crate::data::PIXELS as f64;
    Ok(NegativeLogLikelihood {
        k,
        images: bounds.len(),
        prior,
        nats,
        standard_error: (variance / count).sqrt(),
        bits_per_dim: density.then(|| (nats + dims * 256f64.ln()) / (dims * 2f64.ln())),
    })
}

/// IWAE_K of each image of `split` (pixels `xs`: [n, 1, 28, 28] in [0, 1]), nats,
/// with `prior` as p(z | c).
fn bounds_per_image(
    model: &TrainedModel,
    split: &Split,
    xs: &Tensor,
    k: usize,
    seed: u64,
    prior: LatentSource,
) -> Result<Vec<f64>> {
    let Net::Cvae(cvae) = &model.built.net else {
        return Err(Error::Unsupported("a likelihood bound needs a CVAE; a CGAN has no likelihood".into()));
    };
    let fitted = match prior {
        LatentSource::TrainedPrior => None,
        LatentSource::FittedPrior => Some(model.latent_prior.as_ref().ok_or_else(|| {
            Error::InvalidInput("the likelihood under the fitted prior needs the prior fitted first".into())
        })?),
    };
    let device = model.built.vs.device();
    let likelihood = &model.built.likelihood;
    let styles = split.styles.clone().unwrap_or_else(|| vec![0; split.len()]);
    tch::no_grad(|| {
        let cond = model.spec.encode(&split.labels, split.styles.as_deref(), device);
        let (mean, logvar) = cvae.encode(xs, &cond, false);
        let latent = mean.size()[1];
        tch::manual_seed(seed as i64);
        (0..split.len() as i64)
            .map(|i| {
                let (m, lv) = (mean.narrow(0, i, 1), logvar.narrow(0, i, 1));
                let eps = Tensor::randn([k as i64, latent], (Kind::Float, device));
                let z = &m + (&lv * 0.5).exp() * eps;
                let x = xs.narrow(0, i, 1).expand([k as i64, -1, -1, -1], false);
                let c = cond.narrow(0, i, 1).expand([k as i64, -1], false);
                let log_px = -likelihood.nll_each(&cvae.decode(&z, &c, false), &x);
                let log_pz = match fitted {
                    None => match cvae.prior(&c) {
                        Some(prior) => prior.log_density(&z),
                        None => crate::loss::gaussian_log_density(&z, &z.zeros_like(), &z.zeros_like()),
                    },
                    Some(p) => {
                        let (class, style) = (vec![split.labels[i as usize]; k], vec![styles[i as usize]; k]);
                        p.log_density(&z, &model.spec, &class, &style)?.to_kind(Kind::Float)
                    }
                };
                let log_q = crate::loss::gaussian_log_density(&z, &m, &lv);
                let weights = log_px + log_pz - log_q;
                Ok(weights.logsumexp([0], false).double_value(&[]) - (k as f64).ln())
            })
            .collect()
    })
}
