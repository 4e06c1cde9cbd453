//! The check that the notebooks print the report's numbers for the report's runs.

use condgen::report::consistency::{self, Disagreement};
use std::path::Path;

const REPORT: &str = "# report\n\n## Runs\n\n```text\n\
run sign-vowel/cvae/default-seed0-2f093a48: accuracy 95.2 [94.3, 96.0] %, Fréchet distance 69.1\n\
run k49/cgan/default-seed0-6eafa8ce: accuracy 85.8 [84.4, 87.2] %, Fréchet distance 83.8\n```\n";

/// A notebook whose two cells printed `first` (a stream) and `second` (a result's plain text).
fn notebook(first: &str, second: &str) -> String {
    serde_json::json!({
        "cells": [
            {"cell_type": "code", "source": ["ws.evaluate(..)"], "outputs": [
                {"output_type": "stream", "name": "stdout", "text": [first, "\n", "another line\n"]}
            ]},
            {"cell_type": "markdown", "source": ["run a/b/c: prose is not output"]},
            {"cell_type": "code", "source": [], "outputs": [
                {"output_type": "execute_result", "data": {"text/plain": second}}
            ]}
        ],
        "nbformat": 4
    })
    .to_string()
}

#[test]
fn fingerprints_name_the_run_by_its_last_three_folders() {
    assert_eq!(
        consistency::run_id(Path::new("runs/sign-vowel/cvae/default-seed0-2f093a48")),
        "sign-vowel/cvae/default-seed0-2f093a48"
    );
    let found = consistency::fingerprints(REPORT);
    assert_eq!(found.len(), 2);
    assert_eq!(found["k49/cgan/default-seed0-6eafa8ce"], "accuracy 85.8 [84.4, 87.2] %, Fréchet distance 83.8");
    assert!(consistency::fingerprints("run fast: not a run id\nrunning: no").is_empty());
}

#[test]
fn notebooks_printing_the_reports_numbers_agree_and_a_planted_difference_is_found() {
    let same = notebook(
        "run sign-vowel/cvae/default-seed0-2f093a48: accuracy 95.2 [94.3, 96.0] %, Fréchet distance 69.1",
        "run other/cvae/default-seed0-00000000: accuracy 1.0 %",
    );
    assert_eq!(consistency::check(REPORT, &[("03.ipynb".into(), same)]).unwrap(), vec![]);
    // The numbers the committed documents once disagreed on: 94.5 % in the notebook, 95.2 % in the report.
    let planted = notebook(
        "text before",
        "run sign-vowel/cvae/default-seed0-2f093a48: accuracy 94.5 [93.6, 95.4] %, Fréchet distance 69.1",
    );
    let found = consistency::check(REPORT, &[("03.ipynb".into(), planted)]).unwrap();
    assert_eq!(
        found,
        vec![Disagreement {
            run: "sign-vowel/cvae/default-seed0-2f093a48".into(),
            notebook: "03.ipynb".into(),
            in_notebook: "accuracy 94.5 [93.6, 95.4] %, Fréchet distance 69.1".into(),
            in_report: "accuracy 95.2 [94.3, 96.0] %, Fréchet distance 69.1".into(),
        }]
    );
    assert!(found[0].to_string().contains("03.ipynb prints run sign-vowel/cvae/default-seed0-2f093a48"));
    assert!(consistency::check(REPORT, &[("bad.ipynb".into(), "not json".into())]).is_err());
}

#[test]
fn check_files_reads_a_report_and_a_folder_of_notebooks() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("REPORT.md"), REPORT).unwrap();
    let notebooks = dir.path().join("notebooks");
    std::fs::create_dir(&notebooks).unwrap();
    let line = "run k49/cgan/default-seed0-6eafa8ce: accuracy 84.7 [83.3, 86.1] %, Fréchet distance 82.2";
    std::fs::write(notebooks.join("07.ipynb"), notebook(line, "")).unwrap();
    std::fs::write(notebooks.join("README.md"), line).unwrap();
    let (found, shared) = consistency::check_files(&dir.path().join("REPORT.md"), &notebooks).unwrap();
    assert_eq!((found.len(), shared), (1, 1), "{found:?}");
    assert_eq!(found[0].notebook, "07.ipynb");
}
