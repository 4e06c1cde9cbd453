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
//! A component's covariance is [`Covariance::Full`] (its own, d(d+1)/2
//! parameters), [`Covariance::Diagonal`] (its own variances, d parameters) or
//! [`Covariance::Tied`] (one full covariance shared by a condition's
//! components). [`LatentPrior::select`] fits a list of (components, covariance)
//! candidates to the training images' codes and keeps the one under which
//! held-out images' codes are most likely ([`PriorSelection`] records them all).
//! Those fits start EM from k-means++ and stop it at convergence; the default
//! prior ([`PRIOR_COMPONENTS`] full-covariance components, [`LatentPrior::fit`])
//! is fitted as it always has been.
//!
//! Conditions are indexed `class · styles + style` (`styles` = 2 for K49, else 1).

use std::path::Path;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

mod em;
mod selection;
mod shape;

use em::*;
pub use selection::{CandidateFit, PriorSelection};
pub use shape::{Covariance, PriorShape};

use super::Cvae;
use crate::data::Split;
use crate::task::{ConditionSpec, TaskData};
use crate::{Error, Result};

/// File name of the fitted prior inside a run folder.
pub const LATENT_PRIOR_FILE: &str = "latent_prior.safetensors";

/// File name, inside a run folder, of the table of the candidates a selected
/// prior was chosen from ([`PriorSelection`], JSON).
pub const PRIOR_SELECTION_FILE: &str = "latent_prior_selection.json";

/// Added to every covariance diagonal (and every variance) so the Cholesky
/// factor exists even for a condition with fewer training images than latent
/// dimensions, and a component cannot collapse onto a few codes.
const COVARIANCE_JITTER: f64 = 1e-4;

/// Encoding batch size while fitting (memory only; the result does not depend on it).
const ENCODE_BATCH: usize = 1024;

/// Components per condition of the prior `condgen` fits, measured against one
/// Gaussian per condition in the report. Ghosh et al. (2020) fit 10 to a whole
/// dataset; per condition, 40 follow the looks inside a condition better than 10
/// (report/DECISIONS.md, "Latent prior: 40 components per condition").
pub const PRIOR_COMPONENTS: usize = 40;

/// EM iterations of a mixture fit (after a k-means start), at most.
const EM_ITERATIONS: usize = 40;

/// A shaped fit's EM stops when an iteration raises the mean log-likelihood of
/// the codes by less than this (nats per code; scikit-learn's GaussianMixture default).
const EM_TOLERANCE: f64 = 1e-3;

/// Components per condition [`PriorShape::selection_candidates`] tries.
pub const SELECTION_COMPONENTS: [usize; 6] = [1, 2, 4, 8, 16, 32];

/// Training codes a diagonal or tied component needs at least when a selection
/// caps the components ([`Covariance::min_codes_per_component`]).
pub const MIN_CODES_PER_COMPONENT: usize = 10;

/// Per-condition Gaussians (or Gaussian mixtures) over the latent space.
#[derive(Debug)]
pub struct LatentPrior {
    /// Mixture components per condition (1 = one Gaussian per condition).
    pub components: usize,
    /// The shape of the components' covariances.
    pub covariance: Covariance,
    /// means: [conditions · components, latent]; condition c's component k at row c · components + k
    pub means: Tensor,
    /// Each Gaussian's scale, the lower Cholesky factor of its covariance, stored by `covariance`:
    /// full: [conditions · components, latent, latent] (rows as `means`);
    /// diagonal: the standard deviations, [conditions · components, latent];
    /// tied: one factor per condition, [conditions, latent, latent].
    pub cholesky: Tensor,
    /// Mixture weights: [conditions, components], each row summing to 1
    /// (0 for a component a condition had too few codes for).
    pub weights: Tensor,
    /// Training images each Gaussian was fitted on: [conditions]
    pub counts: Vec<i64>,
    /// The checkpoint epoch whose encoder produced the codes.
    pub epoch: usize,
    /// Whether this prior was chosen on held-out codes ([`LatentPrior::select`]).
    pub selected: bool,
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

/// Posterior means of `split`'s images (eval mode: batch norm uses running
/// statistics) and each image's condition index: ([n, latent], n indices).
fn encode_codes(cvae: &dyn Cvae, spec: &ConditionSpec, split: &Split, device: Device) -> (Tensor, Vec<i64>) {
    let codes = tch::no_grad(|| {
        let mut chunks = Vec::new();
        for start in (0..split.len()).step_by(ENCODE_BATCH) {
            let part = split.slice(start, (start + ENCODE_BATCH).min(split.len()));
            let xs = TaskData::images_tensor(&part, device);
            let cond = spec.encode(&part.labels, part.styles.as_deref(), device);
            chunks.push(cvae.encode(&xs, &cond, false).0);
        }
        if chunks.is_empty() {
            Tensor::zeros([0, cvae.latent()], (Kind::Float, device))
        } else {
            Tensor::cat(&chunks, 0)
        }
    });
    let index = (0..split.len())
        .map(|i| condition_index(spec, split.labels[i], split.styles.as_ref().map_or(0, |s| s[i])) as i64)
        .collect();
    (codes, index)
}

/// Condition indices of (class, style) pairs, refused when their count is not
/// `n` or one falls outside the prior's `conditions`.
fn condition_indices(
    spec: &ConditionSpec,
    classes: &[u8],
    styles: &[u8],
    n: usize,
    conditions: usize,
) -> Result<Vec<i64>> {
    if classes.len() != n || styles.len() != n {
        return Err(Error::InvalidInput(format!(
            "{n} codes with {} classes and {} styles: one of each per code",
            classes.len(),
            styles.len()
        )));
    }
    let index: Vec<i64> = classes.iter().zip(styles).map(|(&c, &s)| condition_index(spec, c, s) as i64).collect();
    check_conditions(&index, conditions)?;
    Ok(index)
}

fn check_conditions(index: &[i64], conditions: usize) -> Result<()> {
    match index.iter().find(|&&c| c < 0 || c as usize >= conditions) {
        Some(c) => Err(Error::InvalidInput(format!("condition {c} outside the prior's {conditions} conditions"))),
        None => Ok(()),
    }
}

impl LatentPrior {
    /// Fits one full-covariance Gaussian (`components` = 1) or a mixture of
    /// full-covariance Gaussians per condition to the posterior means of `split`
    /// (eval mode: batch norm uses running statistics). A condition with fewer
    /// than two images keeps N(0, I). Fitted as the default prior of
    /// [`PRIOR_COMPONENTS`] components always has been ([`LatentPrior::from_codes`]).
    pub fn fit(
        cvae: &dyn Cvae,
        spec: &ConditionSpec,
        split: &Split,
        epoch: usize,
        components: usize,
        device: Device,
    ) -> LatentPrior {
        let (codes, index) = encode_codes(cvae, spec, split, device);
        LatentPrior::from_codes(&codes, &index, num_conditions(spec), components, epoch)
    }

    /// As [`LatentPrior::fit`], with the covariance shape of `shape`, fitted as
    /// [`LatentPrior::from_codes_shaped`] fits.
    pub fn fit_shaped(
        cvae: &dyn Cvae,
        spec: &ConditionSpec,
        split: &Split,
        epoch: usize,
        shape: PriorShape,
        device: Device,
    ) -> LatentPrior {
        let (codes, index) = encode_codes(cvae, spec, split, device);
        LatentPrior::from_codes_shaped(&codes, &index, num_conditions(spec), shape, epoch)
    }

    /// Fits the prior to given codes: codes: [n, latent]; `condition[i]` is the
    /// index (`class · styles + style`) of code i's condition, below `conditions`.
    /// Full covariances; a condition of n codes gets at most n / 2 components
    /// (the others weigh 0). EM runs 40 iterations from k-means started at
    /// evenly spaced codes: the fit of the prior [`PRIOR_COMPONENTS`] has always
    /// had, kept as it was so that a run's default prior does not change.
    pub fn from_codes(
        codes: &Tensor,
        condition: &[i64],
        conditions: usize,
        components: usize,
        epoch: usize,
    ) -> LatentPrior {
        let shape = PriorShape::new(components, Covariance::Full);
        fit_codes(codes, condition, conditions, shape, FitOptions::ORIGINAL, epoch)
    }

    /// As [`LatentPrior::from_codes`], with the covariance shape of `shape`, and
    /// EM started from k-means++ (fixed seed) and stopped once an iteration
    /// gains less than 1e-3 nats per code (40 iterations at most), as
    /// [`LatentPrior::select`] fits its candidates.
    pub fn from_codes_shaped(
        codes: &Tensor,
        condition: &[i64],
        conditions: usize,
        shape: PriorShape,
        epoch: usize,
    ) -> LatentPrior {
        fit_codes(codes, condition, conditions, shape, FitOptions::shaped(2), epoch)
    }

    /// z for each requested condition from standard normal noise (and, for a
    /// mixture, a component drawn by its weight from torch's generator).
    /// eps: [n, latent] ~ N(0, I) → z: [n, latent], z_i = μ_k + L_k · ε_i, where
    /// L_k is the component's Cholesky factor (full), its standard deviations
    /// (diagonal: z_i = μ_k + σ_k ⊙ ε_i) or its condition's shared factor (tied).
    pub fn transform(&self, spec: &ConditionSpec, classes: &[u8], styles: &[u8], eps: &Tensor) -> Tensor {
        let device = eps.device();
        let condition: Vec<i64> =
            classes.iter().zip(styles).map(|(&c, &s)| condition_index(spec, c, s) as i64).collect();
        let condition = Tensor::from_slice(&condition).to_device(device);
        let mut index = condition.shallow_clone();
        if self.components > 1 {
            let weights = self.weights.to_device(device).index_select(0, &condition);
            index = &condition * self.components as i64 + weights.multinomial(1, true).squeeze_dim(1);
        }
        let mean = self.means.to_device(device).index_select(0, &index);
        let scale = self.cholesky.to_device(device);
        match self.covariance {
            Covariance::Full => mean + scale.index_select(0, &index).matmul(&eps.unsqueeze(-1)).squeeze_dim(-1),
            Covariance::Diagonal => mean + scale.index_select(0, &index) * eps,
            Covariance::Tied => mean + scale.index_select(0, &condition).matmul(&eps.unsqueeze(-1)).squeeze_dim(-1),
        }
    }

    /// log p(z | c) of each code under its condition's Gaussian (mixture), in
    /// nats: codes: [n, latent], one (class, style) per code → [n] (double, on
    /// the codes' device). An error when the counts disagree or a condition is
    /// not the prior's.
    pub fn log_density(&self, codes: &Tensor, spec: &ConditionSpec, classes: &[u8], styles: &[u8]) -> Result<Tensor> {
        let n = codes.size().first().copied().unwrap_or(0) as usize;
        let index = condition_indices(spec, classes, styles, n, self.counts.len())?;
        self.check_latent(codes)?;
        Ok(self.log_density_at(codes, &index))
    }

    /// The mean of [`LatentPrior::log_density`] over the codes (an error when there are none).
    pub fn mean_log_density(&self, codes: &Tensor, spec: &ConditionSpec, classes: &[u8], styles: &[u8]) -> Result<f64> {
        if classes.is_empty() {
            return Err(Error::InvalidInput("a mean log-density of no codes".into()));
        }
        Ok(self.log_density(codes, spec, classes, styles)?.mean(Kind::Double).double_value(&[]))
    }

    fn check_latent(&self, codes: &Tensor) -> Result<()> {
        let latent = self.means.size()[1];
        match codes.size().as_slice() {
            [_, d] if *d == latent => Ok(()),
            shape => Err(Error::InvalidInput(format!("codes of shape {shape:?} for a prior over {latent} dimensions"))),
        }
    }

    /// log p(z_i | condition[i]): [n] double. Conditions are checked by the caller.
    fn log_density_at(&self, codes: &Tensor, condition: &[i64]) -> Tensor {
        let device = codes.device();
        let index = Tensor::from_slice(condition).to_device(device);
        let mut out = Tensor::zeros([condition.len() as i64], (Kind::Double, device));
        tch::no_grad(|| {
            for c in 0..self.counts.len() {
                let rows = index.eq(c as i64).nonzero().squeeze_dim(1);
                if rows.size()[0] == 0 {
                    continue;
                }
                let z = codes.index_select(0, &rows).to_kind(Kind::Double);
                let mixture = self.condition_mixture(c, device);
                let log_p = component_log_density(&z, &mixture, EM_CHUNK_BYTES).logsumexp([1i64].as_slice(), false);
                out = out.index_copy(0, &rows, &log_p);
            }
        });
        out
    }

    fn mean_log_density_at(&self, codes: &Tensor, condition: &[i64]) -> f64 {
        self.log_density_at(codes, condition).mean(Kind::Double).double_value(&[])
    }

    /// Condition c's Gaussians in double precision on `device`.
    fn condition_mixture(&self, c: usize, device: Device) -> Mixture {
        let (c, k) = (c as i64, self.components as i64);
        let double = |t: Tensor| t.to_device(device).to_kind(Kind::Double);
        let scale = match self.covariance {
            Covariance::Tied => self.cholesky.narrow(0, c, 1),
            Covariance::Full | Covariance::Diagonal => self.cholesky.narrow(0, c * k, k),
        };
        Mixture {
            means: double(self.means.narrow(0, c * k, k)),
            scale: double(scale),
            weights: double(self.weights.get(c)),
            covariance: self.covariance,
        }
    }

    /// Free parameters of the fitted prior, summed over the conditions it was
    /// fitted to ([`Covariance::parameters`] of each condition's components of
    /// non-zero weight); a condition left at N(0, I) (fewer than 2 codes) has none.
    pub fn parameter_count(&self) -> usize {
        let latent = self.means.size()[1] as usize;
        let used = self.weights.gt(0.0).sum_dim_intlist([1i64].as_slice(), false, Kind::Int64);
        let used: Vec<i64> = Vec::try_from(used).unwrap_or_default();
        self.counts
            .iter()
            .zip(used)
            .filter(|&(&n, _)| n >= 2)
            .map(|(_, k)| self.covariance.parameters(k as usize, latent))
            .sum()
    }

    /// Writes the prior as safetensors (`means`, `cholesky`, `weights`, `counts`,
    /// `epoch`, `covariance`: 0 full, 1 diagonal, 2 tied; `selected`: 0 or 1).
    pub fn save(&self, path: &Path) -> Result<()> {
        let counts = Tensor::from_slice(&self.counts);
        let epoch = Tensor::from_slice(&[self.epoch as i64]);
        let tensors = [
            ("means", self.means.to_device(Device::Cpu)),
            ("cholesky", self.cholesky.to_device(Device::Cpu)),
            ("weights", self.weights.to_device(Device::Cpu)),
            ("counts", counts),
            ("epoch", epoch),
            ("covariance", Tensor::from_slice(&[self.covariance.code()])),
            ("selected", Tensor::from_slice(&[self.selected as i64])),
        ];
        crate::files::write_via_path(path, |tmp| {
            Tensor::write_safetensors(&tensors, tmp)
                .map_err(|e| Error::Checkpoint { path: path.to_path_buf(), message: e.to_string() })
        })
    }

    /// Reads a prior written by [`LatentPrior::save`], checking its shapes
    /// against the model (`conditions` × `latent`). A file from before the
    /// covariance shapes is full; one from before mixtures is one Gaussian.
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
        let flag = |name: &str| get(name).ok().map(|t| t.to_kind(Kind::Int64).int64_value(&[0]));
        let covariance = match flag("covariance") {
            None => Covariance::Full,
            Some(code) => Covariance::from_code(code).ok_or_else(|| bad(format!("unknown covariance shape {code}")))?,
        };
        let selected = flag("selected").is_some_and(|s| s != 0);
        let conditions = num_conditions(spec) as i64;
        // A prior saved before mixtures has no weights: one Gaussian per condition.
        let weights = get("weights").unwrap_or_else(|_| Tensor::ones([conditions, 1], (Kind::Float, Device::Cpu)));
        let k = weights.size().get(1).copied().unwrap_or(0);
        let rows = conditions * k;
        let scale_shape = match covariance {
            Covariance::Full => vec![rows, latent, latent],
            Covariance::Diagonal => vec![rows, latent],
            Covariance::Tied => vec![conditions, latent, latent],
        };
        if k < 1
            || weights.size() != [conditions, k]
            || means.size() != [rows, latent]
            || cholesky.size() != scale_shape
        {
            return Err(bad(format!(
                "shapes {:?}, {:?} and {:?} do not fit {conditions} conditions × {latent} latent dimensions \
                 ({covariance} covariances)",
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
            covariance,
            means: means.to_kind(Kind::Float),
            cholesky: cholesky.to_kind(Kind::Float),
            weights: weights.to_kind(Kind::Float),
            counts,
            epoch,
            selected,
        })
    }
}
