//! Training runs: the loops for CVAEs and CGANs, checkpoints every epoch,
//! fixed-noise snapshots, and `--resume`.
//!
//! Determinism: the model is initialised from `seed`, and every epoch reseeds
//! torch and the shuffle from (seed, epoch), so a resumed run repeats exactly
//! what the uninterrupted run would have done (Adam's state is checkpointed too).

pub mod config;
pub mod history;
pub mod recipes;
pub mod run;
pub mod watch;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tch::{Device, Kind, Tensor};

pub use config::{GanLoss, LrSchedule, Profile, TrainConfig};
pub use history::EpochRecord;
pub use recipes::Recipe;
pub use run::{RunDir, RunMeta};

use crate::data::{Batcher, Split};
use crate::loss;
use crate::model::PixelLikelihood;
use crate::model::{Architecture, Built, Cvae, Discriminator, Generator, Net, WeightAverage, DISC, GEN, GEN_AVERAGE};
use crate::optim::Adam;
use crate::progress::{notice, warning, Progress, ProgressMode};
use crate::sample;
use crate::task::{ConditionSpec, TaskData};
use crate::{Error, Result};

/// How a run is carried out (not part of its configuration).
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// Where run folders go (`runs/` by default).
    pub runs_root: PathBuf,
    /// Continue from the last complete checkpoint of the same config.
    pub resume: bool,
    pub device: Device,
    pub progress: ProgressMode,
    /// Set to true (e.g. by Ctrl-C) to stop after the current step.
    pub stop: Arc<AtomicBool>,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            runs_root: PathBuf::from("runs"),
            resume: false,
            device: crate::default_device(),
            progress: ProgressMode::Auto,
            stop: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// The outcome of [`train`].
#[derive(Debug)]
pub struct TrainOutcome {
    pub run: RunDir,
    pub history: Vec<EpochRecord>,
    /// True when every configured epoch is done.
    pub finished: bool,
}

/// Trains `cfg` on `data` (already the task's data) into its run folder.
/// With `resume`, continues from the last checkpoint; a finished run is
/// returned as it is.
pub fn train(cfg: &TrainConfig, data: &TaskData, opts: &TrainOptions) -> Result<TrainOutcome> {
    cfg.validate()?;
    let run = RunDir::for_config(&opts.runs_root, cfg);
    let data = cfg.training_data(data);
    // Each epoch ends with a snapshot of `snapshot_per_condition` samples per condition.
    sample::footprint(&data.spec, cfg.snapshot_per_condition, None).check()?;

    tch::manual_seed(cfg.seed as i64);
    let mut built = cfg.build(data.spec.dim(), opts.device);
    let mut optimizers = Optimizers::new(&built, cfg);

    // Start fresh, or pick up the last complete epoch.
    let mut history = Vec::new();
    let pointer = run.pointer()?;
    // What the run's training recorded (revision, threads, data), kept when it is only loaded.
    let mut recorded: Option<RunMeta> = None;
    match pointer {
        Some(p) if opts.resume => {
            let existing = run.read_config()?;
            if &existing != cfg {
                return Err(Error::Checkpoint {
                    path: run.file(run::CONFIG_FILE),
                    message: "the run folder holds a different configuration".into(),
                });
            }
            // The run id names the configuration, not the data: a run trained on a
            // stand-in must not be passed off as one trained on the real files.
            recorded = run.read_meta().ok();
            let trained_on = recorded.as_ref().and_then(|m| m.data_source.clone());
            if let Some(trained_on) = trained_on.filter(|s| s.short() != data.source.short()) {
                return Err(Error::Checkpoint {
                    path: run.path.clone(),
                    message: format!(
                        "this run was trained on {}, but the data now is {}; remove the folder (or use another --runs) to train on it",
                        trained_on.short(),
                        data.source.short()
                    ),
                });
            }
            let dir = run.checkpoint_dir(p.epoch);
            load_weights(&mut built, &dir.join(run::MODEL_FILE))?;
            optimizers.load(&dir)?;
            history = run.read_state(p.epoch)?.history;
            if history.len() != p.epoch {
                return Err(Error::Checkpoint {
                    path: dir,
                    message: "history does not match the checkpoint epoch".into(),
                });
            }
            if p.epoch >= cfg.epochs {
                let path = crate::data::display_path(&run.path);
                notice(opts.progress, &format!("reusing the finished run {path} ({} epochs)", p.epoch));
            } else {
                let path = crate::data::display_path(&run.path);
                let line = format!("resuming {path} from epoch {} of {}", p.epoch, cfg.epochs);
                notice(opts.progress, &line);
            }
        }
        Some(_) => {
            return Err(Error::Checkpoint {
                path: run.path.clone(),
                message:
                    "a run of this configuration exists; pass --resume to continue or reuse it, or remove the folder"
                        .into(),
            })
        }
        None => {
            if run.path.exists() {
                // A run killed before its first checkpoint: nothing to keep.
                std::fs::remove_dir_all(&run.path).map_err(|e| Error::io(&run.path, e))?;
            }
            std::fs::create_dir_all(&run.path).map_err(|e| Error::io(&run.path, e))?;
            run::write_atomic(&run.file(run::CONFIG_FILE), &serde_json::to_vec_pretty(cfg).expect("json"))?;
        }
    }
    // The generator's weight average starts from the initial weights (a resumed run loaded its own).
    let average = match (&built.net, &cfg.architecture) {
        (Net::Gan { average: Some(_), .. }, Architecture::ConvCgan(c)) => {
            Some(WeightAverage::new(&built.vs, GEN, GEN_AVERAGE, c.generator_ema))
        }
        _ => None,
    };
    if let (Some(average), true) = (&average, history.is_empty()) {
        average.reset();
    }
    run.remove_checkpoints_except(history.len());
    if !history.is_empty() {
        // A kill between the checkpoint and its top-level copies may have left them one epoch behind.
        run.refresh_copies(history.len(), &history)?;
    }

    // Loading a finished run trains nothing: its meta.json keeps the revision and
    // thread count its training ran with, not this process's (and no `git` is run).
    if recorded.is_some_and(|m| m.finished && m.epochs_completed == history.len() && history.len() >= cfg.epochs) {
        return Ok(TrainOutcome { run, history, finished: true });
    }
    let mut meta = RunMeta {
        experiment: cfg.experiment,
        model: cfg.model(),
        architecture: cfg.architecture.name().into(),
        profile: cfg.profile,
        seed: cfg.seed,
        data_source: Some(data.source.clone()),
        train_images: data.train.len(),
        test_images: data.test.len(),
        git_revision: run::git_revision(),
        device: format!("{:?}", opts.device),
        torch_threads: tch::get_num_threads(),
        parameters: built.parameter_count(""),
        epochs_completed: history.len(),
        train_seconds: history.iter().map(|r| r.seconds).sum(),
        finished: history.len() >= cfg.epochs,
        stopped_reason: None,
    };
    write_meta(&run, &meta)?;
    if history.len() >= cfg.epochs {
        return Ok(TrainOutcome { run, history, finished: true });
    }
    let line = format!(
        "training {} {} ({}) on {}: {}; {} train / {} test images; device {:?}",
        cfg.experiment,
        cfg.model(),
        cfg.architecture.name(),
        data.source.short(),
        built.describe_parameters(),
        data.train.len(),
        data.test.len(),
        opts.device
    );
    notice(opts.progress, &line);
    notice(
        opts.progress,
        &format!(
            "{} epoch(s) to train here, each line below gives the time left; a finished run of this configuration \
             (from `condgen report`, the CLI or a notebook) is loaded instead, in seconds",
            cfg.epochs - history.len()
        ),
    );

    let label = format!("{} {}", cfg.experiment, cfg.model());
    for epoch in history.len() + 1..=cfg.epochs {
        tch::manual_seed(crate::data::batcher::epoch_seed(cfg.seed, epoch as u64) as i64);
        optimizers.schedule(cfg, epoch);
        let ctx = EpochContext { cfg, data: &data, epoch, opts, label: &label };
        let record = match &built.net {
            Net::Cvae(cvae) => cvae_epoch(cvae.as_ref(), &built.likelihood, &mut optimizers, ctx)?,
            Net::Gan { generator, discriminator, .. } => {
                gan_epoch(generator.as_ref(), discriminator.as_ref(), average.as_ref(), &mut optimizers, ctx)?
            }
        };
        let Some(record) = record else {
            meta.stopped_reason = Some(format!("interrupted during epoch {epoch}; last complete epoch {}", epoch - 1));
            write_meta(&run, &meta)?;
            notice(opts.progress, &format!("stopped: {}", meta.stopped_reason.as_deref().unwrap_or_default()));
            return Err(Error::Interrupted);
        };
        history.push(record);
        if cfg.snapshot_epochs.contains(&epoch) {
            save_snapshot(&built, cfg, &data.spec, &run.snapshot_path(epoch))?;
        }
        let state = run::CheckpointState { epoch, history: history.clone() };
        run.write_checkpoint(&state, |dir| {
            built
                .vs
                .save(dir.join(run::MODEL_FILE))
                .map_err(|e| Error::Checkpoint { path: dir.join(run::MODEL_FILE), message: e.to_string() })?;
            optimizers.save(dir)
        })?;
        meta.epochs_completed = epoch;
        meta.train_seconds = history.iter().map(|r| r.seconds).sum();
        meta.finished = epoch == cfg.epochs;
        write_meta(&run, &meta)?;
    }
    Ok(TrainOutcome { run, history, finished: true })
}

fn write_meta(run: &RunDir, meta: &RunMeta) -> Result<()> {
    run::write_atomic(&run.file(run::META_FILE), &serde_json::to_vec_pretty(meta).expect("json"))
}

/// Loads weights into a built model, naming the file on failure.
pub fn load_weights(built: &mut Built, path: &Path) -> Result<()> {
    if !path.is_file() {
        return Err(Error::MissingFile { path: path.to_path_buf() });
    }
    built.vs.load(path).map_err(|e| Error::Checkpoint {
        path: path.to_path_buf(),
        message: format!("weights do not fit this model's configuration: {e}"),
    })
}

/// One optimizer for a CVAE, two (generator, discriminator) for a CGAN.
struct Optimizers {
    main: Adam,
    discriminator: Option<Adam>,
}

impl Optimizers {
    /// Sets this epoch's learning rates from the config's base rates and schedule
    /// (a function of the epoch alone, so a resumed run continues the same curve).
    fn schedule(&mut self, cfg: &TrainConfig, epoch: usize) {
        let factor = cfg.lr_schedule.factor(epoch, cfg.epochs);
        self.main.learning_rate = cfg.learning_rate * factor;
        if let Some(d) = &mut self.discriminator {
            d.learning_rate = cfg.discriminator_learning_rate.unwrap_or(cfg.learning_rate) * factor;
        }
    }

    fn new(built: &Built, cfg: &TrainConfig) -> Self {
        let betas = (cfg.adam_betas[0], cfg.adam_betas[1]);
        match built.net {
            Net::Cvae(_) => {
                Optimizers { main: Adam::for_prefix(&built.vs, "", cfg.learning_rate, betas), discriminator: None }
            }
            Net::Gan { .. } => Optimizers {
                main: Adam::for_prefix(&built.vs, &format!("{GEN}."), cfg.learning_rate, betas),
                discriminator: Some(Adam::for_prefix(
                    &built.vs,
                    &format!("{DISC}."),
                    cfg.discriminator_learning_rate.unwrap_or(cfg.learning_rate),
                    betas,
                )),
            },
        }
    }

    fn save(&self, dir: &Path) -> Result<()> {
        self.main.save(&dir.join("optimizer.safetensors"))?;
        if let Some(d) = &self.discriminator {
            d.save(&dir.join("optimizer-disc.safetensors"))?;
        }
        Ok(())
    }

    fn load(&mut self, dir: &Path) -> Result<()> {
        self.main.load(&dir.join("optimizer.safetensors"))?;
        if let Some(d) = &mut self.discriminator {
            d.load(&dir.join("optimizer-disc.safetensors"))?;
        }
        Ok(())
    }
}

fn check_finite(value: f64, what: &str, epoch: usize, step: usize) -> Result<()> {
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

    /// (objective, reconstruction NLL, plain KL), each per image (batch means).
    /// logits, images: [b, 1, 28, 28]; conditions: [b, c]; mean, logvar: [b, latent]
    pub fn terms(
        &self,
        logits: &Tensor,
        images: &Tensor,
        conditions: &Tensor,
        mean: &Tensor,
        logvar: &Tensor,
    ) -> (Tensor, Tensor, Tensor) {
        let nll = self.likelihood.nll_per_image(logits, images);
        let kl_dims = loss::kl_per_dimension(mean, logvar);
        let kl = kl_dims.sum(Kind::Float);
        let kl_term =
            if self.free_bits > 0.0 { loss::free_bits_kl(&kl_dims, self.free_bits) } else { kl.shallow_clone() };
        let mut total = &nll + kl_term * self.kl_weight;
        if self.mmd_weight > 0.0 && mean.size()[0] > 1 {
            // A fresh draw from q(z|x, c): the decoder's own draw stays inside the model.
            let z = mean + (logvar * 0.5).exp() * mean.randn_like();
            total += loss::conditional_mmd(&z, &mean.randn_like(), conditions) * self.mmd_weight;
        }
        (total, nll, kl)
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
    let (total, nll, kl) = objective.terms(&logits, images, conditions, &mean, &logvar);
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

/// What one epoch of training reads: the run's config and data, which epoch, how to report.
#[derive(Clone, Copy)]
struct EpochContext<'a> {
    cfg: &'a TrainConfig,
    data: &'a TaskData,
    /// 1-based.
    epoch: usize,
    opts: &'a TrainOptions,
    /// "experiment model", the progress lines' prefix.
    label: &'a str,
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
fn cvae_epoch(
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
        let objective =
            CvaeObjective { likelihood, kl_weight: beta, free_bits: cfg.free_bits, mmd_weight: cfg.mmd_weight };
        let (loss_value, bce, kl) = cvae_step(cvae, &mut opt.main, &batch.images, &batch.conditions, &objective);
        let b = batch.images.size()[0] as usize;
        check_finite(loss_value, "the CVAE loss", epoch, step)?;
        sum_loss += loss_value * b as f64;
        sum_bce += bce * b as f64;
        sum_kl += kl * b as f64;
        seen += b;
        progress.step(sum_loss / seen as f64);
    }
    let seconds = start.elapsed().as_secs_f64();
    let test = cvae_test_loss(cvae, likelihood, &data.test, data.spec, cfg.kl_weight, opts.device);
    let n = seen.max(1) as f64;
    let record = EpochRecord {
        epoch,
        loss: Some(sum_loss / n),
        bce: Some(sum_bce / n),
        kl: Some(sum_kl / n),
        test_loss: Some(test.loss),
        test_bce: Some(test.bce),
        test_kl: Some(test.kl),
        test_active_units: Some(test.active_units),
        test_kl_per_dim: Some(test.kl_per_dim),
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

/// The negative ELBO per image on a split (one z sample per image, eval mode,
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
            kl_sum += loss::kl_per_dimension(&mean, &logvar).to_kind(Kind::Double) * b;
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
fn gan_epoch(
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
        let generator_step = d_steps % cfg.discriminator_steps == 0;
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
fn save_snapshot(built: &Built, cfg: &TrainConfig, spec: &ConditionSpec, path: &Path) -> Result<()> {
    let samples = sample::draw_all_conditions(built, spec, None, cfg.snapshot_per_condition, cfg.seed ^ 0x5A5A_5A5A)?;
    let dir = path.parent().expect("snapshots dir");
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    samples.write_npz(path)
}
