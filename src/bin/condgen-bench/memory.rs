//! Peak resident memory of a real K49-size training run, measured on a child
//! process (`condgen train k49 --model cvae --epochs 1`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// What the child training run measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct MemoryRun {
    /// "measured", "skipped" or "failed".
    pub status: String,
    /// The command line, as run.
    pub command: Option<String>,
    /// Peak resident set of the child: VmHWM of /proc/<pid>/status, polled
    /// every 20 ms until it exits, MB (10⁶ bytes).
    pub peak_rss_mb: Option<f64>,
    /// ru_maxrss of the child from wait4, MB: an upper bound only, since a child
    /// spawned with CLONE_VM (posix_spawn) inherits the parent's high-water mark at exec.
    pub ru_maxrss_mb: Option<f64>,
    /// Wall time of the whole child run (data loading, training, test loss, checkpoint), seconds.
    pub wall_seconds: Option<f64>,
    /// Training-loop seconds of its one epoch, from the run's meta.json.
    pub train_seconds: Option<f64>,
    /// Training images the child used, from meta.json.
    pub train_images: Option<usize>,
    /// Where its data came from, from meta.json.
    pub data_source: Option<String>,
    /// Why it was skipped or how it failed (with the tail of its log).
    pub message: Option<String>,
}

impl MemoryRun {
    pub(crate) fn skipped(why: &str) -> Self {
        MemoryRun { status: "skipped".into(), message: Some(why.into()), ..Default::default() }
    }
}

/// Peak RSS of this process so far, MB.
pub(crate) fn self_peak_rss_mb() -> Option<f64> {
    // SAFETY: getrusage only writes the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    // ru_maxrss is in KiB on Linux.
    (rc == 0).then(|| ru.ru_maxrss as f64 * 1024.0 / 1e6)
}

/// Runs one K49 CVAE epoch in a child with `threads` OpenMP/MKL threads, its run
/// folder in a temporary directory. The child inherits the environment, so
/// CONDGEN_DATA / CONDGEN_K49 choose its data.
pub(crate) fn memory_run(binary: &Path, threads: usize) -> MemoryRun {
    match run_child(binary, threads) {
        Ok(m) => m,
        Err(message) => MemoryRun { status: "failed".into(), message: Some(message), ..Default::default() },
    }
}

fn run_child(binary: &Path, threads: usize) -> Result<MemoryRun, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
    let runs = dir.path().join("runs");
    let log_path = dir.path().join("train.log");
    let log = std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let args = ["train", "k49", "--model", "cvae", "--epochs", "1", "--runs"];
    // As printed in the report: the binary's name and a placeholder, no machine paths.
    let name = binary.file_name().map_or_else(|| binary.display().to_string(), |n| n.to_string_lossy().into_owned());
    let command = format!("{name} {} <temporary folder>/runs", args.join(" "));
    let mut cmd = Command::new(binary);
    cmd.args(args)
        .arg(&runs)
        // libtorch's OpenMP pool and MKL read these at start-up.
        .env("OMP_NUM_THREADS", threads.to_string())
        .env("MKL_NUM_THREADS", threads.to_string())
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log);
    let start = Instant::now();
    let child = cmd.spawn().map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    let pid = child.id() as libc::pid_t;
    // Poll VmHWM (the high-water mark of the child's own address space) until
    // it exits: a peak is missed only if it is reached in its last 20 ms.
    // wait4 (not Child::wait) also gives its rusage, kept as an upper bound.
    let status_path = format!("/proc/{pid}/status");
    let mut hwm_kb: Option<u64> = None;
    let mut status: libc::c_int = 0;
    // SAFETY: plain syscall on our own child; rusage is written by the kernel.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        if let Some(kb) = std::fs::read_to_string(&status_path).ok().as_deref().and_then(vm_hwm_kb) {
            hwm_kb = Some(hwm_kb.map_or(kb, |h| h.max(kb)));
        }
        let rc = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) };
        if rc == pid {
            break;
        }
        if rc == 0 {
            std::thread::sleep(std::time::Duration::from_millis(20));
            continue;
        }
        let err = std::io::Error::last_os_error();
        if rc == -1 && err.kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        return Err(format!("wait4 on {command}: {err}"));
    }
    // Reaped by wait4 above; dropping `child` neither waits nor kills.
    drop(child);
    let wall = start.elapsed().as_secs_f64();
    let exited_ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    if !exited_ok {
        return Err(format!("`{command}` failed (wait status {status}); its log ends:\n{}", tail(&log_path, 12)));
    }
    let mut run = MemoryRun {
        status: "measured".into(),
        command: Some(command),
        peak_rss_mb: hwm_kb.map(|kb| kb as f64 * 1024.0 / 1e6),
        ru_maxrss_mb: Some(ru.ru_maxrss as f64 * 1024.0 / 1e6),
        wall_seconds: Some(wall),
        ..Default::default()
    };
    if let Some(meta) = find_meta(&runs.join("k49").join("cvae")) {
        run.train_seconds = Some(meta.train_seconds);
        run.train_images = Some(meta.train_images);
        run.data_source = meta.data_source.map(|source| source.to_string());
    }
    Ok(run)
}

/// "VmHWM:   123456 kB" of a /proc/<pid>/status text, kB.
fn vm_hwm_kb(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// meta.json of the single run folder under `dir`.
fn find_meta(dir: &Path) -> Option<condgen::train::run::RunMeta> {
    let entries = std::fs::read_dir(dir).ok()?;
    let runs: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    runs.iter().find_map(|run| condgen::train::RunDir::open(run).read_meta().ok())
}

/// The last `n` lines of a text file.
fn tail(path: &Path, n: usize) -> String {
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
