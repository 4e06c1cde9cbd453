//! What the notebooks call. A notebook is narrative around these functions;
//! nothing a notebook needs lives only in the notebook.
//!
//! - [`Workspace`]: the profile (`CONDGEN_PROFILE`), the run and judge folders
//!   `condgen report` uses (so notebooks reuse its runs), the data, the device.
//! - [`Table`]: a polars DataFrame shown inline as an HTML table.
//! - [`Trained`]: a run trained (or reused) by a notebook, with its history.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use tch::Device;

use crate::data::{DataOptions, Dataset, DatasetKind};
use crate::eval::{self, EvalOptions, Judge, RunMetrics, SampleMetrics};
use crate::model::ModelKind;
use crate::progress::ProgressMode;
use crate::sample::TrainedModel;
use crate::task::{Experiment, TaskData};
use crate::train::{self, EpochRecord, Profile, TrainConfig, TrainOptions};
use crate::{Error, Result};

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
        let outcome = train::train(cfg, data, &opts)?;
        let model = TrainedModel::load_with_prior(&outcome.run.path, data, self.device)?;
        Ok(Trained { model, history: outcome.history })
    }

    /// The evaluation settings of the report (quick judges in the quick profile).
    pub fn eval_options(&self) -> EvalOptions {
        EvalOptions {
            samples: if self.profile == Profile::Quick { 480 } else { 2400 },
            judges_root: self.runs.join("judges"),
            quick_judges: self.profile == Profile::Quick,
            ..EvalOptions::default()
        }
    }

    /// The judge of an experiment (trained on the real train split when not cached).
    pub fn judge(&self, experiment: Experiment, dataset: &Dataset) -> Result<Judge> {
        eval::judge_for(experiment, dataset, &self.eval_options(), self.device)
    }

    /// Judges a run's samples (writes its `metrics.json`, as `condgen eval`;
    /// reuses it when the run, judge and options are unchanged).
    pub fn evaluate(&self, trained: &Trained, dataset: &Dataset) -> Result<RunMetrics> {
        eval::evaluate_run(&trained.model.run.path, dataset, &self.eval_options(), self.device)
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

/// A trained run: the model at its last complete epoch and the history up to it.
pub struct Trained {
    pub model: TrainedModel,
    pub history: Vec<EpochRecord>,
}

impl Trained {
    /// The per-epoch history as a table.
    pub fn history_table(&self) -> Result<Table> {
        Ok(Table(train::history::to_frame(&self.history)?))
    }

    /// Total training time in seconds.
    pub fn train_seconds(&self) -> f64 {
        self.history.iter().map(|h| h.seconds).sum()
    }
}

/// The main metrics of several runs side by side, one row per run.
pub fn metrics_table(rows: &[(&str, &RunMetrics)]) -> Result<Table> {
    let samples: Vec<(&str, &SampleMetrics)> = rows.iter().map(|(n, r)| (*n, &r.metrics)).collect();
    let mut df = sample_metrics_table(&samples)?.0;
    df.with_column(Column::new(
        "architecture".into(),
        rows.iter().map(|(_, r)| r.architecture.clone()).collect::<Vec<_>>(),
    ))?;
    df.with_column(Column::new("epoch".into(), rows.iter().map(|(_, r)| r.epoch as u64).collect::<Vec<_>>()))?;
    let loss: Vec<Option<f64>> =
        rows.iter().map(|(_, r)| r.cvae_test_loss.map(|v| (v * 100.0).round() / 100.0)).collect();
    df.with_column(Column::new("test loss".into(), loss))?;
    Ok(Table(df))
}

/// The metrics of sets of samples side by side, one row per set.
pub fn sample_metrics_table(rows: &[(&str, &SampleMetrics)]) -> Result<Table> {
    let pct = |v: f64| (v * 1000.0).round() / 10.0;
    let round3 = |v: f64| (v * 1000.0).round() / 1000.0;
    let m = |f: &dyn Fn(&SampleMetrics) -> f64| rows.iter().map(|(_, r)| f(r)).collect::<Vec<f64>>();
    let df = df!(
        "samples of" => rows.iter().map(|(n, _)| n.to_string()).collect::<Vec<_>>(),
        "n" => rows.iter().map(|(_, r)| r.samples as u64).collect::<Vec<_>>(),
        "accuracy %" => m(&|r| pct(r.accuracy.overall)),
        "balanced %" => m(&|r| pct(r.accuracy.balanced)),
        "confidence %" => m(&|r| pct(r.accuracy.mean_confidence)),
        "Fréchet distance" => m(&|r| round3(r.frechet_distance)),
        "precision" => m(&|r| round3(r.precision)),
        "recall" => m(&|r| round3(r.recall)),
        "diversity" => m(&|r| round3(r.diversity_samples)),
        "diversity (real)" => m(&|r| round3(r.diversity_real)),
        "memorized %" => m(&|r| pct(r.memorization_share)),
        "style accuracy %" => rows.iter().map(|(_, r)| r.style_accuracy.map(pct)).collect::<Vec<Option<f64>>>(),
    )?;
    Ok(Table(df))
}

/// Final losses of CVAE runs side by side: train total, BCE, KL, test total.
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
        "test loss" => col(|r| r.test_loss),
    )?;
    Ok(Table(df))
}

/// Stability over seeds: per group of runs of one configuration (one per
/// seed), each metric's mean ± standard deviation and the training time.
pub fn stability_table(groups: &[(&str, Vec<(RunMetrics, f64)>)]) -> Result<Table> {
    let spread = |runs: &[(RunMetrics, f64)], f: &dyn Fn(&(RunMetrics, f64)) -> f64| {
        crate::report::mean_spread(&runs.iter().map(f).collect::<Vec<f64>>())
    };
    let col =
        |f: &dyn Fn(&(RunMetrics, f64)) -> f64| groups.iter().map(|(_, runs)| spread(runs, f)).collect::<Vec<String>>();
    let df = df!(
        "runs" => groups.iter().map(|(n, _)| n.to_string()).collect::<Vec<_>>(),
        "seeds" => groups.iter().map(|(_, r)| r.len() as u32).collect::<Vec<_>>(),
        "accuracy" => col(&|r| r.0.metrics.accuracy.overall),
        "Fréchet distance" => col(&|r| r.0.metrics.frechet_distance),
        "precision" => col(&|r| r.0.metrics.precision),
        "recall" => col(&|r| r.0.metrics.recall),
        "train seconds" => col(&|r| r.1),
    )?;
    Ok(Table(df))
}

/// A DataFrame that notebooks show as an HTML table (text elsewhere).
#[derive(Clone, Debug)]
pub struct Table(pub DataFrame);

impl Table {
    /// The table as HTML (every row; these tables are small).
    pub fn to_html(&self) -> String {
        let df = &self.0;
        let mut html = String::from("<table class=\"condgen\">\n<thead><tr>");
        for name in df.get_column_names() {
            let _ = write!(html, "<th>{}</th>", escape_html(name.as_str()));
        }
        html.push_str("</tr></thead>\n<tbody>\n");
        let columns = df.columns();
        for row in 0..df.height() {
            html.push_str("<tr>");
            for col in columns {
                let cell = match col.get(row) {
                    Ok(AnyValue::Null) | Err(_) => String::new(),
                    Ok(AnyValue::String(s)) => s.to_string(),
                    Ok(v) => v.to_string(),
                };
                let align = if col.dtype().is_primitive_numeric() { " style=\"text-align:right\"" } else { "" };
                let _ = write!(html, "<td{align}>{}</td>", escape_html(&cell));
            }
            html.push_str("</tr>\n");
        }
        html.push_str("</tbody></table>");
        html
    }

    /// Shows the table inline in an evcxr (Jupyter) notebook.
    pub fn evcxr_display(&self) {
        println!("EVCXR_BEGIN_CONTENT text/html\n{}\nEVCXR_END_CONTENT", self.to_html());
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn parse_profile(name: &str) -> Result<Profile> {
    match name {
        "quick" => Ok(Profile::Quick),
        "default" => Ok(Profile::Default),
        "paper" => Ok(Profile::Paper),
        other => Err(Error::Config(format!("{ENV_PROFILE}={other:?} is not a profile; use quick, default or paper"))),
    }
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
