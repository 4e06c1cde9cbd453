//! Whether the committed notebooks and REPORT.md print the same numbers for the
//! same run.
//!
//! Both print a run's *fingerprint* wherever they judge it ([`fingerprint`]):
//! one line, `run <experiment>/<model>/<run folder>: <headline measures>`, the
//! measures as every table rounds them ([`crate::table::summary`]) for the
//! samples as the model draws them. [`check`] collects the fingerprints of
//! REPORT.md and of every notebook's outputs and lists each run whose
//! notebook line differs from the report's. A run only one of them prints is
//! not compared (a notebook may train variants the report does not have).

use std::collections::BTreeMap;
use std::path::Path;

use crate::eval::RunMetrics;
use crate::{Error, Result};

/// What starts a fingerprint line.
const PREFIX: &str = "run ";

/// A run's fingerprint: `run <id>: <headline measures as drawn>`, where the id
/// is the run folder's last three path components (experiment, model, folder).
pub fn fingerprint(metrics: &RunMetrics) -> String {
    format!("{PREFIX}{}: {}", run_id(&metrics.run), crate::table::summary(metrics.as_trained()))
}

/// A run folder's id in fingerprints: "sign-vowel/cvae/default-seed0-2f093a48".
pub fn run_id(run: &Path) -> String {
    let parts: Vec<String> = run.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
    parts[parts.len().saturating_sub(3)..].join("/")
}

/// Every fingerprint line of a text: id → measures (the last one when an id repeats).
pub fn fingerprints(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix(PREFIX)?;
            let (id, measures) = rest.split_once(": ")?;
            (id.split('/').count() == 3 && !id.contains(' ')).then(|| (id.to_string(), measures.trim().to_string()))
        })
        .collect()
}

/// The text a notebook's cells printed: streams, and results and displays as plain text.
pub fn notebook_outputs(ipynb: &str) -> Result<String> {
    let nb: serde_json::Value =
        serde_json::from_str(ipynb).map_err(|e| Error::InvalidInput(format!("not a notebook (JSON): {e}")))?;
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(lines) => lines.iter().filter_map(|l| l.as_str()).collect(),
        _ => String::new(),
    };
    let mut out = String::new();
    let cells = nb["cells"].as_array().map(Vec::as_slice).unwrap_or_default();
    for output in cells.iter().filter_map(|c| c["outputs"].as_array()).flatten() {
        out.push_str(&text(&output["text"]));
        out.push_str(&text(&output["data"]["text/plain"]));
        out.push('\n');
    }
    Ok(out)
}

/// A run printed with other numbers by a notebook than by the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disagreement {
    pub run: String,
    pub notebook: String,
    pub in_notebook: String,
    pub in_report: String,
}

impl std::fmt::Display for Disagreement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} prints run {} as\n    {}\n  REPORT.md prints it as\n    {}",
            self.notebook, self.run, self.in_notebook, self.in_report
        )
    }
}

/// The disagreements between the report's text and notebooks given as
/// (name, .ipynb JSON); none when every run both print has one set of numbers.
pub fn check(report_md: &str, notebooks: &[(String, String)]) -> Result<Vec<Disagreement>> {
    Ok(compare(&fingerprints(report_md), &notebook_fingerprints(notebooks)?))
}

/// Each notebook's name with the fingerprints its outputs print.
fn notebook_fingerprints(notebooks: &[(String, String)]) -> Result<Vec<(String, BTreeMap<String, String>)>> {
    notebooks.iter().map(|(name, ipynb)| Ok((name.clone(), fingerprints(&notebook_outputs(ipynb)?)))).collect()
}

/// Every run a notebook prints with other measures than the report does.
fn compare(report: &BTreeMap<String, String>, notebooks: &[(String, BTreeMap<String, String>)]) -> Vec<Disagreement> {
    let mut found = Vec::new();
    for (name, printed) in notebooks {
        for (run, measures) in printed {
            match report.get(run) {
                Some(in_report) if in_report != measures => found.push(Disagreement {
                    run: run.clone(),
                    notebook: name.clone(),
                    in_notebook: measures.clone(),
                    in_report: in_report.clone(),
                }),
                _ => {}
            }
        }
    }
    found
}

/// [`check`] of `report_md` (a REPORT.md) against every `.ipynb` in `notebooks_dir`.
/// Also returns how many runs the two print in common.
pub fn check_files(report_md: &Path, notebooks_dir: &Path) -> Result<(Vec<Disagreement>, usize)> {
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| Error::io(p, e));
    let report = fingerprints(&read(report_md)?);
    let mut paths: Vec<_> = std::fs::read_dir(notebooks_dir)
        .map_err(|e| Error::io(notebooks_dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "ipynb"))
        .collect();
    paths.sort();
    let notebooks: Vec<(String, String)> = paths
        .iter()
        .map(|p| Ok((p.file_name().unwrap_or_default().to_string_lossy().into_owned(), read(p)?)))
        .collect::<Result<_>>()?;
    let printed = notebook_fingerprints(&notebooks)?;
    let shared: std::collections::BTreeSet<&String> =
        printed.iter().flat_map(|(_, runs)| runs.keys()).filter(|id| report.contains_key(*id)).collect();
    Ok((compare(&report, &printed), shared.len()))
}
