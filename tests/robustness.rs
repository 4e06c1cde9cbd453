//! Interrupted runs: SIGKILL at random moments, again and again; every time the
//! run folder holds a loadable last-complete-epoch checkpoint with a matching
//! history, and `--resume` reaches the configured epoch count.

mod common;

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
