//! condgen: conditional generative models (conditional VAE, conditional GAN)
//! on 28×28 images, with tch-rs.
//!
//! Where to find things:
//! - [`data`]: dataset loaders (Sign Language MNIST CSV, Kuzushiji-49 npz),
//!   embedded stand-ins, the validation split, the batcher, `data summary`, `data fetch`.
//! - [`task`]: the four experiments and how each conditions its models.
//! - [`model`]: the networks (conv CVAE, MLP CVAE, MLP CGAN, conv CGAN).
//! - [`loss`]: ELBO, GAN and WGAN-GP losses.
//! - [`optim`]: Adam with checkpointable state.
//! - [`train`]: configs and profiles, the training loops, run folders and checkpoints.
//! - [`sample`]: sampling, reconstruction, the samples npz contract.
//! - [`progress`]: bars in a terminal, plain lines elsewhere.
//! - [`plot`]: labelled image grids and charts (PNG), shown inline in notebooks.
//! - [`eval`]: judge classifiers and the metrics of generated images.
//! - [`figures`]: the figures of both studies, drawn from runs (notebooks, CLI and report).
//! - [`explorer`]: an interactive latent explorer for notebooks (sliders over precomputed decodes).
//! - [`report`]: `condgen report`: plans, trains and evaluates the runs, writes REPORT.md.
//! - [`stats`]: small statistics (mean and spread).
//! - [`table`]: result tables, rendered as HTML, Markdown or terminal text.
//! - [`notebook`]: what the notebooks call (workspace, train-or-reuse, inline tables).
//! - [`files`]: atomic file writes.
//! - [`serde_helpers`]: config fields omitted at their default, overrides that refuse unknown keys.
//! - [`memory`]: the C allocator keeps freed tensor memory for reuse.
//! - [`capacity`]: refusing, before it starts, a request the machine cannot hold.
//! - [`error`]: the library's error type.

pub mod capacity;
pub mod concepts;
pub mod data;
pub mod error;
pub mod eval;
pub mod explorer;
pub mod figures;
pub mod files;
pub mod loss;
pub mod memory;
pub mod model;
pub mod notebook;
pub mod optim;
pub mod plot;
pub mod progress;
pub mod report;
pub mod sample;
pub mod serde_helpers;
pub mod stats;
pub mod table;
pub mod task;
pub mod train;

pub use error::{Error, Result};
pub use task::{ConditionSpec, Experiment, TaskData};

// Re-exported so notebooks need a single `:dep condgen`.
pub use image;
pub use ndarray;
pub use plotters;
pub use polars;
pub use tch;

/// The device training runs on: the first CUDA GPU when one is present, else the CPU.
/// The first call also makes the C allocator keep freed tensor memory ([`memory`]).
pub fn default_device() -> tch::Device {
    memory::keep_freed_memory();
    tch::Device::cuda_if_available()
}

/// What the crate's unit tests share.
#[cfg(test)]
pub(crate) mod test_support {
    use std::sync::{Mutex, MutexGuard};

    static TORCH_RNG: Mutex<()> = Mutex::new(());

    /// Held by every test that seeds torch's global generator: tests run on
    /// threads of one process, and one test's `manual_seed` or draws in the
    /// middle of another's would change that test's random stream.
    pub fn torch_rng() -> MutexGuard<'static, ()> {
        TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner())
    }
}
