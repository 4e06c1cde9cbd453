//! `condgen report --profile quick` end to end: every run trained, judged and drawn.

use crate::common;

use std::process::Command;

#[test]
fn quick_report_runs_end_to_end() {
    let _serial = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let status = Command::new(env!("CARGO_BIN_EXE_condgen"))
        .args(["report", "--profile", "quick", "--out"])
        .arg(&out)
        .arg("--runs")
        .arg(dir.path().join("runs"))
        .status()
        .unwrap();
    assert!(status.success());
    let md = std::fs::read_to_string(out.join("REPORT.md")).unwrap();
    for section in [
        "## Data sources",
        "## Judges",
        "## Sign Language MNIST study",
        "## Kuzushiji-49 study",
        "## Beyond the studies",
        "## Reference rows",
        "## Targets",
        "stability over seeds",
        "[benchmarks.md](benchmarks.md)",
    ] {
        assert!(md.contains(section), "REPORT.md lacks {section}");
    }
    // K49's two CGAN rows side by side, and the WGAN-GP row (trained two at a time, in child processes).
    for row in ["| k49 cgan (study model) |", "| k49 cgan (improved) |", "| k49 cgan (study model, WGAN-GP) |"] {
        assert!(md.contains(row), "REPORT.md lacks a row {row}");
    }
    assert!(!dir.path().join("runs/pending").read_dir().is_ok_and(|mut d| d.next().is_some()), "job files cleaned up");
    // Every figure the markdown links exists and is a PNG.
    let mut linked = 0;
    for line in md.lines().filter(|l| l.starts_with("![")) {
        let file = line.split("](").nth(1).unwrap().trim_end_matches(')');
        let bytes = std::fs::read(out.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(&bytes[1..4], b"PNG", "{file}");
        linked += 1;
    }
    assert!(linked >= 30, "{linked} figures");
}
