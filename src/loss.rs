//! Loss functions, as free functions on tensors.

use tch::{Reduction, Tensor};

/// Binary cross-entropy between decoder logits and targets, summed over pixels
/// and averaged over the batch (the per-image ELBO reconstruction term).
/// logits, targets: [b, ...] with targets in [0, 1]
pub fn bce_logits_per_image(logits: &Tensor, targets: &Tensor) -> Tensor {
    let b = logits.size()[0];
    logits.binary_cross_entropy_with_logits::<Tensor>(targets, None, None, Reduction::Sum) / b as f64
}

/// KL(q(z|x,c) ‖ N(0, I)) in closed form, summed over latent dimensions and
/// averaged over the batch: −½ Σ (1 + log σ² − μ² − σ²).
/// mean, logvar: [b, latent]
pub fn kl_per_image(mean: &Tensor, logvar: &Tensor) -> Tensor {
    let b = mean.size()[0];
    (logvar.exp() + mean.square() - logvar - 1.0).sum(tch::Kind::Float) * 0.5 / b as f64
}

/// A Monte Carlo estimate of the same KL, averaged over `draws` samples of z
/// per image: E_q[log q(z) − log p(z)]. Checks (and teaches) the closed form.
/// mean, logvar: [b, latent]
pub fn kl_monte_carlo(mean: &Tensor, logvar: &Tensor, draws: i64) -> Tensor {
    let b = mean.size()[0];
    let (mean, logvar) = (mean.unsqueeze(0), logvar.unsqueeze(0));
    let eps = Tensor::randn([draws, b, mean.size()[2]], (tch::Kind::Float, mean.device()));
    let z = &mean + (&logvar * 0.5).exp() * &eps;
    // log q − log p per dimension; the 2π terms cancel.
    let log_q = (&logvar + eps.square()) * -0.5;
    let log_p = z.square() * -0.5;
    (log_q - log_p).sum(tch::Kind::Float) / (draws * b) as f64
}

/// The negative ELBO per image with a β weight on the KL term: (total, bce, kl).
pub fn cvae_loss(
    logits: &Tensor,
    targets: &Tensor,
    mean: &Tensor,
    logvar: &Tensor,
    beta: f64,
) -> (Tensor, Tensor, Tensor) {
    let bce = bce_logits_per_image(logits, targets);
    let kl = kl_per_image(mean, logvar);
    let total = &bce + &kl * beta;
    (total, bce, kl)
}

// ---- Posterior collapse: diagnostics and remedies (KL per dimension, active
// units, free bits, KL warm-up), and the likelihoods beside the studies' BCE.

/// KL(q(z|x,c) ‖ N(0, I)) of each latent dimension, averaged over the batch:
/// KL_j = mean over images of ½ (μ_j² + σ_j² − log σ_j² − 1). Sums to [`kl_per_image`].
/// A collapsed dimension has KL_j ≈ 0: its posterior is the prior whatever the image.
/// mean, logvar: [b, latent] → [latent]
pub fn kl_per_dimension(mean: &Tensor, logvar: &Tensor) -> Tensor {
    ((logvar.exp() + mean.square() - logvar - 1.0) * 0.5).mean_dim(0, false, tch::Kind::Float)
}

/// KL(q(z|x,c) ‖ p(z|c)) of each latent dimension for a Gaussian prior
/// N(μ_p, σ_p²) (a learned conditional prior), averaged over the batch:
/// KL_j = mean over images of ½ (log σ_p² − log σ² + (σ² + (μ − μ_p)²) / σ_p² − 1).
/// With μ_p = 0, σ_p = 1 it is [`kl_per_dimension`].
/// mean, logvar, prior_mean, prior_logvar: [b, latent] → [latent]
pub fn kl_per_dimension_to(mean: &Tensor, logvar: &Tensor, prior_mean: &Tensor, prior_logvar: &Tensor) -> Tensor {
    gaussian_kl(mean, logvar, prior_mean, prior_logvar).mean_dim(0, false, tch::Kind::Float)
}

/// The KL between diagonal Gaussians, element by element (no reduction):
/// ½ (log σ_p² − log σ² + (σ² + (μ − μ_p)²) / σ_p² − 1). Shapes broadcast.
pub fn gaussian_kl(mean: &Tensor, logvar: &Tensor, prior_mean: &Tensor, prior_logvar: &Tensor) -> Tensor {
    let ratio = (logvar.exp() + (mean - prior_mean).square()) * (-prior_logvar).exp();
    (prior_logvar - logvar + ratio - 1.0) * 0.5
}

/// log N(z; μ, diag exp(logvar)), summed over the last dimension. Shapes broadcast:
/// z: [..., d], mean, logvar: [..., d] → [...]
pub fn gaussian_log_density(z: &Tensor, mean: &Tensor, logvar: &Tensor) -> Tensor {
    let ln_2pi = (2.0 * std::f64::consts::PI).ln();
    (((z - mean).square() * (-logvar).exp() + logvar + ln_2pi) * -0.5).sum_dim_intlist(-1, false, tch::Kind::Float)
}

/// The KL term with free bits (Kingma et al. 2016): Σ_j max(λ, KL_j), KL_j the
/// batch-mean KL of dimension j ([`kl_per_dimension`]). A dimension below λ nats
/// costs a constant and gets no gradient from the KL, so nothing pushes it to
/// collapse further. λ = 0 (off) gives Σ_j KL_j, the plain KL per image.
/// kl_dims: [latent] → scalar
pub fn free_bits_kl(kl_dims: &Tensor, free_bits: f64) -> Tensor {
    if free_bits > 0.0 {
        kl_dims.clamp_min(free_bits).sum(tch::Kind::Float)
    } else {
        kl_dims.sum(tch::Kind::Float)
    }
}

/// KL warm-up: the KL weight β at optimisation step `step` (0-based, counted from
/// the start of the run), rising linearly from 0 at step 0 to `kl_weight` at step
/// `warmup_steps`, then constant. `warmup_steps` = 0 (off): `kl_weight` throughout.
pub fn kl_warmup_weight(kl_weight: f64, step: usize, warmup_steps: usize) -> f64 {
    if warmup_steps == 0 {
        kl_weight
    } else {
        kl_weight * (step as f64 / warmup_steps as f64).min(1.0)
    }
}

/// The scales of [`conditional_mmd`]'s inverse multiquadric kernels, as multiples
/// of 2·latent (the expected squared distance between two N(0, I) draws); the
/// WAE's choice (Tolstikhin et al. 2018), so no one bandwidth has to be right.
pub const MMD_KERNEL_SCALES: [f64; 7] = [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0];

/// Squared maximum mean discrepancy (unbiased estimate over pairs of rows) between posterior draws
/// (z_i, c_i) and prior draws (ε_i, c_i), ε ~ N(0, I), the same conditions on
/// both sides (InfoVAE, Zhao et al. 2019; WAE, Tolstikhin et al. 2018). The kernel
/// is k(z, z') · (1 + c·c'): a sum of inverse multiquadrics C / (C + ‖z − z'‖²)
/// over [`MMD_KERNEL_SCALES`] times a condition kernel that is 1 across
/// conditions and 2 within one (one-hot conditions). So the penalty pulls the
/// aggregate posterior towards N(0, I), and each condition's too: z from
/// N(0, I) then decodes to the asked condition, not to whichever condition
/// owns that region of latent space. With conditions held at zero (an
/// unconditional VAE) it is the plain MMD of the aggregate posterior.
/// Near 0 (and may dip below it) when the draws match; ≥ 0 in expectation.
/// z, prior: [b, latent], b ≥ 2; conditions: [b, c]
pub fn conditional_mmd(z: &Tensor, prior: &Tensor, conditions: &Tensor) -> Tensor {
    let (b, latent) = (z.size()[0], z.size()[1]);
    let same_condition = conditions.matmul(&conditions.tr()) + 1.0;
    let kernel = |x: &Tensor, y: &Tensor| {
        let distance = (x.unsqueeze(1) - y.unsqueeze(0)).square().sum_dim_intlist(-1, false, tch::Kind::Float);
        let imq = MMD_KERNEL_SCALES
            .iter()
            .map(|s| {
                let c = 2.0 * latent as f64 * s;
                (&distance + c).reciprocal() * c
            })
            .reduce(|a, b| a + b)
            .expect("at least one scale");
        imq * &same_condition
    };
    // Pairs i ≠ j only, across the two sets too: z_i and ε_i share c_i, so only
    // draws of different rows are independent (the U-statistic of Gretton et al. 2012).
    let options = (tch::Kind::Float, z.device());
    let off_diagonal = Tensor::ones([b, b], options) - Tensor::eye(b, options);
    let mean_over_pairs = |k: Tensor| (k * &off_diagonal).sum(tch::Kind::Float) / (b * (b - 1)) as f64;
    mean_over_pairs(kernel(z, z)) + mean_over_pairs(kernel(prior, prior)) - mean_over_pairs(kernel(z, prior)) * 2.0
}

/// The variance of a unit's posterior mean across the data above which it is
/// active (Burda et al. 2016).
pub const ACTIVE_UNIT_THRESHOLD: f64 = 0.01;

/// Active units (Burda et al. 2016): latent dimensions whose posterior mean
/// varies across the data, Var_x(E_q[z_j | x, c]) > 0.01 (population variance
/// over the rows). A unit whose mean ignores the input has variance 0: inactive.
/// For a CVAE the variance runs over images of every condition, so a unit that
/// encodes only the condition also counts as active.
/// means: [n, latent] posterior means of n images (fewer than 2 rows: 0)
pub fn active_units(means: &Tensor) -> usize {
    if means.size()[0] < 2 {
        return 0;
    }
    let var = means.to_kind(tch::Kind::Double).var_dim(0, false, false);
    var.gt(ACTIVE_UNIT_THRESHOLD).sum(tch::Kind::Int64).int64_value(&[]) as usize
}

/// |u| below which the continuous Bernoulli's log-normaliser uses its Taylor expansion (u = logit/2).
const CB_LOG_NORM_TAYLOR: f64 = 0.05;
/// |u| below which the continuous Bernoulli's mean uses its Taylor expansion.
const CB_MEAN_TAYLOR: f64 = 0.5;

/// The log-normaliser log C(λ) of the continuous Bernoulli (Loaiza-Ganem &
/// Cunningham 2019), elementwise with λ = σ(logits):
/// C(λ) = 2 artanh(1 − 2λ) / (1 − 2λ) for λ ≠ ½, and C(½) = 2 (the limit).
///
/// Computed from the logit l: 1 − 2λ = −tanh(l/2) and artanh(1 − 2λ) = −l/2, so
/// log C = log|l| − log|tanh(l/2)|, which stays exact at the tails where λ rounds
/// to 0 or 1. Near l = 0 (λ → ½) that is 0/0; for |l/2| < 0.05 a Taylor expansion
/// in u = l/2 takes over: log 2 + u²/3 − 7u⁴/90 (in λ: log 2 + 4/3 (λ − ½)² + 104/45 (λ − ½)⁴),
/// error below 1e-9. log C ≥ log 2, with equality at λ = ½.
/// logits: any shape → the same shape
pub fn continuous_bernoulli_log_normaliser(logits: &Tensor) -> Tensor {
    let u = logits * 0.5;
    let small = u.abs().lt(CB_LOG_NORM_TAYLOR);
    let u2 = u.square();
    let taylor = &u2 * (1.0 / 3.0) - u2.square() * (7.0 / 90.0) + std::f64::consts::LN_2;
    // The exact form at a harmless stand-in where it is not used: its 0/0 would
    // otherwise poison the gradient through the unselected branch.
    let safe = u.where_self(&small.logical_not(), &u.ones_like());
    let exact = (&safe * 2.0).abs().log() - safe.tanh().abs().log();
    taylor.where_self(&small, &exact)
}

/// The mean of the continuous Bernoulli CB(λ), λ = σ(logits), elementwise:
/// E[x] = λ/(2λ − 1) + 1/(2 artanh(1 − 2λ)) = ½ + ½ L(l/2), with L(u) = coth u − 1/u
/// (the Langevin function); ½ at λ = ½. It is not λ: it lies between λ and ½
/// (CB(0.2) has mean 0.388). For |u| < ½, where coth u and 1/u nearly cancel, the
/// Taylor series u/3 − u³/45 + 2u⁵/945 − u⁷/4725 (error below 1e-7).
/// logits: any shape → the same shape, in (0, 1)
pub fn continuous_bernoulli_mean(logits: &Tensor) -> Tensor {
    let u = logits * 0.5;
    let small = u.abs().lt(CB_MEAN_TAYLOR);
    let u2 = u.square();
    // u (1/3 − u²/45 + 2u⁴/945 − u⁶/4725), by Horner's rule
    let series = ((((&u2 * (-1.0 / 4725.0)) + 2.0 / 945.0) * &u2 - 1.0 / 45.0) * &u2 + 1.0 / 3.0) * &u;
    let safe = u.where_self(&small.logical_not(), &u.ones_like());
    let exact = safe.tanh().reciprocal() - safe.reciprocal();
    series.where_self(&small, &exact) * 0.5 + 0.5
}

/// The continuous Bernoulli's negative log-likelihood, summed over pixels and
/// averaged over the batch: BCE(logits, x) − Σ log C(λ). It is a density, so it
/// can be negative, and it is at most the BCE (log C ≥ log 2 > 0).
/// logits, targets: [b, ...] with targets in [0, 1]
pub fn continuous_bernoulli_nll_per_image(logits: &Tensor, targets: &Tensor) -> Tensor {
    let b = logits.size()[0];
    bce_logits_per_image(logits, targets) - continuous_bernoulli_log_normaliser(logits).sum(tch::Kind::Float) / b as f64
}

/// The lowest log-scale of the Gaussian likelihood: one grey level of an 8-bit
/// image, ln(1/255). A narrower density would only reward fitting the rounding.
pub const GAUSSIAN_LOG_SCALE_MIN: f64 = -5.541_263_545_158_426;

/// The Gaussian negative log-likelihood with one scale s for every pixel of every
/// image, summed over pixels and averaged over the batch:
/// Σ [½ ((x − μ)/s)² + log s + ½ log 2π], log s clamped below at [`GAUSSIAN_LOG_SCALE_MIN`].
/// A density: it can be negative.
/// means, targets: [b, ...]; log_scale: [1]
pub fn gaussian_nll_per_image(means: &Tensor, targets: &Tensor, log_scale: &Tensor) -> Tensor {
    let b = means.size()[0];
    let pixels = (means.numel() as i64 / b.max(1)) as f64;
    let log_s = log_scale.clamp_min(GAUSSIAN_LOG_SCALE_MIN).sum(tch::Kind::Float);
    let z = (targets - means) * (-&log_s).exp();
    z.square().sum(tch::Kind::Float) * 0.5 / b as f64 + (log_s + 0.5 * (2.0 * std::f64::consts::PI).ln()) * pixels
}

/// The standard GAN discriminator loss on logits: BCE(D(x), 1) + BCE(D(G(z)), 0), batch means.
pub fn gan_discriminator_loss(real_logits: &Tensor, fake_logits: &Tensor) -> Tensor {
    real_logits.binary_cross_entropy_with_logits::<Tensor>(&real_logits.ones_like(), None, None, Reduction::Mean)
        + fake_logits.binary_cross_entropy_with_logits::<Tensor>(&fake_logits.zeros_like(), None, None, Reduction::Mean)
}

/// The non-saturating generator loss: BCE(D(G(z)), 1).
pub fn gan_generator_loss(fake_logits: &Tensor) -> Tensor {
    fake_logits.binary_cross_entropy_with_logits::<Tensor>(&fake_logits.ones_like(), None, None, Reduction::Mean)
}

/// WGAN critic loss (without penalty): E[D(G(z))] − E[D(x)].
pub fn wgan_critic_loss(real_scores: &Tensor, fake_scores: &Tensor) -> Tensor {
    fake_scores.mean(tch::Kind::Float) - real_scores.mean(tch::Kind::Float)
}

/// WGAN generator loss: −E[D(G(z))].
pub fn wgan_generator_loss(fake_scores: &Tensor) -> Tensor {
    -fake_scores.mean(tch::Kind::Float)
}

/// The norm of the critic's gradient ‖∇D(x̂)‖₂ at random interpolates
/// x̂ = α·real + (1 − α)·fake, α ~ U(0, 1) per row: the quantity WGAN-GP holds
/// near 1 (a 1-Lipschitz critic has it at most 1). The graph is kept, so the
/// norms can be trained on.
/// real, fake: [b, ...] (images [b, 1, 28, 28], points [b, 2], ...); `critic` maps them to scores [b] → [b]
pub fn interpolate_gradient_norms(real: &Tensor, fake: &Tensor, critic: impl Fn(&Tensor) -> Tensor) -> Tensor {
    let b = real.size()[0];
    let mut shape = vec![1i64; real.dim()];
    shape[0] = b;
    let alpha = Tensor::rand(shape.as_slice(), (real.kind(), real.device()));
    // x̂ = α·real + (1 − α)·fake
    let diff: Tensor = real - fake;
    let mixed: Tensor = fake + diff * &alpha;
    let interpolates = mixed.detach().set_requires_grad(true);
    let scores = critic(&interpolates);
    let grads = Tensor::run_backward(&[scores.sum(tch::Kind::Float)], &[&interpolates], true, true);
    grads[0].view([b, -1]).norm_scalaropt_dim(2.0, [1], false)
}

/// Gradient penalty of WGAN-GP (Gulrajani et al. 2017): E[(‖∇D(x̂)‖₂ − 1)²] at
/// random interpolates x̂ between real and fake samples ([`interpolate_gradient_norms`]).
/// `critic` maps samples [b, ...] (images [b, 1, 28, 28]) to scores [b].
pub fn gradient_penalty(real: &Tensor, fake: &Tensor, critic: impl Fn(&Tensor) -> Tensor) -> Tensor {
    (interpolate_gradient_norms(real, fake, critic) - 1.0).square().mean(tch::Kind::Float)
}

/// Hinge discriminator loss (Lim & Ye 2017; Miyato et al. 2018):
/// E[max(0, 1 − D(x))] + E[max(0, 1 + D(G(z)))]. Scores, not probabilities.
pub fn hinge_discriminator_loss(real_scores: &Tensor, fake_scores: &Tensor) -> Tensor {
    (-real_scores + 1.0).relu().mean(tch::Kind::Float) + (fake_scores + 1.0).relu().mean(tch::Kind::Float)
}

/// Hinge generator loss: −E[D(G(z))] (the same form as WGAN's).
pub fn hinge_generator_loss(fake_scores: &Tensor) -> Tensor {
    wgan_generator_loss(fake_scores)
}

/// AC-GAN's auxiliary loss: how badly condition logits predict the condition
/// vector they were made for, a batch mean. A one-hot block is a softmax
/// cross-entropy, a 0/1 bit (the vowel task, K49's style) a binary one.
/// logits, conditions: [b, spec.dim()]
pub fn condition_classification_loss(logits: &Tensor, conditions: &Tensor, spec: crate::task::ConditionSpec) -> Tensor {
    use crate::task::ConditionSpec;
    let bit = |l: &Tensor, t: &Tensor| l.binary_cross_entropy_with_logits::<Tensor>(t, None, None, Reduction::Mean);
    match spec {
        ConditionSpec::Bit | ConditionSpec::Ignored { .. } => bit(logits, conditions),
        ConditionSpec::OneHot { classes, style_bit } => {
            let k = classes as i64;
            let targets = conditions.narrow(1, 0, k).argmax(1, false);
            let class_loss = logits.narrow(1, 0, k).cross_entropy_for_logits(&targets);
            if style_bit {
                class_loss + bit(&logits.narrow(1, k, 1), &conditions.narrow(1, k, 1))
            } else {
                class_loss
            }
        }
    }
}
