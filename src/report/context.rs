//! What every section of the report reads: the datasets, each task's data
//! (prepared once), the evaluation options, the judges, and the trained
//! models (each loaded once).

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::data::{Dataset, DatasetKind};
use crate::eval::{self, EvalOptions, Judge, JudgeKind};
use crate::plot::Figure;
use crate::sample::TrainedModel;
use crate::task::{Experiment, TaskData};
use crate::Result;

use super::ReportOptions;

/// The report's data, options and loaded models.
pub struct Context<'a> {
    pub opts: &'a ReportOptions,
    /// Sign Language MNIST (the vowel, letter and rotation tasks).
    pub sign: Dataset,
    /// Kuzushiji-49 (or the K49-format data named in its source).
    pub k49: Dataset,
    /// How every run and reference row is judged.
    pub eval_opts: EvalOptions,
    /// Each experiment's task data, in [`Experiment::ALL`] order.
    tasks: Vec<TaskData>,
    /// Trained models by run folder.
    models: RefCell<HashMap<PathBuf, Rc<TrainedModel>>>,
}

impl<'a> Context<'a> {
    /// Loads both datasets and prepares every task's data.
    pub fn new(opts: &'a ReportOptions) -> Result<Self> {
        let sign = opts.data.load(DatasetKind::SignMnist)?;
        let k49 = opts.data.load(DatasetKind::K49)?;
        let eval_opts = EvalOptions {
            samples: opts.eval_samples,
            progress: opts.progress,
            ..EvalOptions::for_profile(opts.profile, &opts.runs_root)
        };
        let tasks =
            Experiment::ALL.iter().map(|&e| e.prepare(if e == Experiment::K49 { &k49 } else { &sign })).collect();
        Ok(Context { opts, sign, k49, eval_opts, tasks, models: RefCell::default() })
    }

    /// The dataset `experiment` is made from.
    pub fn dataset(&self, experiment: Experiment) -> &Dataset {
        if experiment == Experiment::K49 {
            &self.k49
        } else {
            &self.sign
        }
    }

    /// `experiment`'s task data.
    pub fn task(&self, experiment: Experiment) -> &TaskData {
        let i = Experiment::ALL.iter().position(|&e| e == experiment).expect("ALL holds every experiment");
        &self.tasks[i]
    }

    /// The trained model of a run folder, loaded once.
    pub fn model(&self, run: &Path) -> Result<Rc<TrainedModel>> {
        if let Some(m) = self.models.borrow().get(run) {
            return Ok(Rc::clone(m));
        }
        let m = Rc::new(TrainedModel::load(run, self.opts.device)?);
        self.models.borrow_mut().insert(run.to_path_buf(), Rc::clone(&m));
        Ok(m)
    }

    /// As [`Context::model`], with a CVAE's fitted latent prior ensured
    /// ([`TrainedModel::ensure_latent_prior`], on `experiment`'s data).
    pub fn model_with_prior(&self, run: &Path, experiment: Experiment) -> Result<Rc<TrainedModel>> {
        let m = self.model(run)?;
        if m.has_latent_prior() {
            return Ok(m);
        }
        let mut fitted = TrainedModel::load(run, self.opts.device)?;
        fitted.ensure_latent_prior(self.task(experiment))?;
        let fitted = Rc::new(fitted);
        self.models.borrow_mut().insert(run.to_path_buf(), Rc::clone(&fitted));
        Ok(fitted)
    }
}

/// The three judges: the letter judge (also the vowel task's), the rotation judge, the K49 judge.
pub struct Judges(Vec<Judge>);

impl Judges {
    /// Loads (or trains, when missing) every judge the report uses.
    pub fn load(ctx: &Context) -> Result<Judges> {
        [Experiment::SignLetter, Experiment::SignRotation, Experiment::K49]
            .iter()
            .map(|&e| eval::judge_for(e, ctx.dataset(e), &ctx.eval_opts, ctx.opts.device))
            .collect::<Result<_>>()
            .map(Judges)
    }

    pub fn all(&self) -> &[Judge] {
        &self.0
    }

    /// The judge of `experiment`'s samples.
    pub fn of(&self, experiment: Experiment) -> &Judge {
        let kind = JudgeKind::for_experiment(experiment);
        self.0.iter().find(|j| j.meta.kind == kind).expect("a judge for every kind")
    }
}

/// Saves figures and adds them to the markdown with a caption.
pub struct FigureWriter<'a> {
    pub dir: &'a Path,
    pub md: &'a mut String,
}

impl FigureWriter<'_> {
    pub fn add(&mut self, name: &str, caption: &str, figure: &Figure) -> Result<()> {
        let file = format!("{name}.png");
        figure.save(&self.dir.join(&file))?;
        let _ = writeln!(self.md, "**{caption}**\n\n![{caption}](figures/{file})\n");
        Ok(())
    }
}
