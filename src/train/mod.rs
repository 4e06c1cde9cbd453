//! Training runs: the loops for CVAEs and CGANs, checkpoints every epoch,
//! fixed-noise snapshots, and `--resume`.
//!
//! A run trains on its task's train split only; the validation split (carved from
//! the files' train split, [`crate::data::validation`]) measures the CVAE's
//! held-out loss each epoch, and the test split is not read.
//!
//! Determinism: the model is initialised from `seed`, and every epoch reseeds
//! torch and the shuffle from (seed, epoch), so a resumed run repeats exactly
//! what the uninterrupted run would have done (Adam's state is checkpointed too).

pub mod config;
mod epochs;
pub mod estimate;
pub mod history;
mod profiles;
pub mod recipes;
pub mod run;
mod steps;
pub mod watch;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use tch::Device;

pub use config::{GanLoss, LrSchedule, Profile, StopReason, TrainConfig};
pub use epochs::{cvae_test_loss, CvaeTestStats};
pub use history::EpochRecord;
pub use profiles::{EARLY_STOPPING_PATIENCE, LEARNED_PRIOR_COMPONENTS};
pub use recipes::Recipe;
pub use run::{RunDir, RunMeta};
pub use steps::{cvae_step, gan_step, CvaeObjective, GanObjective, GanStepStats};

use crate::model::{Architecture, Built, Net, WeightAverage, DISC, GEN, GEN_AVERAGE};
use crate::optim::Adam;
use crate::progress::{notice, ProgressMode};
use crate::task::TaskData;
use crate::{Error, Result};

use epochs::{cvae_epoch, gan_epoch, save_snapshot, EpochContext};

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
    // Held until this function returns: one process trains a run at a time; another
    // (a notebook beside `condgen report`) waits, then resumes or reuses it.
    let _lock = run.lock(opts.progress)?;
    let data = cfg.training_data(data);
    // Each epoch ends with a snapshot of `snapshot_per_condition` samples per condition.
    crate::sample::footprint(&data.spec, cfg.snapshot_per_condition, None).check()?;

    tch::manual_seed(cfg.seed as i64);
    let mut built = cfg.build(data.spec.dim(), opts.device);
    let mut optimizers = Optimizers::new(&built, cfg);

    // Start fresh, or pick up the last complete epoch.
    let (history, recorded) = start_or_resume(&run, cfg, &data, opts, &mut built, &mut optimizers)?;
    let average = weight_average(&built, cfg, history.is_empty());
    run.remove_checkpoints_except(&[history.len(), cfg.model_epoch(&history)]);
    if !history.is_empty() {
        // A kill between the checkpoint and its top-level copies may have left them one epoch behind.
        run.refresh_copies(cfg.model_epoch(&history), &history)?;
    }

    // Loading a finished run trains nothing: its meta.json keeps the revision and
    // thread count its training ran with, not this process's (and no `git` is run).
    let done = cfg.stop_reason(&history).is_some();
    if done && recorded.is_some_and(|m| m.finished && m.epochs_completed == history.len()) {
        return Ok(TrainOutcome { run, history, finished: true });
    }
    let meta = new_meta(cfg, &data, opts, &built, &history);
    write_meta(&run, &meta)?;
    if done {
        return Ok(TrainOutcome { run, history, finished: true });
    }
    announce(cfg, &data, opts, &built, history.len());
    let mut state = RunState { run, history, meta };
    train_remaining_epochs(cfg, &data, opts, &built, &mut optimizers, average.as_ref(), &mut state)?;
    Ok(TrainOutcome { run: state.run, history: state.history, finished: true })
}

/// A fresh run folder (its config written), or the last complete checkpoint of
/// the same config loaded into `built` and `optimizers` when resuming: the
/// history so far and what the earlier training recorded (revision, threads, data).
fn start_or_resume(
    run: &RunDir,
    cfg: &TrainConfig,
    data: &TaskData,
    opts: &TrainOptions,
    built: &mut Built,
    optimizers: &mut Optimizers,
) -> Result<(Vec<EpochRecord>, Option<RunMeta>)> {
    match run.pointer()? {
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
            let recorded = run.read_meta().ok();
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
            load_weights(built, &dir.join(run::MODEL_FILE))?;
            optimizers.load(&dir)?;
            let history = run.read_state(p.epoch)?.history;
            if history.len() != p.epoch {
                return Err(Error::Checkpoint {
                    path: dir,
                    message: "history does not match the checkpoint epoch".into(),
                });
            }
            let path = crate::data::display_path(&run.path);
            if let Some(reason) = cfg.stop_reason(&history) {
                let line = format!("reusing the finished run {path} ({} epochs; {reason})", p.epoch);
                notice(opts.progress, &line);
            } else {
                let line = format!("resuming {path} from epoch {} of {}", p.epoch, cfg.epochs);
                notice(opts.progress, &line);
            }
            Ok((history, recorded))
        }
        Some(_) => Err(Error::Checkpoint {
            path: run.path.clone(),
            message: "a run of this configuration exists; pass --resume to continue or reuse it, or remove the folder"
                .into(),
        }),
        None => {
            if run.path.exists() {
                // A run killed before its first checkpoint: nothing to keep.
                std::fs::remove_dir_all(&run.path).map_err(|e| Error::io(&run.path, e))?;
            }
            std::fs::create_dir_all(&run.path).map_err(|e| Error::io(&run.path, e))?;
            run::write_atomic(&run.file(run::CONFIG_FILE), &serde_json::to_vec_pretty(cfg).expect("json"))?;
            Ok((Vec::new(), None))
        }
    }
}

/// The conv CGAN generator's weight average, if it keeps one; a fresh run's
/// starts from the initial weights (a resumed run loaded its own).
fn weight_average(built: &Built, cfg: &TrainConfig, fresh: bool) -> Option<WeightAverage> {
    let average = match (&built.net, &cfg.architecture) {
        (Net::Gan { average: Some(_), .. }, Architecture::ConvCgan(c)) => {
            Some(WeightAverage::new(&built.vs, GEN, GEN_AVERAGE, c.generator_ema))
        }
        _ => None,
    };
    if let (Some(average), true) = (&average, fresh) {
        average.reset();
    }
    average
}

/// What meta.json records of a run about to train (or already finished).
fn new_meta(
    cfg: &TrainConfig,
    data: &TaskData,
    opts: &TrainOptions,
    built: &Built,
    history: &[EpochRecord],
) -> RunMeta {
    RunMeta {
        experiment: cfg.experiment,
        model: cfg.model(),
        architecture: cfg.architecture.name().into(),
        profile: cfg.profile,
        seed: cfg.seed,
        data_source: Some(data.source.clone()),
        train_images: data.train.len(),
        validation_images: Some(data.validation.len()),
        test_images: data.test.len(),
        git_revision: run::git_revision(),
        device: format!("{:?}", opts.device),
        torch_threads: tch::get_num_threads(),
        parameters: built.parameter_count(""),
        epochs_completed: history.len(),
        train_seconds: history.iter().map(|r| r.seconds).sum(),
        finished: cfg.stop_reason(history).is_some(),
        stopped_reason: None,
    }
}

/// Says what is about to train, on what, and how many epochs are left.
fn announce(cfg: &TrainConfig, data: &TaskData, opts: &TrainOptions, built: &Built, done: usize) {
    let line = format!(
        "training {} {} ({}) on {}: {}; {} train / {} validation images; device {:?}",
        cfg.experiment,
        cfg.model(),
        cfg.architecture.name(),
        data.source.short(),
        built.describe_parameters(),
        data.train.len(),
        data.validation.len(),
        opts.device
    );
    notice(opts.progress, &line);
    notice(
        opts.progress,
        &format!(
            "{}{} epoch(s) to train here, each line below gives the time left; a finished run of this configuration \
             (from `condgen report`, the CLI or a notebook) is loaded instead, in seconds",
            if cfg.early_stopping.is_some() { "at most " } else { "" },
            cfg.epochs - done
        ),
    );
}

/// A run folder with the history and meta.json of the epochs done so far.
struct RunState {
    run: RunDir,
    history: Vec<EpochRecord>,
    meta: RunMeta,
}

/// Trains the epochs not yet done, checkpointing after each (and saving its
/// snapshot when asked); an interruption records where it stopped.
fn train_remaining_epochs(
    cfg: &TrainConfig,
    data: &TaskData,
    opts: &TrainOptions,
    built: &Built,
    optimizers: &mut Optimizers,
    average: Option<&WeightAverage>,
    state: &mut RunState,
) -> Result<()> {
    let RunState { run, history, meta } = state;
    let label = format!("{} {}", cfg.experiment, cfg.model());
    for epoch in history.len() + 1..=cfg.epochs {
        tch::manual_seed(crate::data::batcher::epoch_seed(cfg.seed, epoch as u64) as i64);
        optimizers.schedule(cfg, epoch);
        let ctx = EpochContext { cfg, data, epoch, opts, label: &label };
        let record = match &built.net {
            Net::Cvae(cvae) => cvae_epoch(cvae.as_ref(), &built.likelihood, optimizers, ctx)?,
            Net::Gan { generator, discriminator, .. } => {
                gan_epoch(generator.as_ref(), discriminator.as_ref(), average, optimizers, ctx)?
            }
        };
        let Some(record) = record else {
            meta.stopped_reason = Some(format!("interrupted during epoch {epoch}; last complete epoch {}", epoch - 1));
            write_meta(run, meta)?;
            notice(opts.progress, &format!("stopped: {}", meta.stopped_reason.as_deref().unwrap_or_default()));
            return Err(Error::Interrupted);
        };
        history.push(record);
        if cfg.snapshot_epochs.contains(&epoch) {
            save_snapshot(built, cfg, &data.spec, &run.snapshot_path(epoch))?;
        }
        let checkpoint = run::CheckpointState { epoch, history: history.clone() };
        run.write_checkpoint(&checkpoint, cfg.model_epoch(history), |dir| {
            built
                .vs
                .save(dir.join(run::MODEL_FILE))
                .map_err(|e| Error::Checkpoint { path: dir.join(run::MODEL_FILE), message: e.to_string() })?;
            optimizers.save(dir)
        })?;
        meta.epochs_completed = epoch;
        meta.train_seconds = history.iter().map(|r| r.seconds).sum();
        let stop = cfg.stop_reason(history);
        meta.finished = stop.is_some();
        if let Some(reason @ config::StopReason::NoImprovement { .. }) = stop {
            meta.stopped_reason = Some(reason.to_string());
            notice(opts.progress, &format!("{label}: {reason}"));
        }
        write_meta(run, meta)?;
        if stop.is_some() {
            break;
        }
    }
    Ok(())
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

    /// Adam (AdamW when the config sets a weight decay) with the config's rates and betas.
    fn new(built: &Built, cfg: &TrainConfig) -> Self {
        let betas = (cfg.adam_betas[0], cfg.adam_betas[1]);
        let adam = |prefix: &str, learning_rate: f64| {
            Adam::for_prefix(&built.vs, prefix, learning_rate, betas).with_weight_decay(cfg.weight_decay)
        };
        match built.net {
            Net::Cvae(_) => Optimizers { main: adam("", cfg.learning_rate), discriminator: None },
            Net::Gan { .. } => Optimizers {
                main: adam(&format!("{GEN}."), cfg.learning_rate),
                discriminator: Some(adam(
                    &format!("{DISC}."),
                    cfg.discriminator_learning_rate.unwrap_or(cfg.learning_rate),
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
