//! Metrics for a set of conditional samples, measured by a judge.
//!
//! Feature space: the judge's 128-unit feature layer (see [`super::judge`]).

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::data::{k49, sign, PIXELS};
use crate::task::Experiment;
use crate::Result;

/// Probabilities over the task's conditions from the judge's probabilities:
/// for `sign-vowel` the 24 letter probabilities are summed into consonant/vowel.
/// probs: [n, K judge] → [n, C task]
pub fn condition_probs(experiment: Experiment, probs: &Tensor) -> Tensor {
    match experiment {
        Experiment::SignVowel => {
            let vowel: Vec<f32> = (0..24u8).map(|l| sign::is_vowel(l) as f32).collect();
            let vowel = Tensor::from_slice(&vowel).to_device(probs.device());
            let p_vowel = probs.matmul(&vowel);
            Tensor::stack(&[&(1.0 - &p_vowel), &p_vowel], 1)
        }
        _ => probs.shallow_clone(),
    }
}

/// Accuracy of the judge's verdicts against the requested conditions.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConditionalAccuracy {
    /// Share of samples whose most probable class is the requested one.
    pub overall: f64,
    /// Mean of the per-class accuracies (classes with samples only).
    pub balanced: f64,
    /// Per requested class (NaN where no sample asked for it).
    pub per_class: Vec<f64>,
    /// Mean probability the judge gives the requested class.
    pub mean_confidence: f64,
}

/// probs: [n, C], labels: requested classes [n]
pub fn conditional_accuracy(probs: &Tensor, labels: &[i64]) -> Result<ConditionalAccuracy> {
    let c = probs.size()[1] as usize;
    let pred: Vec<i64> = Vec::try_from(probs.argmax(1, false).to_device(Device::Cpu))?;
    let lab = Tensor::from_slice(labels).to_device(probs.device());
    let conf: Vec<f64> =
        Vec::<f32>::try_from(probs.gather(1, &lab.unsqueeze(1), false).squeeze_dim(1).to_device(Device::Cpu))?
            .into_iter()
            .map(f64::from)
            .collect();
    let (mut hits, mut totals) = (vec![0usize; c], vec![0usize; c]);
    for (&p, &l) in pred.iter().zip(labels) {
        totals[l as usize] += 1;
        hits[l as usize] += (p == l) as usize;
    }
    let per_class: Vec<f64> =
        hits.iter().zip(&totals).map(|(&h, &t)| if t == 0 { f64::NAN } else { h as f64 / t as f64 }).collect();
    let present: Vec<f64> = per_class.iter().copied().filter(|v| !v.is_nan()).collect();
    let n = labels.len().max(1) as f64;
    Ok(ConditionalAccuracy {
        overall: hits.iter().sum::<usize>() as f64 / n,
        balanced: present.iter().sum::<f64>() / present.len().max(1) as f64,
        per_class,
        mean_confidence: conf.iter().sum::<f64>() / n,
    })
}

fn mean_cov(x: &Tensor) -> (Tensor, Tensor) {
    let x = x.to_kind(Kind::Double);
    let n = x.size()[0];
    let mu = x.mean_dim(0, false, Kind::Double);
    let centred = &x - &mu;
    let cov = centred.transpose(0, 1).matmul(&centred) / ((n - 1).max(1) as f64);
    (mu, cov)
}

/// Trace of the square root of a symmetric positive semi-definite matrix.
fn trace_sqrt_psd(m: &Tensor) -> f64 {
    let sym = (m + m.transpose(0, 1)) / 2.0;
    let (eig, _) = sym.linalg_eigh("L");
    eig.clamp_min(0.0).sqrt().sum(Kind::Double).double_value(&[])
}

/// Fréchet distance between Gaussians fitted to two feature sets:
/// ‖μa − μb‖² + Tr(Σa + Σb − 2 (Σa^½ Σb Σa^½)^½). a: [n, d], b: [m, d]
pub fn frechet_distance(a: &Tensor, b: &Tensor) -> f64 {
    let (mu_a, cov_a) = mean_cov(a);
    let (mu_b, cov_b) = mean_cov(b);
    let (eig, vecs) = ((&cov_a + cov_a.transpose(0, 1)) / 2.0).linalg_eigh("L");
    let sqrt_a = vecs.matmul(&eig.clamp_min(0.0).sqrt().diag(0)).matmul(&vecs.transpose(0, 1));
    let middle = sqrt_a.matmul(&cov_b).matmul(&sqrt_a);
    let diff = (&mu_a - &mu_b).square().sum(Kind::Double).double_value(&[]);
    let traces = cov_a.trace().double_value(&[]) + cov_b.trace().double_value(&[]);
    (diff + traces - 2.0 * trace_sqrt_psd(&middle)).max(0.0)
}

/// Distance from each row of `x` to its k-th nearest other row of `x`. x: [n, d]
fn kth_neighbour_radius(x: &Tensor, k: i64) -> Tensor {
    let mut radii = Vec::new();
    let n = x.size()[0];
    for start in (0..n).step_by(2048) {
        let len = (n - start).min(2048);
        let d = Tensor::cdist(&x.narrow(0, start, len), x, 2.0, None::<i64>);
        // The nearest "neighbour" at distance 0 is the point itself: take k + 1.
        let (vals, _) = d.topk(k + 1, 1, false, true);
        radii.push(vals.select(1, k));
    }
    Tensor::cat(&radii, 0)
}

/// Share of `queries` that fall inside at least one ball (centre `centres[i]`, radius `radii[i]`).
fn coverage(queries: &Tensor, centres: &Tensor, radii: &Tensor) -> f64 {
    let n = queries.size()[0];
    let mut inside = 0i64;
    for start in (0..n).step_by(2048) {
        let len = (n - start).min(2048);
        let d = Tensor::cdist(&queries.narrow(0, start, len), centres, 2.0, None::<i64>);
        let hit = d.le_tensor(&radii.unsqueeze(0)).any_dim(1, false);
        inside += hit.sum(Kind::Int64).int64_value(&[]);
    }
    inside as f64 / n.max(1) as f64
}

/// Improved precision and recall (Kynkäänniemi et al. 2019) with k-NN balls:
/// precision = share of fake points inside the real manifold, recall = share
/// of real points inside the fake manifold. real: [n, d], fake: [m, d]
pub fn precision_recall(real: &Tensor, fake: &Tensor, k: i64) -> (f64, f64) {
    let real = real.to_kind(Kind::Float);
    let fake = fake.to_kind(Kind::Float);
    let real_r = kth_neighbour_radius(&real, k);
    let fake_r = kth_neighbour_radius(&fake, k);
    (coverage(&fake, &real, &real_r), coverage(&real, &fake, &fake_r))
}

/// Mean pairwise feature distance within each class, averaged over the classes
/// present. features: [n, d], labels: [n]
pub fn within_class_diversity(features: &Tensor, labels: &[i64]) -> f64 {
    let classes: std::collections::BTreeSet<i64> = labels.iter().copied().collect();
    let mut means = Vec::new();
    for c in classes {
        let idx: Vec<i64> =
            labels.iter().enumerate().filter(|(_, &l)| l == c).map(|(i, _)| i as i64).take(500).collect();
        if idx.len() < 2 {
            continue;
        }
        let f = features.index_select(0, &Tensor::from_slice(&idx).to_device(features.device()));
        let d = Tensor::cdist(&f, &f, 2.0, None::<i64>);
        let m = idx.len() as f64;
        means.push(d.sum(Kind::Double).double_value(&[]) / (m * (m - 1.0)));
    }
    means.iter().sum::<f64>() / means.len().max(1) as f64
}

/// Pixel-space nearest-neighbour distances (L2 over [0, 1] pixels) of each
/// query image to a reference set, excluding an identical index when
/// `exclude_self`. queries: [n, 784] f32, reference: [m, 784] f32
fn nearest_distances(queries: &Tensor, reference: &Tensor, exclude_self: bool) -> Result<Vec<f32>> {
    let n = queries.size()[0];
    let mut out = Vec::new();
    for start in (0..n).step_by(1024) {
        let len = (n - start).min(1024);
        let d = Tensor::cdist(&queries.narrow(0, start, len), reference, 2.0, None::<i64>);
        let (vals, _) = d.topk(if exclude_self { 2 } else { 1 }, 1, false, true);
        let v = vals.select(1, if exclude_self { 1 } else { 0 });
        out.extend(Vec::<f32>::try_from(v.to_device(Device::Cpu))?);
    }
    Ok(out)
}

/// Memorization check: the share of samples whose nearest image in `reference`
/// (a subset of the real train split) is closer than the 1st percentile of the
/// reference set's own nearest-neighbour distances. samples, reference: uint8 flat [n·784]
pub fn memorization_share(samples: &[u8], reference: &[u8]) -> Result<(f64, f64)> {
    let to_t = |v: &[u8]| crate::data::pixels_to_tensor(v, Device::Cpu).view([-1, PIXELS as i64]);
    let (s, r) = (to_t(samples), to_t(reference));
    let mut own = nearest_distances(&r, &r, true)?;
    own.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let threshold = own.get(own.len() / 100).copied().unwrap_or(0.0) as f64;
    let near = nearest_distances(&s, &r, false)?;
    let share = near.iter().filter(|&&d| (d as f64) < threshold).count() as f64 / near.len().max(1) as f64;
    Ok((share, threshold))
}

/// Share of K49 samples whose measured style (foreground count above the
/// class's train median = thick) matches the requested one.
/// images: flat [n·784], classes, styles: [n]
pub fn style_accuracy(images: &[u8], classes: &[i64], styles: &[i64], medians: &[f64]) -> f64 {
    let hits = images
        .chunks_exact(PIXELS)
        .zip(classes.iter().zip(styles))
        .filter(|(img, (&c, &s))| {
            let count = img.iter().filter(|&&p| p >= k49::FOREGROUND_THRESHOLD).count() as f64;
            ((count > medians[c as usize]) as i64) == s
        })
        .count();
    hits as f64 / classes.len().max(1) as f64
}
