//! Progress of long work: a bar in a terminal, one plain line per epoch
//! elsewhere (CI logs, notebooks).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// How progress is shown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProgressMode {
    /// A bar when stderr is a terminal, plain lines otherwise.
    #[default]
    Auto,
    /// One line per epoch.
    Lines,
    /// Nothing.
    Quiet,
}

/// Reports the steps of one epoch and a line when it ends.
pub struct Progress {
    bar: Option<ProgressBar>,
    mode: ProgressMode,
}

impl Progress {
    pub fn epoch(mode: ProgressMode, label: &str, epoch: usize, epochs: usize, steps: usize) -> Self {
        let use_bar = mode == ProgressMode::Auto && std::io::stderr().is_terminal();
        let bar = use_bar.then(|| {
            let bar = ProgressBar::new(steps as u64);
            bar.set_style(
                ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({per_sec}, eta {eta})")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(format!("{label} epoch {epoch}/{epochs}"));
            bar
        });
        Progress { bar, mode }
    }

    /// After each step, with the running loss.
    pub fn step(&self, loss: f64) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
            if bar.position() % 10 == 0 {
                bar.set_message(format!("loss {loss:.4}"));
            }
        }
    }

    /// When the epoch is over: clears the bar and prints the summary line.
    pub fn finish(self, line: &str) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        say(self.mode, line);
    }
}

/// A notice about long work (a run started, resumed or reused; a judge's
/// epoch): one line on stderr unless `mode` is quiet.
pub fn notice(mode: ProgressMode, line: &str) {
    say(mode, line);
}

/// Lines mode (logs, notebooks) writes to stdout, where a notebook shows
/// information as such; stderr would paint it like an error. Auto mode keeps
/// stdout for results.
fn say(mode: ProgressMode, line: &str) {
    match mode {
        ProgressMode::Quiet => {}
        ProgressMode::Lines => println!("{line}"),
        ProgressMode::Auto => eprintln!("{line}"),
    }
}

/// A warning that changes what the results mean (a stand-in replaces real
/// data, a GAN saturates): always on stderr, every line marked, even when quiet.
pub fn warning(text: &str) {
    for line in text.lines() {
        eprintln!("WARNING: {line}");
    }
}
