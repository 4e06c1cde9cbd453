//! Training the report's runs several at a time, each in its own `condgen
//! train` process with its share of the cores.
//!
//! On 2 CPU cores, two runs with one torch thread each finish sooner than the
//! same runs one after the other with two threads each: small convolutions do
//! not split well over threads (report/DECISIONS.md, "Report training: one-thread
//! runs in parallel processes"), and two processes with two threads each spin-wait on each
//! other. Processes, not threads: torch's random generator is per process, so
//! each run draws exactly what it would alone and stays reproducible.
//! Finished runs are skipped; an interrupted one resumes from its last epoch.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::data::DataOptions;
use crate::progress::{notice, ProgressMode};
use crate::train::run::{self, RunDir};
use crate::train::TrainConfig;
use crate::{Error, Result};

/// How the report trains runs in parallel.
#[derive(Clone, Debug)]
pub struct ParallelTraining {
    /// The `condgen` binary that trains one run (`condgen train --full-config`).
    pub trainer: PathBuf,
    /// Runs trained at once.
    pub jobs: usize,
}

impl ParallelTraining {
    /// `jobs` runs at once with the binary running now (`condgen report`).
    pub fn with_current_binary(jobs: usize) -> Result<Self> {
        let trainer = std::env::current_exe().map_err(|e| Error::io("current executable", e))?;
        Ok(ParallelTraining { trainer, jobs })
    }

    /// Torch threads of each run: the cores shared out evenly, at least one.
    pub fn threads_per_run(&self) -> usize {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        (cores / self.jobs.max(1)).max(1)
    }
}

/// Whether the run of `cfg` under `runs_root` has finished training ([`RunDir::is_finished`]).
pub fn is_finished(runs_root: &Path, cfg: &TrainConfig) -> Result<bool> {
    RunDir::for_config(runs_root, cfg).is_finished(cfg)
}

/// Trains every unfinished config of `configs`, `parallel.jobs` at a time, in
/// the given order (put the longest first). Returns when all are done; the
/// first failure is returned after the others have finished.
pub fn train_all(
    configs: &[TrainConfig],
    parallel: &ParallelTraining,
    runs_root: &Path,
    data: &DataOptions,
    progress: ProgressMode,
) -> Result<()> {
    let mut pending = Vec::new();
    for cfg in configs {
        if !is_finished(runs_root, cfg)? && !pending.contains(&cfg) {
            pending.push(cfg);
        }
    }
    if pending.is_empty() {
        return Ok(());
    }
    let spec_dir = runs_root.join("pending");
    std::fs::create_dir_all(&spec_dir).map_err(|e| Error::io(&spec_dir, e))?;
    let threads = parallel.threads_per_run();
    let line = format!(
        "report: training {} runs, {} at a time with {threads} torch thread(s) each",
        pending.len(),
        parallel.jobs
    );
    notice(progress, &line);
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..parallel.jobs.max(1).min(pending.len()) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(cfg) = pending.get(i) else { break };
                if let Err(e) = train_one(cfg, parallel, threads, runs_root, &spec_dir, data) {
                    failures.lock().expect("no panics while locked").push(e);
                }
            });
        }
    });
    match failures.into_inner().expect("no panics while locked").into_iter().next() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Trains one config in a child process and waits for it.
fn train_one(
    cfg: &TrainConfig,
    parallel: &ParallelTraining,
    threads: usize,
    runs_root: &Path,
    spec_dir: &Path,
    data: &DataOptions,
) -> Result<()> {
    let run = RunDir::for_config(runs_root, cfg);
    let name = run.path.strip_prefix(runs_root).unwrap_or(&run.path).to_string_lossy().replace(['/', '\\'], "_");
    let spec = spec_dir.join(format!("{name}.json"));
    run::write_atomic(&spec, &serde_json::to_vec_pretty(cfg).expect("configs serialize"))?;
    let mut command = Command::new(&parallel.trainer);
    command
        .arg("--data")
        .arg(&data.root)
        .args(data.k49_folder.iter().flat_map(|k| [std::ffi::OsStr::new("--k49"), k.as_os_str()]))
        .args((!data.allow_standin).then_some("--no-standin"))
        .args(["train", cfg.experiment.name(), "--model", cfg.model().name(), "--profile", cfg.profile.name()])
        .arg("--full-config")
        .arg(&spec)
        .arg("--runs")
        .arg(runs_root)
        .arg("--resume")
        .env("OMP_NUM_THREADS", threads.to_string())
        .env("MKL_NUM_THREADS", threads.to_string());
    let status = command.status().map_err(|e| Error::io(&parallel.trainer, e))?;
    let _ = std::fs::remove_file(&spec);
    if status.success() {
        Ok(())
    } else {
        Err(Error::Checkpoint { path: run.path, message: format!("training in a child process failed ({status})") })
    }
}
