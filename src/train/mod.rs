//! Training runs: the loops for CVAEs and CGANs, checkpoints every epoch,
//! fixed-noise snapshots, and `--resume`.
//!
//! Determinism: the model is initialised from `seed`, and every epoch reseeds
//! torch and the shuffle from (seed, epoch), so a resumed run repeats exactly
//! what the uninterrupted run would have done (Adam's state is checkpointed too).

pub mod config;
pub mod history;
pub mod run;
pub mod watch;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tch::{Device, Kind, Tensor};

pub use config::{GanLoss, Profile, TrainConfig};
pub use history::EpochRecord;
pub use run::{RunDir, RunMeta};

use crate::data::{Batcher, Split};
use crate::loss;
use crate::model::{Built, Cvae, Discriminator, Generator, Net, DISC, GEN};
use crate::optim::Adam;
use crate::progress::{Progress, ProgressMode};
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
    let mut data = data.clone();
    data.truncate(cfg.max_train_images.unwrap_or(usize::MAX), cfg.max_test_images.unwrap_or(usize::MAX));

    tch::manual_seed(cfg.seed as i64);
    let mut built = cfg.architecture.build(data.spec.dim(), opts.device);
    let mut optimizers = Optimizers::new(&built, cfg);

    // Start fresh, or pick up the last complete epoch.
    let mut history = Vec::new();
    let pointer = run.pointer()?;
    match pointer {
        Some(p) if opts.resume => {
            let existing = run.read_config()?;
            if &existing != cfg {
                return Err(Error::Checkpoint {
                    path: run.file(run::CONFIG_FILE),
                    message: "the run folder holds a different configuration".into(),
                });
            }
            let dir = run.checkpoint_dir(p.epoch);
            load_weights(&mut built, &dir.join(run::MODEL_FILE))?;
            optimizers.load(&dir)?;
            history = run.read_state(p.epoch)?.history;
            if history.len() != p.epoch {
                return Err(Error::Checkpoint { path: dir, message: "history does not match the checkpoint epoch".into() });
            }
            if p.epoch >= cfg.epochs {
                eprintln!("reusing the finished run {} ({} epochs)", run.path.display(), p.epoch);
            } else {
                eprintln!("resuming {} from epoch {} of {}", run.path.display(), p.epoch, cfg.epochs);
            }
        }
        Some(_) => {
            return Err(Error::Checkpoint {
                path: run.path.clone(),
                message: "a run of this configuration exists; pass --resume to continue or reuse it, or remove the folder".into(),
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
    run.remove_checkpoints_except(history.len());
    if !history.is_empty() {
        // A kill between the checkpoint and its top-level copies may have left them one epoch behind.
        run.refresh_copies(history.len(), &history)?;
    }

    let mut meta = RunMeta {
        experiment: cfg.experiment.name().into(),
        model: cfg.model().name().into(),
        architecture: cfg.architecture.name().into(),
        profile: cfg.profile.name().into(),
        seed: cfg.seed,
        data_source: Some(data.source.clone()),
        data_source_text: data.source.to_string(),
        train_images: data.train.len(),
        test_images: data.test.len(),
        git_revision: run::git_revision(),
        device: format!("{:?}", opts.device),
        torch_threads: tch::get_num_threads(),
        parameters: built.parameter_count(""),
        parameters_text: built.describe_parameters(),
        epochs_completed: history.len(),
        train_seconds: history.iter().map(|r| r.seconds).sum(),
        finished: history.len() >= cfg.epochs,
        stopped_reason: None,
    };
    write_meta(&run, &meta)?;
    if history.len() >= cfg.epochs {
        return Ok(TrainOutcome { run, history, finished: true });
    }
    eprintln!(
        "training {} {} ({}) on {}: {}; {} train / {} test images; device {:?}",
        cfg.experiment,
        cfg.model(),
        cfg.architecture.name(),
        data.source.short(),
        meta.parameters_text,
        data.train.len(),
        data.test.len(),
        opts.device
    );

    let label = format!("{} {}", cfg.experiment, cfg.model());
    for epoch in history.len() + 1..=cfg.epochs {
        tch::manual_seed((cfg.seed as i64).wrapping_mul(1_000_003).wrapping_add(epoch as i64));
        let record = match &built.net {
            Net::Cvae(cvae) => cvae_epoch(cvae.as_ref(), &mut optimizers, cfg, &data, epoch, opts, &label)?,
            Net::Gan { generator, discriminator } => {
                gan_epoch(generator.as_ref(), discriminator.as_ref(), &mut optimizers, cfg, &data, epoch, opts, &label)?
            }
        };
        let Some(record) = record else {
            meta.stopped_reason = Some(format!("interrupted during epoch {epoch}; last complete epoch {}", epoch - 1));
            write_meta(&run, &meta)?;
            eprintln!("stopped: {}", meta.stopped_reason.as_deref().unwrap_or_default());
            return Err(Error::Interrupted);
        };
        history.push(record);
        if cfg.snapshot_epochs.contains(&epoch) {
            save_snapshot(&built, cfg, &data.spec, &run.snapshot_path(epoch))?;
        }
        let state = run::CheckpointState { epoch, history: history.clone() };
        run.write_checkpoint(&state, |dir| {
            built.vs.save(dir.join(run::MODEL_FILE)).map_err(|e| Error::Checkpoint {
                path: dir.join(run::MODEL_FILE),
                message: e.to_string(),
            })?;
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
    fn new(built: &Built, cfg: &TrainConfig) -> Self {
        let betas = (cfg.adam_betas[0], cfg.adam_betas[1]);
        match built.net {
            Net::Cvae(_) => Optimizers { main: Adam::for_prefix(&built.vs, "", cfg.learning_rate, betas), discriminator: None },
            Net::Gan { .. } => Optimizers {
                main: Adam::for_prefix(&built.vs, &format!("{GEN}."), cfg.learning_rate, betas),
                discriminator: Some(Adam::for_prefix(&built.vs, &format!("{DISC}."), cfg.learning_rate, betas)),
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

/// One CVAE optimisation step on a batch: (loss, bce, kl) per image.
/// images: [b, 1, 28, 28] in [0, 1], conditions: [b, c]
pub fn cvae_step(cvae: &dyn Cvae, opt: &mut Adam, images: &Tensor, conditions: &Tensor, kl_weight: f64) -> (f64, f64, f64) {
    let (logits, mean, logvar) = cvae.forward(images, conditions, true);
    let (total, bce, kl) = loss::cvae_loss(&logits, images, &mean, &logvar, kl_weight);
    opt.backward_step(&total);
    (total.double_value(&[]), bce.double_value(&[]), kl.double_value(&[]))
}

/// What one CGAN step measured.
#[derive(Clone, Copy, Debug)]
pub struct GanStepStats {
    pub d_loss: f64,
    /// None when the step trained only the discriminator.
    pub g_loss: Option<f64>,
    /// Mean D(x) on the real batch (probability; critic score for WGAN-GP).
    pub d_real: f64,
    /// Mean D(G(z)) on the generated batch.
    pub d_fake: f64,
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
    gan_loss: GanLoss,
    gradient_penalty_weight: f64,
    generator_step: bool,
) -> GanStepStats {
    let b = images.size()[0];
    let real = images * 2.0 - 1.0;
    let noise = Tensor::randn([b, generator.noise_dim()], (Kind::Float, images.device()));
    let fake = generator.generate(&noise, conditions, true);
    let wgan = gan_loss == GanLoss::WganGp;

    let real_out = discriminator.discriminate(&real, conditions, true);
    let fake_out = discriminator.discriminate(&fake.detach(), conditions, true);
    let d_loss = if wgan {
        let gp = loss::gradient_penalty(&real, &fake.detach(), |x| discriminator.discriminate(x, conditions, true));
        loss::wgan_critic_loss(&real_out, &fake_out) + gp * gradient_penalty_weight
    } else {
        loss::gan_discriminator_loss(&real_out, &fake_out)
    };
    opt_d.backward_step(&d_loss);
    let (d_real, d_fake) = tch::no_grad(|| {
        let (r, f) = if wgan { (real_out, fake_out) } else { (real_out.sigmoid(), fake_out.sigmoid()) };
        (r.mean(Kind::Float).double_value(&[]), f.mean(Kind::Float).double_value(&[]))
    });
    let g_loss = generator_step.then(|| {
        // The generator's loss back-propagates through D to G; D's own weight
        // gradients would be discarded (the next D step zeroes them), so D is
        // frozen for this pass and autograd skips computing them.
        opt_d.set_trainable(false);
        let out = discriminator.discriminate(&fake, conditions, true);
        let g_loss = if wgan { loss::wgan_generator_loss(&out) } else { loss::gan_generator_loss(&out) };
        opt_g.backward_step(&g_loss);
        opt_d.set_trainable(true);
        g_loss.double_value(&[])
    });
    GanStepStats { d_loss: d_loss.double_value(&[]), g_loss, d_real, d_fake }
}

/// One CVAE epoch; None when stopped early.
fn cvae_epoch(
    cvae: &dyn Cvae,
    opt: &mut Optimizers,
    cfg: &TrainConfig,
    data: &TaskData,
    epoch: usize,
    opts: &TrainOptions,
    label: &str,
) -> Result<Option<EpochRecord>> {
    let batcher = Batcher::new(&data.train, data.spec, cfg.batch_size, Some((cfg.seed, epoch as u64)), opts.device);
    let progress = Progress::epoch(opts.progress, label, epoch, cfg.epochs, batcher.num_batches());
    let start = Instant::now();
    let (mut sum_loss, mut sum_bce, mut sum_kl, mut seen) = (0.0, 0.0, 0.0, 0usize);
    for (step, batch) in batcher.enumerate() {
        if opts.stop.load(Ordering::Relaxed) {
            progress.finish("interrupted");
            return Ok(None);
        }
        let (loss_value, bce, kl) = cvae_step(cvae, &mut opt.main, &batch.images, &batch.conditions, cfg.kl_weight);
        let b = batch.images.size()[0] as usize;
        check_finite(loss_value, "the CVAE loss", epoch, step)?;
        sum_loss += loss_value * b as f64;
        sum_bce += bce * b as f64;
        sum_kl += kl * b as f64;
        seen += b;
        progress.step(sum_loss / seen as f64);
    }
    let seconds = start.elapsed().as_secs_f64();
    let (test_loss, test_bce, test_kl) = cvae_test_loss(cvae, &data.test, data.spec, cfg.kl_weight, opts.device);
    let n = seen.max(1) as f64;
    let record = EpochRecord {
        epoch,
        loss: Some(sum_loss / n),
        bce: Some(sum_bce / n),
        kl: Some(sum_kl / n),
        test_loss: Some(test_loss),
        test_bce: Some(test_bce),
        test_kl: Some(test_kl),
        seconds,
        images_per_second: seen as f64 / seconds.max(1e-9),
        ..Default::default()
    };
    progress.finish(&format!("{label} {}", record.summary(cfg.epochs)));
    Ok(Some(record))
}

/// Negative ELBO per image on a split (one z sample per image, eval mode):
/// (total, bce, kl).
pub fn cvae_test_loss(cvae: &dyn Cvae, split: &Split, spec: ConditionSpec, beta: f64, device: Device) -> (f64, f64, f64) {
    tch::no_grad(|| {
        let (mut t, mut r, mut k, mut n) = (0.0, 0.0, 0.0, 0usize);
        for batch in Batcher::new(split, spec, 512, None, device) {
            let (logits, mean, logvar) = cvae.forward(&batch.images, &batch.conditions, false);
            let (total, bce, kl) = loss::cvae_loss(&logits, &batch.images, &mean, &logvar, beta);
            let b = batch.images.size()[0] as f64;
            t += total.double_value(&[]) * b;
            r += bce.double_value(&[]) * b;
            k += kl.double_value(&[]) * b;
            n += b as usize;
        }
        let n = n.max(1) as f64;
        (t / n, r / n, k / n)
    })
}

/// One CGAN epoch; None when stopped early.
#[allow(clippy::too_many_arguments)]
/// Consecutive steps of a saturated discriminator before training warns.
pub const SATURATION_WINDOW: usize = 100;

fn gan_epoch(
    generator: &dyn Generator,
    discriminator: &dyn Discriminator,
    opt: &mut Optimizers,
    cfg: &TrainConfig,
    data: &TaskData,
    epoch: usize,
    opts: &TrainOptions,
    label: &str,
) -> Result<Option<EpochRecord>> {
    let batcher = Batcher::new(&data.train, data.spec, cfg.batch_size, Some((cfg.seed, epoch as u64)), opts.device)
        .drop_last(true);
    let progress = Progress::epoch(opts.progress, label, epoch, cfg.epochs, batcher.num_batches());
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
            cfg.gan_loss,
            cfg.gradient_penalty_weight,
            generator_step,
        );
        check_finite(stats.d_loss, "the discriminator loss", epoch, step)?;
        if cfg.gan_loss == GanLoss::Bce {
            if let Some(s) = watch.observe(stats.d_real, stats.d_fake) {
                eprintln!(
                    "WARNING: epoch {epoch}, steps {}-{step}: {} for {SATURATION_WINDOW} steps in a row. \
                     Training goes on (checkpoints stay); consider --set gan_loss=wgan-gp or a lower learning rate.",
                    step + 1 - SATURATION_WINDOW,
                    s.describe()
                );
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
    let samples = sample::sample_all_conditions(built, spec, cfg.snapshot_per_condition, cfg.seed ^ 0x5A5A_5A5A)?;
    let dir = path.parent().expect("snapshots dir");
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    samples.write_npz(path)
}
