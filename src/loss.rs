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
pub fn cvae_loss(logits: &Tensor, targets: &Tensor, mean: &Tensor, logvar: &Tensor, beta: f64) -> (Tensor, Tensor, Tensor) {
    let bce = bce_logits_per_image(logits, targets);
    let kl = kl_per_image(mean, logvar);
    let total = &bce + &kl * beta;
    (total, bce, kl)
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

/// Gradient penalty of WGAN-GP (Gulrajani et al. 2017): E[(‖∇D(x̂)‖₂ − 1)²] at
/// random interpolates x̂ between real and fake images.
/// `critic` maps images [b, 1, 28, 28] to scores [b].
pub fn gradient_penalty(real: &Tensor, fake: &Tensor, critic: impl Fn(&Tensor) -> Tensor) -> Tensor {
    let b = real.size()[0];
    let alpha = Tensor::rand([b, 1, 1, 1], (real.kind(), real.device()));
    // x̂ = α·real + (1 − α)·fake
    let diff: Tensor = real - fake;
    let mixed: Tensor = fake + diff * &alpha;
    let interpolates = mixed.detach().set_requires_grad(true);
    let scores = critic(&interpolates);
    let grads = Tensor::run_backward(&[scores.sum(tch::Kind::Float)], &[&interpolates], true, true);
    let norms = grads[0].view([b, -1]).norm_scalaropt_dim(2.0, [1], false);
    (norms - 1.0).square().mean(tch::Kind::Float)
}
