//! A run folder `runs/<experiment>/<model>/<run-id>/` and its checkpoints.
//!
//! ```text
//! config.json          every hyper-parameter, with the profile name
//! meta.json            data source, seed, git revision, device, durations
//! model.safetensors    the run's model: weights after the last complete epoch, or after
//!                      the best validation epoch under early stopping
//! history.csv          one row per completed epoch
//! snapshots/epoch-NNN.npz   fixed-noise samples (images, labels[, styles])
//! checkpoint.json      {"epoch": N}: the last complete checkpoint
//! ../<run-id>.lock     held by the process training the run ([`RunDir::lock`])
//! checkpoints/epoch-NNNN/   weights, optimizer state, history of epoch N (the last
//!                      one, and the model's epoch when that is another)
//! ```
//!
//! A checkpoint is written into a temporary folder, synced, renamed into
//! place, and only then does `checkpoint.json` (itself replaced atomically)
//! point at it. A kill at any moment leaves the previous checkpoint loadable.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::config::Profile;
use super::config::TrainConfig;
use super::history::{self, EpochRecord};
use crate::data::DataSource;
use crate::model::ModelKind;
use crate::progress::{notice, ProgressMode};
use crate::task::Experiment;
use crate::{Error, Result};

pub const CONFIG_FILE: &str = "config.json";
pub const META_FILE: &str = "meta.json";
pub const MODEL_FILE: &str = "model.safetensors";
pub const HISTORY_FILE: &str = "history.csv";
pub const POINTER_FILE: &str = "checkpoint.json";
pub const CHECKPOINTS_DIR: &str = "checkpoints";
pub const SNAPSHOTS_DIR: &str = "snapshots";

/// Facts about a run that are not hyper-parameters.
/// (Runs written before the enums were saved as such carry the same strings, plus
/// `data_source_text` and `parameters_text` copies that are ignored now.)
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunMeta {
    pub experiment: Experiment,
    pub model: ModelKind,
    pub architecture: String,
    pub profile: Profile,
    pub seed: u64,
    /// None in runs from before the source was recorded.
    pub data_source: Option<DataSource>,
    pub train_images: usize,
    /// None in runs from before the validation split.
    #[serde(default)]
    pub validation_images: Option<usize>,
    pub test_images: usize,
    pub git_revision: String,
    pub device: String,
    pub torch_threads: i32,
    pub parameters: i64,
    pub epochs_completed: usize,
    pub train_seconds: f64,
    pub finished: bool,
    pub stopped_reason: Option<String>,
}

/// What `checkpoint.json` says.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Pointer {
    pub epoch: usize,
}

/// The saved state of a completed epoch (besides weights and optimizer moments).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckpointState {
    pub epoch: usize,
    pub history: Vec<EpochRecord>,
}

/// A run folder on disk.
#[derive(Clone, Debug)]
pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    /// `runs/<experiment>/<model>/<profile>-seed<seed>-<digest>`
    pub fn for_config(runs_root: &Path, cfg: &TrainConfig) -> RunDir {
        let id = format!("{}-seed{}-{}", cfg.profile, cfg.seed, cfg.digest());
        RunDir { path: runs_root.join(cfg.experiment.name()).join(cfg.model().name()).join(id) }
    }

    pub fn open(path: impl Into<PathBuf>) -> RunDir {
        RunDir { path: path.into() }
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn checkpoint_dir(&self, epoch: usize) -> PathBuf {
        self.path.join(CHECKPOINTS_DIR).join(format!("epoch-{epoch:04}"))
    }

    pub fn snapshot_path(&self, epoch: usize) -> PathBuf {
        self.path.join(SNAPSHOTS_DIR).join(format!("epoch-{epoch:03}.npz"))
    }

    pub fn read_config(&self) -> Result<TrainConfig> {
        let path = self.file(CONFIG_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        serde_json::from_str(&text)
            .map_err(|e| Error::Checkpoint { path, message: format!("not a condgen run config: {e}") })
    }

    pub fn read_meta(&self) -> Result<RunMeta> {
        let path = self.file(META_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::Checkpoint { path, message: format!("unreadable: {e}") })
    }

    /// The lock file beside the run folder (`<run-id>.lock`; outside it, since a run
    /// killed before its first checkpoint has its folder removed and made again).
    pub fn lock_path(&self) -> PathBuf {
        self.path.with_extension("lock")
    }

    /// Takes the run's lock, waiting (and saying so) while another process holds it;
    /// released when the returned file is dropped, or when the process ends however it ends.
    pub fn lock(&self, progress: ProgressMode) -> Result<std::fs::File> {
        let path = self.lock_path();
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => {
                let shown = crate::data::display_path(&self.path);
                notice(progress, &format!("another process is training {shown}; waiting for it to finish or stop"));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        }
        file.lock().map_err(|e| Error::io(&path, e))?;
        Ok(file)
    }

    /// The last complete epoch, if any checkpoint was completed.
    pub fn pointer(&self) -> Result<Option<Pointer>> {
        let path = self.file(POINTER_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| Error::Checkpoint { path, message: format!("unreadable: {e}") }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// The history of the last complete epoch's checkpoint; empty before the first.
    pub fn history(&self) -> Result<Vec<EpochRecord>> {
        match self.pointer()? {
            Some(p) => Ok(self.read_state(p.epoch)?.history),
            None => Ok(Vec::new()),
        }
    }

    /// Whether `cfg`'s training is over in this folder: every epoch done, or stopped early.
    pub fn is_finished(&self, cfg: &TrainConfig) -> Result<bool> {
        Ok(cfg.stop_reason(&self.history()?).is_some())
    }

    /// The state saved with the last complete epoch.
    pub fn read_state(&self, epoch: usize) -> Result<CheckpointState> {
        let path = self.checkpoint_dir(epoch).join("state.json");
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::Checkpoint { path, message: format!("unreadable: {e}") })
    }

    /// Writes one complete checkpoint atomically; `write_tensors` fills the
    /// temporary folder with weights and optimizer state.
    /// `model_epoch` is the epoch whose weights are the run's model (this one, or an
    /// earlier one still kept).
    pub fn write_checkpoint(
        &self,
        state: &CheckpointState,
        model_epoch: usize,
        write_tensors: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<()> {
        let final_dir = self.checkpoint_dir(state.epoch);
        let tmp_dir = final_dir.with_extension("tmp");
        let parent = final_dir.parent().expect("checkpoint dir has a parent");
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        if tmp_dir.exists() {
            std::fs::remove_dir_all(&tmp_dir).map_err(|e| Error::io(&tmp_dir, e))?;
        }
        std::fs::create_dir(&tmp_dir).map_err(|e| Error::io(&tmp_dir, e))?;
        write_tensors(&tmp_dir)?;
        write_file_synced(&tmp_dir.join("state.json"), &serde_json::to_vec_pretty(state).expect("state serializes"))?;
        if final_dir.exists() {
            std::fs::remove_dir_all(&final_dir).map_err(|e| Error::io(&final_dir, e))?;
        }
        std::fs::rename(&tmp_dir, &final_dir).map_err(|e| Error::io(&final_dir, e))?;
        sync_dir(parent);
        write_atomic(&self.file(POINTER_FILE), &serde_json::to_vec(&Pointer { epoch: state.epoch }).expect("json"))?;
        self.refresh_copies(model_epoch, &state.history)?;
        // Older checkpoints are no longer needed.
        self.remove_checkpoints_except(&[state.epoch, model_epoch]);
        Ok(())
    }

    /// Rewrites the convenience copies at the top of the run folder:
    /// `model.safetensors` from checkpoint `model_epoch`, and `history.csv`.
    pub fn refresh_copies(&self, model_epoch: usize, history: &[EpochRecord]) -> Result<()> {
        let src = self.checkpoint_dir(model_epoch).join(MODEL_FILE);
        let model = std::fs::read(&src).map_err(|e| Error::io(&src, e))?;
        write_atomic(&self.file(MODEL_FILE), &model)?;
        write_atomic(&self.file(HISTORY_FILE), &history::to_csv(history)?)
    }

    /// Removes checkpoint folders other than those of the `keep` epochs (and stale temporary ones).
    pub fn remove_checkpoints_except(&self, keep: &[usize]) {
        let Ok(entries) = std::fs::read_dir(self.path.join(CHECKPOINTS_DIR)) else { return };
        let keep_names: Vec<_> =
            keep.iter().filter_map(|&e| self.checkpoint_dir(e).file_name().map(|n| n.to_os_string())).collect();
        for entry in entries.flatten() {
            if !keep_names.contains(&entry.file_name()) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

pub use crate::files::write_atomic;

fn write_file_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    std::io::Write::write_all(&mut f, bytes).map_err(|e| Error::io(path, e))?;
    f.sync_all().map_err(|e| Error::io(path, e))
}

fn sync_dir(dir: &Path) {
    if let Ok(f) = std::fs::File::open(dir) {
        let _ = f.sync_all();
    }
}

/// `git rev-parse --short HEAD` of the working directory, or "unknown".
pub fn git_revision() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}
