//! How long a run would train on this machine, timed over a few optimisation steps
//! before it starts: what a notebook says before it trains.

use std::time::Instant;

use tch::Device;

use crate::data::Batcher;
use crate::model::Net;
use crate::task::TaskData;
use crate::Result;

use super::steps::{cvae_step, gan_step, CvaeObjective, GanObjective};
use super::{Optimizers, TrainConfig};

/// Steps run before the timed ones (allocator and kernel warm-up).
const WARM_UP_STEPS: usize = 2;

/// A training time measured over a few steps and extrapolated to a whole run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainingEstimate {
    /// Seconds per optimisation step, the mean over the timed steps.
    pub seconds_per_step: f64,
    /// Steps of one epoch on the run's train split.
    pub steps_per_epoch: usize,
    /// Epochs the estimate covers (the configured number: the most an early-stopped run trains).
    pub epochs: usize,
    /// Steps timed.
    pub timed_steps: usize,
}

impl TrainingEstimate {
    /// The whole run, in seconds.
    pub fn seconds(&self) -> f64 {
        self.seconds_per_step * (self.steps_per_epoch * self.epochs) as f64
    }
}

/// Times `timed_steps` steps of `cfg` on `data` (a fresh model of the configuration,
/// thrown away after) and extrapolates to its epochs. The held-out pass after each
/// CVAE epoch is left out: a few per cent of an epoch.
pub fn training_time(
    cfg: &TrainConfig,
    data: &TaskData,
    device: Device,
    timed_steps: usize,
) -> Result<TrainingEstimate> {
    cfg.validate()?;
    let data = cfg.training_data(data);
    let built = cfg.build(data.spec.dim(), device);
    let mut optimizers = Optimizers::new(&built, cfg);
    let epoch_batches = || Batcher::new(&data.train, data.spec, cfg.batch_size, Some((cfg.seed, 1)), device);
    let steps_per_epoch = epoch_batches().num_batches();
    if steps_per_epoch == 0 {
        return Err(crate::Error::InvalidInput("no train images to time a step on".into()));
    }
    let gan_objective = GanObjective::new(cfg);
    let mut timed = Vec::with_capacity(timed_steps);
    let mut batches = epoch_batches();
    for step in 0..WARM_UP_STEPS + timed_steps.max(1) {
        // A split shorter than the steps timed starts over.
        let batch = match batches.next() {
            Some(batch) => batch,
            None => {
                batches = epoch_batches();
                batches.next().expect("a split with batches")
            }
        };
        let start = Instant::now();
        match &built.net {
            Net::Cvae(cvae) => {
                let objective = CvaeObjective::for_config(cfg, &built.likelihood, cfg.kl_weight);
                cvae_step(cvae.as_ref(), &mut optimizers.main, &batch.images, &batch.conditions, &objective);
            }
            Net::Gan { generator, discriminator, .. } => {
                let opt_d = optimizers.discriminator.as_mut().expect("a CGAN has a discriminator optimizer");
                let generator_step = cfg.is_generator_step(step + 1);
                let (images, conditions) = (&batch.images, &batch.conditions);
                let objective = &gan_objective;
                gan_step(
                    generator.as_ref(),
                    discriminator.as_ref(),
                    &mut optimizers.main,
                    opt_d,
                    images,
                    conditions,
                    objective,
                    generator_step,
                );
            }
        }
        if step >= WARM_UP_STEPS {
            timed.push(start.elapsed().as_secs_f64());
        }
    }
    let seconds_per_step = timed.iter().sum::<f64>() / timed.len().max(1) as f64;
    Ok(TrainingEstimate { seconds_per_step, steps_per_epoch, epochs: cfg.epochs, timed_steps: timed.len() })
}
