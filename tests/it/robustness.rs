//! Interrupted runs: SIGKILL at random moments, again and again; every time the
//! run folder holds a loadable last-complete-epoch checkpoint with a matching
//! history, and `--resume` reaches the configured epoch count.

use crate::common;

use std::process::{Command, Stdio};
use std::time::Duration;

use condgen::sample::TrainedModel;
use condgen::train::RunDir;
use rand::{Rng, SeedableRng};

const EPOCHS: usize = 300;

fn train_command(runs: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_condgen"));
    cmd.args(["train", "k49", "--model", "cvae", "--profile", "quick", "--resume"])
        .args(["--epochs", &EPOCHS.to_string(), "--runs"])
        .arg(runs)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// The single run folder under `runs`, if training created it yet.
fn run_dir(runs: &std::path::Path) -> Option<std::path::PathBuf> {
    let parent = runs.join("k49").join("cvae");
    std::fs::read_dir(parent).ok()?.flatten().map(|e| e.path()).find(|p| p.is_dir())
}

#[test]
fn sigkill_at_random_moments_never_loses_the_last_complete_epoch() {
    let _serial = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let (mut kills, mut last_epoch, mut mid_run) = (0, 0usize, 0);
    for round in 0..8 {
        let mut child = train_command(&runs).spawn().unwrap();
        // Wait until this process has completed an epoch of its own (data loading
        // takes a while), then kill it at a random moment: mid-step or mid-checkpoint.
        for _ in 0..3000 {
            let epoch = run_dir(&runs).and_then(|p| RunDir::open(p).pointer().ok().flatten()).map_or(0, |p| p.epoch);
            if epoch > last_epoch || child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..400)));
        let finished = child.try_wait().unwrap().is_some();
        if !finished {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
        let Some(path) = run_dir(&runs) else { continue };
        let run = RunDir::open(&path);
        let Some(pointer) = run.pointer().unwrap() else { continue };
        // The checkpoint loads, and its history has one row per completed epoch.
        let model = TrainedModel::load(&path, tch::Device::Cpu).unwrap();
        assert_eq!(model.epoch, pointer.epoch);
        let state = run.read_state(pointer.epoch).unwrap();
        assert_eq!(state.history.len(), pointer.epoch, "round {round}");
        assert!(state.history.iter().enumerate().all(|(i, r)| r.epoch == i + 1));
        assert!(pointer.epoch >= last_epoch, "progress is never lost");
        last_epoch = pointer.epoch;
        mid_run += (!finished && pointer.epoch < EPOCHS) as usize;
        eprintln!("round {round}: killed={} last complete epoch {}", !finished, pointer.epoch);
    }
    assert!(kills >= 6, "the test killed runs for real ({kills})");
    assert!(mid_run >= 4, "kills landed during training, not after it ({mid_run} of {kills})");
    // Resume to the end.
    let status = train_command(&runs).status().unwrap();
    assert!(status.success());
    let path = run_dir(&runs).unwrap();
    let run = RunDir::open(&path);
    assert_eq!(run.pointer().unwrap().unwrap().epoch, EPOCHS);
    let history = condgen::train::history::read_csv(&path.join("history.csv")).unwrap();
    assert_eq!(history.height(), EPOCHS);
    eprintln!("{kills} kills survived; resumed to epoch {EPOCHS}");
}

/// Trains a quick run and returns its folder (kept alive by the tempdir).
fn quick_run(runs: &std::path::Path, experiment: &str, model: &str) -> std::path::PathBuf {
    let status = Command::new(env!("CARGO_BIN_EXE_condgen"))
        .args(["train", experiment, "--model", model, "--profile", "quick", "--epochs", "1", "--runs"])
        .arg(runs)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let parent = runs.join(experiment).join(model);
    std::fs::read_dir(parent).unwrap().flatten().map(|e| e.path()).find(|p| p.is_dir()).unwrap()
}

#[test]
fn foreign_truncated_and_mismatched_checkpoints_give_clear_errors() {
    let _serial = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let cvae = quick_run(&runs, "k49", "cvae");
    let cgan = quick_run(&runs, "k49", "cgan");
    let weights = |run: &std::path::Path| {
        let p = RunDir::open(run).pointer().unwrap().unwrap();
        RunDir::open(run).checkpoint_dir(p.epoch).join("model.safetensors")
    };
    let expect = |run: &std::path::Path, needle: &str| {
        let err = TrainedModel::load(run, tch::Device::Cpu).err().expect("loading must fail");
        let msg = err.to_string();
        assert!(msg.contains(needle), "`{msg}` should mention `{needle}`");
    };
    // A CGAN's weights in a CVAE's run folder: the names do not fit.
    std::fs::copy(weights(&cgan), weights(&cvae)).unwrap();
    expect(&cvae, "weights do not fit this model's configuration");
    // A truncated safetensors file.
    let bytes = std::fs::read(weights(&cgan)).unwrap();
    std::fs::write(weights(&cvae), &bytes[..bytes.len() / 3]).unwrap();
    expect(&cvae, "model.safetensors");
    // A foreign file.
    std::fs::write(weights(&cvae), b"not a safetensors file at all").unwrap();
    expect(&cvae, "model.safetensors");
    // A config that does not match the weights (another latent size).
    let config = cgan.join("config.json");
    let text = std::fs::read_to_string(&config).unwrap().replace("\"noise\": 16", "\"noise\": 17");
    std::fs::write(&config, text).unwrap();
    expect(&cgan, "weights do not fit this model's configuration");
    // A folder that is not a run.
    expect(dir.path(), "config.json");
}
