//! Smoke tests of the benchmark: a quick run against the PyTorch reference,
//! and a run without Python that says why the reference is missing; and the
//! markdown of hand-made reports against golden files (`golden`, no timing).

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

/// The markdown of a hand-made report, held to golden files: no timing, no PyTorch.
/// `CONDGEN_BLESS_GOLDEN=1` rewrites the golden files from the current output.
mod golden {
    use std::path::{Path, PathBuf};

    use crate::memory::MemoryRun;
    use crate::results::{targets, BenchReport};

    fn bench_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bench")
    }

    /// Every section: all three models, the reference, a sweep, a measured memory
    /// run, targets met, missed and not measured.
    fn full_report() -> BenchReport {
        let path = bench_dir().join("golden-report.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).expect("golden-report.json is a BenchReport")
    }

    /// The same without the PyTorch reference, numpy, the sweep and the memory
    /// run; a quick run; targets as `results::targets` derives them.
    fn no_reference_report() -> BenchReport {
        let mut r = full_report();
        r.plan.quick = true;
        r.reference_error = Some("cannot run /nonexistent/python: No such file or directory (os error 2)".into());
        for m in &mut r.models {
            m.pytorch = None;
            m.ratio = None;
            m.met = None;
            m.pytorch_gflops = None;
        }
        r.sweep.clear();
        r.overhead_fits.clear();
        r.sgemm.torch_gflops = None;
        r.sgemm.numpy_gflops = None;
        for row in &mut r.conv_flops.rows {
            row.pytorch_gflops = None;
            row.sgemm_torch_gflops = None;
            row.pytorch_share_of_sgemm = None;
        }
        r.memory = MemoryRun::skipped("no condgen binary given\n(second line of the reason)");
        r.bench_peak_rss_mb = None;
        let h = &mut r.machine;
        (h.torch_version, h.python_version, h.numpy_version, h.libtorch) = (None, None, None, None);
        (h.load_average_start, h.load_average_end) = (None, None);
        r.targets = targets(&r);
        r
    }

    fn check(report: &BenchReport, golden: &str) {
        let path = bench_dir().join(golden);
        let md = report.to_markdown();
        if std::env::var_os("CONDGEN_BLESS_GOLDEN").is_some() {
            std::fs::write(&path, &md).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if md != want {
            let line = md
                .lines()
                .zip(want.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(md.lines().count().min(want.lines().count()));
            panic!(
                "to_markdown() differs from {} from line {}:\n got: {:?}\nwant: {:?}",
                path.display(),
                line + 1,
                md.lines().nth(line),
                want.lines().nth(line)
            );
        }
    }

    #[test]
    fn golden_markdown_full_report() {
        check(&full_report(), "golden-benchmarks.md");
    }

    #[test]
    fn golden_markdown_without_reference() {
        check(&no_reference_report(), "golden-benchmarks-no-reference.md");
    }
}
