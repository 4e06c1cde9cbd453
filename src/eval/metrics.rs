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

/// Each sample's verdict: whether the judge's most probable class is the
/// requested one, and the probability it gives the requested class.
/// probs: [n, C], labels: requested classes [n] → ([n], [n])
pub fn judged_points(probs: &Tensor, labels: &[i64]) -> Result<(Vec<bool>, Vec<f64>)> {
    let pred: Vec<i64> = Vec::try_from(probs.argmax(1, false).to_device(Device::Cpu))?;
    let lab = Tensor::from_slice(labels).to_device(probs.device());
    let confidence: Vec<f64> =
        Vec::<f32>::try_from(probs.gather(1, &lab.unsqueeze(1), false).squeeze_dim(1).to_device(Device::Cpu))?
            .into_iter()
            .map(f64::from)
            .collect();
    Ok((pred.iter().zip(labels).map(|(p, l)| p == l).collect(), confidence))
}

/// probs: [n, C], labels: requested classes [n]
pub fn conditional_accuracy(probs: &Tensor, labels: &[i64]) -> Result<ConditionalAccuracy> {
    let (correct, confidence) = judged_points(probs, labels)?;
    Ok(ConditionalAccuracy::from_points(&correct, &confidence, labels, probs.size()[1] as usize))
}

impl ConditionalAccuracy {
    /// The accuracies of per-sample verdicts ([`judged_points`]) over `classes` requested classes.
    pub fn from_points(correct: &[bool], confidence: &[f64], labels: &[i64], classes: usize) -> ConditionalAccuracy {
        let per_class = per_class_accuracy(correct, labels, classes, None);
        let present: Vec<f64> = per_class.iter().copied().filter(|v| !v.is_nan()).collect();
        let n = labels.len().max(1) as f64;
        ConditionalAccuracy {
            overall: correct.iter().filter(|&&c| c).count() as f64 / n,
            balanced: present.iter().sum::<f64>() / present.len().max(1) as f64,
            per_class,
            mean_confidence: confidence.iter().sum::<f64>() / n,
        }
    }
}

/// The share of correct verdicts per requested class (NaN where no sample asked
/// for it), each sample counted `weights[i]` times (once without weights).
pub fn per_class_accuracy(correct: &[bool], labels: &[i64], classes: usize, weights: Option<&[f64]>) -> Vec<f64> {
    let (mut hits, mut totals) = (vec![0.0; classes], vec![0.0; classes]);
    for (i, (&c, &l)) in correct.iter().zip(labels).enumerate() {
        let w = weights.map_or(1.0, |w| w[i]);
        totals[l as usize] += w;
        hits[l as usize] += if c { w } else { 0.0 };
    }
    hits.iter().zip(&totals).map(|(&h, &t)| if t == 0.0 { f64::NAN } else { h / t }).collect()
}

/// Mean and covariance (n − 1 in the denominator) of the rows of x: [n, d],
/// row i counted `weights[i]` times ([n] double) or once.
fn mean_cov(x: &Tensor, weights: Option<&Tensor>) -> (Tensor, Tensor) {
    let x = x.to_kind(Kind::Double);
    let Some(w) = weights else {
        let n = x.size()[0];
        let mu = x.mean_dim(0, false, Kind::Double);
        let centred = &x - &mu;
        let cov = centred.transpose(0, 1).matmul(&centred) / ((n - 1).max(1) as f64);
        return (mu, cov);
    };
    let total = w.sum(Kind::Double).double_value(&[]);
    let mu = w.unsqueeze(0).matmul(&x).squeeze_dim(0) / total.max(1.0);
    let centred = &x - &mu;
    let cov = (&centred * w.unsqueeze(1)).transpose(0, 1).matmul(&centred) / (total - 1.0).max(1.0);
    (mu, cov)
}

/// Trace of the square root of a symmetric positive semi-definite matrix.
fn trace_sqrt_psd(m: &Tensor) -> f64 {
    let sym = (m + m.transpose(0, 1)) / 2.0;
    let (eig, _) = sym.linalg_eigh("L");
    eig.clamp_min(0.0).sqrt().sum(Kind::Double).double_value(&[])
}

/// The Gaussian of a fixed feature set that Fréchet distances are measured
/// from: its mean, covariance and the covariance's square root.
pub struct FrechetReference {
    mean: Tensor,
    cov: Tensor,
    sqrt_cov: Tensor,
}

impl FrechetReference {
    /// a: [n, d]
    pub fn new(a: &Tensor) -> FrechetReference {
        let (mean, cov) = mean_cov(a, None);
        let (eig, vecs) = ((&cov + cov.transpose(0, 1)) / 2.0).linalg_eigh("L");
        let sqrt_cov = vecs.matmul(&eig.clamp_min(0.0).sqrt().diag(0)).matmul(&vecs.transpose(0, 1));
        FrechetReference { mean, cov, sqrt_cov }
    }

    /// The Fréchet distance to the Gaussian of b: [m, d], each row counted
    /// `weights[i]` times (a bootstrap resample's multiplicities) or once.
    pub fn distance(&self, b: &Tensor, weights: Option<&Tensor>) -> f64 {
        let (mu_b, cov_b) = mean_cov(b, weights);
        let middle = self.sqrt_cov.matmul(&cov_b).matmul(&self.sqrt_cov);
        let diff = (&self.mean - &mu_b).square().sum(Kind::Double).double_value(&[]);
        let traces = self.cov.trace().double_value(&[]) + cov_b.trace().double_value(&[]);
        (diff + traces - 2.0 * trace_sqrt_psd(&middle)).max(0.0)
    }
}

/// Fréchet distance between Gaussians fitted to two feature sets:
/// ‖μa − μb‖² + Tr(Σa + Σb − 2 (Σa^½ Σb Σa^½)^½). a: [n, d], b: [m, d]
pub fn frechet_distance(a: &Tensor, b: &Tensor) -> f64 {
    FrechetReference::new(a).distance(b, None)
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

/// Whether each of `queries` falls inside at least one ball (centre
/// `centres[i]`, radius `radii[i]`): [n] bool.
fn inside_any_ball(queries: &Tensor, centres: &Tensor, radii: &Tensor) -> Tensor {
    let n = queries.size()[0];
    let mut hits = Vec::new();
    for start in (0..n).step_by(2048) {
        let len = (n - start).min(2048);
        let d = Tensor::cdist(&queries.narrow(0, start, len), centres, 2.0, None::<i64>);
        hits.push(d.le_tensor(&radii.unsqueeze(0)).any_dim(1, false));
    }
    if hits.is_empty() {
        return Tensor::zeros([0], (Kind::Bool, queries.device()));
    }
    Tensor::cat(&hits, 0)
}

/// The share of true values of a bool tensor (0 when empty).
pub fn share(flags: &Tensor) -> f64 {
    flags.sum(Kind::Int64).int64_value(&[]) as f64 / flags.numel().max(1) as f64
}

/// The points behind precision and recall (k-NN balls, Kynkäänniemi et al.
/// 2019): whether each fake point lies inside the real manifold, [M] bool, and
/// whether each real point lies inside the fake manifold, [N] bool.
/// real: [N, d], fake: [M, d]
pub fn manifold_membership(real: &Tensor, fake: &Tensor, k: i64) -> (Tensor, Tensor) {
    let real = real.to_kind(Kind::Float);
    let fake = fake.to_kind(Kind::Float);
    let real_r = kth_neighbour_radius(&real, k);
    let fake_r = kth_neighbour_radius(&fake, k);
    (inside_any_ball(&fake, &real, &real_r), inside_any_ball(&real, &fake, &fake_r))
}

/// Improved precision and recall (Kynkäänniemi et al. 2019) with k-NN balls:
/// precision = share of fake points inside the real manifold, recall = share
/// of real points inside the fake manifold. real: [n, d], fake: [m, d]
pub fn precision_recall(real: &Tensor, fake: &Tensor, k: i64) -> (f64, f64) {
    let (fake_in_real, real_in_fake) = manifold_membership(real, fake, k);
    (share(&fake_in_real), share(&real_in_fake))
}

/// k of the k-NN balls of density and coverage (Naeem et al. 2020 use 5).
pub const DENSITY_COVERAGE_K: i64 = 5;

/// The points behind density and coverage (Naeem et al. 2020), on the real
/// k-NN balls B(Xᵢ, NND_k(Xᵢ)) only: for each fake point, how many real balls
/// hold it ([M] i64), and for each real ball, whether a fake point lies in it
/// ([N] bool). Inside a ball means closer than its radius (strictly, as the
/// authors' `prdc` code). None when there are no more than k real points.
/// X: `real` [N, d], Y: `fake` [M, d].
pub fn density_coverage_points(real: &Tensor, fake: &Tensor, k: i64) -> Option<(Tensor, Tensor)> {
    let (n, m) = (real.size()[0], fake.size()[0]);
    if n <= k || m == 0 || k < 1 {
        return None;
    }
    let real = real.to_kind(Kind::Float);
    let fake = fake.to_kind(Kind::Float);
    let radii = kth_neighbour_radius(&real, k);
    let mut balls_per_fake = Tensor::zeros([m], (Kind::Int64, fake.device()));
    let mut covered = Vec::new();
    for start in (0..n).step_by(2048) {
        let len = (n - start).min(2048);
        // [len, M]: fake j inside the ball of real i.
        let d = Tensor::cdist(&real.narrow(0, start, len), &fake, 2.0, None::<i64>);
        let inside = d.lt_tensor(&radii.narrow(0, start, len).unsqueeze(1));
        balls_per_fake += inside.sum_dim_intlist(0, false, Kind::Int64);
        covered.push(inside.any_dim(1, false));
    }
    Some((balls_per_fake, Tensor::cat(&covered, 0)))
}

/// Density and coverage (Naeem et al. 2020, "Reliable Fidelity and Diversity
/// Metrics for Generative Models") from [`density_coverage_points`]:
/// - density = 1/(k·M) Σⱼ Σᵢ 1[Yⱼ ∈ B(Xᵢ, NND_k(Xᵢ))]: how many real balls hold each fake point,
///   over k (≈ 1 when fake and real come from one distribution; above 1 when fakes crowd
///   dense real regions);
/// - coverage = 1/N Σᵢ 1[∃ j: Yⱼ ∈ B(Xᵢ, NND_k(Xᵢ))]: the share of real balls holding a fake point.
///
/// X: `real` [N, d], Y: `fake` [M, d]. None when there are no more than k real points.
pub fn density_coverage(real: &Tensor, fake: &Tensor, k: i64) -> Option<(f64, f64)> {
    let (balls_per_fake, covered) = density_coverage_points(real, fake, k)?;
    Some(density_coverage_of(&balls_per_fake, &covered, k))
}

/// (density, coverage) from their points ([`density_coverage_points`]) with balls of k neighbours.
pub fn density_coverage_of(balls_per_fake: &Tensor, covered: &Tensor, k: i64) -> (f64, f64) {
    let in_balls = balls_per_fake.sum(Kind::Int64).int64_value(&[]);
    (in_balls as f64 / (k * balls_per_fake.numel().max(1) as i64) as f64, share(covered))
}

/// Subsets of a KID estimate (torch-fidelity's `kid_subsets`, clean-fid's `num_subsets`).
pub const KID_SUBSETS: usize = 100;
/// Largest subset of a KID estimate (torch-fidelity's `kid_subset_size`, clean-fid's `max_subset_size`).
pub const KID_SUBSET_SIZE: usize = 1000;

/// The polynomial kernel of KID less its constant, k(x, y) − 1 = t(3 + t(3 + t))
/// with t = xᵀy / d (k = (t + 1)³), between the rows of a: [n, d] and of
/// `b_t`: b transposed, [d, m] → [n, m] f64. The constant cancels in every MMD²
/// (its three terms weigh it 1 + 1 − 2), and leaving it out keeps the sums small.
fn kernel_less_one(a: &Tensor, b_t: &Tensor) -> Tensor {
    let d = a.size()[1].max(1) as f64;
    let mut t = a.matmul(b_t);
    let _ = t.g_div_scalar_(d);
    let mut k = &t + 3.0;
    let _ = k.g_mul_(&t);
    let _ = k.g_add_scalar_(3.0);
    let _ = k.g_mul_(&t);
    k
}

/// The polynomial kernel of KID, k(x, y) = (xᵀy / d + 1)³, between the rows of
/// a: [n, d] and b: [m, d] → [n, m] f64.
pub fn polynomial_kernel(a: &Tensor, b: &Tensor) -> Tensor {
    let b_t = b.to_kind(Kind::Double).transpose(0, 1);
    kernel_less_one(&a.to_kind(Kind::Double), &b_t) + 1.0
}

/// Unbiased squared MMD with the kernel of KID between x: [m, d] and y: [n, d]
/// (m, n ≥ 2; None otherwise):
/// Σ_{i≠i'} k(xᵢ, xᵢ')/(m(m−1)) + Σ_{j≠j'} k(yⱼ, yⱼ')/(n(n−1)) − 2 Σ_{i,j} k(xᵢ, yⱼ)/(mn).
/// For m = n this is torch-fidelity's `mmd2(..., mmd_est='unbiased')`.
pub fn mmd2_unbiased(x: &Tensor, y: &Tensor) -> Option<f64> {
    let (m, n) = (x.size()[0] as f64, y.size()[0] as f64);
    if m < 2.0 || n < 2.0 {
        return None;
    }
    let (x, y) = (x.to_kind(Kind::Double), y.to_kind(Kind::Double));
    let (x_t, y_t) = (x.transpose(0, 1), y.transpose(0, 1));
    let sum = |k: &Tensor| k.sum(Kind::Double).double_value(&[]);
    let off_diagonal = |k: Tensor| sum(&k) - k.trace().double_value(&[]);
    let xx = off_diagonal(kernel_less_one(&x, &x_t));
    let yy = off_diagonal(kernel_less_one(&y, &y_t));
    let xy = sum(&kernel_less_one(&x, &y_t));
    Some(xx / (m * (m - 1.0)) + yy / (n * (n - 1.0)) - 2.0 * xy / (m * n))
}

/// A kernel inception distance (Bińkowski et al. 2018), here in a judge's feature layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Kid {
    /// Mean over subsets of the unbiased MMD² (as is, not × 1000).
    pub mean: f64,
    /// Standard deviation over subsets (population, ddof 0, as torch-fidelity's `np.std`).
    pub std: f64,
    pub subsets: usize,
    /// Images a side in each subset: min(`max_subset_size`, real, fake).
    pub subset_size: usize,
}

/// KID between `real`: [N, d] and `fake`: [M, d] as torch-fidelity and clean-fid
/// compute it: `subsets` times, s = min(`max_subset_size`, N, M) real and s fake
/// rows drawn without replacement (seeded), their unbiased MMD² with the kernel
/// (xᵀy/d + 1)³ ([`mmd2_unbiased`]); the mean and standard deviation of those.
/// None with fewer than 2 rows a side.
///
/// Cheap: the kernel is computed once for every pair of rows (f64), and each
/// subset's sums are quadratic forms wᵀKv of 0/1 indicator vectors, for all
/// subsets at once ([`kernel_pair_sums`]).
pub fn kernel_distance(real: &Tensor, fake: &Tensor, subsets: usize, max_subset_size: usize, seed: u64) -> Option<Kid> {
    let (n, m) = (real.size()[0] as usize, fake.size()[0] as usize);
    let s = max_subset_size.min(n).min(m);
    if s < 2 || subsets == 0 {
        return None;
    }
    // Indicator columns of the subsets: [N, subsets] and [M, subsets].
    let (mut wx, mut wy) = (vec![0f64; n * subsets], vec![0f64; m * subsets]);
    for (t, (xs, ys)) in kid_subset_draws(n, m, s, subsets, seed).into_iter().enumerate() {
        xs.into_iter().for_each(|i| wx[i * subsets + t] = 1.0);
        ys.into_iter().for_each(|j| wy[j * subsets + t] = 1.0);
    }
    let wx = Tensor::from_slice(&wx).view([n as i64, subsets as i64]).to_device(real.device());
    let wy = Tensor::from_slice(&wy).view([m as i64, subsets as i64]).to_device(real.device());
    let (x, y) = (real.to_kind(Kind::Double), fake.to_kind(Kind::Double));
    let xx = kernel_pair_sums(&x, &wx, &x, &wx, true);
    let yy = kernel_pair_sums(&y, &wy, &y, &wy, true);
    let xy = kernel_pair_sums(&x, &wx, &y, &wy, false);
    let s_f = s as f64;
    let mmd2 = (xx + yy) / (s_f * (s_f - 1.0)) - xy * (2.0 / (s_f * s_f));
    let values = Vec::<f64>::try_from(mmd2.to_device(Device::Cpu)).ok()?;
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64).sqrt();
    Some(Kid { mean, std, subsets, subset_size: s })
}

/// For every subset t, Σ (k(aᵢ, bⱼ) − 1) over the pairs with aᵢ in it (`wa`'s
/// column t) and bⱼ in it (`wb`'s), without the pairs i = j when `skip_diagonal`
/// (a = b): the quadratic forms `wa`ₜᵀ K `wb`ₜ, in blocks of rows so each block
/// of the kernel stays in cache. a: [n, d], wa: [n, T], b: [m, d], wb: [m, T] → [T]
fn kernel_pair_sums(a: &Tensor, wa: &Tensor, b: &Tensor, wb: &Tensor, skip_diagonal: bool) -> Tensor {
    const ROWS: i64 = 160;
    let (n, d) = (a.size()[0], a.size()[1].max(1) as f64);
    let b_t = b.transpose(0, 1).contiguous();
    let mut sums = Tensor::zeros([wa.size()[1]], (Kind::Double, a.device()));
    for start in (0..n).step_by(ROWS as usize) {
        let len = ROWS.min(n - start);
        let k = kernel_less_one(&a.narrow(0, start, len), &b_t);
        sums += (wa.narrow(0, start, len) * k.matmul(wb)).sum_dim_intlist(0, false, Kind::Double);
    }
    if skip_diagonal {
        // k(aᵢ, aᵢ) − 1 from the squared norms, over each subset's rows.
        let t = a.square().sum_dim_intlist(1, false, Kind::Double) / d;
        let diagonal = &t * ((&t + 3.0) * &t + 3.0);
        sums -= diagonal.unsqueeze(0).matmul(wa).squeeze_dim(0);
    }
    sums
}

/// The rows of each subset of [`kernel_distance`]: `subsets` pairs of `size`
/// real rows of `n` and `size` fake rows of `m`, each without replacement,
/// drawn alternately from one stream seeded by `seed`.
pub fn kid_subset_draws(n: usize, m: usize, size: usize, subsets: usize, seed: u64) -> Vec<(Vec<usize>, Vec<usize>)> {
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..subsets)
        .map(|_| {
            let xs = rand::seq::index::sample(&mut rng, n, size).into_vec();
            (xs, rand::seq::index::sample(&mut rng, m, size).into_vec())
        })
        .collect()
}

/// Per-condition (intra-class) KID: within every condition present on both
/// sides with at least 2 rows each, the unbiased MMD² of its real rows against
/// its fake rows (all of them: conditions hold far fewer than
/// [`KID_SUBSET_SIZE`] images, where every subset is the whole set).
/// (mean over those conditions, the largest), None when there is none.
/// real: [N, d] with `real_conditions` [N], fake: [M, d] with `fake_conditions` [M].
pub fn per_condition_kid<K: Ord + Copy>(
    real: &Tensor,
    real_conditions: &[K],
    fake: &Tensor,
    fake_conditions: &[K],
) -> Option<(f64, f64)> {
    let rows = |conditions: &[K], c: K| {
        let idx: Vec<i64> = conditions.iter().enumerate().filter(|(_, &k)| k == c).map(|(i, _)| i as i64).collect();
        Tensor::from_slice(&idx)
    };
    let present: std::collections::BTreeSet<K> = fake_conditions.iter().copied().collect();
    let values: Vec<f64> = present
        .into_iter()
        .filter_map(|c| {
            let x = real.index_select(0, &rows(real_conditions, c).to_device(real.device()));
            let y = fake.index_select(0, &rows(fake_conditions, c).to_device(fake.device()));
            mmd2_unbiased(&x, &y)
        })
        .collect();
    if values.is_empty() {
        return None;
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    Some((mean, values.iter().copied().fold(f64::NEG_INFINITY, f64::max)))
}

/// The pairwise feature distances within each class (at most the first 500 rows of a class).
pub struct ClassDistances {
    /// Per class with at least 2 rows: its rows and their distances [m, m] (double).
    blocks: Vec<(Tensor, Tensor)>,
}

impl ClassDistances {
    /// features: [n, d], labels: [n]
    pub fn new(features: &Tensor, labels: &[i64]) -> ClassDistances {
        let classes: std::collections::BTreeSet<i64> = labels.iter().copied().collect();
        let blocks = classes
            .into_iter()
            .filter_map(|c| {
                let idx: Vec<i64> =
                    labels.iter().enumerate().filter(|(_, &l)| l == c).map(|(i, _)| i as i64).take(500).collect();
                if idx.len() < 2 {
                    return None;
                }
                let idx = Tensor::from_slice(&idx).to_device(features.device());
                let f = features.index_select(0, &idx);
                Some((idx, Tensor::cdist(&f, &f, 2.0, None::<i64>).to_kind(Kind::Double)))
            })
            .collect();
        ClassDistances { blocks }
    }

    /// The mean distance between two different samples of a class, averaged
    /// over the classes, with row i counted `weights[i]` times ([n] double) or
    /// once: per class wᵀDw / ((Σw)² − Σw²), pairs of a row with itself left out.
    pub fn mean(&self, weights: Option<&Tensor>) -> f64 {
        let means: Vec<f64> = self
            .blocks
            .iter()
            .filter_map(|(idx, d)| {
                let w = match weights {
                    Some(w) => w.index_select(0, idx),
                    None => Tensor::ones([idx.size()[0]], (Kind::Double, d.device())),
                };
                let total = w.sum(Kind::Double).double_value(&[]);
                let pairs = total * total - w.square().sum(Kind::Double).double_value(&[]);
                let sum = w.unsqueeze(0).matmul(d).matmul(&w.unsqueeze(1)).double_value(&[0, 0]);
                (pairs > 0.0).then(|| sum / pairs)
            })
            .collect();
        means.iter().sum::<f64>() / means.len().max(1) as f64
    }
}

/// Mean pairwise feature distance within each class, averaged over the classes
/// present. features: [n, d], labels: [n]
pub fn within_class_diversity(features: &Tensor, labels: &[i64]) -> f64 {
    ClassDistances::new(features, labels).mean(None)
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

/// Memorization check per sample: whether its nearest image in `reference` (a
/// subset of the real train split) is closer than the 1st percentile of the
/// reference set's own nearest-neighbour distances, and that threshold.
/// samples, reference: uint8 flat [n·784]
pub fn memorized_points(samples: &[u8], reference: &[u8]) -> Result<(Vec<bool>, f64)> {
    let to_t = |v: &[u8]| crate::data::pixels_to_tensor(v, Device::Cpu).view([-1, PIXELS as i64]);
    let (s, r) = (to_t(samples), to_t(reference));
    let mut own = nearest_distances(&r, &r, true)?;
    own.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let threshold = own.get(own.len() / 100).copied().unwrap_or(0.0) as f64;
    let near = nearest_distances(&s, &r, false)?;
    Ok((near.iter().map(|&d| (d as f64) < threshold).collect(), threshold))
}

/// The share of true flags (0 when there are none).
pub fn share_of(flags: &[bool]) -> f64 {
    flags.iter().filter(|&&f| f).count() as f64 / flags.len().max(1) as f64
}

/// Memorization check: the share of [`memorized_points`] and the threshold.
/// samples, reference: uint8 flat [n·784]
pub fn memorization_share(samples: &[u8], reference: &[u8]) -> Result<(f64, f64)> {
    let (memorized, threshold) = memorized_points(samples, reference)?;
    Ok((share_of(&memorized), threshold))
}

/// Whether each K49 sample's measured style (foreground count above the
/// class's train median = thick) matches the requested one.
/// images: flat [n·784], classes, styles: [n]
pub fn style_hits(images: &[u8], classes: &[i64], styles: &[i64], medians: &[f64]) -> Vec<bool> {
    images
        .chunks_exact(PIXELS)
        .zip(classes.iter().zip(styles))
        .map(|(img, (&c, &s))| {
            let count = img.iter().filter(|&&p| p >= k49::FOREGROUND_THRESHOLD).count() as f64;
            ((count > medians[c as usize]) as i64) == s
        })
        .collect()
}

/// Share of K49 samples whose measured style matches the requested one ([`style_hits`]).
pub fn style_accuracy(images: &[u8], classes: &[i64], styles: &[i64], medians: &[f64]) -> f64 {
    share_of(&style_hits(images, classes, styles, medians))
}
