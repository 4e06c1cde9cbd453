//! Runs that are stopped or fail: Ctrl-C (SIGINT) saves and exits cleanly; a
//! write that fails (a file-size limit, as on a full disk) leaves the previous
//! checkpoint intact and names the file; a saturated GAN discriminator warns.

use crate::common;

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use condgen::sample::TrainedModel;
use condgen::train::RunDir;

fn condgen() -> Command {
    Command::new(env!("CARGO_BIN_EXE_condgen"))
}

/// A quick K49 CVAE run of `epochs` epochs into `runs`, stderr captured.
fn spawn_training(runs: &Path, epochs: usize, resume: bool) -> Child {
    let mut cmd = condgen();
    cmd.args(["train", "k49", "--model", "cvae", "--profile", "quick", "--epochs", &epochs.to_string(), "--runs"])
        .arg(runs)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if resume {
        cmd.arg("--resume");
    }
    cmd.spawn().unwrap()
}

fn run_dir(runs: &Path) -> Option<PathBuf> {
    std::fs::read_dir(runs.join("k49").join("cvae")).ok()?.flatten().map(|e| e.path()).find(|p| p.is_dir())
}

fn completed_epochs(runs: &Path) -> usize {
    run_dir(runs).and_then(|p| RunDir::open(p).pointer().ok().flatten()).map_or(0, |p| p.epoch)
}

/// Waits until the run has completed `epochs` epochs (or the child ended).
fn wait_for_epoch(child: &mut Child, runs: &Path, epochs: usize) {
    let start = Instant::now();
    while completed_epochs(runs) < epochs && child.try_wait().unwrap().is_none() {
        assert!(start.elapsed() < Duration::from_secs(300), "training made no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn finish(mut child: Child) -> (std::process::ExitStatus, String) {
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    (child.wait().unwrap(), stderr)
}

/// The run's last complete checkpoint loads and its history matches it.
fn assert_consistent(runs: &Path) -> usize {
    let path = run_dir(runs).unwrap();
    let run = RunDir::open(&path);
    let pointer = run.pointer().unwrap().expect("a complete epoch");
    let model = TrainedModel::load(&path, tch::Device::Cpu).unwrap();
    assert_eq!(model.epoch, pointer.epoch);
    let state = run.read_state(pointer.epoch).unwrap();
    assert_eq!(state.history.len(), pointer.epoch);
    pointer.epoch
}

#[test]
fn ctrl_c_finishes_the_step_saves_and_exits_with_130() {
    let _serial = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let epochs = 400;
    let mut child = spawn_training(&runs, epochs, false);
    wait_for_epoch(&mut child, &runs, 2);
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let (status, stderr) = finish(child);
    assert_eq!(status.code(), Some(130), "exit code of an interrupted run; stderr:\n{stderr}");
    assert!(stderr.contains("interrupted"), "says it was interrupted:\n{stderr}");
    let kept = assert_consistent(&runs);
    assert!(kept >= 2 && kept < epochs, "the interrupt landed mid-run (epoch {kept})");
    let meta = RunDir::open(run_dir(&runs).unwrap()).read_meta().unwrap();
    assert!(meta.stopped_reason.unwrap_or_default().contains("interrupted"));

    // --resume carries on from the saved epoch.
    let mut child = spawn_training(&runs, epochs, true);
    wait_for_epoch(&mut child, &runs, kept + 1);
    child.kill().unwrap();
    let (_, stderr) = finish(child);
    assert!(stderr.contains(&format!("from epoch {kept}")), "resumed from the saved epoch:\n{stderr}");
}

#[test]
fn a_failing_write_keeps_the_previous_checkpoint_and_names_the_file() {
    let _serial = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let epochs = 400;
    // Ignoring SIGXFSZ (inherited through exec) turns writes past the limit into EFBIG errors.
    let mut cmd = condgen();
    cmd.args(["train", "k49", "--model", "cvae", "--profile", "quick", "--epochs", &epochs.to_string(), "--runs"])
        .arg(&runs)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    unsafe {
        use std::os::unix::process::CommandExt as _;
        cmd.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    wait_for_epoch(&mut child, &runs, 2);
    // The disk "fills up": from now on no file of the run may grow past 4 KiB.
    let limit = libc::rlimit { rlim_cur: 4096, rlim_max: libc::RLIM_INFINITY };
    let rc = unsafe { libc::prlimit(child.id() as i32, libc::RLIMIT_FSIZE, &limit, std::ptr::null_mut()) };
    assert_eq!(rc, 0, "prlimit on the training process");
    let (status, stderr) = finish(child);
    assert!(!status.success(), "a failed write must fail the run; stderr:\n{stderr}");
    assert!(stderr.contains("File too large"), "reports the write error:\n{stderr}");
    assert!(stderr.contains(runs.to_str().unwrap()), "names the file it could not write:\n{stderr}");
    let kept = assert_consistent(&runs);
    assert!(kept >= 2, "the checkpoint written before the failure is intact (epoch {kept})");

    // With space again, --resume continues from it.
    let mut child = spawn_training(&runs, epochs, true);
    wait_for_epoch(&mut child, &runs, kept + 1);
    child.kill().unwrap();
    let (_, stderr) = finish(child);
    assert!(stderr.contains(&format!("from epoch {kept}")), "resumed from the kept epoch:\n{stderr}");
    assert!(assert_consistent(&runs) > kept);
}

#[test]
fn a_discriminator_that_wins_outright_is_reported() {
    let _serial = common::serial();
    let dir = tempfile::tempdir().unwrap();
    // Thirty discriminator steps per generator step on a small slice: D wins for good.
    let out = condgen()
        .args(["train", "k49", "--model", "cgan", "--profile", "quick", "--epochs", "2", "--batch-size", "16"])
        .args(["--set", "discriminator_steps=30", "--set", "max_train_images=4096", "--runs"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "a warning, not a failure:\n{stderr}");
    assert!(
        stderr.contains("WARNING") && stderr.contains("discriminator wins outright"),
        "warns about the saturated discriminator:\n{stderr}"
    );
}
