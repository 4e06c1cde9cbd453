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

/// The shape of the components' covariances.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Covariance {
    /// Each component has its own full covariance: d(d+1)/2 parameters.
    #[default]
    Full,
    /// Each component has its own variance per latent dimension (axis-aligned): d parameters.
    Diagonal,
    /// One full covariance shared by all components of a condition: d(d+1)/2 per condition.
    Tied,
}

impl Covariance {
    pub const ALL: [Covariance; 3] = [Covariance::Full, Covariance::Diagonal, Covariance::Tied];

    /// The number the prior file stores (a file without one is full).
    fn code(self) -> i64 {
        match self {
            Covariance::Full => 0,
            Covariance::Diagonal => 1,
            Covariance::Tied => 2,
        }
    }

    fn from_code(code: i64) -> Option<Covariance> {
        Covariance::ALL.into_iter().find(|c| c.code() == code)
    }

    /// Free parameters of one condition's mixture of `components` Gaussians over
    /// `latent` dimensions: the means (components · latent), the covariances
    /// (full: components · latent(latent+1)/2; diagonal: components · latent;
    /// tied: latent(latent+1)/2) and the weights (components − 1: they sum to 1).
    pub fn parameters(self, components: usize, latent: usize) -> usize {
        if components == 0 {
            return 0;
        }
        let triangle = latent * (latent + 1) / 2;
        let covariances = match self {
            Covariance::Full => components * triangle,
            Covariance::Diagonal => components * latent,
            Covariance::Tied => triangle,
        };
        components * latent + covariances + components - 1
    }

    /// Training codes each component needs at least in a selection
    /// ([`LatentPrior::select`]): a full covariance is estimated from the
    /// component's own codes and has full rank (without the jitter) only from
    /// latent + 1 of them on; a diagonal one (a variance per dimension) and a
    /// tied one (pooled over the condition's components) need
    /// [`MIN_CODES_PER_COMPONENT`] for a mean and variances to stand on.
    pub fn min_codes_per_component(self, latent: usize) -> usize {
        match self {
            Covariance::Full => (latent + 1).max(MIN_CODES_PER_COMPONENT),
            Covariance::Diagonal | Covariance::Tied => MIN_CODES_PER_COMPONENT,
        }
    }
}

impl std::fmt::Display for Covariance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Covariance::Full => "full",
            Covariance::Diagonal => "diagonal",
            Covariance::Tied => "tied",
        })
    }
}

/// Components per condition and the shape of their covariances.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PriorShape {
    pub components: usize,
    pub covariance: Covariance,
}

impl PriorShape {
    pub const fn new(components: usize, covariance: Covariance) -> PriorShape {
        PriorShape { components, covariance }
    }

    /// The candidates a run's prior is chosen from: [`SELECTION_COMPONENTS`] ×
    /// [`Covariance::ALL`], by components then covariance, without tied with one
    /// component (the same Gaussian as full with one). 17 shapes.
    pub fn selection_candidates() -> Vec<PriorShape> {
        SELECTION_COMPONENTS
            .iter()
            .flat_map(|&k| Covariance::ALL.into_iter().map(move |c| PriorShape::new(k, c)))
            .filter(|s| !(s.components == 1 && s.covariance == Covariance::Tied))
            .collect()
    }
}

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

    /// Fits every candidate shape to the codes of `train`'s images and keeps the
    /// one under which the codes of `held_out`'s images have the highest mean
    /// log-density (ties: the earlier candidate). A candidate of K components is
    /// fitted only when some condition has K · m training codes, m =
    /// [`Covariance::min_codes_per_component`]; within it, a condition of n codes
    /// gets at most max(1, n / m) components (the others weigh 0). EM as in
    /// [`LatentPrior::from_codes_shaped`]; deterministic (k-means++ draws from a
    /// fixed seed). An error when either split
    /// has no images or no candidate scores a finite log-density.
    pub fn select(
        cvae: &dyn Cvae,
        spec: &ConditionSpec,
        train: &Split,
        held_out: &Split,
        epoch: usize,
        candidates: &[PriorShape],
        device: Device,
    ) -> Result<(LatentPrior, PriorSelection)> {
        let start = Instant::now();
        let (train_codes, train_condition) = encode_codes(cvae, spec, train, device);
        let (held_codes, held_condition) = encode_codes(cvae, spec, held_out, device);
        let encode_seconds = start.elapsed().as_secs_f64();
        let (prior, mut selection) = LatentPrior::select_from_codes(
            &train_codes,
            &train_condition,
            &held_codes,
            &held_condition,
            num_conditions(spec),
            candidates,
            epoch,
        )?;
        selection.encode_seconds = encode_seconds;
        selection.seconds += encode_seconds;
        Ok((prior, selection))
    }

    /// [`LatentPrior::select`] on given codes: train: [n, latent] with
    /// `train_condition` (as [`LatentPrior::from_codes`]), held: [m, latent] with
    /// `held_condition`.
    pub fn select_from_codes(
        train: &Tensor,
        train_condition: &[i64],
        held: &Tensor,
        held_condition: &[i64],
        conditions: usize,
        candidates: &[PriorShape],
        epoch: usize,
    ) -> Result<(LatentPrior, PriorSelection)> {
        let start = Instant::now();
        let (n, m) = (train_condition.len(), held_condition.len());
        if n == 0 || m == 0 {
            return Err(Error::InvalidInput(format!(
                "choosing a latent prior needs training and held-out codes ({n} and {m} here)"
            )));
        }
        if candidates.is_empty() {
            return Err(Error::InvalidInput("choosing a latent prior needs candidates".into()));
        }
        let latent = train.size()[1];
        if train.size() != [n as i64, latent] || held.size() != [m as i64, latent] {
            return Err(Error::InvalidInput(format!(
                "codes {:?} and {:?} for {n} and {m} conditions",
                train.size(),
                held.size()
            )));
        }
        check_conditions(train_condition, conditions)?;
        check_conditions(held_condition, conditions)?;
        let mut per_condition = vec![0usize; conditions];
        for &c in train_condition {
            per_condition[c as usize] += 1;
        }
        let largest = per_condition.iter().copied().max().unwrap_or(0);
        let (mut fits, mut skipped): (Vec<CandidateFit>, Vec<PriorShape>) = (Vec::new(), Vec::new());
        let mut best: Option<(usize, LatentPrior)> = None;
        for &shape in candidates {
            let shape = PriorShape::new(shape.components.max(1), shape.covariance);
            let per_component = shape.covariance.min_codes_per_component(latent as usize);
            if shape.components > 1 && shape.components * per_component > largest {
                skipped.push(shape);
                continue;
            }
            let fit_start = Instant::now();
            let prior = fit_codes(train, train_condition, conditions, shape, FitOptions::shaped(per_component), epoch);
            let fit_seconds = fit_start.elapsed().as_secs_f64();
            let fit = CandidateFit {
                components: shape.components,
                covariance: shape.covariance,
                train_log_density: prior.mean_log_density_at(train, train_condition),
                held_out_log_density: prior.mean_log_density_at(held, held_condition),
                parameters: prior.parameter_count(),
                fit_seconds,
            };
            let score = fit.held_out_log_density;
            let better = score.is_finite() && best.as_ref().is_none_or(|(i, _)| score > fits[*i].held_out_log_density);
            fits.push(fit);
            if better {
                best = Some((fits.len() - 1, prior));
            }
        }
        let Some((chosen, mut prior)) = best else {
            return Err(Error::InvalidInput(
                "no candidate latent prior gives the held-out codes a finite log-density".into(),
            ));
        };
        prior.selected = true;
        let selection = PriorSelection {
            epoch,
            latent: latent as usize,
            conditions,
            train_codes: n,
            held_out_codes: m,
            cap_rule: format!(
                "K components are tried only when some condition has K · m training codes; a condition of n codes \
                 gets max(1, n / m) of them at most (the others weigh 0); m = max(latent + 1, \
                 {MIN_CODES_PER_COMPONENT}) = {} for full covariances, {MIN_CODES_PER_COMPONENT} for diagonal and tied ones",
                Covariance::Full.min_codes_per_component(latent as usize)
            ),
            candidates: fits,
            skipped,
            chosen,
            encode_seconds: 0.0,
            seconds: start.elapsed().as_secs_f64(),
        };
        Ok((prior, selection))
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

/// One candidate of a selection: its shape, how well it fits the training codes
/// and the held-out codes (mean log-density, nats per code), its size and its fitting time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CandidateFit {
    /// Components per condition asked for (a condition with few codes gets fewer).
    pub components: usize,
    pub covariance: Covariance,
    /// Mean log p(z | c) of the training codes it was fitted to.
    #[serde(with = "finite_or_null")]
    pub train_log_density: f64,
    /// Mean log p(z | c) of the held-out codes: the selection's score.
    #[serde(with = "finite_or_null")]
    pub held_out_log_density: f64,
    /// [`LatentPrior::parameter_count`].
    pub parameters: usize,
    /// Seconds of the EM fit (scoring not included).
    pub fit_seconds: f64,
}

impl CandidateFit {
    pub fn shape(&self) -> PriorShape {
        PriorShape::new(self.components, self.covariance)
    }

    /// Train-code minus held-out-code mean log-density: the prior's own overfit.
    pub fn overfit_gap(&self) -> f64 {
        self.train_log_density - self.held_out_log_density
    }
}

/// How a run's prior was chosen ([`LatentPrior::select`]): every candidate
/// fitted, with the one kept. Saved in the run folder as [`PRIOR_SELECTION_FILE`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PriorSelection {
    /// The checkpoint epoch whose encoder produced the codes.
    pub epoch: usize,
    pub latent: usize,
    pub conditions: usize,
    pub train_codes: usize,
    pub held_out_codes: usize,
    /// The rule capping the components, in words.
    pub cap_rule: String,
    /// The candidates fitted, in the order tried.
    pub candidates: Vec<CandidateFit>,
    /// Candidates not fitted: no condition had the codes their components need.
    pub skipped: Vec<PriorShape>,
    /// Index in `candidates` of the prior kept.
    pub chosen: usize,
    /// Seconds encoding the training and held-out images (0 for given codes).
    pub encode_seconds: f64,
    /// Seconds of the whole selection: encoding, every fit and every score.
    pub seconds: f64,
}

impl PriorSelection {
    pub fn chosen(&self) -> &CandidateFit {
        &self.candidates[self.chosen]
    }

    /// Writes the table as JSON.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::files::write_atomic(path, &serde_json::to_vec_pretty(self).expect("a selection serializes"))
    }

    /// Reads a table written by [`PriorSelection::save`].
    pub fn load(path: &Path) -> Result<PriorSelection> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_str(&text)
            .map_err(|e| Error::Checkpoint { path: path.to_path_buf(), message: format!("unreadable: {e}") })
    }
}

/// A log-density in JSON: a number, or null when it is not finite (JSON has no
/// NaN or infinity); null reads back as NaN.
mod finite_or_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &f64, s: S) -> std::result::Result<S::Ok, S::Error> {
        if value.is_finite() {
            s.serialize_f64(*value)
        } else {
            s.serialize_none()
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

/// How a condition's mixture is fitted.
#[derive(Clone, Copy, Debug)]
struct FitOptions {
    /// A condition of n codes gets at most max(1, n / this) components.
    min_per_component: usize,
    /// k-means++ starting centres (else codes spread evenly through the data order).
    plus_plus: bool,
    /// EM stops once an iteration gains less than this many nats per code (None: never early).
    tolerance: Option<f64>,
}

impl FitOptions {
    /// The fit [`LatentPrior::from_codes`] has always made.
    const ORIGINAL: FitOptions = FitOptions { min_per_component: 2, plus_plus: false, tolerance: None };

    /// Shaped fits and the selection's candidates.
    fn shaped(min_per_component: usize) -> FitOptions {
        FitOptions { min_per_component, plus_plus: true, tolerance: Some(EM_TOLERANCE) }
    }
}

/// Fits `shape` to codes: [n, latent] of conditions `condition` (each below
/// `conditions`); a condition with fewer than 2 codes keeps N(0, I).
fn fit_codes(
    codes: &Tensor,
    condition: &[i64],
    conditions: usize,
    shape: PriorShape,
    options: FitOptions,
    epoch: usize,
) -> LatentPrior {
    let (components, covariance) = (shape.components.max(1), shape.covariance);
    let (device, latent) = (codes.device(), codes.size()[1]);
    let index = Tensor::from_slice(condition).to_device(device);
    let mut means = Vec::with_capacity(conditions);
    let mut scales = Vec::with_capacity(conditions);
    let mut weights = Vec::with_capacity(conditions);
    let mut counts = Vec::with_capacity(conditions);
    tch::no_grad(|| {
        for c in 0..conditions {
            let rows = index.eq(c as i64).nonzero().squeeze_dim(1);
            let n = rows.size()[0];
            counts.push(n);
            let mixture = if n < 2 {
                Mixture::standard(components as i64, latent, covariance, device)
            } else {
                let z = codes.index_select(0, &rows).to_kind(Kind::Double);
                fit_mixture(&z, components, covariance, options, EM_CHUNK_BYTES)
            };
            means.push(mixture.means.to_kind(Kind::Float));
            scales.push(mixture.scale.to_kind(Kind::Float));
            weights.push(mixture.weights.to_kind(Kind::Float));
        }
    });
    LatentPrior {
        components,
        covariance,
        means: Tensor::cat(&means, 0),
        cholesky: Tensor::cat(&scales, 0),
        weights: Tensor::stack(&weights, 0),
        counts,
        epoch,
        selected: false,
    }
}

/// One condition's Gaussians, in double precision while fitting.
#[derive(Debug)]
struct Mixture {
    /// [K, latent]
    means: Tensor,
    /// full: Cholesky factors [K, latent, latent]; diagonal: standard
    /// deviations [K, latent]; tied: the shared Cholesky factor [1, latent, latent]
    scale: Tensor,
    /// [K], summing to 1
    weights: Tensor,
    covariance: Covariance,
}

impl Mixture {
    /// `k` copies of N(0, I) of equal weight.
    fn standard(k: i64, latent: i64, covariance: Covariance, device: Device) -> Mixture {
        let options = (Kind::Double, device);
        let eye = Tensor::eye(latent, options).unsqueeze(0);
        Mixture {
            means: Tensor::zeros([k, latent], options),
            scale: match covariance {
                Covariance::Full => eye.repeat([k, 1, 1]),
                Covariance::Diagonal => Tensor::ones([k, latent], options),
                Covariance::Tied => eye,
            },
            weights: Tensor::full([k], 1.0 / k as f64, options),
            covariance,
        }
    }

    /// The same mixture with `missing` unused components more: copies of the
    /// first with weight 0.
    fn padded(self, missing: i64) -> Mixture {
        if missing == 0 {
            return self;
        }
        let pad = |t: &Tensor| {
            Tensor::cat(&[t.shallow_clone(), t.narrow(0, 0, 1).repeat_interleave_self_int(missing, 0, None)], 0)
        };
        let zeros = Tensor::zeros([missing], (Kind::Double, self.weights.device()));
        Mixture {
            means: pad(&self.means),
            scale: match self.covariance {
                Covariance::Tied => self.scale,
                Covariance::Full | Covariance::Diagonal => pad(&self.scale),
            },
            weights: Tensor::cat(&[self.weights, zeros], 0),
            covariance: self.covariance,
        }
    }
}

/// One Gaussian (`components` = 1: the codes' mean and covariance) or a
/// Gaussian mixture fitted by EM from a k-means start, with covariances of the
/// given shape. At most n / `options.min_per_component` components are fitted
/// (at least 1); the rest of the `components` are padding of weight 0.
/// z: [n, latent] (double, n ≥ 2)
fn fit_mixture(
    z: &Tensor,
    components: usize,
    covariance: Covariance,
    options: FitOptions,
    chunk_bytes: i64,
) -> Mixture {
    let n = z.size()[0];
    // Every component needs points to stand on; fewer components than asked when there are few codes.
    let k = (components as i64).min(n / options.min_per_component.max(1) as i64).max(1);
    let mut resp =
        if k == 1 { Tensor::ones([n, 1], (Kind::Double, z.device())) } else { kmeans_start(z, k, options.plus_plus) };
    let mut fitted = mixture_m_step(z, &resp, covariance, chunk_bytes);
    let mut last = f64::NEG_INFINITY;
    for _ in 0..if k == 1 { 0 } else { EM_ITERATIONS } {
        let log_p = component_log_density(z, &fitted, chunk_bytes); // [n, K]
        if let Some(tolerance) = options.tolerance {
            // The mean log-likelihood of the current fit: EM never lowers it; stop when it stalls.
            let mean = log_p.logsumexp([1i64].as_slice(), false).mean(Kind::Double).double_value(&[]);
            if mean - last < tolerance {
                break;
            }
            last = mean;
        }
        resp = log_p.softmax(1, Kind::Double);
        fitted = mixture_m_step(z, &resp, covariance, chunk_bytes);
    }
    fitted.padded(components as i64 - k)
}

/// Mixture parameters from responsibilities resp: [n, K] (rows sum to 1). The
/// weights and means are the same for every shape; the covariances are
/// full: Σ_k = Σ_i r_ik (z_i − μ_k)(z_i − μ_k)ᵀ / n_k;
/// diagonal: σ²_kj = Σ_i r_ik (z_ij − μ_kj)² / n_k;
/// tied: Σ = Σ_k Σ_i r_ik (z_i − μ_k)(z_i − μ_k)ᵀ / n;
/// each with [`COVARIANCE_JITTER`] on its diagonal. One component keeps the
/// unbiased n − 1 of a sample covariance (full and tied are then the same).
fn mixture_m_step(z: &Tensor, resp: &Tensor, covariance: Covariance, chunk_bytes: i64) -> Mixture {
    let (n, latent) = (z.size()[0], z.size()[1]);
    let single = resp.size()[1] == 1;
    let nk = if single {
        Tensor::from(n as f64).to_device(z.device()).view([1])
    } else {
        resp.sum_dim_intlist([0i64].as_slice(), false, Kind::Double) + 1e-10
    }; // [K]
    let means = resp.transpose(0, 1).matmul(z) / nk.unsqueeze(1); // [K, latent]
    let denominator = if single { Tensor::from((n - 1) as f64).to_device(z.device()) } else { nk.shallow_clone() };
    let eye = Tensor::eye(latent, (Kind::Double, z.device()));
    let scale = match covariance {
        Covariance::Full => {
            let scatter = per_component_chunk(z, &means, chunk_bytes, |start, diff| {
                let weighted = diff * resp.narrow(1, start, diff.size()[0]).transpose(0, 1).unsqueeze(2);
                weighted.transpose(1, 2).matmul(diff) // [len, latent, latent]
            });
            let cov = scatter / denominator.view([-1, 1, 1]) + eye * COVARIANCE_JITTER;
            cov.linalg_cholesky(false)
        }
        Covariance::Diagonal => {
            // Σ_i r_ik (z_ij − μ_kj)² = Σ_i r_ik z_ij² − n_k μ_kj² (μ_k is the r_·k-weighted mean): one
            // [K, n] × [n, latent] product, taken about the codes' mean so that the difference does
            // not cancel what is left (what rounding leaves below 0 is 0, under the jitter).
            let (zc, mc) = centred(z, &means);
            let second = resp.transpose(0, 1).matmul(&zc.square()); // [K, latent]
            let scatter = (second - mc.square() * nk.unsqueeze(1)).clamp_min(0.0);
            (scatter / denominator.view([-1, 1]) + COVARIANCE_JITTER).sqrt()
        }
        Covariance::Tied => {
            // Σ_k Σ_i r_ik (z_i − μ_k)(z_i − μ_k)ᵀ = Σ_i z_i z_iᵀ − Σ_k n_k μ_k μ_kᵀ (each row of resp sums
            // to 1): one [latent, n] × [n, latent] product instead of K, about the codes' mean as above.
            let (zc, mc) = centred(z, &means);
            let scatter = zc.transpose(0, 1).matmul(&zc) - (&mc * nk.unsqueeze(1)).transpose(0, 1).matmul(&mc);
            let cov = scatter / if single { (n - 1) as f64 } else { n as f64 };
            (((&cov + cov.transpose(0, 1)) * 0.5) + eye * COVARIANCE_JITTER).linalg_cholesky(false).unsqueeze(0)
        }
    };
    Mixture { means, scale, weights: &nk / n as f64, covariance }
}

/// z and means about the mean of z: ([n, latent], [K, latent]).
fn centred(z: &Tensor, means: &Tensor) -> (Tensor, Tensor) {
    let centre = z.mean_dim([0i64].as_slice(), true, Kind::Double);
    (z - &centre, means - &centre)
}

/// log(w_k N(z_i | μ_k, Σ_k)): [n, K]
fn component_log_density(z: &Tensor, mixture: &Mixture, chunk_bytes: i64) -> Tensor {
    let latent = z.size()[1];
    let Mixture { means, scale, weights, covariance } = mixture;
    let (mahalanobis, log_det) = match covariance {
        Covariance::Full => {
            let mahalanobis = per_component_chunk(z, means, chunk_bytes, |start, diff| {
                let factors = scale.narrow(0, start, diff.size()[0]);
                let solved = factors.linalg_solve_triangular(&diff.transpose(1, 2), false, true, false); // [len, latent, n]
                solved.square().sum_dim_intlist([1i64].as_slice(), false, Kind::Double)
                // [len, n]
            }); // [K, n]
            let log_det = scale.diagonal(0, -2, -1).log().sum_dim_intlist([-1i64].as_slice(), false, Kind::Double);
            (mahalanobis, log_det * 2.0)
        }
        Covariance::Diagonal => {
            // Σ_j (z_ij − μ_kj)² / σ²_kj expanded into z²·σ⁻² − 2 z·(μ σ⁻²) + μ²·σ⁻²: [n, latent] ×
            // [latent, K] products (K · n · latent each, where the broadcast differences cost
            // a hundred times more), about the codes' mean; rounding below 0 is 0.
            let (zc, mc) = centred(z, means);
            let precision = scale.square().reciprocal(); // [K, latent]
            let cross = mc.multiply(&precision).matmul(&zc.transpose(0, 1)); // [K, n]
            let own = (mc.square() * &precision).sum_dim_intlist([1i64].as_slice(), true, Kind::Double); // [K, 1]
            let mahalanobis = (precision.matmul(&zc.square().transpose(0, 1)) - cross * 2.0 + own).clamp_min(0.0);
            (mahalanobis, scale.log().sum_dim_intlist([-1i64].as_slice(), false, Kind::Double) * 2.0)
        }
        Covariance::Tied => {
            // Whitened once by the shared factor: (z − μ_k)ᵀ Σ⁻¹ (z − μ_k) = |w_i − v_k|² with w = L⁻¹z,
            // v = L⁻¹μ, expanded as |w_i|² − 2 w_i·v_k + |v_k|² (about the codes' mean, as above).
            let factor = scale.get(0);
            let (zc, mc) = centred(z, means);
            let white = |x: &Tensor| factor.linalg_solve_triangular(&x.transpose(0, 1), false, true, false); // [latent, ·]
            let (w, v) = (white(&zc), white(&mc));
            let norms = |x: &Tensor| x.square().sum_dim_intlist([0i64].as_slice(), false, Kind::Double);
            let cross = v.transpose(0, 1).matmul(&w); // [K, n]
            let mahalanobis = (norms(&v).unsqueeze(1) - cross * 2.0 + norms(&w).unsqueeze(0)).clamp_min(0.0);
            let log_det = factor.diagonal(0, -2, -1).log().sum(Kind::Double) * 2.0;
            (mahalanobis, log_det.expand([means.size()[0]], false))
        }
    };
    let log_norm = (log_det + latent as f64 * (2.0 * std::f64::consts::PI).ln()) * -0.5 + weights.log();
    (mahalanobis * -0.5 + log_norm.unsqueeze(1)).transpose(0, 1)
}

/// Bytes of one [components, n, latent] temporary of the full-covariance EM
/// steps, at most (the diagonal and tied steps make none: they are products).
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

/// Hard responsibilities [n, K] from a few k-means (Lloyd) steps. With
/// `plus_plus`, started at K codes chosen by k-means++ (Arthur & Vassilvitskii
/// 2007): the first uniformly, each next with probability proportional to its
/// squared distance to the nearest centre so far, so that well-separated
/// clusters each get a centre; the draws come from a generator of fixed seed
/// (deterministic; torch's generator is left alone), and a centre left without
/// codes stays where it was. Else started at K codes spread evenly through the
/// data order (the original start; an empty centre goes to 0).
fn kmeans_start(z: &Tensor, k: i64, plus_plus: bool) -> Tensor {
    let n = z.size()[0];
    let starts: Vec<i64> = if plus_plus { plus_plus_starts(z, k) } else { (0..k).map(|i| i * n / k).collect() };
    let mut centres = z.index_select(0, &Tensor::from_slice(&starts).to_device(z.device()));
    let mut assign = Tensor::zeros([n], (Kind::Int64, z.device()));
    for _ in 0..10 {
        assign = Tensor::cdist(z, &centres, 2.0, None::<i64>).argmin(1, false);
        let one_hot = assign.one_hot(k).to_kind(Kind::Double); // [n, K]
        let sizes = one_hot.sum_dim_intlist([0i64].as_slice(), false, Kind::Double).clamp_min(1.0);
        let moved = one_hot.transpose(0, 1).matmul(z) / sizes.unsqueeze(1);
        centres = if plus_plus {
            let used = one_hot.sum_dim_intlist([0i64].as_slice(), false, Kind::Double).gt(0.0).unsqueeze(1);
            moved.where_self(&used, &centres)
        } else {
            moved
        };
    }
    assign.one_hot(k).to_kind(Kind::Double)
}

/// Seed of the k-means++ draws: every fit of the same codes starts the same.
const KMEANS_SEED: u64 = 0x5eed;

/// The k-means++ starting codes of [`kmeans_start`]: k row indices of z: [n, latent].
fn plus_plus_starts(z: &Tensor, k: i64) -> Vec<i64> {
    let n = z.size()[0];
    let mut rng = ChaCha8Rng::seed_from_u64(KMEANS_SEED);
    let mut starts = vec![rng.gen_range(0..n)];
    let mut nearest = Tensor::full([n], f64::INFINITY, (Kind::Double, z.device()));
    while (starts.len() as i64) < k {
        let last = z.narrow(0, *starts.last().expect("one start"), 1);
        let d2 = (z - &last).square().sum_dim_intlist([1i64].as_slice(), false, Kind::Double);
        nearest = nearest.minimum(&d2);
        let weights: Vec<f64> = Vec::try_from(nearest.to_device(Device::Cpu)).expect("double distances");
        let total: f64 = weights.iter().sum();
        let mut u = rng.gen::<f64>() * total;
        let drawn = (total > 0.0 && total.is_finite())
            .then(|| {
                weights.iter().position(|&w| {
                    u -= w;
                    u < 0.0 && w > 0.0
                })
            })
            .flatten();
        // Rounding may leave u ≥ 0 past the end: the last code of positive weight then; all at
        // distance 0 (fewer distinct codes than K): any code.
        let next = drawn.or_else(|| weights.iter().rposition(|&w| w > 0.0)).map(|i| i as i64);
        starts.push(next.unwrap_or_else(|| rng.gen_range(0..n)));
    }
    starts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        f64::try_from((a - b).abs().max()).unwrap()
    }

    /// Chunking the components is only a memory layout: one component per chunk
    /// and all of them at once give the same mixture, to the bit, for every shape.
    #[test]
    fn chunked_em_equals_unchunked() {
        tch::manual_seed(0);
        let z = (Tensor::randn([300, 6], (Kind::Double, Device::Cpu))
            + Tensor::randint(3, [300, 1], (Kind::Double, Device::Cpu)) * 4.0)
            .contiguous();
        assert!(component_chunks(&Tensor::zeros([5, 6], (Kind::Double, Device::Cpu)), 300, 1).count() == 5);
        for covariance in Covariance::ALL {
            for options in [FitOptions::ORIGINAL, FitOptions::shaped(2)] {
                let whole = fit_mixture(&z, 5, covariance, options, i64::MAX);
                let chunked = fit_mixture(&z, 5, covariance, options, 1);
                for (a, b) in
                    [(&whole.means, &chunked.means), (&whole.scale, &chunked.scale), (&whole.weights, &chunked.weights)]
                {
                    assert_eq!(a.size(), b.size());
                    assert_eq!(max_diff(a, b), 0.0, "{covariance}");
                }
            }
        }
    }

    /// Codes far from the origin in 5 dimensions, and soft responsibilities over 4 components.
    fn codes_and_responsibilities() -> (Tensor, Tensor) {
        tch::manual_seed(1);
        let z = Tensor::randn([200, 5], (Kind::Double, Device::Cpu)) * 3.0 + 10.0;
        let resp = Tensor::randn([200, 4], (Kind::Double, Device::Cpu)).softmax(1, Kind::Double);
        (z, resp)
    }

    /// The diagonal and tied M-steps' products equal the sums of the per-component
    /// scatters of the full M-step (which takes the differences themselves).
    #[test]
    fn diagonal_and_tied_scatters_equal_the_components_own() {
        let (z, resp) = codes_and_responsibilities();
        let full = mixture_m_step(&z, &resp, Covariance::Full, i64::MAX);
        let eye = Tensor::eye(5, (Kind::Double, Device::Cpu)) * COVARIANCE_JITTER;
        // Σ_full_k − jitter = S_k / n_k.
        let full_cov = full.scale.matmul(&full.scale.transpose(1, 2)) - &eye; // [K, 5, 5]
        let nk = &full.weights * 200.0;
        let tied = mixture_m_step(&z, &resp, Covariance::Tied, i64::MAX);
        let pooled = (&full_cov * nk.view([-1, 1, 1])).sum_dim_intlist([0i64].as_slice(), false, Kind::Double) / 200.0;
        let got = tied.scale.get(0).matmul(&tied.scale.get(0).transpose(0, 1)) - &eye;
        assert!(max_diff(&got, &pooled) < 1e-9, "tied: {}", max_diff(&got, &pooled));
        let diagonal = mixture_m_step(&z, &resp, Covariance::Diagonal, i64::MAX);
        let variances = diagonal.scale.square() - COVARIANCE_JITTER;
        let expected = full_cov.diagonal(0, -2, -1);
        assert!(max_diff(&variances, &expected) < 1e-9, "diagonal: {}", max_diff(&variances, &expected));
        assert!(max_diff(&diagonal.means, &full.means) == 0.0 && max_diff(&tied.weights, &full.weights) == 0.0);
    }

    /// The diagonal and tied E-steps' expanded forms equal the full E-step (the
    /// differences themselves) given the same Gaussians as full covariances.
    #[test]
    fn diagonal_and_tied_log_densities_equal_the_full_computation() {
        let (z, resp) = codes_and_responsibilities();
        for covariance in [Covariance::Diagonal, Covariance::Tied] {
            let fitted = mixture_m_step(&z, &resp, covariance, i64::MAX);
            let factors = match covariance {
                Covariance::Diagonal => fitted.scale.diag_embed(0, -2, -1),
                _ => fitted.scale.repeat([4, 1, 1]),
            };
            let as_full = Mixture {
                means: fitted.means.shallow_clone(),
                scale: factors,
                weights: fitted.weights.shallow_clone(),
                covariance: Covariance::Full,
            };
            let got = component_log_density(&z, &fitted, i64::MAX);
            let expected = component_log_density(&z, &as_full, i64::MAX);
            assert!(max_diff(&got, &expected) < 1e-8, "{covariance}: {}", max_diff(&got, &expected));
        }
    }
}
