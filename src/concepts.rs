//! Small computations the notebooks teach with: each turns a claim of the
//! theory into a number a learner can check (the notebooks call these; the
//! report does not need them).

use tch::{Kind, Tensor};

use crate::data::Split;
use crate::plot::{self, Figure, Series};
use crate::Result;

/// One estimator of d/dμ E_{z ~ N(μ, σ²)}[z²] (exactly 2μ), measured over repeats.
#[derive(Clone, Debug)]
pub struct GradientEstimate {
    pub estimator: &'static str,
    /// Mean of the estimate over the repeats (unbiased estimators land near 2μ).
    pub mean: f64,
    /// Its standard deviation over the repeats: the noise a training step sees.
    pub std: f64,
}

/// The gradient of E_{z ~ N(μ, σ²)}[z²] with respect to μ, estimated `repeats`
/// times from `draws` samples each, two ways, both by a backward pass:
/// - reparameterisation: z = μ + σ ε, so the gradient flows through the sample
///   (d z²/dμ = 2z);
/// - score function (REINFORCE): the gradient of f(z)·log q(z; μ) with f(z)
///   held constant, i.e. E[f(z) ∂ log q/∂μ], which needs no gradient of f.
///
/// Both are unbiased; the rows show how much noisier the second is.
pub fn gradient_estimators(
    mu: f64,
    sigma: f64,
    draws: i64,
    repeats: usize,
    seed: u64,
) -> Result<Vec<GradientEstimate>> {
    tch::manual_seed(seed as i64);
    let mut reparam = Vec::with_capacity(repeats);
    let mut score = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let mean = Tensor::from(mu).set_requires_grad(true);
        let eps = Tensor::randn([draws], (Kind::Double, tch::Device::Cpu));
        let z = &mean + eps * sigma;
        let grads = Tensor::run_backward(&[z.square().mean(Kind::Double)], &[&mean], false, false);
        reparam.push(grads[0].double_value(&[]));

        let z = z.detach();
        let log_q = (&z - &mean).square() * (-0.5 / (sigma * sigma));
        let surrogate = (z.square() * log_q).mean(Kind::Double);
        let grads = Tensor::run_backward(&[surrogate], &[&mean], false, false);
        score.push(grads[0].double_value(&[]));
    }
    let summary = |estimator, values: &[f64]| {
        let (mean, std) = crate::report::mean_and_spread(values);
        GradientEstimate { estimator, mean, std }
    };
    Ok(vec![
        GradientEstimate { estimator: "exact: 2μ", mean: 2.0 * mu, std: 0.0 },
        summary("reparameterisation (through the sample)", &reparam),
        summary("score function (REINFORCE)", &score),
    ])
}

/// What a Bernoulli likelihood can at best reach on some images.
#[derive(Clone, Debug)]
pub struct BernoulliFloor {
    /// The lowest possible BCE per image, Σ_pixels H(x) with H the binary
    /// entropy: reached only when the decoder outputs every image exactly (nats).
    pub nats_per_image: f64,
    /// Share of pixels that are neither black nor white.
    pub grey_share: f64,
}

/// The reconstruction floor of a Bernoulli likelihood on `split`: BCE(p, x) =
/// −x log p − (1 − x) log(1 − p) is smallest at p = x, where it equals the
/// binary entropy H(x) > 0 unless x is 0 or 1. A grey image therefore costs
/// nats that no decoder can remove, and the ELBO's reconstruction term stays
/// far from 0 however good the model.
pub fn bernoulli_floor(split: &Split) -> BernoulliFloor {
    let pixels = split.images.len().max(1) as f64;
    let mut entropy = 0.0;
    let mut grey = 0usize;
    for &v in split.images.iter() {
        let x = v as f64 / 255.0;
        if v != 0 && v != 255 {
            grey += 1;
            entropy -= x * x.ln() + (1.0 - x) * (1.0 - x).ln();
        }
    }
    BernoulliFloor { nats_per_image: entropy / split.len().max(1) as f64, grey_share: grey as f64 / pixels }
}

/// The GAN game on a line: data N(0, 1), generator N(shift, 1).
#[derive(Clone, Debug)]
pub struct OptimalDiscriminator {
    pub shift: f64,
    /// (x, D*(x)) with D*(x) = p_data(x) / (p_data(x) + p_gen(x)).
    pub curve: Vec<(f64, f64)>,
    /// The game's value at D*: E_data[log D*] + E_gen[log(1 − D*)] (numerical integral).
    pub value: f64,
    /// Jensen–Shannon divergence between the two, from its definition (nats; at most ln 2).
    pub jensen_shannon: f64,
    /// Wasserstein-1 distance, |shift| for two equal-width Gaussians.
    pub wasserstein: f64,
}

/// For a generator N(shift, 1) against data N(0, 1): the optimal discriminator
/// and the game's value at it, which equals 2·JS(p_data ‖ p_gen) − ln 4
/// (Goodfellow et al. 2014). JS is computed separately from its definition, so
/// the identity is checked, not assumed.
pub fn optimal_discriminator(shift: f64) -> OptimalDiscriminator {
    let density = |x: f64, m: f64| (-(x - m).powi(2) / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let (lo, hi) = (shift.min(0.0) - 8.0, shift.max(0.0) + 8.0);
    let steps = 4000;
    let dx = (hi - lo) / steps as f64;
    let (mut value, mut js) = (0.0, 0.0);
    let mut curve = Vec::new();
    for i in 0..=steps {
        let x = lo + i as f64 * dx;
        let (pd, pg) = (density(x, 0.0), density(x, shift));
        let d = pd / (pd + pg);
        let mix = (pd + pg) / 2.0;
        let term = |p: f64, q: f64| if p > 0.0 && q > 0.0 { p * (p / q).ln() } else { 0.0 };
        value += (pd * d.max(1e-300).ln() + pg * (1.0 - d).max(1e-300).ln()) * dx;
        js += 0.5 * (term(pd, mix) + term(pg, mix)) * dx;
        if i % 20 == 0 {
            curve.push((x, d));
        }
    }
    OptimalDiscriminator { shift, curve, value, jensen_shannon: js, wasserstein: shift.abs() }
}

/// D*(x) for several generator shifts, one line each.
pub fn optimal_discriminator_chart(cases: &[OptimalDiscriminator]) -> Result<Figure> {
    let series: Vec<Series> =
        cases.iter().map(|c| Series::new(format!("generator shifted by {}", c.shift), c.curve.clone())).collect();
    plot::line_chart("The optimal discriminator D*(x) = p_data / (p_data + p_gen)", "x", "D*(x)", &series)
}
