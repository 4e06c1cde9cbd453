//! Smoke tests of the benchmark: a quick run against the PyTorch reference,
//! and a run without Python that says why the reference is missing.

use std::sync::Mutex;

use crate::harness;
use crate::plan::{BenchModel, BenchOptions};

/// Timing tests run one at a time: in parallel they would skew each other and
/// race on tch's global thread count.
static SERIAL: Mutex<()> = Mutex::new(());

#[test]
fn quick_run_measures_every_model_on_both_sides() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let start = std::time::Instant::now();
    let opts = BenchOptions { quick: true, condgen_binary: None, ..Default::default() };
    let report = harness::run(&opts).expect("bench runs");
    assert!(report.reference_error.is_none(), "reference failed: {:?}", report.reference_error);

    let expected = [
        (BenchModel::MlpCvae, 128),
        (BenchModel::MlpCgan, 32),
        (BenchModel::ConvCvae, 64),
        (BenchModel::ConvCvae, 256),
    ];
    assert_eq!(report.models.len(), expected.len());
    for (r, (model, batch)) in report.models.iter().zip(expected) {
        assert_eq!((r.model, r.batch_size), (model, batch));
        let theirs = r.pytorch.as_ref().unwrap_or_else(|| panic!("{model:?}: no PyTorch timing"));
        for t in [&r.condgen, theirs] {
            assert!(t.median_step_seconds > 0.0 && t.images_per_second > 0.0 && t.steps_per_second > 0.0);
            assert!((t.images_per_second - batch as f64 * t.steps_per_second).abs() < 1e-6 * t.images_per_second);
        }
        let unit = r.rate_unit;
        let ratio = r.ratio.expect("ratio");
        let expected_ratio = r.condgen.rate(unit) / theirs.rate(unit);
        assert!((ratio - expected_ratio).abs() < 1e-12 * expected_ratio, "{model:?}: ratio {ratio} ≠ condgen/pytorch");
        assert!(r.met.is_some());
    }
    assert!(report.sgemm.condgen_gflops > 0.0);
    assert!(report.sgemm.torch_gflops.is_some_and(|g| g > 0.0));
    assert_eq!(report.conv_flops.rows.len(), 2);
    assert_eq!(report.pipeline.len(), 2);
    assert!(report.pipeline.iter().all(|p| p.share > 0.0 && p.seconds_per_batch > 0.0));
    assert_eq!(report.extrapolations.len(), 2);
    assert_eq!(report.memory.status, "skipped");
    assert!(report.machine.torch_version.is_some());

    let md = report.to_markdown();
    for row in [
        "| MLP CVAE 784-144-20, batch 128 |",
        "| MLP CGAN, 1 D + 1 G step, batch 32 |",
        "| conv CVAE, batch 64 |",
        "| conv CVAE, batch 256 |",
        "## SGEMM",
        "## Data pipeline",
        "## Peak memory",
        "K49 epochs, extrapolated",
        "## Targets",
        "[benchmark-findings.md](benchmark-findings.md)",
        "## Machine",
    ] {
        assert!(md.contains(row), "markdown lacks `{row}`:\n{md}");
    }
    serde_json::to_string(&report).expect("report serializes");
    eprintln!("{md}");
    eprintln!("quick bench took {:.1} s", start.elapsed().as_secs_f64());
}

#[test]
fn missing_python_is_reported_not_fatal() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let opts = BenchOptions {
        quick: true,
        python: "/nonexistent/python".into(),
        // Only what the missing reference changes matters here: keep condgen's side tiny.
        models: vec![BenchModel::MlpCvae],
        sgemm_size: 64,
        train_images: 512,
        test_images: 256,
        ..Default::default()
    };
    let report = harness::run(&opts).expect("bench runs without python");
    let err = report.reference_error.as_deref().expect("the report says why");
    assert!(err.contains("/nonexistent/python"), "{err}");
    assert_eq!(report.models.len(), 1);
    let r = &report.models[0];
    assert!(r.condgen.images_per_second > 0.0);
    assert!(r.pytorch.is_none() && r.ratio.is_none() && r.met.is_none());
    assert!(report.sgemm.torch_gflops.is_none());
    assert!(report.to_markdown().contains("PyTorch reference unavailable"));
}
