//! EM for a mixture of Gaussians per condition (full, diagonal or tied
//! covariances), chunked over components, started from k-means.

use super::*;

/// How a condition's mixture is fitted.
#[derive(Clone, Copy, Debug)]
pub(super) struct FitOptions {
    /// A condition of n codes gets at most max(1, n / this) components.
    min_per_component: usize,
    /// k-means++ starting centres (else codes spread evenly through the data order).
    plus_plus: bool,
    /// EM stops once an iteration gains less than this many nats per code (None: never early).
    tolerance: Option<f64>,
}

impl FitOptions {
    /// The fit [`LatentPrior::from_codes`] has always made.
    pub(super) const ORIGINAL: FitOptions = FitOptions { min_per_component: 2, plus_plus: false, tolerance: None };

    /// Shaped fits and the selection's candidates.
    pub(super) fn shaped(min_per_component: usize) -> FitOptions {
        FitOptions { min_per_component, plus_plus: true, tolerance: Some(EM_TOLERANCE) }
    }
}

/// Fits `shape` to codes: [n, latent] of conditions `condition` (each below
/// `conditions`); a condition with fewer than 2 codes keeps N(0, I).
pub(super) fn fit_codes(
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
pub(super) struct Mixture {
    /// [K, latent]
    pub(super) means: Tensor,
    /// full: Cholesky factors [K, latent, latent]; diagonal: standard
    /// deviations [K, latent]; tied: the shared Cholesky factor [1, latent, latent]
    pub(super) scale: Tensor,
    /// [K], summing to 1
    pub(super) weights: Tensor,
    pub(super) covariance: Covariance,
}

impl Mixture {
    /// `k` copies of N(0, I) of equal weight.
    pub(super) fn standard(k: i64, latent: i64, covariance: Covariance, device: Device) -> Mixture {
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
    pub(super) fn padded(self, missing: i64) -> Mixture {
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
pub(super) fn fit_mixture(
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
pub(super) fn mixture_m_step(z: &Tensor, resp: &Tensor, covariance: Covariance, chunk_bytes: i64) -> Mixture {
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
pub(super) fn centred(z: &Tensor, means: &Tensor) -> (Tensor, Tensor) {
    let centre = z.mean_dim([0i64].as_slice(), true, Kind::Double);
    (z - &centre, means - &centre)
}

/// log(w_k N(z_i | μ_k, Σ_k)): [n, K]
pub(super) fn component_log_density(z: &Tensor, mixture: &Mixture, chunk_bytes: i64) -> Tensor {
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
pub(super) const EM_CHUNK_BYTES: i64 = 32 << 20;

/// (first component, count) of each chunk of components whose [count, n, latent]
/// double temporaries stay within `chunk_bytes`: means: [K, latent], n codes.
pub(super) fn component_chunks(means: &Tensor, n: i64, chunk_bytes: i64) -> impl Iterator<Item = (i64, i64)> {
    let (k, latent) = (means.size()[0], means.size()[1]);
    let step = (chunk_bytes / (n * latent * 8).max(1)).clamp(1, k.max(1));
    (0..k).step_by(step as usize).map(move |start| (start, step.min(k - start)))
}

/// `per_chunk(first component, z − μ_k for the chunk's components: [len, n, latent])`
/// for each chunk of [`component_chunks`], concatenated along the components.
/// z: [n, latent], means: [K, latent]
pub(super) fn per_component_chunk(
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
pub(super) fn kmeans_start(z: &Tensor, k: i64, plus_plus: bool) -> Tensor {
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
pub(super) const KMEANS_SEED: u64 = 0x5eed;

/// The k-means++ starting codes of [`kmeans_start`]: k row indices of z: [n, latent].
pub(super) fn plus_plus_starts(z: &Tensor, k: i64) -> Vec<i64> {
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

    pub(super) fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        f64::try_from((a - b).abs().max()).unwrap()
    }

    /// Chunking the components is only a memory layout: one component per chunk
    /// and all of them at once give the same mixture, to the bit, for every shape.
    #[test]
    pub(super) fn chunked_em_equals_unchunked() {
        let _rng = crate::test_support::torch_rng();
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
    pub(super) fn codes_and_responsibilities() -> (Tensor, Tensor) {
        let _rng = crate::test_support::torch_rng();
        tch::manual_seed(1);
        let z = Tensor::randn([200, 5], (Kind::Double, Device::Cpu)) * 3.0 + 10.0;
        let resp = Tensor::randn([200, 4], (Kind::Double, Device::Cpu)).softmax(1, Kind::Double);
        (z, resp)
    }

    /// The diagonal and tied M-steps' products equal the sums of the per-component
    /// scatters of the full M-step (which takes the differences themselves).
    #[test]
    pub(super) fn diagonal_and_tied_scatters_equal_the_components_own() {
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
    pub(super) fn diagonal_and_tied_log_densities_equal_the_full_computation() {
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
