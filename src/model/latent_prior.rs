//! A per-condition latent prior fitted after training ("ex-post density
//! estimation", Ghosh et al. 2020, applied per condition).
//!
//! A CVAE is trained to pull every posterior towards N(0, I), but the codes it
//! actually uses (the aggregated posterior) never match that prior: part of the
//! prior's mass falls where no training image was encoded, and the decoder turns
//! such codes into blurry in-betweens. Fitting one full-covariance Gaussian to
//! the posterior means of each condition's training images, and sampling from
//! it, keeps generated codes where the decoder has seen real data. Nothing is
//! retrained; the decoder is the same, only the source of z changes.
//!
//! With `components` > 1 each condition gets a Gaussian mixture instead, fitted
//! by EM (Ghosh et al. fit a 10-component mixture to the whole data): a
//! condition that pools several looks (the vowel task's "consonant" holds 19
//! letters) then draws codes from each look's cluster, not from between them.
//!
//! Conditions are indexed `class · styles + style` (`styles` = 2 for K49, else 1).

use std::path::Path;

use tch::{Device, Kind, Tensor};

use super::Cvae;
use crate::data::Split;
use crate::task::{ConditionSpec, TaskData};
use crate::{Error, Result};

/// File name of the fitted prior inside a run folder.
pub const LATENT_PRIOR_FILE: &str = "latent_prior.safetensors";

/// Added to every covariance diagonal so the Cholesky factor exists even for a
/// condition with fewer training images than latent dimensions.
const COVARIANCE_JITTER: f64 = 1e-4;

/// Encoding batch size while fitting (memory only; the result does not depend on it).
const ENCODE_BATCH: usize = 1024;

/// Components per condition of the prior `condgen` fits, measured against one
/// Gaussian per condition in the report. Ghosh et al. (2020) fit 10 to a whole
/// dataset; per condition, 40 follow the looks inside a condition better than 10
/// (report/DECISIONS.md, "Latent prior: 40 components per condition").
pub const PRIOR_COMPONENTS: usize = 40;

/// EM iterations of a mixture fit (after a k-means start).
const EM_ITERATIONS: usize = 40;

/// Per-condition Gaussians (or Gaussian mixtures) over the latent space.
#[derive(Debug)]
pub struct LatentPrior {
    /// Mixture components per condition (1 = one Gaussian per condition).
    pub components: usize,
    /// means: [conditions · components, latent]; condition c's component k at row c · components + k
    pub means: Tensor,
    /// Lower Cholesky factors of the covariances: [conditions · components, latent, latent]
    pub cholesky: Tensor,
    /// Mixture weights: [conditions, components], each row summing to 1
    pub weights: Tensor,
    /// Training images each Gaussian was fitted on: [conditions]
    pub counts: Vec<i64>,
    /// The checkpoint epoch whose encoder produced the codes.
    pub epoch: usize,
}

/// The Gaussian a (class, style) draws from: one per condition, and a single
/// one for an unconditional model (its classes must not steer its samples).
fn condition_index(spec: &ConditionSpec, class: u8, style: u8) -> usize {
    if !spec.is_conditional() {
        0
    } else if spec.has_style() {
        class as usize * 2 + style as usize
    } else {
        class as usize
    }
}

fn num_conditions(spec: &ConditionSpec) -> usize {
    if !spec.is_conditional() {
        return 1;
    }
    spec.conditions()
}

impl LatentPrior {
    /// Fits one Gaussian (`components` = 1) or a Gaussian mixture per condition
    /// to the posterior means of `split` (eval mode: batch norm uses running
    /// statistics). A condition with fewer than two images keeps N(0, I).
    pub fn fit(
        cvae: &dyn Cvae,
        spec: &ConditionSpec,
        split: &Split,
        epoch: usize,
        components: usize,
        device: Device,
    ) -> LatentPrior {
        let latent = cvae.latent();
        let conditions = num_conditions(spec);
        let codes = tch::no_grad(|| {
            let mut chunks = Vec::new();
            for start in (0..split.len()).step_by(ENCODE_BATCH) {
                let part = split.slice(start, (start + ENCODE_BATCH).min(split.len()));
                let xs = TaskData::images_tensor(&part, device);
                let cond = spec.encode(&part.labels, part.styles.as_deref(), device);
                chunks.push(cvae.encode(&xs, &cond, false).0);
            }
            if chunks.is_empty() {
                Tensor::zeros([0, latent], (Kind::Float, device))
            } else {
                Tensor::cat(&chunks, 0)
            }
        });
        let index: Vec<i64> = (0..split.len())
            .map(|i| condition_index(spec, split.labels[i], split.styles.as_ref().map_or(0, |s| s[i])) as i64)
            .collect();
        LatentPrior::from_codes(&codes, &index, conditions, components, epoch)
    }

    /// Fits the prior to given codes: codes: [n, latent]; `condition[i]` is the
    /// index (`class · styles + style`) of code i's condition, below `conditions`.
    pub fn from_codes(
        codes: &Tensor,
        condition: &[i64],
        conditions: usize,
        components: usize,
        epoch: usize,
    ) -> LatentPrior {
        let components = components.max(1);
        let (device, latent) = (codes.device(), codes.size()[1]);
        let index = Tensor::from_slice(condition).to_device(device);
        let eye = Tensor::eye(latent, (Kind::Double, device));
        let mut means = Vec::with_capacity(conditions);
        let mut factors = Vec::with_capacity(conditions);
        let mut weights = Vec::with_capacity(conditions);
        let mut counts = Vec::with_capacity(conditions);
        tch::no_grad(|| {
            for c in 0..conditions {
                let rows = index.eq(c as i64).nonzero().squeeze_dim(1);
                let n = rows.size()[0];
                counts.push(n);
                let (mean, factor, weight) = if n < 2 {
                    let k = components as i64;
                    (
                        Tensor::zeros([k, latent], (Kind::Double, device)),
                        eye.unsqueeze(0).repeat([k, 1, 1]),
                        Tensor::full([k], 1.0 / k as f64, (Kind::Double, device)),
                    )
                } else {
                    fit_mixture(&codes.index_select(0, &rows).to_kind(Kind::Double), components, EM_CHUNK_BYTES)
                };
                means.push(mean.to_kind(Kind::Float));
                factors.push(factor.to_kind(Kind::Float));
                weights.push(weight.to_kind(Kind::Float));
            }
        });
        LatentPrior {
            components,
            means: Tensor::cat(&means, 0),
            cholesky: Tensor::cat(&factors, 0),
            weights: Tensor::stack(&weights, 0),
            counts,
            epoch,
        }
    }

    /// z for each requested condition from standard normal noise (and, for a
    /// mixture, a component drawn by its weight from torch's generator).
    /// eps: [n, latent] ~ N(0, I) → z: [n, latent], z_i = μ_k + L_k · ε_i
    pub fn transform(&self, spec: &ConditionSpec, classes: &[u8], styles: &[u8], eps: &Tensor) -> Tensor {
        let device = eps.device();
        let index: Vec<i64> = classes.iter().zip(styles).map(|(&c, &s)| condition_index(spec, c, s) as i64).collect();
        let mut index = Tensor::from_slice(&index).to_device(device);
        if self.components > 1 {
            let weights = self.weights.to_device(device).index_select(0, &index);
            index = index * self.components as i64 + weights.multinomial(1, true).squeeze_dim(1);
        }
        let mean = self.means.to_device(device).index_select(0, &index);
        let factor = self.cholesky.to_device(device).index_select(0, &index);
        mean + factor.matmul(&eps.unsqueeze(-1)).squeeze_dim(-1)
    }

    /// Writes the prior as safetensors (`means`, `cholesky`, `weights`, `counts`, `epoch`).
    pub fn save(&self, path: &Path) -> Result<()> {
        let counts = Tensor::from_slice(&self.counts);
        let epoch = Tensor::from_slice(&[self.epoch as i64]);
        let tensors = [
            ("means", self.means.to_device(Device::Cpu)),
            ("cholesky", self.cholesky.to_device(Device::Cpu)),
            ("weights", self.weights.to_device(Device::Cpu)),
            ("counts", counts),
            ("epoch", epoch),
        ];
        crate::files::write_via_path(path, |tmp| {
            Tensor::write_safetensors(&tensors, tmp)
                .map_err(|e| Error::Checkpoint { path: path.to_path_buf(), message: e.to_string() })
        })
    }

    /// Reads a prior written by [`LatentPrior::save`], checking its shapes
    /// against the model (`conditions` × `latent`).
    pub fn load(path: &Path, spec: &ConditionSpec, latent: i64) -> Result<LatentPrior> {
        let bad = |message: String| Error::Checkpoint { path: path.to_path_buf(), message };
        let tensors = Tensor::read_safetensors(path).map_err(|e| bad(e.to_string()))?;
        let get = |name: &str| {
            tensors
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t.shallow_clone())
                .ok_or_else(|| bad(format!("no tensor `{name}`")))
        };
        let (means, cholesky, counts, epoch) = (get("means")?, get("cholesky")?, get("counts")?, get("epoch")?);
        let conditions = num_conditions(spec) as i64;
        // A prior saved before mixtures has no weights: one Gaussian per condition.
        let weights = get("weights").unwrap_or_else(|_| Tensor::ones([conditions, 1], (Kind::Float, Device::Cpu)));
        let k = weights.size().get(1).copied().unwrap_or(0);
        let rows = conditions * k;
        if k < 1
            || weights.size() != [conditions, k]
            || means.size() != [rows, latent]
            || cholesky.size() != [rows, latent, latent]
        {
            return Err(bad(format!(
                "shapes {:?}, {:?} and {:?} do not fit {conditions} conditions × {latent} latent dimensions",
                means.size(),
                cholesky.size(),
                weights.size()
            )));
        }
        let counts: Vec<i64> =
            Vec::try_from(counts.to_kind(Kind::Int64)).map_err(|e: tch::TchError| bad(e.to_string()))?;
        let epoch = epoch.to_kind(Kind::Int64).int64_value(&[0]).max(0) as usize;
        Ok(LatentPrior {
            components: k as usize,
            means: means.to_kind(Kind::Float),
            cholesky: cholesky.to_kind(Kind::Float),
            weights: weights.to_kind(Kind::Float),
            counts,
            epoch,
        })
    }
}

/// One Gaussian (`components` = 1: the codes' mean and covariance) or a
/// Gaussian mixture fitted by EM from a k-means start, with full covariances.
/// z: [n, latent] (double, n ≥ 2) → (means [K, latent], Cholesky factors [K, latent, latent], weights [K])
fn fit_mixture(z: &Tensor, components: usize, chunk_bytes: i64) -> (Tensor, Tensor, Tensor) {
    let n = z.size()[0];
    // Every component needs points to stand on; fewer components than asked when there are few codes.
    let k = (components as i64).min(n / 2).max(1);
    let mut resp = if k == 1 { Tensor::ones([n, 1], (Kind::Double, z.device())) } else { kmeans_start(z, k) };
    let mut fitted = mixture_m_step(z, &resp, chunk_bytes);
    for _ in 0..if k == 1 { 0 } else { EM_ITERATIONS } {
        resp = mixture_log_density(z, &fitted, chunk_bytes).softmax(1, Kind::Double);
        fitted = mixture_m_step(z, &resp, chunk_bytes);
    }
    let (means, factors, weights) = fitted;
    let missing = components as i64 - k;
    if missing == 0 {
        return (means, factors, weights);
    }
    // Unused components: copies of the first with weight 0.
    let pad = |t: &Tensor| {
        Tensor::cat(&[t.shallow_clone(), t.narrow(0, 0, 1).repeat_interleave_self_int(missing, 0, None)], 0)
    };
    let weights = Tensor::cat(&[weights, Tensor::zeros([missing], (Kind::Double, z.device()))], 0);
    (pad(&means), pad(&factors), weights)
}

/// Mixture parameters from responsibilities resp: [n, K] (rows sum to 1).
fn mixture_m_step(z: &Tensor, resp: &Tensor, chunk_bytes: i64) -> (Tensor, Tensor, Tensor) {
    let (n, latent) = (z.size()[0], z.size()[1]);
    let single = resp.size()[1] == 1;
    let nk = if single {
        Tensor::from(n as f64).to_device(z.device()).view([1])
    } else {
        resp.sum_dim_intlist([0i64].as_slice(), false, Kind::Double) + 1e-10
    }; // [K]
    let means = resp.transpose(0, 1).matmul(z) / nk.unsqueeze(1); // [K, latent]
    let scatter = per_component_chunk(z, &means, chunk_bytes, |start, diff| {
        let weighted = diff * resp.narrow(1, start, diff.size()[0]).transpose(0, 1).unsqueeze(2);
        weighted.transpose(1, 2).matmul(diff) // [len, latent, latent]
    });
    // The one-Gaussian case keeps the unbiased n − 1 of a sample covariance.
    let denominator = if single { Tensor::from((n - 1) as f64).to_device(z.device()) } else { nk.shallow_clone() };
    let eye = Tensor::eye(latent, (Kind::Double, z.device()));
    let cov = scatter / denominator.view([-1, 1, 1]) + eye * COVARIANCE_JITTER;
    (means, cov.linalg_cholesky(false), &nk / n as f64)
}

/// log(w_k N(z_i | μ_k, Σ_k)): [n, K]
fn mixture_log_density(z: &Tensor, (means, factors, weights): &(Tensor, Tensor, Tensor), chunk_bytes: i64) -> Tensor {
    let latent = z.size()[1];
    let mahalanobis = per_component_chunk(z, means, chunk_bytes, |start, diff| {
        let factors = factors.narrow(0, start, diff.size()[0]);
        let solved = factors.linalg_solve_triangular(&diff.transpose(1, 2), false, true, false); // [len, latent, n]
        solved.square().sum_dim_intlist([1i64].as_slice(), false, Kind::Double) // [len, n]
    }); // [K, n]
    let log_det = factors.diagonal(0, -2, -1).log().sum_dim_intlist([-1i64].as_slice(), false, Kind::Double) * 2.0;
    let log_norm = (log_det + latent as f64 * (2.0 * std::f64::consts::PI).ln()) * -0.5 + weights.log();
    (mahalanobis * -0.5 + log_norm.unsqueeze(1)).transpose(0, 1)
}

/// Bytes of one [components, n, latent] temporary of the EM steps, at most.
/// Components are independent, so chunking them gives the same numbers, to the
/// bit; whole, the temporaries reach ~0.5 GB on sign-rotation (40 components ×
/// 27,455 codes × 64 dimensions, double) and the fit spends as much time faulting
/// in fresh pages as computing (timings: report/DECISIONS.md, "EM steps in chunks").
const EM_CHUNK_BYTES: i64 = 32 << 20;

/// (first component, count) of each chunk of components whose [count, n, latent]
/// double temporaries stay within `chunk_bytes`: means: [K, latent], n codes.
fn component_chunks(means: &Tensor, n: i64, chunk_bytes: i64) -> impl Iterator<Item = (i64, i64)> {
    let (k, latent) = (means.size()[0], means.size()[1]);
    let step = (chunk_bytes / (n * latent * 8).max(1)).clamp(1, k.max(1));
    (0..k).step_by(step as usize).map(move |start| (start, step.min(k - start)))
}

/// `per_chunk(first component, z − μ_k for the chunk's components: [len, n, latent])`
/// for each chunk of [`component_chunks`], concatenated along the components.
/// z: [n, latent], means: [K, latent]
fn per_component_chunk(
    z: &Tensor,
    means: &Tensor,
    chunk_bytes: i64,
    per_chunk: impl Fn(i64, &Tensor) -> Tensor,
) -> Tensor {
    let parts: Vec<Tensor> = component_chunks(means, z.size()[0], chunk_bytes)
        .map(|(start, len)| per_chunk(start, &(z.unsqueeze(0) - means.narrow(0, start, len).unsqueeze(1))))
        .collect();
    Tensor::cat(&parts, 0)
}

/// Hard responsibilities [n, K] from a few k-means (Lloyd) steps started at
/// K codes spread evenly through the data order (deterministic).
fn kmeans_start(z: &Tensor, k: i64) -> Tensor {
    let n = z.size()[0];
    let starts: Vec<i64> = (0..k).map(|i| i * n / k).collect();
    let mut centres = z.index_select(0, &Tensor::from_slice(&starts).to_device(z.device()));
    let mut assign = Tensor::zeros([n], (Kind::Int64, z.device()));
    for _ in 0..10 {
        assign = Tensor::cdist(z, &centres, 2.0, None::<i64>).argmin(1, false);
        let one_hot = assign.one_hot(k).to_kind(Kind::Double); // [n, K]
        let sizes = one_hot.sum_dim_intlist([0i64].as_slice(), false, Kind::Double).clamp_min(1.0);
        centres = one_hot.transpose(0, 1).matmul(z) / sizes.unsqueeze(1);
    }
    assign.one_hot(k).to_kind(Kind::Double)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Chunking the components is only a memory layout: one component per chunk
    /// and all of them at once give the same mixture, to the bit.
    #[test]
    fn chunked_em_equals_unchunked() {
        tch::manual_seed(0);
        let z = (Tensor::randn([300, 6], (Kind::Double, Device::Cpu))
            + Tensor::randint(3, [300, 1], (Kind::Double, Device::Cpu)) * 4.0)
            .contiguous();
        assert!(component_chunks(&Tensor::zeros([5, 6], (Kind::Double, Device::Cpu)), 300, 1).count() == 5);
        let whole = fit_mixture(&z, 5, i64::MAX);
        let chunked = fit_mixture(&z, 5, 1);
        for (a, b) in [(&whole.0, &chunked.0), (&whole.1, &chunked.1), (&whole.2, &chunked.2)] {
            assert_eq!(a.size(), b.size());
            assert_eq!(f64::try_from((a - b).abs().max()).unwrap(), 0.0);
        }
    }
}
