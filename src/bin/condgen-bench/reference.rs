//! Drives the PyTorch reference (`tests/bench/pytorch_reference.py --serve`) as
//! a worker process: one JSON request per line on its stdin, one JSON response
//! per line on its stdout. Keeping it alive lets the benchmark alternate condgen
//! and PyTorch repeats, so both sides see the same machine load.
//!
//! Failures are returned as text for the report, never as errors: a machine
//! without python or torch still gets condgen's figures.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::{json, Value};

use crate::results::Case;

/// What the worker says about itself.
#[derive(Clone, Debug)]
pub(crate) struct Versions {
    pub torch: String,
    pub numpy: Option<String>,
    pub python: Option<String>,
    /// torch.get_num_threads() after torch.set_num_threads.
    pub threads: usize,
}

pub(crate) struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    pub versions: Versions,
}

impl Worker {
    /// Starts `python script --serve` with `threads` intra-op threads.
    pub fn start(python: &Path, script: &Path, threads: usize, seed: u64) -> Result<Worker, String> {
        if !script.is_file() {
            return Err(format!("reference script {} not found", script.display()));
        }
        let mut child = Command::new(python)
            .arg(script)
            .arg("--serve")
            .args(["--threads", &threads.to_string()])
            .args(["--seed", &seed.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // The script's progress lines and tracebacks join ours.
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut worker = Worker {
            child,
            stdin,
            stdout,
            versions: Versions { torch: String::new(), numpy: None, python: None, threads: 0 },
        };
        let hello = worker.call(json!({"cmd": "hello"}))?;
        let text = |k: &str| hello.get(k).and_then(|v| v.as_str()).map(str::to_string);
        worker.versions = Versions {
            torch: text("torch_version").unwrap_or_else(|| "unknown".into()),
            numpy: text("numpy_version"),
            python: text("python"),
            threads: hello.get("threads").and_then(|v| v.as_u64()).unwrap_or(0) as usize,
        };
        Ok(worker)
    }

    /// One request, one response; `{"ok": false}` and a dead worker become Err.
    fn call(&mut self, request: Value) -> Result<Value, String> {
        writeln!(self.stdin, "{request}")
            .and_then(|_| self.stdin.flush())
            .map_err(|e| format!("the PyTorch worker is gone ({e})"))?;
        let mut line = String::new();
        loop {
            line.clear();
            let n = self.stdout.read_line(&mut line).map_err(|e| format!("reading the PyTorch worker: {e}"))?;
            if n == 0 {
                let status = self.child.wait().map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                return Err(format!("the PyTorch worker exited ({status}) during `{request}`"));
            }
            // Skip anything that is not a protocol line (stray prints of imported modules).
            if line.trim_start().starts_with('{') {
                break;
            }
        }
        let value: Value = serde_json::from_str(line.trim())
            .map_err(|e| format!("bad response from the PyTorch worker: {e}: {line}"))?;
        if let Some(err) = value.get("error").and_then(|e| e.as_str()) {
            return Err(err.to_string());
        }
        if value.get("ok").and_then(|v| v.as_bool()) != Some(true) {
            return Err(format!("unexpected response from the PyTorch worker: {line}"));
        }
        Ok(value)
    }

    /// Builds `case`'s model in PyTorch and runs its warm-up steps.
    pub fn prepare(&mut self, case: &Case) -> Result<(), String> {
        self.call(json!({"cmd": "prepare", "model": case.model.id(), "batch": case.batch, "warmup": case.warmup}))
            .map(|_| ())
    }

    /// One timed repeat of the prepared case: seconds per step.
    pub fn repeat(&mut self, steps: usize) -> Result<f64, String> {
        let v = self.call(json!({"cmd": "repeat", "steps": steps}))?;
        v.get("seconds_per_step").and_then(|s| s.as_f64()).ok_or_else(|| format!("no seconds_per_step in {v}"))
    }

    /// One SGEMM repeat: (torch GFLOP/s, numpy GFLOP/s when numpy is installed).
    pub fn sgemm(&mut self, size: i64) -> Result<(f64, Option<f64>), String> {
        let v = self.call(json!({"cmd": "sgemm", "size": size}))?;
        let torch = v.get("torch_gflops").and_then(|s| s.as_f64()).ok_or_else(|| format!("no torch_gflops in {v}"))?;
        Ok((torch, v.get("numpy_gflops").and_then(|s| s.as_f64())))
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Ask it to leave; if it cannot, end it (it is our own child).
        if writeln!(self.stdin, "{}", json!({"cmd": "quit"})).and_then(|_| self.stdin.flush()).is_err() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
