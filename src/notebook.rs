//! What the notebooks call. A notebook is narrative around these functions;
//! nothing a notebook needs lives only in the notebook.
//!
//! - [`Workspace`]: the profile (`CONDGEN_PROFILE`), the run and judge folders
//!   `condgen report` uses (so notebooks reuse its runs), the data, the device.
//! - [`Table`]: a polars DataFrame shown inline as an HTML table ([`crate::table`]).
//! - [`Trained`]: a run trained (or reused) by a notebook, with its history.
//! - [`Walkthrough`]: what a task's notebook sets up (data, run, judge), once.
//! - [`compare`], [`against_bar`]: sentences that state a comparison with its
//!   numbers, so a notebook's conclusions stay true when a rerun changes them.

use std::path::{Path, PathBuf};

use polars::prelude::*;
use tch::Device;

use crate::data::{DataOptions, Dataset, DatasetKind};
use crate::eval::{self, EvalOptions, Judge, RunMetrics};
use crate::figures::SampleFigure;
use crate::model::ModelKind;
use crate::progress::ProgressMode;
use crate::sample::{LatentSource, Sampler, TrainedModel};
use crate::task::{Experiment, TaskData};
use crate::train::{self, EpochRecord, Profile, TrainConfig, TrainOptions};
use crate::{Error, Result};

/// For spreads over seeds in notebooks (the report's definition).
pub use crate::stats::mean_and_spread;
/// The tables notebooks show (the report and `condgen eval` render the same ones).
pub use crate::table::{metrics_table, round_to, sample_metrics_table, stability_table, Table};

/// Environment variable selecting the notebooks' profile (`quick`, `default`, `paper`).
pub const ENV_PROFILE: &str = "CONDGEN_PROFILE";
/// Environment variable overriding the runs folder (default `<project>/runs`).
pub const ENV_RUNS: &str = "CONDGEN_RUNS";

/// Where a notebook's work happens and with which settings.
#[derive(Clone, Debug)]
pub struct Workspace {
    /// The condgen project folder (found upwards from the working directory).
    pub root: PathBuf,
    /// Run folders, shared with `condgen report`; judges live in `<runs>/judges`.
    pub runs: PathBuf,
    /// Settings every notebook trains with.
    pub profile: Profile,
    pub data: DataOptions,
    pub device: Device,
}

impl Workspace {
    /// Reads `CONDGEN_PROFILE` (default: `default`), `CONDGEN_RUNS`,
    /// `CONDGEN_DATA` and `CONDGEN_K49`; relative defaults resolve against the
    /// project folder, so a notebook in `notebooks/` finds `runs/` and `data/`.
    pub fn from_env() -> Result<Workspace> {
        let cwd = std::env::current_dir().map_err(|e| Error::io(Path::new("."), e))?;
        // Relative to the notebook's folder (`..`), so outputs name no machine's paths.
        let root = project_root(&cwd).and_then(|r| pathdiff::diff_paths(r, &cwd)).unwrap_or_else(|| PathBuf::from("."));
        let root = if root.as_os_str().is_empty() { PathBuf::from(".") } else { root };
        let profile = match std::env::var(ENV_PROFILE) {
            Ok(v) if !v.trim().is_empty() => parse_profile(v.trim())?,
            _ => Profile::Default,
        };
        let runs = std::env::var_os(ENV_RUNS)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("runs"));
        let mut data = DataOptions::from_env();
        if data.root.is_relative() && std::env::var_os(crate::data::ENV_DATA).is_none() {
            data.root = root.join(&data.root);
        }
        Ok(Workspace { root, runs, profile, data, device: crate::default_device() })
    }

    /// One row per setting: profile, folders, device, threads, data sources.
    pub fn describe(&self) -> Result<Table> {
        let mut keys =
            vec!["profile", "project", "runs", "device", "CUDA available", "torch threads", "data directory"];
        let mut values = vec![
            self.profile.to_string(),
            crate::data::display_path(&self.root),
            crate::data::display_path(&self.runs),
            format!("{:?}", self.device),
            tch::Cuda::is_available().to_string(),
            tch::get_num_threads().to_string(),
            crate::data::display_path(&self.data.root),
        ];
        keys.push("K49-format folder");
        values.push(crate::data::display_path(&self.data.k49_dir()));
        Ok(Table(df!("setting" => keys, "value" => values)?))
    }

    pub fn dataset(&self, kind: DatasetKind) -> Result<Dataset> {
        self.data.load(kind)
    }

    /// The profile's configuration of an experiment and model.
    pub fn config(&self, experiment: Experiment, model: ModelKind) -> TrainConfig {
        TrainConfig::new(experiment, model, self.profile)
    }

    /// `cfg` trained on at most `images` train images (a budget for live demos;
    /// a smaller cap already in the profile is kept).
    pub fn capped(&self, cfg: &TrainConfig, images: usize) -> TrainConfig {
        let mut cfg = cfg.clone();
        cfg.max_train_images = Some(cfg.max_train_images.map_or(images, |n| n.min(images)));
        cfg
    }

    /// Trains `cfg`, or reuses its run folder when that configuration was
    /// already trained (by `condgen report`, the CLI or another notebook).
    /// Progress prints one line per epoch.
    pub fn train_or_load(&self, cfg: &TrainConfig, data: &TaskData) -> Result<Trained> {
        let opts = TrainOptions {
            runs_root: self.runs.clone(),
            resume: true,
            device: self.device,
            progress: ProgressMode::Lines,
            ..TrainOptions::default()
        };
        if !train::RunDir::for_config(&self.runs, cfg).is_finished(cfg)? {
            println!("{}", self.training_notice(cfg, data)?);
        }
        let outcome = train::train(cfg, data, &opts)?;
        let model = TrainedModel::load_with_prior(&outcome.run.path, data, self.device)?;
        Ok(Trained { model, history: outcome.history })
    }

    /// What is about to train and about how long it takes here, timed over a few steps
    /// before it starts (printed by [`Workspace::train_or_load`] for a run not yet finished).
    pub fn training_notice(&self, cfg: &TrainConfig, data: &TaskData) -> Result<String> {
        let estimate = train::estimate::training_time(cfg, data, self.device, ESTIMATE_STEPS)?;
        let run = train::RunDir::for_config(&self.runs, cfg);
        let epochs = match cfg.early_stopping {
            Some(patience) => format!("at most {} epochs (early stopping, patience {patience})", cfg.epochs),
            None => format!("{} epochs", cfg.epochs),
        };
        Ok(format!(
            "to train here: {} — {epochs}, about {} on this machine ({} steps timed, {:.0} ms each); \
             `make report` trains every run the notebooks read, once",
            crate::data::display_path(&run.path),
            train::history::human_duration(estimate.seconds()),
            estimate.timed_steps,
            1e3 * estimate.seconds_per_step
        ))
    }

    /// The evaluation settings of the report (quick judges in the quick profile).
    pub fn eval_options(&self) -> EvalOptions {
        EvalOptions::for_profile(self.profile, &self.runs)
    }

    /// The judge of an experiment (trained on the real train split when not cached).
    pub fn judge(&self, experiment: Experiment, dataset: &Dataset) -> Result<Judge> {
        eval::judge_for(experiment, dataset, &self.eval_options(), self.device)
    }

    /// Judges a run's samples (writes its `metrics.json`, as `condgen eval`;
    /// reuses it when the run, judge and options are unchanged).
    /// Prints the run's fingerprint, the line REPORT.md prints for the same run.
    pub fn evaluate(&self, trained: &Trained, dataset: &Dataset) -> Result<RunMetrics> {
        let metrics = eval::evaluate_run(&trained.model.run.path, dataset, &self.eval_options(), self.device)?;
        println!("{}", crate::report::consistency::fingerprint(&metrics));
        Ok(metrics)
    }

    /// The profile's `experiment` × `model`: its data, configuration, run
    /// (trained here, or reused when `condgen report` already trained it) and
    /// judge, each announced in one line.
    pub fn walkthrough(&self, experiment: Experiment, model: ModelKind) -> Result<Walkthrough> {
        let dataset = self.dataset(experiment.dataset())?;
        let data = experiment.prepare(&dataset);
        let config = self.config(experiment, model);
        println!("data: {}", data.source);
        let most = if config.early_stopping.is_some() { "at most " } else { "" };
        println!(
            "model: {} | {most}{} epochs, batch {}, lr {}",
            config.architecture.name(),
            config.epochs,
            config.batch_size,
            config.learning_rate
        );
        let run = self.train_or_load(&config, &data)?;
        println!(
            "run: {} ({} of training on this machine)",
            crate::data::display_path(&run.model.run.path),
            train::history::human_duration(run.train_seconds())
        );
        let judge = self.judge(experiment, &dataset)?;
        println!(
            "judge: the {} CNN, trained on {}: {:.1} % accurate on that data's test split",
            judge.meta.kind.name(),
            judge.meta.data_source.short(),
            100.0 * judge.meta.test_accuracy
        );
        Ok(Walkthrough { experiment, dataset, data, config, run, judge })
    }

    /// The profile's run of `experiment` × `model` with another seed, trained
    /// or reused, and judged.
    pub fn train_and_evaluate(
        &self,
        experiment: Experiment,
        model: ModelKind,
        seed: u64,
        dataset: &Dataset,
    ) -> Result<(Trained, RunMetrics)> {
        let mut cfg = self.config(experiment, model);
        cfg.seed = seed;
        let trained = self.train_or_load(&cfg, &experiment.prepare(dataset))?;
        let metrics = self.evaluate(&trained, dataset)?;
        Ok((trained, metrics))
    }
}

/// Rows of [`Trained::history_table`] at most.
pub const HISTORY_ROWS: usize = 12;

/// Optimisation steps timed for [`Workspace::training_notice`].
const ESTIMATE_STEPS: usize = 8;

/// A trained run: the model (at its last complete epoch, or its best validation epoch
/// under early stopping) and the history of every epoch trained.
pub struct Trained {
    pub model: TrainedModel,
    pub history: Vec<EpochRecord>,
}

impl Trained {
    /// The per-epoch history as a table of at most [`HISTORY_ROWS`] rows (evenly spaced
    /// epochs, the last always), without the KL-per-dimension column (a chart shows it).
    pub fn history_table(&self) -> Result<Table> {
        let rows: Vec<EpochRecord> = train::history::thinned(&self.history, HISTORY_ROWS)
            .into_iter()
            .map(|r| EpochRecord { test_kl_per_dim: None, ..r.clone() })
            .collect();
        let mut frame = train::history::to_frame(&rows)?;
        if frame.column("test_kl_per_dim").is_ok() {
            frame = frame.drop("test_kl_per_dim")?;
        }
        Ok(Table(frame))
    }

    /// Total training time in seconds.
    pub fn train_seconds(&self) -> f64 {
        self.history.iter().map(|h| h.seconds).sum()
    }
}

/// Which way a measured quantity improves (Neither: it only differs, e.g. a KL).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
    Neither,
}

/// One sentence comparing two measured values, numbers included, e.g.
/// `compare("recall", Better::Higher, ("the CGAN", 0.646), ("the CVAE", 0.425), 3)` →
/// "recall: the CGAN 0.646 against the CVAE 0.425 (better: the CGAN, by 0.221)."
/// Values equal at the printed precision are called equal.
pub fn compare(quantity: &str, better: Better, a: (&str, f64), b: (&str, f64), decimals: usize) -> String {
    let (name_a, va) = a;
    let (name_b, vb) = b;
    let shown = |v: f64| format!("{v:.decimals$}");
    let head = format!("{quantity}: {name_a} {} against {name_b} {}", shown(va), shown(vb));
    if shown(va) == shown(vb) {
        return format!("{head} (equal at this precision).");
    }
    let gap = shown((va - vb).abs());
    let (verdict, a_wins) = match better {
        Better::Neither => ("higher", va > vb),
        Better::Higher => ("better", va > vb),
        Better::Lower => ("better", va < vb),
    };
    format!("{head} ({verdict}: {}, by {gap}).", if a_wins { name_a } else { name_b })
}

/// One sentence saying whether `value` meets `bar`, numbers included, e.g.
/// `against_bar("accuracy", 89.4, 95.0, Better::Higher, " %", 1)` →
/// "accuracy 89.4 % misses the bar of 95.0 % by 5.6 %."
pub fn against_bar(quantity: &str, value: f64, bar: f64, better: Better, unit: &str, decimals: usize) -> String {
    let meets = match better {
        Better::Higher | Better::Neither => value >= bar,
        Better::Lower => value <= bar,
    };
    let verdict = if meets { "meets" } else { "misses" };
    let gap = if meets { String::new() } else { format!(" by {:.decimals$}{unit}", (value - bar).abs()) };
    format!("{quantity} {value:.decimals$}{unit} {verdict} the bar of {bar:.decimals$}{unit}{gap}.")
}

/// Final losses of CVAE runs side by side: train total, BCE, KL, validation total.
pub fn loss_table(rows: &[(&str, &Trained)]) -> Result<Table> {
    let last = |t: &Trained, f: fn(&EpochRecord) -> Option<f64>| {
        t.history.last().and_then(f).map(|v| (v * 100.0).round() / 100.0)
    };
    let col = |f: fn(&EpochRecord) -> Option<f64>| rows.iter().map(|(_, t)| last(t, f)).collect::<Vec<Option<f64>>>();
    let df = df!(
        "run" => rows.iter().map(|(n, _)| n.to_string()).collect::<Vec<_>>(),
        "kl_weight" => rows.iter().map(|(_, t)| t.model.config.kl_weight).collect::<Vec<_>>(),
        "train loss" => col(|r| r.loss),
        "BCE" => col(|r| r.bce),
        "KL" => col(|r| r.kl),
        "validation loss" => col(|r| r.test_loss),
    )?;
    Ok(Table(df))
}

/// A task's notebook, set up: the dataset, the task's data, the profile's
/// configuration, the run and the judge ([`Workspace::walkthrough`]).
pub struct Walkthrough {
    pub experiment: Experiment,
    pub dataset: Dataset,
    pub data: TaskData,
    pub config: TrainConfig,
    pub run: Trained,
    pub judge: Judge,
}

impl Walkthrough {
    /// The run's samples from `source` (a CGAN always draws noise from N(0, I)).
    pub fn sampler(&self, source: LatentSource) -> Result<Sampler<'_>> {
        self.run.model.sampler(source)
    }

    /// The report's sample grid called `name` ([`SampleFigure`]), drawn from
    /// `source` and marked by the judge.
    pub fn figure(&self, name: &str, source: LatentSource) -> Result<crate::plot::Figure> {
        SampleFigure::named(self.experiment, name)?.draw(&self.sampler(source)?, &self.data, Some(&self.judge))
    }

    /// The run judged as the report judges it ([`Workspace::evaluate`]).
    pub fn evaluate(&self, ws: &Workspace) -> Result<RunMetrics> {
        ws.evaluate(&self.run, &self.dataset)
    }

    /// What the metrics say, in sentences with their numbers: accuracy of the samples
    /// as the model draws them (a CVAE's z from the prior it was trained with) against
    /// the task's bar — none for the K49 study's own models, reported without bars as in
    /// the report —, the conditions the judge accepts least, the fitted prior beside it
    /// (a second model fitted after training), and how much the CVAE's codes carry.
    pub fn summarise(&self, metrics: &RunMetrics) -> String {
        let m = metrics.as_trained();
        let source = metrics.trained_prior_source.as_deref().unwrap_or(crate::sample::GAN_NOISE);
        let accuracy = 100.0 * m.accuracy.overall;
        let study_model = crate::train::Recipe::Profile.is_study_model(self.experiment);
        let mut lines = vec![match crate::report::targets(self.experiment, study_model) {
            Some(t) => {
                against_bar(&format!("Accuracy ({source})"), accuracy, 100.0 * t.accuracy, Better::Higher, " %", 1)
            }
            None => format!(
                "Accuracy ({source}) {accuracy:.1} %; the study's own model is reproduced and measured, without a bar."
            ),
        }];
        let mut worst: Vec<(usize, f64)> =
            m.accuracy.per_class.iter().copied().enumerate().filter(|(_, v)| !v.is_nan()).collect();
        worst.sort_by(|a, b| a.1.total_cmp(&b.1));
        let named: Vec<String> = worst
            .iter()
            .take(3)
            .map(|&(c, v)| format!("{} {:.1} %", crate::figures::condition_label(&self.data, c), 100.0 * v))
            .collect();
        lines.push(format!("The judge accepts these conditions least often: {}.", named.join(", ")));
        if metrics.standard_prior_metrics.is_some() {
            let fitted = &metrics.metrics;
            lines.push(
                "Beside it, the fitted prior (a mixture fitted to the training codes after training: a second model):"
                    .into(),
            );
            for (what, better, a, b, decimals) in [
                ("Accuracy (%)", Better::Higher, 100.0 * m.accuracy.overall, 100.0 * fitted.accuracy.overall, 1),
                ("Fréchet distance", Better::Lower, m.frechet_distance, fitted.frechet_distance, 1),
                ("Recall", Better::Higher, m.recall, fitted.recall, 3),
            ] {
                lines.push(compare(what, better, ("as trained", a), ("the fitted prior", b), decimals));
            }
        }
        lines.extend(codes_carried(metrics));
        lines.join("\n")
    }
}

/// How much a CVAE's codes carry, in a sentence: the KL in nats per validation image,
/// the latent dimensions the Cov > 0.01 rule counts active, and those carrying more
/// than [`CARRYING_NATS`] each (a collapsed dimension's posterior is its prior, whatever its mean does).
/// None for a CGAN.
pub fn codes_carried(metrics: &RunMetrics) -> Option<String> {
    let (active, dims) = (metrics.cvae_active_units?, metrics.cvae_kl_per_dim.as_ref()?);
    let total: f64 = dims.iter().sum();
    let above = dims.iter().filter(|&&kl| kl > CARRYING_NATS).count();
    Some(format!(
        "The codes carry {total:.1} nats per validation image: {active} of {} latent dimensions are active \
         (posterior mean varies, Cov > 0.01), {above} carry more than {CARRYING_NATS} nats each.",
        dims.len()
    ))
}

/// The KL per latent dimension (nats per image) above which a dimension counts as carrying information.
pub const CARRYING_NATS: f64 = 0.1;

/// A GAN run's last epoch read against the health criterion notebook 07
/// states: D(x) and D(G(z)) apart but neither pinned at 1 or 0, and the
/// generator's loss not climbing away.
pub fn gan_health(history: &[EpochRecord]) -> String {
    let (Some(first), Some(last)) = (history.first(), history.last()) else {
        return "No epoch recorded yet.".into();
    };
    let (Some(real), Some(fake), Some(g0), Some(g1)) = (last.d_real, last.d_fake, first.g_loss, last.g_loss) else {
        return "This history has no discriminator outputs (not a GAN run).".into();
    };
    let numbers = format!(
        "Last epoch: D(x) {real:.2}, D(G(z)) {fake:.2}; the generator's loss went from {g0:.2} (epoch 1) to {g1:.2} (epoch {}).",
        last.epoch
    );
    let probabilities = (0.0..=1.0).contains(&real) && (0.0..=1.0).contains(&fake);
    let verdict = if !probabilities {
        "These are critic scores, not probabilities (WGAN-GP): their gap, not their level, is what matters."
    } else if fake < 0.05 && real > 0.95 {
        "D wins outright: it rejects nearly every fake, so G's gradient is weak."
    } else if fake < 0.2 && g1 > g0 * 1.5 {
        "D is well ahead: D(G(z)) is low and G's loss has climbed; G still learns, but from a weak signal."
    } else {
        "D(x) and D(G(z)) stay apart without being pinned at 1 and 0: by that criterion the game is healthy."
    };
    let trend = if probabilities && g1 > g0 * 1.05 {
        " G's loss rose over training, so D is slowly gaining ground."
    } else {
        ""
    };
    format!("{numbers} {verdict}{trend}")
}

fn parse_profile(name: &str) -> Result<Profile> {
    // The command line's parser (clap's ValueEnum), so both accept the same names.
    <Profile as clap::ValueEnum>::from_str(name, false).map_err(|_| {
        let names: Vec<&str> = <Profile as clap::ValueEnum>::value_variants().iter().map(|p| p.name()).collect();
        let (last, rest) = names.split_last().expect("profiles exist");
        Error::Config(format!("{ENV_PROFILE}={name:?} is not a profile; use {} or {last}", rest.join(", ")))
    })
}

/// The nearest folder at or above `start` holding condgen's Cargo.toml.
pub fn project_root(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|dir| {
            std::fs::read_to_string(dir.join("Cargo.toml")).map(|t| t.contains("name = \"condgen\"")).unwrap_or(false)
        })
        .map(Path::to_path_buf)
}
