//! The Lipschitz constraint of a WGAN critic, measured: the critic's gradient
//! norm during the toy runs of [`super::gan`] (no constraint, weight clipping,
//! gradient penalty), and the power iteration spectral normalisation uses to
//! estimate a weight's largest singular value ([`SpectralNorm`]).

use tch::{nn, Device, Kind, Tensor};

use super::gan::ToyGanRun;
use crate::model::layers::SpectralNorm;
use crate::plot::{self, Figure, Series};
use crate::{Error, Result};

/// The critic's gradient norm over training, one line per run, on a log scale
/// (an unconstrained critic's grows by orders of magnitude).
pub fn critic_gradient_chart(runs: &[&ToyGanRun]) -> Result<Figure> {
    let series: Vec<Series> = runs
        .iter()
        .map(|r| Series::new(r.config.name.clone(), r.critic_gradient.iter().map(|&(s, g)| (s, g.log10())).collect()))
        .collect();
    plot::line_chart(
        "The critic's gradient norm at interpolates (1 = what a 1-Lipschitz critic may reach)",
        "generator step",
        "log₁₀ mean ‖∇ₓ D(x̂)‖",
        &series,
    )
}

/// The mean of the last `k` gradient norms a run recorded.
pub fn final_gradient_norm(run: &ToyGanRun, k: usize) -> f64 {
    let tail = &run.critic_gradient[run.critic_gradient.len().saturating_sub(k.max(1))..];
    tail.iter().map(|p| p.1).sum::<f64>() / tail.len().max(1) as f64
}

/// Spectral normalisation's estimate of σ(W), W's largest singular value,
/// after each power iteration, against the exact value from the SVD.
#[derive(Clone, Debug)]
pub struct PowerIteration {
    pub rows: i64,
    pub cols: i64,
    /// σ(W) by singular value decomposition.
    pub exact: f64,
    /// The second singular value: the iteration's error shrinks by (σ₂/σ₁)² per step.
    pub second: f64,
    /// (iteration, uᵀ W v) from [`SpectralNorm::sigma`], one power iteration per call.
    pub estimates: Vec<(f64, f64)>,
    /// The largest singular value of W / σ̂ with the last estimate σ̂ (exact SVD): about 1.
    pub normalised: f64,
}

/// The singular values of a matrix, largest first (in double precision). [m, n] → [min(m, n)]
fn singular_values(matrix: &Tensor) -> Tensor {
    matrix.to_kind(Kind::Double).svd(true, false).1
}

/// Runs `iterations` power iterations of [`SpectralNorm`] (random start, `seed`)
/// on a random Gaussian matrix W [rows, cols].
pub fn power_iteration(rows: i64, cols: i64, iterations: usize, seed: u64) -> Result<PowerIteration> {
    if rows < 1 || cols < 1 || iterations == 0 {
        return Err(Error::InvalidInput(format!("power_iteration: a {rows}×{cols} matrix, {iterations} iterations")));
    }
    tch::manual_seed(seed as i64);
    let weight = Tensor::randn([rows, cols], (Kind::Float, Device::Cpu));
    let singular = Vec::<f64>::try_from(singular_values(&weight))?;
    let vs = nn::VarStore::new(Device::Cpu);
    let sn = SpectralNorm::new(&vs.root(), &weight);
    let estimates: Vec<(f64, f64)> =
        (1..=iterations).map(|i| (i as f64, sn.sigma(&weight, true).double_value(&[]))).collect();
    let normalised = singular_values(&sn.normalize(&weight, false)).double_value(&[0]);
    Ok(PowerIteration {
        rows,
        cols,
        exact: singular[0],
        second: singular.get(1).copied().unwrap_or(0.0),
        estimates,
        normalised,
    })
}

/// The estimate over iterations against the exact σ(W).
pub fn power_iteration_chart(run: &PowerIteration) -> Result<Figure> {
    let n = run.estimates.len() as f64;
    let series = vec![
        Series::new("power iteration uᵀ W v", run.estimates.clone()),
        Series::new("exact σ(W), from the SVD", vec![(1.0, run.exact), (n, run.exact)]),
    ];
    plot::line_chart(
        &format!("Spectral norm of a random {}×{} matrix: the estimate after each iteration", run.rows, run.cols),
        "power iterations",
        "σ(W)",
        &series,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_power_iteration_reaches_the_largest_singular_value() {
        let _rng = crate::test_support::torch_rng();
        let run = power_iteration(64, 32, 60, 0).unwrap();
        let last = run.estimates.last().unwrap().1;
        assert!((last - run.exact).abs() < 1e-3 * run.exact, "{last} vs {}", run.exact);
        assert!(run.estimates[0].1 <= run.exact + 1e-4, "an estimate uᵀWv of unit vectors never exceeds σ₁");
        assert!((run.normalised - 1.0).abs() < 1e-3, "{}", run.normalised);
    }
}
