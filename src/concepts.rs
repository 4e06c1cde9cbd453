//! Small computations the notebooks teach with: each turns a claim of the
//! theory into a number a learner can check (the notebooks call these; the
//! report does not need them).
//!
//! - [`gan`]: a GAN on the ring of 8 Gaussians: mode collapse and its cure, a generator's moving average.
//! - [`lipschitz`]: a WGAN critic's gradient norm under each constraint; spectral norm's power iteration.
//! - [`conditional`]: concatenation, projection and AC-GAN discriminators on two overlapping classes.

use tch::{Kind, Tensor};

use crate::data::Split;
use crate::plot::{self, Figure, Series};
use crate::table;
use crate::Result;

pub mod conditional;
pub mod gan;
pub mod lipschitz;
#[cfg(test)]
mod notebook_02c;

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
        let (mean, std) = crate::stats::mean_and_spread(values);
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

/// The discriminator's loss on one image as a function of its score s, for the
/// two losses condgen's CGANs train with (each from its definition in
/// [`crate::loss`]): on a real image BCE's −log σ(s) never reaches zero, so D
/// keeps pushing scores it already gets right further out; the hinge's
/// max(0, 1 − s) is flat beyond the margin s = 1 (and mirrored for a fake image).
pub fn discriminator_loss_chart() -> Result<Figure> {
    use crate::loss;
    // The other side of the pair at a score whose loss is zero under both losses.
    let settled = Tensor::from_slice(&[-1e4f32]);
    let curve = |f: &dyn Fn(&Tensor) -> Tensor| -> Vec<(f64, f64)> {
        (0..=80)
            .map(|i| {
                let s = -4.0 + 0.1 * i as f64;
                (s, f(&Tensor::from_slice(&[s as f32])).double_value(&[]))
            })
            .collect()
    };
    let series = vec![
        Series::new("BCE, real image", curve(&|s| loss::gan_discriminator_loss(s, &settled))),
        Series::new("hinge, real image", curve(&|s| loss::hinge_discriminator_loss(s, &settled))),
        Series::new("BCE, generated image", curve(&|s| loss::gan_discriminator_loss(&-&settled, s))),
        Series::new("hinge, generated image", curve(&|s| loss::hinge_discriminator_loss(&-&settled, s))),
    ];
    plot::line_chart("The discriminator's loss on one image, by its score", "D's score s (logit)", "loss", &series)
}

/// What a trained CGAN's discriminator does with its inputs, measured on real
/// test images and on as many generated ones (eval mode).
#[derive(Clone, Debug)]
pub struct DiscriminatorProbe {
    /// Mean D(x, c) − D(x, c') over real images x with their own condition c
    /// and another image's c' ≠ c: near 0 when D ignores the condition.
    /// (NaN when no two probed images have different conditions.)
    pub condition_gap: f64,
    /// Mean ‖∇ₓ D(x, c)‖ over real and generated images (x in [−1, 1]): how
    /// steeply D's score changes with the pixels, an empirical Lipschitz constant.
    pub input_gradient: f64,
    /// Mean score on real images.
    pub real_score: f64,
    /// Mean score on generated images.
    pub fake_score: f64,
}

/// Probes `model`'s discriminator on `n` test images of `split` (a fixed
/// shuffle) and `n` images its sampling generator draws for their conditions.
/// An error for a CVAE (it has no discriminator).
pub fn discriminator_probe(model: &crate::sample::TrainedModel, split: &Split, n: usize) -> Result<DiscriminatorProbe> {
    let crate::model::Net::Gan { discriminator, .. } = &model.built.net else {
        return Err(crate::Error::Unsupported(format!(
            "{}: a CVAE has no discriminator to probe",
            model.config.experiment
        )));
    };
    let generator = model.built.net.sampling_generator().expect("a CGAN has a generator");
    let device = model.built.vs.device();
    let batch = crate::data::batcher::Batcher::new(split, model.spec, n, Some((0, 0)), device)
        .next()
        .ok_or_else(|| crate::Error::InvalidInput("discriminator_probe: the split is empty".into()))?;
    let (real, cond) = (batch.images * 2.0 - 1.0, batch.conditions);
    let b = real.size()[0];
    tch::manual_seed(0);
    let fake = tch::no_grad(|| {
        let noise = Tensor::randn([b, generator.noise_dim()], (Kind::Float, device));
        generator.generate(&noise, &cond, false)
    });
    let gradient = |x: &Tensor| {
        let x = x.detach().set_requires_grad(true);
        let score = discriminator.discriminate(&x, &cond, false);
        let grad = Tensor::run_backward(&[score.sum(Kind::Float)], &[&x], false, false).remove(0);
        (grad.flatten(1, -1).norm_scalaropt_dim(2.0, [1], false).mean(Kind::Float).double_value(&[]), score.detach())
    };
    let (grad_real, real_scores) = gradient(&real);
    let (grad_fake, fake_scores) = gradient(&fake);
    // Another image's condition; pairs that happen to share one are left out.
    let other = cond.index_select(0, &Tensor::randperm(b, (Kind::Int64, device)));
    let differs = cond.ne_tensor(&other).any_dim(1, false);
    let gap = tch::no_grad(|| &real_scores - discriminator.discriminate(&real, &other, false));
    let condition_gap = gap.masked_select(&differs).mean(Kind::Float).double_value(&[]);
    Ok(DiscriminatorProbe {
        condition_gap,
        input_gradient: (grad_real + grad_fake) / 2.0,
        real_score: real_scores.mean(Kind::Float).double_value(&[]),
        fake_score: fake_scores.mean(Kind::Float).double_value(&[]),
    })
}

/// Discriminator probes side by side, one row per run: `(name, probe)`.
pub fn discriminator_probe_table(rows: &[(&str, &DiscriminatorProbe)]) -> Result<crate::table::Table> {
    let column =
        |f: fn(&DiscriminatorProbe) -> f64| rows.iter().map(|(_, p)| table::round_to(f(p), 2)).collect::<Vec<f64>>();
    Ok(table::Table(polars::df!(
        "run" => rows.iter().map(|(n, _)| n.to_string()).collect::<Vec<_>>(),
        "D's condition gap" => column(|p| p.condition_gap),
        "‖∇ₓ D‖" => column(|p| p.input_gradient),
        "mean D score, real" => column(|p| p.real_score),
        "mean D score, generated" => column(|p| p.fake_score),
    )?))
}
