//! Interrupted runs: SIGKILL at random moments, again and again; every time the
//! run folder holds a loadable last-complete-epoch checkpoint with a matching
//! history, and `--resume` reaches the configured epoch count. And arrays a
//! caller assigns in any memory layout give the same results as standard ones.

use crate::common;

use std::process::{Command, Stdio};
use std::time::Duration;

use condgen::sample::TrainedModel;
use condgen::train::RunDir;
use rand::{Rng, SeedableRng};

const EPOCHS: usize = 300;

fn train_command(runs: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_condgen"));
    cmd.args(["train", "k49", "--model", "cvae", "--profile", "quick", "--resume"])
        .args(["--epochs", &EPOCHS.to_string(), "--runs"])
        .arg(runs)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// The single run folder under `runs`, if training created it yet.
fn run_dir(runs: &std::path::Path) -> Option<std::path::PathBuf> {
    let parent = runs.join("k49").join("cvae");
    std::fs::read_dir(parent).ok()?.flatten().map(|e| e.path()).find(|p| p.is_dir())
}

#[test]
fn sigkill_at_random_moments_never_loses_the_last_complete_epoch() {
    let _serial = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let (mut kills, mut last_epoch, mut mid_run) = (0, 0usize, 0);
    for round in 0..8 {
        let mut child = train_command(&runs).spawn().unwrap();
        // Wait until this process has completed an epoch of its own (data loading
        // takes a while), then kill it at a random moment: mid-step or mid-checkpoint.
        for _ in 0..3000 {
            let epoch = run_dir(&runs).and_then(|p| RunDir::open(p).pointer().ok().flatten()).map_or(0, |p| p.epoch);
            if epoch > last_epoch || child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..400)));
        let finished = child.try_wait().unwrap().is_some();
        if !finished {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
        let Some(path) = run_dir(&runs) else { continue };
        let run = RunDir::open(&path);
        let Some(pointer) = run.pointer().unwrap() else { continue };
        // The checkpoint loads, and its history has one row per completed epoch.
        let model = TrainedModel::load(&path, tch::Device::Cpu).unwrap();
        assert_eq!(model.epoch, pointer.epoch);
        let state = run.read_state(pointer.epoch).unwrap();
        assert_eq!(state.history.len(), pointer.epoch, "round {round}");
        assert!(state.history.iter().enumerate().all(|(i, r)| r.epoch == i + 1));
        assert!(pointer.epoch >= last_epoch, "progress is never lost");
        last_epoch = pointer.epoch;
        mid_run += (!finished && pointer.epoch < EPOCHS) as usize;
        eprintln!("round {round}: killed={} last complete epoch {}", !finished, pointer.epoch);
    }
    assert!(kills >= 6, "the test killed runs for real ({kills})");
    assert!(mid_run >= 4, "kills landed during training, not after it ({mid_run} of {kills})");
    // Resume to the end.
    let status = train_command(&runs).status().unwrap();
    assert!(status.success());
    let path = run_dir(&runs).unwrap();
    let run = RunDir::open(&path);
    assert_eq!(run.pointer().unwrap().unwrap().epoch, EPOCHS);
    let history = condgen::train::history::read_csv(&path.join("history.csv")).unwrap();
    assert_eq!(history.height(), EPOCHS);
    eprintln!("{kills} kills survived; resumed to epoch {EPOCHS}");
}

/// Trains a quick run and returns its folder (kept alive by the tempdir).
fn quick_run(runs: &std::path::Path, experiment: &str, model: &str) -> std::path::PathBuf {
    let status = Command::new(env!("CARGO_BIN_EXE_condgen"))
        .args(["train", experiment, "--model", model, "--profile", "quick", "--epochs", "1", "--runs"])
        .arg(runs)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let parent = runs.join(experiment).join(model);
    std::fs::read_dir(parent).unwrap().flatten().map(|e| e.path()).find(|p| p.is_dir()).unwrap()
}

#[test]
fn foreign_truncated_and_mismatched_checkpoints_give_clear_errors() {
    let _serial = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let cvae = quick_run(&runs, "k49", "cvae");
    let cgan = quick_run(&runs, "k49", "cgan");
    let weights = |run: &std::path::Path| {
        let p = RunDir::open(run).pointer().unwrap().unwrap();
        RunDir::open(run).checkpoint_dir(p.epoch).join("model.safetensors")
    };
    let expect = |run: &std::path::Path, needle: &str| {
        let err = TrainedModel::load(run, tch::Device::Cpu).err().expect("loading must fail");
        let msg = err.to_string();
        assert!(msg.contains(needle), "`{msg}` should mention `{needle}`");
    };
    // A CGAN's weights in a CVAE's run folder: the names do not fit.
    std::fs::copy(weights(&cgan), weights(&cvae)).unwrap();
    expect(&cvae, "weights do not fit this model's configuration");
    // A truncated safetensors file.
    let bytes = std::fs::read(weights(&cgan)).unwrap();
    std::fs::write(weights(&cvae), &bytes[..bytes.len() / 3]).unwrap();
    expect(&cvae, "model.safetensors");
    // A foreign file.
    std::fs::write(weights(&cvae), b"not a safetensors file at all").unwrap();
    expect(&cvae, "model.safetensors");
    // A config that does not match the weights (another latent size).
    let config = cgan.join("config.json");
    let text = std::fs::read_to_string(&config).unwrap().replace("\"noise\": 16", "\"noise\": 17");
    std::fs::write(&config, text).unwrap();
    expect(&cgan, "weights do not fit this model's configuration");
    // A folder that is not a run.
    expect(dir.path(), "config.json");
}

/// The same images in column-major memory: what `.reversed_axes()` of an owned array gives.
fn column_major(images: &ndarray::Array3<u8>) -> ndarray::Array3<u8> {
    let transposed = images.view().reversed_axes().as_standard_layout().into_owned();
    let images_again = transposed.reversed_axes();
    assert!(!images_again.is_standard_layout());
    images_again
}

/// The same images stored last-first and read through a negative stride.
fn stored_backwards(images: &ndarray::Array3<u8>) -> ndarray::Array3<u8> {
    let mut backwards = images.slice(ndarray::s![..;-1, .., ..]).as_standard_layout().into_owned();
    backwards.invert_axis(ndarray::Axis(0));
    assert!(!backwards.is_standard_layout());
    backwards
}

#[test]
fn images_in_any_memory_layout_give_the_same_results_as_standard_ones() {
    use condgen::data::{k49, npz, Batcher, Split};
    use condgen::sample::Samples;
    use condgen::{ConditionSpec, TaskData};
    let _serial = common::serial();
    let n = 10;
    let images = ndarray::Array3::from_shape_fn((n, 28, 28), |(i, y, x)| ((i * 31 + y * 7 + x * 3) % 256) as u8);
    let standard = Split { images: images.clone(), labels: (0..n as u8).collect(), styles: None };
    let spec = ConditionSpec::OneHot { classes: n, style_bit: false };
    let dir = tempfile::tempdir().unwrap();
    let npz_images = |samples: &Samples, name: &str| {
        let path = dir.path().join(name);
        samples.write_npz(&path).unwrap();
        npz::read_u8(&path, "images").unwrap()
    };
    let as_samples =
        |split: &Split| Samples { images: split.images.clone(), labels: vec![3; n], styles: Some(vec![1; n]) };
    let batches = |split: &Split| -> Vec<tch::Tensor> {
        Batcher::new(split, spec, 4, None, tch::Device::Cpu).map(|b| b.images).collect()
    };
    let expected_npz = npz_images(&as_samples(&standard), "standard.npz");
    let expected_batches = batches(&standard);
    for other in [column_major(&images), stored_backwards(&images)] {
        assert_eq!(other, images, "the same images, logically");
        let split = Split { images: other, ..standard.clone() };
        for i in 0..n {
            assert_eq!(split.image(i), standard.image(i));
        }
        assert_eq!(split.pixel_mean_std(), standard.pixel_mean_std());
        assert!(TaskData::images_tensor(&split, tch::Device::Cpu)
            .equal(&TaskData::images_tensor(&standard, tch::Device::Cpu)));
        assert_eq!(k49::foreground_counts(&split.images), k49::foreground_counts(&standard.images));
        assert_eq!(condgen::eval::gaussian_blur(&split.images, 1.0), condgen::eval::gaussian_blur(&images, 1.0));
        let got = batches(&split);
        assert_eq!(got.len(), expected_batches.len());
        assert!(got.iter().zip(&expected_batches).all(|(a, b)| a.equal(b)));
        let written = npz_images(&as_samples(&split), "other.npz");
        assert_eq!(written, expected_npz);
    }
    // Arrays that do not agree are refused, and no file is written.
    let short = Samples { labels: vec![3; n - 1], ..as_samples(&standard) };
    let err = short.write_npz(&dir.path().join("short.npz")).unwrap_err();
    assert!(matches!(err, condgen::Error::InvalidInput(_)), "{err}");
    assert!(!dir.path().join("short.npz").exists());
}

/// A tiny sign-letter task: 96 train, 24 validation and 48 test images, 4 of each letter in train.
fn tiny_sign_letters() -> condgen::TaskData {
    use condgen::data::{DataSource, Dataset, DatasetKind, Split};
    let split = |n: usize| Split {
        images: ndarray::Array3::from_shape_fn((n, 28, 28), |(i, y, x)| ((i * 37 + y * 5 + x) % 256) as u8),
        labels: (0..n).map(|i| (i % 24) as u8).collect(),
        styles: None,
    };
    let dataset = Dataset {
        kind: DatasetKind::SignMnist,
        source: DataSource::Embedded { seed: 0, looked_in: "tiny".into() },
        class_names: (0..24).map(|i| i.to_string()).collect(),
        train: split(96),
        validation: split(24),
        test: split(48),
        style_medians: None,
    };
    condgen::Experiment::SignLetter.prepare(&dataset)
}

#[test]
fn requests_too_large_for_this_machine_are_refused_before_any_work() {
    use condgen::model::ModelKind;
    use condgen::sample;
    use condgen::train::{Profile, TrainConfig};
    use condgen::Error;
    let _serial = common::serial();
    let cfg = TrainConfig::new(condgen::Experiment::SignLetter, ModelKind::Cvae, Profile::Quick);
    let spec = cfg.condition_spec();
    // An untrained model is enough for the library's sampling functions.
    let built = cfg.build(spec.dim(), tch::Device::Cpu);
    let err = sample::draw_all_conditions(&built, &spec, None, 100_000_000, 0).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::TooLarge { .. }), "{message}");
    assert!(
        message.starts_with("100000000 per condition × 24 conditions = 2.4 billion images need 1.9 TB in memory; "),
        "{message}"
    );
    let err = sample::draw_all_conditions(&built, &spec, None, usize::MAX, 0).unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "a count that overflows is refused too: {err}");
    // Conditions outside the task are errors, not panics; what fits is drawn.
    for (classes, styles) in [(&[24u8][..], &[0u8][..]), (&[1, 2], &[0])] {
        let err = sample::draw(&built, &spec, None, 1.0, classes, styles, 0).unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    }
    assert_eq!(sample::draw_all_conditions(&built, &spec, None, 2, 0).unwrap().len(), 48);
    // A batch size past the split's size is one batch of the split, not a buffer of that size.
    let data = tiny_sign_letters();
    let batches = condgen::data::Batcher::new(&data.train, spec, usize::MAX, None, tch::Device::Cpu);
    assert_eq!(batches.map(|b| b.images.size()[0]).collect::<Vec<_>>(), vec![96]);

    // The command line refuses before it loads any data (there is none here) or
    // draws anything, and writes nothing.
    let dir = tempfile::tempdir().unwrap();
    let run = condgen::train::train(&cfg, &data, &common::cpu_train_options(dir.path())).unwrap().run;
    let out = dir.path().join("samples.npz");
    let condgen_cli = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_condgen"))
            .args(["--no-standin", "--data"])
            .arg(dir.path().join("no-data"))
            .args(args)
            .arg("--run")
            .arg(&run.path)
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        eprint!("condgen {}: {stderr}", args[0]);
        stderr
    };
    let stderr = condgen_cli(&["sample", "--per-condition", "100000000", "--out", out.to_str().unwrap()]);
    assert!(stderr.contains("2.4 billion images need 1.9 TB in memory; "), "{stderr}");
    assert!(!out.exists());
    let stderr = condgen_cli(&["eval", "--n", "100000000000"]);
    assert!(stderr.contains("per condition × 24 conditions = 100.0 billion images need"), "{stderr}");
}
