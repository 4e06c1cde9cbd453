//! The data-copying test of Meehan, Chaudhuri & Dasgupta, "A Non-Parametric
//! Test to Detect Data-Copying in Generative Models" (AISTATS 2020), following
//! their reference code (github.com/casey-meehan/data-copying,
//! `data_copying_tests.py`).
//!
//! Three sets of points in one feature space (here the judge's 128-unit
//! feature layer): the training set T, a held-out set P_n of real images the
//! generator never trained on, and the generated samples Q_m. A generator that
//! copies puts its samples closer to T than fresh data from the same
//! distribution lands; one that underfits puts them farther away.
//!
//! - The space is cut into k cells by k-means fitted on T alone
//!   ([`kmeans`]; each point belongs to the cell of its nearest centre).
//! - In each cell π, every held-out and generated point gets its distance to
//!   the nearest training point of the same cell (Euclidean), and the two sets
//!   of distances are compared by the Mann–Whitney U of the generated ones,
//!   standardised under the null hypothesis ([`mann_whitney_z`]): Z_U(π) < 0
//!   when generated samples sit closer to T than held-out data does.
//! - C_T = Σ_π P_n(π) · Z_U(π) / Σ_π P_n(π) over the cells holding more than
//!   τ·m generated samples (the paper's Π_τ; its code takes τ·m = 20), with
//!   P_n(π) the held-out share of the cell.
//!
//! C_T ≪ 0 means data-copying; C_T ≈ 0 samples as far from the training data
//! as new real images are; C_T ≫ 0 samples farther from it (underfitting, or
//! samples unlike the data). Without copying each Z_U is about N(0, 1), so
//! their weighted mean rarely leaves ±2: below −3 is copying beyond chance.
//!
//! Two departures from the reference code, both documented where they act:
//! the variance of U carries the standard correction for ties (copies at
//! distance 0 tie with each other), and the null mean has no continuity
//! offset (the reference code's `n·m/2 − 0.5`; 0.5 / σ is below 0.01 for
//! cells of 20 points or more).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::{Error, Result};

/// Most cells the automatic partition uses (the paper's MNIST experiments use 50).
pub const MAX_CELLS: usize = 50;

/// How the test is run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CopyingOptions {
    /// Cells of the k-means partition (None: [`auto_cells`] of the set sizes).
    pub cells: Option<usize>,
    /// A cell enters C_T only when it holds more than this many generated
    /// samples (the paper's τ·m; its code sets τ = 20 / m).
    pub min_generated: usize,
    /// Seed of the k-means start.
    pub seed: u64,
    /// Lloyd iterations at most (it usually stops earlier, when no point changes cell).
    pub max_iterations: usize,
}

impl Default for CopyingOptions {
    fn default() -> Self {
        CopyingOptions { cells: None, min_generated: 20, seed: 0, max_iterations: 100 }
    }
}

/// The partition's size for these set sizes: a cell per 200 training points,
/// and room for 40 held-out and 40 generated points per cell on average (twice
/// the τ·m = 20 a cell needs to count), between 1 and [`MAX_CELLS`].
/// 5,000 train, 2,400 held-out and 2,400 generated points give 25 cells;
/// 1,000 train points give 5.
pub fn auto_cells(train: usize, held_out: usize, generated: usize) -> usize {
    (train / 200).min(held_out / 40).min(generated / 40).clamp(1, MAX_CELLS)
}

/// One cell of the partition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellTest {
    /// Points of each set in the cell.
    pub train: usize,
    pub held_out: usize,
    pub generated: usize,
    /// Z_U of the generated against the held-out distances to the cell's
    /// training points (None when either set is absent from the cell).
    pub z: Option<f64>,
    /// Whether the cell enters C_T (more than `min_generated` generated samples and a Z_U).
    pub used: bool,
}

/// The outcome of [`data_copying`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CopyingTest {
    /// C_T: the held-out-weighted mean of Z_U over the cells used (None when no cell qualifies).
    pub c_t: Option<f64>,
    /// Every cell of the partition, in centre order.
    pub cells: Vec<CellTest>,
    /// Cells that entered C_T.
    pub cells_used: usize,
    /// Share of the generated samples that lie in the cells used (the rest are not tested).
    pub generated_share_used: f64,
}

/// The standardised Mann–Whitney U of `x` against `y`: U counts the pairs
/// (x_i, y_j) with x_i > y_j, ties counting one half, and
/// Z = (U − n_x·n_y / 2) / σ with the tie-corrected
/// σ² = n_x·n_y / 12 · (N + 1 − Σ_t (t³ − t) / (N (N − 1))), N = n_x + n_y,
/// t running over the sizes of groups of tied values. Negative when `x` tends
/// to be smaller than `y`. None when either set is empty; 0 when every value is tied.
pub fn mann_whitney_z(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.is_empty() || y.is_empty() {
        return None;
    }
    let (nx, ny) = (x.len() as f64, y.len() as f64);
    let mut all: Vec<(f64, bool)> = x.iter().map(|&v| (v, true)).chain(y.iter().map(|&v| (v, false))).collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Mid-ranks (1-based) over groups of equal values; the rank sum of x and the tie term.
    let (mut rank_sum_x, mut ties) = (0.0, 0.0);
    let mut start = 0;
    while start < all.len() {
        let end = start + all[start..].iter().take_while(|p| p.0 == all[start].0).count();
        let mid_rank = (start + 1 + end) as f64 / 2.0;
        rank_sum_x += mid_rank * all[start..end].iter().filter(|p| p.1).count() as f64;
        let t = (end - start) as f64;
        ties += t * t * t - t;
        start = end;
    }
    let u = rank_sum_x - nx * (nx + 1.0) / 2.0;
    let n = nx + ny;
    let variance = nx * ny / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)));
    if variance <= 0.0 {
        return Some(0.0);
    }
    Some((u - nx * ny / 2.0) / variance.sqrt())
}

/// Euclidean distances computed directly (not through ‖a‖² + ‖b‖² − 2ab, whose
/// rounding leaves an identical pair a small positive distance).
const DIRECT_DISTANCES: i64 = 2;

/// k-means centres of the rows of `x` [n, d]: a seeded k-means++ start, then
/// Lloyd iterations until no point changes cell (at most `max_iterations`).
/// A cell left empty is given the point farthest from its centre, so every
/// centre holds at least one point when n ≥ k. Returns [min(k, n), d] in f64.
pub fn kmeans(x: &Tensor, k: usize, seed: u64, max_iterations: usize) -> Result<Tensor> {
    let x = x.to_device(Device::Cpu).to_kind(Kind::Double).contiguous();
    let n = x.size()[0] as usize;
    if n == 0 {
        return Ok(x);
    }
    let k = k.clamp(1, n);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // k-means++: each next centre drawn with probability ∝ squared distance to the nearest chosen one.
    let mut chosen = vec![rng.gen_range(0..n) as i64];
    let mut nearest_sq: Vec<f64> = Vec::new();
    while chosen.len() < k {
        let last = x.get(*chosen.last().expect("one centre")).unsqueeze(0);
        let d = Vec::<f64>::try_from((&x - &last).square().sum_dim_intlist([1i64].as_slice(), false, Kind::Double))?;
        nearest_sq =
            if nearest_sq.is_empty() { d } else { nearest_sq.iter().zip(&d).map(|(a, b)| a.min(*b)).collect() };
        let total: f64 = nearest_sq.iter().sum();
        let next = if total > 0.0 {
            let mut target = rng.gen::<f64>() * total;
            nearest_sq.iter().position(|&w| {
                target -= w;
                target < 0.0
            })
        } else {
            None
        };
        // Every point already on a centre (duplicates): take any point not yet chosen.
        let next = next.unwrap_or_else(|| (0..n).find(|i| !chosen.contains(&(*i as i64))).unwrap_or(0));
        chosen.push(next as i64);
    }
    let mut centres = x.index_select(0, &Tensor::from_slice(&chosen));
    let mut previous: Option<Tensor> = None;
    for _ in 0..max_iterations.max(1) {
        // Through matrix products: fast, and exact enough to choose a centre.
        let distances = Tensor::cdist(&x, &centres, 2.0, None::<i64>);
        let (nearest, assign) = distances.min_dim(1, false);
        if previous.as_ref().is_some_and(|p| p.equal(&assign)) {
            break;
        }
        let counts = assign.bincount(None::<Tensor>, k as i64);
        let sums = Tensor::zeros([k as i64, x.size()[1]], (Kind::Double, Device::Cpu)).index_add(0, &assign, &x);
        centres = sums / counts.to_kind(Kind::Double).clamp_min(1.0).unsqueeze(1);
        let empty = Vec::<i64>::try_from(counts.eq(0).nonzero().view([-1]))?;
        if empty.is_empty() {
            previous = Some(assign);
        } else {
            // The farthest points (from their own centres) become the empty cells' centres.
            let (_, far) = nearest.topk(empty.len() as i64, 0, true, true);
            let _ = centres.index_copy_(0, &Tensor::from_slice(&empty), &x.index_select(0, &far));
            previous = None;
        }
    }
    Ok(centres)
}

/// The cell (index of the nearest centre) of each row of `x`. x: [n, d] → n cells
fn cells_of(x: &Tensor, centres: &Tensor) -> Result<Vec<i64>> {
    if x.size()[0] == 0 {
        return Ok(Vec::new());
    }
    Ok(Vec::try_from(Tensor::cdist(x, centres, 2.0, DIRECT_DISTANCES).argmin(1, false))?)
}

/// The rows of `x` in `cell` (by `cells`), as a tensor.
fn rows_in(x: &Tensor, cells: &[i64], cell: i64) -> Tensor {
    let idx: Vec<i64> = cells.iter().enumerate().filter(|(_, &c)| c == cell).map(|(i, _)| i as i64).collect();
    x.index_select(0, &Tensor::from_slice(&idx))
}

/// For each row of `queries` [n, d], the distance to its nearest row of
/// `reference` [l, d] (l ≥ 1) and that row's index. Computed directly in f64,
/// so an exact copy is at distance 0.
pub fn nearest_neighbours(queries: &Tensor, reference: &Tensor) -> Result<(Vec<f64>, Vec<i64>)> {
    let (mut distances, mut indices) = (Vec::new(), Vec::new());
    if queries.size()[0] == 0 {
        return Ok((distances, indices));
    }
    let reference = reference.to_device(Device::Cpu).to_kind(Kind::Double);
    let queries = queries.to_device(Device::Cpu).to_kind(Kind::Double);
    for chunk in queries.split(1024, 0) {
        let (d, i) = Tensor::cdist(&chunk, &reference, 2.0, DIRECT_DISTANCES).min_dim(1, false);
        distances.extend(Vec::<f64>::try_from(d)?);
        indices.extend(Vec::<i64>::try_from(i)?);
    }
    Ok((distances, indices))
}

/// The data-copying test: C_T of `generated` (Q_m) against `held_out` (P_n),
/// with distances to `train` (T), in a k-means partition of `train`
/// (see the module documentation). train: [l, d], held_out: [n, d], generated: [m, d]
///
/// `held_out` must be real data that neither the generator nor the feature
/// extractor trained on: points the extractor was fitted on sit closer to T in
/// its features than new ones do, which would push C_T up and hide copying.
pub fn data_copying(
    train: &Tensor,
    held_out: &Tensor,
    generated: &Tensor,
    opts: &CopyingOptions,
) -> Result<CopyingTest> {
    let shapes = [("train", train), ("held-out", held_out), ("generated", generated)];
    for (name, t) in shapes {
        if t.dim() != 2 || t.size()[0] == 0 {
            return Err(Error::InvalidInput(format!(
                "the data-copying test needs a non-empty [n, d] {name} set, got {:?}",
                t.size()
            )));
        }
    }
    let d = train.size()[1];
    if held_out.size()[1] != d || generated.size()[1] != d {
        return Err(Error::Mismatch {
            message: format!(
                "data-copying test: train features have {d} dimensions, held-out {} and generated {}",
                held_out.size()[1],
                generated.size()[1]
            ),
        });
    }
    let prepare = |t: &Tensor| t.to_device(Device::Cpu).to_kind(Kind::Double).contiguous();
    let (t, p, q) = (prepare(train), prepare(held_out), prepare(generated));
    let (l, n, m) = (t.size()[0] as usize, p.size()[0] as usize, q.size()[0] as usize);
    let k = opts.cells.unwrap_or_else(|| auto_cells(l, n, m)).clamp(1, l);
    let centres = kmeans(&t, k, opts.seed, opts.max_iterations)?;
    let (t_cells, p_cells, q_cells) = (cells_of(&t, &centres)?, cells_of(&p, &centres)?, cells_of(&q, &centres)?);
    let count = |cells: &[i64], c: i64| cells.iter().filter(|&&x| x == c).count();
    let mut cells = Vec::with_capacity(k);
    for c in 0..centres.size()[0] {
        let (train_c, held_out_c, generated_c) = (count(&t_cells, c), count(&p_cells, c), count(&q_cells, c));
        let z = if train_c == 0 {
            None
        } else {
            let t_c = rows_in(&t, &t_cells, c);
            let (lp, _) = nearest_neighbours(&rows_in(&p, &p_cells, c), &t_c)?;
            let (lq, _) = nearest_neighbours(&rows_in(&q, &q_cells, c), &t_c)?;
            mann_whitney_z(&lq, &lp)
        };
        let used = z.is_some() && generated_c > opts.min_generated;
        cells.push(CellTest { train: train_c, held_out: held_out_c, generated: generated_c, z, used });
    }
    let used: Vec<&CellTest> = cells.iter().filter(|c| c.used).collect();
    let weight: usize = used.iter().map(|c| c.held_out).sum();
    let c_t =
        (weight > 0).then(|| used.iter().map(|c| c.held_out as f64 * c.z.unwrap_or(0.0)).sum::<f64>() / weight as f64);
    let generated_used: usize = used.iter().map(|c| c.generated).sum();
    Ok(CopyingTest { c_t, cells_used: used.len(), generated_share_used: generated_used as f64 / m as f64, cells })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mann_whitney_z_matches_hand_computation() {
        // x all below y: U = 0, mean 3, σ² = 2·3·6/12 = 3.
        let z = mann_whitney_z(&[1.0, 2.0, 3.0], &[4.0, 5.0]).unwrap();
        assert!((z + 3.0 / 3f64.sqrt()).abs() < 1e-12, "{z}");
        // And the mirror image.
        let z = mann_whitney_z(&[4.0, 5.0], &[1.0, 2.0, 3.0]).unwrap();
        assert!((z - 3.0 / 3f64.sqrt()).abs() < 1e-12, "{z}");
        // Ties: x = [1, 2, 2], y = [2, 3]. Pairs x > y: 1 vs (2, 3) none; each 2 ties the
        // 2 (½) and loses to 3: U = 1. Three values tie at 2: Σ t³ − t = 24, N = 5:
        // σ² = 6/12 · (6 − 24/20) = 2.4, Z = (1 − 3) / √2.4.
        let z = mann_whitney_z(&[1.0, 2.0, 2.0], &[2.0, 3.0]).unwrap();
        assert!((z + 2.0 / 2.4f64.sqrt()).abs() < 1e-12, "{z}");
        assert_eq!(mann_whitney_z(&[0.0, 0.0], &[0.0]), Some(0.0));
        // Against counting pairs and tie groups directly, on values with many ties.
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let x: Vec<f64> = (0..37).map(|_| rng.gen_range(0..9) as f64).collect();
        let y: Vec<f64> = (0..23).map(|_| rng.gen_range(2..12) as f64).collect();
        let u: f64 =
            x.iter().flat_map(|a| y.iter().map(move |b| (a > b) as u8 as f64 + 0.5 * (a == b) as u8 as f64)).sum();
        let mut groups = std::collections::BTreeMap::new();
        for v in x.iter().chain(&y) {
            *groups.entry(*v as i64).or_insert(0f64) += 1.0;
        }
        let ties: f64 = groups.values().map(|t| t * t * t - t).sum();
        let (nx, ny, n) = (37.0, 23.0, 60.0);
        let expected = (u - nx * ny / 2.0) / (nx * ny / 12.0 * (n + 1.0 - ties / (n * (n - 1.0)))).sqrt();
        let z = mann_whitney_z(&x, &y).unwrap();
        assert!((z - expected).abs() < 1e-12, "{z} vs {expected}");
        assert_eq!(mann_whitney_z(&[], &[1.0]), None);
    }

    #[test]
    fn kmeans_finds_separated_clusters_and_fills_every_cell() {
        let _rng = crate::test_support::torch_rng();
        tch::manual_seed(3);
        let offsets = Tensor::from_slice(&[0.0f64, 0.0, 20.0, 0.0, 0.0, 20.0]).view([3, 2]);
        let labels = Tensor::arange(300, (Kind::Int64, Device::Cpu)).remainder(3);
        let x = Tensor::randn([300, 2], (Kind::Double, Device::Cpu)) + offsets.index_select(0, &labels);
        let centres = kmeans(&x, 3, 1, 100).unwrap();
        let cells = cells_of(&x, &centres).unwrap();
        // Each true cluster is one cell.
        for cluster in 0..3 {
            let of: std::collections::BTreeSet<i64> = (cluster..300).step_by(3).map(|i| cells[i]).collect();
            assert_eq!(of.len(), 1, "cluster {cluster} split over {of:?}");
        }
        // More cells than clusters, and duplicated points: still no empty cell.
        let dup = Tensor::cat(&[&x, &x.narrow(0, 0, 5).repeat([20, 1])], 0);
        let centres = kmeans(&dup, 12, 2, 100).unwrap();
        let cells = cells_of(&dup, &centres).unwrap();
        for c in 0..12 {
            assert!(cells.contains(&c), "cell {c} empty");
        }
        // The same seed, the same partition.
        assert!(kmeans(&dup, 12, 2, 100).unwrap().equal(&centres));
        assert_eq!(kmeans(&dup.narrow(0, 0, 0), 3, 2, 100).unwrap().size(), [0, 2]);
    }

    #[test]
    fn copies_of_training_points_are_flagged_and_fresh_draws_are_not() {
        let _rng = crate::test_support::torch_rng();
        tch::manual_seed(11);
        let opts = (Kind::Float, Device::Cpu);
        let (l, n, m, d) = (2000usize, 1000usize, 1000usize, 16i64);
        let (li, ni, mi) = (l as i64, n as i64, m as i64);
        let train = Tensor::randn([li, d], opts);
        let held_out = Tensor::randn([ni, d], opts);
        let settings = CopyingOptions::default();

        let fresh = data_copying(&train, &held_out, &Tensor::randn([mi, d], opts), &settings).unwrap();
        let c_t = fresh.c_t.unwrap();
        eprintln!("fresh: C_T {c_t:.2} over {} of {} cells", fresh.cells_used, fresh.cells.len());
        assert!(c_t.abs() < 2.0, "fresh samples: C_T {c_t}");
        assert_eq!(fresh.cells.len(), auto_cells(l, n, m));
        assert_eq!(fresh.cells.iter().map(|c| c.train).sum::<usize>(), l);

        // Training points with a little noise (1 % of the spread).
        let idx = Tensor::randint(li, [mi], (Kind::Int64, Device::Cpu));
        let copies = train.index_select(0, &idx) + Tensor::randn([mi, d], opts) * 0.01;
        let copied = data_copying(&train, &held_out, &copies, &settings).unwrap();
        let c_t = copied.c_t.unwrap();
        eprintln!("copies: C_T {c_t:.2}");
        assert!(c_t < -10.0, "copies: C_T {c_t}");
        assert!(copied.generated_share_used > 0.9);

        // Samples spread wider than the data (underfitting) sit farther from T.
        let wide = data_copying(&train, &held_out, &(Tensor::randn([mi, d], opts) * 1.5), &settings).unwrap();
        eprintln!("wide: C_T {:.2}", wide.c_t.unwrap());
        assert!(wide.c_t.unwrap() > 3.0, "wide samples: C_T {:?}", wide.c_t);

        // Half copies, half fresh: still flagged.
        let half = Tensor::cat(&[copies.narrow(0, 0, mi / 2), Tensor::randn([mi / 2, d], opts)], 0);
        let c_t = data_copying(&train, &held_out, &half, &settings).unwrap().c_t.unwrap();
        eprintln!("half copies: C_T {c_t:.2}");
        assert!(c_t < -3.0, "half copies: C_T {c_t}");
    }

    #[test]
    fn cells_with_too_few_samples_are_left_out() {
        let _rng = crate::test_support::torch_rng();
        tch::manual_seed(12);
        let opts = (Kind::Float, Device::Cpu);
        let train = Tensor::randn([1000, 4], opts);
        let held_out = Tensor::randn([400, 4], opts);
        // Ten samples in all: no cell holds more than 20.
        let few = data_copying(&train, &held_out, &Tensor::randn([10, 4], opts), &CopyingOptions::default()).unwrap();
        assert_eq!((few.c_t, few.cells_used, few.generated_share_used), (None, 0, 0.0));
        // Unless τ·m is lowered.
        let settings = CopyingOptions { cells: Some(2), min_generated: 0, ..CopyingOptions::default() };
        let some = data_copying(&train, &held_out, &Tensor::randn([10, 4], opts), &settings).unwrap();
        assert!(some.c_t.is_some() && some.cells.len() == 2);
        // Mismatched feature sizes are refused.
        assert!(data_copying(&train, &held_out, &Tensor::randn([10, 5], opts), &settings).is_err());
        assert!(data_copying(&train, &Tensor::zeros([0, 4], opts), &held_out, &settings).is_err());
    }
}
