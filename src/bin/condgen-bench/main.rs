//! `condgen-bench`: condgen against PyTorch on the same models, side by side
//! (`make bench` writes report/benchmarks.md).
//!
//! [`harness::run`] times training steps of each of the studies' models — condgen's own
//! `cvae_step` / `gan_step` with its Adam on random batches built by its
//! `Batcher` — and the same models written in PyTorch
//! (`tests/bench/pytorch_reference.py`, run as a child process), in one run,
//! with the same thread count on both sides. Alongside: an SGEMM to put the conv
//! CVAE's achieved FLOP/s against, the data pipeline's share of a step, the peak
//! memory of a real K49 training run, and 50-epoch K49 wall times extrapolated
//! from the measured steps. [`results::BenchReport::to_markdown`] renders it all with the
//! targets marked met / not met.
//!
//! Every figure is a median over repeats; a repeat times N consecutive steps
//! after untimed warm-up steps. The PyTorch side runs as a worker process and
//! the repeats alternate (condgen, PyTorch, PyTorch, condgen, …), so both sides
//! see the same machine load.
//! condgen and torch share the same libtorch (the `.venv`'s), so kernels are
//! identical: differences come from what runs around them (dispatch from Rust
//! or Python, the optimiser's implementation, allocation).

mod harness;
mod machine;
mod markdown;
mod memory;
mod plan;
mod reference;
mod results;
mod stats;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

use clap::Parser;

use plan::{BenchModel, BenchOptions};

/// Time condgen against PyTorch on the same models, side by side; writes a markdown report
#[derive(Parser, Debug)]
#[command(name = "condgen-bench", version)]
struct Cli {
    /// A few steps only (smoke run)
    #[arg(long)]
    quick: bool,
    /// Skip the peak-memory run of a full K49-size training epoch
    #[arg(long)]
    no_memory: bool,
    /// Where the markdown goes
    #[arg(long, default_value = "report/benchmarks.md")]
    out: PathBuf,
    /// Also write the measurements as JSON here
    #[arg(long)]
    json: Option<PathBuf>,
    /// Time only these models (comma-separated; default: all three)
    #[arg(long, value_enum, value_delimiter = ',')]
    models: Vec<BenchModel>,
    /// Timed repeats per measurement (default: 5)
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    repeats: Option<u16>,
    /// Skip the batch-size sweep of the MLP models
    #[arg(long)]
    no_sweep: bool,
    /// The condgen binary of the peak-memory run (default: `condgen` beside this binary)
    #[arg(long)]
    condgen: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let defaults = BenchOptions::default();
    let condgen_binary = match &cli.condgen {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.with_file_name(format!("condgen{}", std::env::consts::EXE_SUFFIX)),
    };
    let opts = BenchOptions {
        quick: cli.quick,
        condgen_binary: (!cli.no_memory).then_some(condgen_binary),
        models: cli.models.clone(),
        repeats: cli.repeats.map_or(defaults.repeats, usize::from),
        sweep_batch_sizes: if cli.no_sweep { Vec::new() } else { defaults.sweep_batch_sizes.clone() },
        ..defaults
    };
    let report = harness::run(&opts)?;
    let md = report.to_markdown();
    println!("{md}");
    condgen::train::run::write_atomic(&cli.out, md.as_bytes())?;
    if let Some(json) = &cli.json {
        condgen::train::run::write_atomic(json, &serde_json::to_vec_pretty(&report)?)?;
    }
    println!("written to {}", cli.out.display());
    Ok(())
}
