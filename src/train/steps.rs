//! One optimisation step of a CVAE or a CGAN, and what each minimises.

use tch::{Kind, Tensor};

use crate::loss;
use crate::model::prior_net::ConditionalPrior;
use crate::model::{Cvae, Discriminator, Generator, PixelLikelihood};
use crate::optim::Adam;
use crate::task::ConditionSpec;
use crate::{Error, Result};

use super::{GanLoss, TrainConfig};

pub(super) fn check_finite(value: f64, what: &str, epoch: usize, step: usize) -> Result<()> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(Error::Diverged(format!(
            "{what} became {value} at epoch {epoch}, step {step}; the last complete epoch's checkpoint is kept (try a lower learning rate)"
        )))
    }
}

/// What a CVAE step minimises: the reconstruction negative log-likelihood under
/// `likelihood` plus `kl_weight` × the KL term, the KL taken with free bits when
/// `free_bits` > 0 ([`loss::free_bits_kl`]), plus `mmd_weight` × the conditional
/// MMD to N(0, I) when it is > 0 ([`loss::conditional_mmd`]).
#[derive(Clone, Copy, Debug)]
pub struct CvaeObjective<'a> {
    /// The decoder's likelihood (the Gaussian's scale is trained with the model).
    pub likelihood: &'a PixelLikelihood,
    /// β of this step (KL warm-up moves it: [`loss::kl_warmup_weight`]).
    pub kl_weight: f64,
    /// Free bits λ in nats per latent dimension; 0 = off.
    pub free_bits: f64,
    /// Weight of the conditional MMD between posterior draws and N(0, I); 0 = off.
    pub mmd_weight: f64,
}

impl<'a> CvaeObjective<'a> {
    /// The β-weighted negative ELBO, without free bits (the studies' objective with the Bernoulli likelihood).
    pub fn elbo(likelihood: &'a PixelLikelihood, kl_weight: f64) -> Self {
        CvaeObjective { likelihood, kl_weight, free_bits: 0.0, mmd_weight: 0.0 }
    }

    /// The objective `cfg` trains with at KL weight `kl_weight` (β after warm-up).
    pub fn for_config(cfg: &TrainConfig, likelihood: &'a PixelLikelihood, kl_weight: f64) -> Self {
        CvaeObjective { likelihood, kl_weight, free_bits: cfg.free_bits, mmd_weight: cfg.mmd_weight }
    }

    /// (objective, reconstruction NLL, plain KL), each per image (batch means), the KL
    /// to `prior` (a learned prior's (mean, logvar) for each row) or to N(0, I).
    /// logits, images: [b, 1, 28, 28]; conditions: [b, c]; mean, logvar: [b, latent]
    pub fn terms(
        &self,
        logits: &Tensor,
        images: &Tensor,
        conditions: &Tensor,
        (mean, logvar): (&Tensor, &Tensor),
        prior: Option<&ConditionalPrior>,
    ) -> (Tensor, Tensor, Tensor) {
        let nll = self.likelihood.nll_per_image(logits, images);
        let kl_dims = kl_to_prior(mean, logvar, prior);
        let kl = kl_dims.sum(Kind::Float);
        let kl_term =
            if self.free_bits > 0.0 { loss::free_bits_kl(&kl_dims, self.free_bits) } else { kl.shallow_clone() };
        let mut total = &nll + kl_term * self.kl_weight;
        if self.mmd_weight > 0.0 && mean.size()[0] > 1 {
            // A fresh draw from q(z|x, c): the decoder's own draw stays inside the model.
            let z = mean + (logvar * 0.5).exp() * mean.randn_like();
            let prior_draws = match prior {
                Some(prior) => prior.sample(&mean.randn_like()),
                None => mean.randn_like(),
            };
            total += loss::conditional_mmd(&z, &prior_draws, conditions) * self.mmd_weight;
        }
        (total, nll, kl)
    }
}

/// KL(q(z|x,c) ‖ p(z|c)) per latent dimension (batch mean) to a learned prior
/// ([`ConditionalPrior::kl_per_dimension`]), or to N(0, I) without one. [b, latent] each → [latent]
pub fn kl_to_prior(mean: &Tensor, logvar: &Tensor, prior: Option<&ConditionalPrior>) -> Tensor {
    match prior {
        Some(prior) => prior.kl_per_dimension(mean, logvar),
        None => loss::kl_per_dimension(mean, logvar),
    }
}

/// One CVAE optimisation step on a batch: (objective, reconstruction NLL, KL) per
/// image; the NLL is the BCE under the studies' Bernoulli likelihood, the KL the
/// plain KL (not the free-bits one).
/// images: [b, 1, 28, 28] in [0, 1], conditions: [b, c]
pub fn cvae_step(
    cvae: &dyn Cvae,
    opt: &mut Adam,
    images: &Tensor,
    conditions: &Tensor,
    objective: &CvaeObjective,
) -> (f64, f64, f64) {
    let (logits, mean, logvar) = cvae.forward(images, conditions, true);
    let prior = cvae.prior(conditions);
    let (total, nll, kl) = objective.terms(&logits, images, conditions, (&mean, &logvar), prior.as_ref());
    opt.backward_step(&total);
    (total.double_value(&[]), nll.double_value(&[]), kl.double_value(&[]))
}

/// What one CGAN step measured.
#[derive(Clone, Copy, Debug)]
pub struct GanStepStats {
    pub d_loss: f64,
    /// None when the step trained only the discriminator.
    pub g_loss: Option<f64>,
    /// Mean D(x) on the real batch (probability for the BCE loss; the raw score otherwise).
    pub d_real: f64,
    /// Mean D(G(z)) on the generated batch.
    pub d_fake: f64,
}

/// What a CGAN step minimises.
#[derive(Clone, Copy, Debug)]
pub struct GanObjective {
    pub loss: GanLoss,
    /// WGAN-GP only: weight of the gradient penalty.
    pub gradient_penalty_weight: f64,
    /// The condition layout, for the auxiliary loss of an AC-GAN discriminator.
    pub spec: ConditionSpec,
    /// Weight of the auxiliary loss in the generator's objective (1 = AC-GAN's).
    pub generator_auxiliary_weight: f64,
}

impl GanObjective {
    pub fn new(cfg: &TrainConfig) -> Self {
        GanObjective {
            loss: cfg.gan_loss,
            gradient_penalty_weight: cfg.gradient_penalty_weight,
            spec: cfg.condition_spec(),
            generator_auxiliary_weight: cfg.generator_auxiliary_weight.unwrap_or(1.0),
        }
    }

    /// BCE reports D's outputs as probabilities; hinge and WGAN-GP as raw scores.
    fn reported(&self, out: &Tensor) -> f64 {
        let out = if self.loss == GanLoss::Bce { out.sigmoid() } else { out.shallow_clone() };
        out.mean(Kind::Float).double_value(&[])
    }

    fn auxiliary(&self, logits: Option<&Tensor>, conditions: &Tensor) -> Option<Tensor> {
        logits.map(|l| loss::condition_classification_loss(l, conditions, self.spec))
    }
}

/// One CGAN step: a discriminator (critic) update on real and generated
/// images, then, when `generator_step`, a generator update.
/// images: [b, 1, 28, 28] in [0, 1] (rescaled to the generator's [-1, 1]), conditions: [b, c]
#[allow(clippy::too_many_arguments)]
pub fn gan_step(
    generator: &dyn Generator,
    discriminator: &dyn Discriminator,
    opt_g: &mut Adam,
    opt_d: &mut Adam,
    images: &Tensor,
    conditions: &Tensor,
    objective: &GanObjective,
    generator_step: bool,
) -> GanStepStats {
    let b = images.size()[0];
    let real = images * 2.0 - 1.0;
    let noise = Tensor::randn([b, generator.noise_dim()], (Kind::Float, images.device()));
    let fake = generator.generate(&noise, conditions, true);

    let (real_out, real_logits) = discriminator.discriminate_and_classify(&real, conditions, true);
    let fake_out = discriminator.discriminate(&fake.detach(), conditions, true);
    let mut d_loss = match objective.loss {
        GanLoss::Bce => loss::gan_discriminator_loss(&real_out, &fake_out),
        GanLoss::Hinge => loss::hinge_discriminator_loss(&real_out, &fake_out),
        GanLoss::WganGp => {
            let gp = loss::gradient_penalty(&real, &fake.detach(), |x| discriminator.discriminate(x, conditions, true));
            loss::wgan_critic_loss(&real_out, &fake_out) + gp * objective.gradient_penalty_weight
        }
    };
    // AC-GAN: the classifier head learns the condition from real images only.
    if let Some(aux) = objective.auxiliary(real_logits.as_ref(), conditions) {
        d_loss += aux;
    }
    opt_d.backward_step(&d_loss);
    let (d_real, d_fake) = tch::no_grad(|| (objective.reported(&real_out), objective.reported(&fake_out)));
    let g_loss = generator_step.then(|| {
        // The generator's loss back-propagates through D to G; D's own weight
        // gradients would be discarded (the next D step zeroes them), so D is
        // frozen for this pass and autograd skips computing them.
        opt_d.set_trainable(false);
        let (out, logits) = discriminator.discriminate_and_classify(&fake, conditions, true);
        let mut g_loss = match objective.loss {
            GanLoss::Bce => loss::gan_generator_loss(&out),
            GanLoss::Hinge => loss::hinge_generator_loss(&out),
            GanLoss::WganGp => loss::wgan_generator_loss(&out),
        };
        if let Some(aux) = objective.auxiliary(logits.as_ref(), conditions) {
            g_loss += aux * objective.generator_auxiliary_weight;
        }
        opt_g.backward_step(&g_loss);
        opt_d.set_trainable(true);
        g_loss.double_value(&[])
    });
    GanStepStats { d_loss: d_loss.double_value(&[]), g_loss, d_real, d_fake }
}
