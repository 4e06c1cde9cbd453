//! The notebook helpers: HTML tables, the workspace's profile and folders, budget caps.

use crate::common;

use condgen::model::ModelKind;
use condgen::notebook::{project_root, Table, Workspace};
use condgen::polars::prelude::*;
use condgen::train::Profile;
use condgen::Experiment;

#[test]
fn tables_render_as_escaped_html_with_every_cell() {
    let df = df!(
        "name" => ["<b>", "a&b"],
        "value" => [Some(1.5f64), None],
    )
    .unwrap();
    let html = Table(df).to_html();
    assert!(html.starts_with("<table"));
    assert!(html.contains("<th>name</th><th>value</th>"));
    assert!(html.contains("<td>&lt;b&gt;</td>"), "cells are escaped: {html}");
    assert!(html.contains("<td>a&amp;b</td>"));
    assert!(html.contains("<td style=\"text-align:right\">1.5</td>"), "numbers right-aligned: {html}");
    assert!(html.contains("<td style=\"text-align:right\"></td>"), "a null is an empty cell: {html}");
    assert_eq!(html.matches("<tr>").count(), 3, "header + 2 rows");
}

#[test]
fn the_workspace_reads_its_profile_and_finds_the_project() {
    // One test touches the environment, so no other test races it; it also holds the
    // lock of the libtorch tests, whose C code may read the environment meanwhile.
    let _serial = common::serial();
    let root = project_root(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("notebooks").as_path()).unwrap();
    assert_eq!(root, std::path::Path::new(env!("CARGO_MANIFEST_DIR")));

    std::env::set_var("CONDGEN_PROFILE", "quick");
    let ws = Workspace::from_env().unwrap();
    assert_eq!(ws.profile, Profile::Quick);
    assert!(ws.eval_options().quick_judges);
    assert_eq!(ws.eval_options().judges_root, ws.runs.join("judges"));

    std::env::set_var("CONDGEN_PROFILE", "fast");
    let err = Workspace::from_env().unwrap_err().to_string();
    assert!(err.contains("fast") && err.contains("quick, default or paper"), "{err}");
    std::env::remove_var("CONDGEN_PROFILE");
    assert_eq!(Workspace::from_env().unwrap().profile, Profile::Default);

    // A budget cap never raises the profile's own cap.
    let quick = ws.config(Experiment::K49, ModelKind::Cvae);
    assert_eq!(ws.capped(&quick, 20_000).max_train_images, Some(1024));
    let default = condgen::train::TrainConfig::new(Experiment::K49, ModelKind::Cvae, Profile::Default);
    assert_eq!(ws.capped(&default, 20_000).max_train_images, Some(20_000));
}

#[test]
fn comparisons_state_their_numbers_and_the_right_winner() {
    use condgen::notebook::{against_bar, compare, Better};
    assert_eq!(
        compare("recall", Better::Higher, ("the CGAN", 0.646), ("the CVAE", 0.425), 3),
        "recall: the CGAN 0.646 against the CVAE 0.425 (better: the CGAN, by 0.221)."
    );
    assert_eq!(
        compare("FD", Better::Lower, ("A", 53.6), ("B", 44.0), 1),
        "FD: A 53.6 against B 44.0 (better: B, by 9.6)."
    );
    assert_eq!(
        compare("KL", Better::Neither, ("A", 1.0), ("B", 3.0), 1),
        "KL: A 1.0 against B 3.0 (higher: B, by 2.0)."
    );
    assert!(compare("x", Better::Higher, ("A", 0.1234), ("B", 0.1231), 2).ends_with("(equal at this precision)."));
    assert_eq!(
        against_bar("accuracy", 89.4, 95.0, Better::Higher, " %", 1),
        "accuracy 89.4 % misses the bar of 95.0 % by 5.6 %."
    );
    assert_eq!(against_bar("FD", 40.0, 86.2, Better::Lower, "", 1), "FD 40.0 meets the bar of 86.2.");
}
