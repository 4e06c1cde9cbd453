//! Smoke test of the benchmark: a quick run against the PyTorch reference, and
//! the conv CVAE's FLOP counter against a hand count.
//!
//! The full benchmark is an ignored test here (it takes minutes):
//!   cargo test --test bench_smoke -- --ignored full_benchmark --nocapture
//! It writes its markdown and JSON to $CONDGEN_BENCH_OUT (default target/tmp/bench/);
//! $CONDGEN_BENCH_OPTIONS may override any BenchOptions field, as JSON.

use std::sync::Mutex;

use condgen::bench::{self, BenchModel, BenchOptions};
use condgen::model::ConvCvaeConfig;

/// Timing tests run one at a time: in parallel they would skew each other and
/// race on tch's global thread count.
static SERIAL: Mutex<()> = Mutex::new(());

#[test]
fn flop_counter_matches_a_hand_count_on_a_tiny_config() {
    let cfg = ConvCvaeConfig {
        encoder_filters: [2, 3, 4],
        latent: 5,
        dense_channels: 6,
        decoder_filters: [7, 8],
        ..Default::default()
    };
    // cond 1 → 2 input channels; spatial 28 → 13 → 6 → 2 (3×3, stride 2, no padding).
    let by_hand = [
        ("enc.conv0", 13 * 13 * 2 * 2 * 9), // 6,084
        ("enc.conv1", 6 * 6 * 3 * 2 * 9),   // 1,944
        ("enc.conv2", 2 * 2 * 4 * 3 * 9),   // 432
        ("enc.out", 16 * 10),               // 4·2·2 → 2·5: 160
        ("dec.in", 6 * 294),                // 5+1 → 7·7·6: 1,764
        ("dec.up1", 49 * 6 * 7 * 9),        // 7×7×6 → 14×14×7: 18,522
        ("dec.up2", 196 * 7 * 8 * 9),       // 14×14×7 → 28×28×8: 98,784
        ("dec.out", 784 * 8 * 9),           // 28×28×8 → 28×28×1: 56,448
    ];
    let layers = bench::conv_cvae_layer_macs(&cfg, 1);
    let names: Vec<&str> = layers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, by_hand.iter().map(|(n, _)| *n).collect::<Vec<_>>());
    for ((name, macs), (_, hand)) in layers.iter().zip(by_hand) {
        assert_eq!(*macs, hand as i64, "{name}");
    }
    assert_eq!(bench::conv_cvae_forward_macs(&cfg, 1), 184_138);
    // ≈ 3 × forward MACs × 2, less the first convolution's input gradient (6,084 MACs).
    assert_eq!(bench::conv_cvae_train_flops_per_image(&cfg, 1), 2.0 * (3.0 * 184_138.0 - 6_084.0));
}

#[test]
fn mlp_flop_counts_match_hand_counts() {
    use condgen::model::{MlpCganConfig, MlpCvaeConfig};
    // MLP CVAE 784-144-20, condition 50: forward 834·144 + 2·144·20 + 70·144 + 144·784 = 248,832 MACs;
    // the first layer (120,096) gets no input gradient. PyTorch's FlopCounterMode: 40.09 MFLOP at batch 32.
    let cvae = bench::mlp_cvae_train_flops_per_image(&MlpCvaeConfig::default(), 50);
    assert_eq!(cvae, 2.0 * (3.0 * 248_832.0 - 120_096.0));
    // MLP CGAN: g = 114·256 + 256·512 + 512·784 = 561,664 (g1 = 29,184),
    // d = 834·512 + 512·256 + 256 = 558,336 (d1 = 427,008). FlopCounterMode: 373 MFLOP per step at batch 32.
    let gan = bench::mlp_cgan_step_flops_per_image(&MlpCganConfig::default(), 50);
    assert_eq!(gan, 2.0 * (3.0 * 561_664.0 - 29_184.0 + 9.0 * 558_336.0 - 2.0 * 427_008.0));
    assert!((gan * 32.0 / 1e6 - 373.0).abs() < 0.5, "{}", gan * 32.0 / 1e6);
    // A tiny CGAN by hand: noise 1, cond 1, G 2→3→4→784, D 785→5→6→1.
    let tiny = MlpCganConfig { noise: 1, generator_hidden: [3, 4], discriminator_hidden: [5, 6] };
    let (g1, d1) = (2 * 3, 785 * 5);
    let (g, d) = (g1 + 3 * 4 + 4 * 784, d1 + 5 * 6 + 6);
    assert_eq!(bench::mlp_cgan_step_flops_per_image(&tiny, 1), 2.0 * (3 * g - g1 + 9 * d - 2 * d1) as f64);
}

#[test]
fn flop_counter_agrees_with_the_models_weights() {
    // Each layer's MACs per image = its weight count × the positions it is applied at.
    let cfg = ConvCvaeConfig::default();
    let built = condgen::model::Architecture::ConvCvae(cfg.clone()).build(24, tch::Device::Cpu);
    let vars = built.vs.variables();
    let weight = |name: &str| vars[&format!("{name}.weight")].numel() as i64;
    let positions = [("enc.conv0", 13 * 13), ("enc.conv1", 6 * 6), ("enc.conv2", 2 * 2), ("enc.out", 1), ("dec.in", 1)];
    let inputs = [("dec.up1", 7 * 7), ("dec.up2", 14 * 14), ("dec.out", 28 * 28)];
    let expected: i64 = positions.iter().chain(&inputs).map(|(n, p)| weight(n) * p).sum();
    assert_eq!(bench::conv_cvae_forward_macs(&cfg, 24), expected);
    // PyTorch's FlopCounterMode on the reference model: 131.2 MFLOP forward, 383.8 forward + backward.
    assert_eq!(expected, 65_591_424);
    assert_eq!(bench::conv_cvae_train_flops_per_image(&cfg, 24), 383_814_144.0);
}

#[test]
fn quick_run_measures_every_model_on_both_sides() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let start = std::time::Instant::now();
    let opts = BenchOptions { quick: true, condgen_binary: None, ..Default::default() };
    let report = bench::run(&opts).expect("bench runs");
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
    let report = bench::run(&opts).expect("bench runs without python");
    let err = report.reference_error.as_deref().expect("the report says why");
    assert!(err.contains("/nonexistent/python"), "{err}");
    assert_eq!(report.models.len(), 1);
    let r = &report.models[0];
    assert!(r.condgen.images_per_second > 0.0);
    assert!(r.pytorch.is_none() && r.ratio.is_none() && r.met.is_none());
    assert!(report.sgemm.torch_gflops.is_none());
    assert!(report.to_markdown().contains("PyTorch reference unavailable"));
}

#[test]
#[ignore = "the full benchmark takes minutes; run it on purpose"]
fn full_benchmark() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Overrides as JSON, e.g. CONDGEN_BENCH_OPTIONS='{"repeats": 3, "sweep_batch_sizes": []}'
    let mut value = serde_json::to_value(BenchOptions {
        condgen_binary: Some(env!("CARGO_BIN_EXE_condgen").into()),
        ..Default::default()
    })
    .unwrap();
    if let Ok(text) = std::env::var("CONDGEN_BENCH_OPTIONS") {
        let overrides: serde_json::Value = serde_json::from_str(&text).expect("CONDGEN_BENCH_OPTIONS is JSON");
        for (k, v) in overrides.as_object().expect("a JSON object") {
            value[k] = v.clone();
        }
    }
    let opts: BenchOptions = serde_json::from_value(value).expect("valid options");
    let report = bench::run(&opts).expect("bench runs");
    let md = report.to_markdown();
    let out = std::env::var_os("CONDGEN_BENCH_OUT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench"));
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("bench.md"), &md).unwrap();
    std::fs::write(out.join("bench.json"), serde_json::to_vec_pretty(&report).unwrap()).unwrap();
    println!("{md}");
}
