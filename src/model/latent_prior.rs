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

/// Per-condition Gaussians over the latent space.
#[derive(Debug)]
pub struct LatentPrior {
    /// means: [conditions, latent]
    pub means: Tensor,
    /// Lower Cholesky factors of the covariances: [conditions, latent, latent]
    pub cholesky: Tensor,
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
    spec.classes() * if spec.has_style() { 2 } else { 1 }
}

impl LatentPrior {
    /// Fits one Gaussian per condition to the posterior means of `split`
    /// (eval mode: batch norm uses running statistics). A condition with fewer
    /// than two images keeps N(0, I).
    pub fn fit(cvae: &dyn Cvae, spec: &ConditionSpec, split: &Split, epoch: usize, device: Device) -> LatentPrior {
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
        let index = Tensor::from_slice(&index).to_device(device);
        let eye = Tensor::eye(latent, (Kind::Float, device));
        let mut means = Vec::with_capacity(conditions);
        let mut factors = Vec::with_capacity(conditions);
        let mut counts = Vec::with_capacity(conditions);
        tch::no_grad(|| {
            for c in 0..conditions {
                let rows = index.eq(c as i64).nonzero().squeeze_dim(1);
                let n = rows.size()[0];
                counts.push(n);
                if n < 2 {
                    means.push(Tensor::zeros([latent], (Kind::Float, device)));
                    factors.push(eye.shallow_clone());
                    continue;
                }
                let z = codes.index_select(0, &rows).to_kind(Kind::Double);
                let mean = z.mean_dim(0i64, false, Kind::Double);
                let centred = &z - &mean;
                let cov = centred.transpose(0, 1).matmul(&centred) / (n - 1) as f64
                    + eye.to_kind(Kind::Double) * COVARIANCE_JITTER;
                means.push(mean.to_kind(Kind::Float));
                factors.push(cov.linalg_cholesky(false).to_kind(Kind::Float));
            }
        });
        LatentPrior { means: Tensor::stack(&means, 0), cholesky: Tensor::stack(&factors, 0), counts, epoch }
    }

    /// z for each requested condition from standard normal noise.
    /// eps: [n, latent] ~ N(0, I) → z: [n, latent], z_i = μ_c + L_c · ε_i
    pub fn transform(&self, spec: &ConditionSpec, classes: &[u8], styles: &[u8], eps: &Tensor) -> Tensor {
        let device = eps.device();
        let index: Vec<i64> = classes.iter().zip(styles).map(|(&c, &s)| condition_index(spec, c, s) as i64).collect();
        let index = Tensor::from_slice(&index).to_device(device);
        let mean = self.means.to_device(device).index_select(0, &index);
        let factor = self.cholesky.to_device(device).index_select(0, &index);
        mean + factor.matmul(&eps.unsqueeze(-1)).squeeze_dim(-1)
    }

    /// Writes the prior as safetensors (`means`, `cholesky`, `counts`, `epoch`).
    pub fn save(&self, path: &Path) -> Result<()> {
        let counts = Tensor::from_slice(&self.counts);
        let epoch = Tensor::from_slice(&[self.epoch as i64]);
        let tensors = [
            ("means", self.means.to_device(Device::Cpu)),
            ("cholesky", self.cholesky.to_device(Device::Cpu)),
            ("counts", counts),
            ("epoch", epoch),
        ];
        let tmp = path.with_extension("tmp");
        Tensor::write_safetensors(&tensors, &tmp)
            .map_err(|e| Error::Checkpoint { path: path.to_path_buf(), message: e.to_string() })?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
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
        if means.size() != [conditions, latent] || cholesky.size() != [conditions, latent, latent] {
            return Err(bad(format!(
                "shapes {:?} and {:?} do not fit {conditions} conditions × {latent} latent dimensions",
                means.size(),
                cholesky.size()
            )));
        }
        let counts: Vec<i64> =
            Vec::try_from(counts.to_kind(Kind::Int64)).map_err(|e: tch::TchError| bad(e.to_string()))?;
        let epoch = epoch.to_kind(Kind::Int64).int64_value(&[0]).max(0) as usize;
        Ok(LatentPrior { means: means.to_kind(Kind::Float), cholesky: cholesky.to_kind(Kind::Float), counts, epoch })
    }
}
