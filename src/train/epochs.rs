//! One epoch of training (a CVAE's or a CGAN's), the CVAE's held-out loss (on
//! the validation split), and the fixed-noise snapshots saved after an epoch.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tch::{Device, Kind, Tensor};

use crate::data::{Batcher, Split};
use crate::loss;
use crate::model::augment::{diff_augment, DiscriminatorAugment};
use crate::model::{Built, Cvae, Discriminator, Generator, PixelLikelihood, WeightAverage};
use crate::progress::{warning, Progress};
use crate::sample;
use crate::task::{ConditionSpec, TaskData};
use crate::{Error, Result};

use super::steps::*;
use super::{watch, EpochRecord, GanLoss, Optimizers, TrainConfig, TrainOptions};

/// What one epoch of training reads: the run's config and data, which epoch, how to report.
#[derive(Clone, Copy)]
pub(super) struct EpochContext<'a> {
    pub(super) cfg: &'a TrainConfig,
    pub(super) data: &'a TaskData,
    /// 1-based.
    pub(super) epoch: usize,
    pub(super) opts: &'a TrainOptions,
    /// "experiment model", the progress lines' prefix.
    pub(super) label: &'a str,
}

impl EpochContext<'_> {
    /// This epoch's shuffled batches of the train split.
    fn batches(&self) -> Batcher<'_> {
        let (cfg, data) = (self.cfg, self.data);
        Batcher::new(&data.train, data.spec, cfg.batch_size, Some((cfg.seed, self.epoch as u64)), self.opts.device)
    }

    fn progress(&self, batches: usize) -> Progress {
        Progress::epoch(self.opts.progress, self.label, self.epoch, self.cfg.epochs, batches)
    }
}

/// One CVAE epoch; None when stopped early.
pub(super) fn cvae_epoch(
    cvae: &dyn Cvae,
    likelihood: &PixelLikelihood,
    opt: &mut Optimizers,
    ctx: EpochContext<'_>,
) -> Result<Option<EpochRecord>> {
    let EpochContext { cfg, data, epoch, opts, label } = ctx;
    let batcher = ctx.batches();
    let progress = ctx.progress(batcher.num_batches());
    let start = Instant::now();
    // KL warm-up counts optimisation steps from the start of the run (a resumed run
    // recomputes the same count), so β follows one schedule across epochs.
    let steps_per_epoch = batcher.num_batches();
    let warmup_steps = cfg.kl_warmup_epochs * steps_per_epoch;
    let (mut sum_loss, mut sum_bce, mut sum_kl, mut seen) = (0.0, 0.0, 0.0, 0usize);
    for (step, batch) in batcher.enumerate() {
        if opts.stop.load(Ordering::Relaxed) {
            progress.finish("interrupted");
            return Ok(None);
        }
        let beta = loss::kl_warmup_weight(cfg.kl_weight, (epoch - 1) * steps_per_epoch + step, warmup_steps);
        let objective = CvaeObjective::for_config(cfg, likelihood, beta);
        let images = match cfg.translate_train_images {
            true => diff_augment(&batch.images, DiscriminatorAugment::Translation),
            false => batch.images.shallow_clone(),
        };
        let (loss_value, bce, kl) = cvae_step(cvae, &mut opt.main, &images, &batch.conditions, &objective);
        let b = batch.images.size()[0] as usize;
        check_finite(loss_value, "the CVAE loss", epoch, step)?;
        sum_loss += loss_value * b as f64;
        sum_bce += bce * b as f64;
        sum_kl += kl * b as f64;
        seen += b;
        progress.step(sum_loss / seen as f64);
    }
    let seconds = start.elapsed().as_secs_f64();
    // The held-out loss is the validation split's: the test split is not read in training.
    let held_out = (!data.validation.is_empty())
        .then(|| cvae_test_loss(cvae, likelihood, &data.validation, data.spec, cfg.kl_weight, opts.device));
    let n = seen.max(1) as f64;
    let record = EpochRecord {
        epoch,
        loss: Some(sum_loss / n),
        bce: Some(sum_bce / n),
        kl: Some(sum_kl / n),
        test_loss: held_out.as_ref().map(|v| v.loss),
        test_bce: held_out.as_ref().map(|v| v.bce),
        test_kl: held_out.as_ref().map(|v| v.kl),
        test_active_units: held_out.as_ref().map(|v| v.active_units),
        test_kl_per_dim: held_out.map(|v| v.kl_per_dim),
        seconds,
        images_per_second: seen as f64 / seconds.max(1e-9),
        ..Default::default()
    };
    progress.finish(&format!("{label} {}", record.summary(cfg.epochs)));
    Ok(Some(record))
}

/// A CVAE measured on a split by [`cvae_test_loss`].
#[derive(Clone, Debug, PartialEq)]
pub struct CvaeTestStats {
    /// Negative ELBO per image with weight β on the KL: `bce` + β·`kl`.
    pub loss: f64,
    /// Reconstruction negative log-likelihood per image under the run's likelihood
    /// (the BCE for the studies' Bernoulli).
    pub bce: f64,
    /// KL per image.
    pub kl: f64,
    /// KL of each latent dimension per image, [latent]; sums to `kl` ([`loss::kl_per_dimension`]).
    pub kl_per_dim: Vec<f64>,
    /// Dimensions whose posterior mean varies across the split by more than 0.01 ([`loss::active_units`]).
    pub active_units: usize,
}

/// The negative ELBO per image on a split (training measures it on the
/// validation split after every epoch; one z sample per image, eval mode,
/// weight β on the plain KL: no warm-up, no free bits) and, in the same pass, the
/// posterior-collapse diagnostics: KL per latent dimension and active units.
pub fn cvae_test_loss(
    cvae: &dyn Cvae,
    likelihood: &PixelLikelihood,
    split: &Split,
    spec: ConditionSpec,
    beta: f64,
    device: Device,
) -> CvaeTestStats {
    tch::no_grad(|| {
        let (mut r, mut n) = (0.0, 0usize);
        let mut kl_sum = Tensor::zeros([cvae.latent()], (Kind::Double, device));
        let mut means = Vec::new();
        for batch in Batcher::new(split, spec, 512, None, device) {
            let (logits, mean, logvar) = cvae.forward(&batch.images, &batch.conditions, false);
            let b = batch.images.size()[0] as f64;
            r += likelihood.nll_per_image(&logits, &batch.images).double_value(&[]) * b;
            let prior = cvae.prior(&batch.conditions);
            kl_sum += super::steps::kl_to_prior(&mean, &logvar, prior.as_ref()).to_kind(Kind::Double) * b;
            means.push(mean);
            n += b as usize;
        }
        let n = n.max(1) as f64;
        let kl_per_dim = Vec::<f64>::try_from(&(kl_sum / n).to_device(Device::Cpu)).expect("a 1-D double tensor");
        let kl: f64 = kl_per_dim.iter().sum();
        let active_units = if means.is_empty() { 0 } else { loss::active_units(&Tensor::cat(&means, 0)) };
        CvaeTestStats { loss: r / n + beta * kl, bce: r / n, kl, kl_per_dim, active_units }
    })
}

/// Consecutive steps of a saturated discriminator before training warns.
pub const SATURATION_WINDOW: usize = 100;

/// One CGAN epoch; None when stopped early.
pub(super) fn gan_epoch(
    generator: &dyn Generator,
    discriminator: &dyn Discriminator,
    average: Option<&WeightAverage>,
    opt: &mut Optimizers,
    ctx: EpochContext<'_>,
) -> Result<Option<EpochRecord>> {
    let EpochContext { cfg, epoch, opts, label, .. } = ctx;
    let objective = GanObjective::new(cfg);
    let batcher = ctx.batches().drop_last(true);
    let progress = ctx.progress(batcher.num_batches());
    let opt_d = opt.discriminator.as_mut().expect("a CGAN has a discriminator optimizer");
    let start = Instant::now();
    let (mut sum_d, mut sum_g, mut sum_real, mut sum_fake) = (0.0, 0.0, 0.0, 0.0);
    let (mut d_steps, mut g_steps, mut seen) = (0usize, 0usize, 0usize);
    let mut watch = watch::DiscriminatorWatch::new(SATURATION_WINDOW);
    for (step, batch) in batcher.enumerate() {
        if opts.stop.load(Ordering::Relaxed) {
            progress.finish("interrupted");
            return Ok(None);
        }
        let b = batch.images.size()[0];
        d_steps += 1;
        let generator_step = cfg.is_generator_step(d_steps);
        let stats = gan_step(
            generator,
            discriminator,
            &mut opt.main,
            opt_d,
            &batch.images,
            &batch.conditions,
            &objective,
            generator_step,
        );
        if let (Some(average), true) = (average, generator_step) {
            average.update(opt.main.step);
        }
        check_finite(stats.d_loss, "the discriminator loss", epoch, step)?;
        if cfg.gan_loss == GanLoss::Bce {
            if let Some(s) = watch.observe(stats.d_real, stats.d_fake) {
                warning(&format!(
                    "epoch {epoch}, steps {}-{step}: {} for {SATURATION_WINDOW} steps in a row. \
                     Training goes on (checkpoints stay); consider --set gan_loss=wgan-gp or a lower learning rate.",
                    step + 1 - SATURATION_WINDOW,
                    s.describe()
                ));
            }
        }
        sum_d += stats.d_loss;
        sum_real += stats.d_real;
        sum_fake += stats.d_fake;
        if let Some(g) = stats.g_loss {
            check_finite(g, "the generator loss", epoch, step)?;
            sum_g += g;
            g_steps += 1;
        }
        seen += b as usize;
        progress.step(sum_d / d_steps as f64);
    }
    let seconds = start.elapsed().as_secs_f64();
    let d = d_steps.max(1) as f64;
    let record = EpochRecord {
        epoch,
        d_loss: Some(sum_d / d),
        g_loss: Some(sum_g / g_steps.max(1) as f64),
        d_real: Some(sum_real / d),
        d_fake: Some(sum_fake / d),
        seconds,
        images_per_second: seen as f64 / seconds.max(1e-9),
        ..Default::default()
    };
    progress.finish(&format!("{label} {}", record.summary(cfg.epochs)));
    Ok(Some(record))
}

/// Saves fixed-noise samples: `snapshot_per_condition` per condition, the
/// noise fixed by the seed so epochs are comparable.
pub(super) fn save_snapshot(built: &Built, cfg: &TrainConfig, spec: &ConditionSpec, path: &Path) -> Result<()> {
    let samples = sample::draw_all_conditions(built, spec, None, cfg.snapshot_per_condition, cfg.seed ^ 0x5A5A_5A5A)?;
    let dir = path.parent().expect("snapshots dir");
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    samples.write_npz(path)
}
