//! Training runs end to end: every experiment's quick profile, determinism,
//! checkpoint round trips, sampling contract, kill and resume.

use crate::common;

use std::path::Path;
use std::sync::OnceLock;

use condgen::data::{npz, DataOptions, Dataset, DatasetKind};
use condgen::model::{ModelKind, Net};
use condgen::progress::ProgressMode;
use condgen::sample::{self, LatentSource, TrainedModel};
use condgen::train::{self, Profile, TrainConfig, TrainOptions};
use condgen::{Experiment, TaskData};
use tch::{Device, Kind, Tensor};

/// Each dataset is loaded once per test binary (from CONDGEN_DATA / CONDGEN_K49, else stand-ins).
fn dataset(kind: DatasetKind) -> &'static Dataset {
    static SIGN: OnceLock<Dataset> = OnceLock::new();
    static K49: OnceLock<Dataset> = OnceLock::new();
    let cell = match kind {
        DatasetKind::SignMnist => &SIGN,
        DatasetKind::K49 => &K49,
    };
    cell.get_or_init(|| {
        let ds = DataOptions::from_env().load(kind).unwrap();
        eprintln!("{}: {}", kind.title(), ds.source);
        ds
    })
}

fn task(exp: Experiment) -> TaskData {
    exp.prepare(dataset(exp.dataset()))
}

fn options(root: &Path) -> TrainOptions {
    TrainOptions {
        runs_root: root.to_path_buf(),
        device: Device::Cpu,
        progress: ProgressMode::Lines,
        ..Default::default()
    }
}

/// The allocator keeps freed tensor memory (condgen::memory): glibc takes every
/// setting, and asking twice changes nothing.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn the_allocator_takes_the_keep_freed_memory_settings() {
    let _ = condgen::default_device();
    assert!(condgen::memory::keep_freed_memory());
    assert!(condgen::memory::keep_freed_memory());
}

#[test]
fn every_experiment_trains_in_the_quick_profile() {
    let _serial = common::serial();
    let root = tempfile::tempdir().unwrap();
    for exp in Experiment::ALL {
        let data = task(exp);
        for model in [ModelKind::Cvae, ModelKind::Cgan] {
            let cfg = TrainConfig::new(exp, model, Profile::Quick);
            let start = std::time::Instant::now();
            let outcome = train::train(&cfg, &data, &options(root.path())).unwrap();
            eprintln!("{exp} {model} quick: {:.1}s", start.elapsed().as_secs_f64());
            assert!(outcome.finished);
            assert_eq!(outcome.history.len(), cfg.epochs);
            let run = &outcome.run;
            for f in ["config.json", "meta.json", "model.safetensors", "history.csv", "checkpoint.json"] {
                assert!(run.file(f).is_file(), "{exp} {model}: {f}");
            }
            let meta = run.read_meta().unwrap();
            assert!(meta.finished && meta.data_source.is_some() && meta.parameters > 0);
            for &e in &cfg.snapshot_epochs {
                let snap = npz::read_u8(&run.snapshot_path(e), "images").unwrap();
                let per = cfg.snapshot_per_condition
                    * exp.condition_spec().classes()
                    * if exp == Experiment::K49 { 2 } else { 1 };
                assert_eq!(snap.shape, vec![per, 28, 28], "{exp} {model} snapshot {e}");
            }
            let hist = train::history::read_csv(&run.file("history.csv")).unwrap();
            assert_eq!(hist.height(), cfg.epochs);
            let loss_col = if model == ModelKind::Cvae { "test_loss" } else { "d_loss" };
            assert!(hist.column(loss_col).is_ok(), "{exp} {model}: {loss_col} column");
        }
    }
}

#[test]
fn same_seed_gives_the_same_history() {
    let _serial = common::serial();
    let data = task(Experiment::K49);
    let cfg = TrainConfig::new(Experiment::K49, ModelKind::Cgan, Profile::Quick);
    let a = train::train(&cfg, &data, &options(tempfile::tempdir().unwrap().path())).unwrap();
    let b = train::train(&cfg, &data, &options(tempfile::tempdir().unwrap().path())).unwrap();
    let strip =
        |h: &[train::EpochRecord]| h.iter().map(|r| (r.d_loss, r.g_loss, r.d_real, r.d_fake)).collect::<Vec<_>>();
    assert_eq!(strip(&a.history), strip(&b.history));
    let other = cfg.set(&["seed=1".into()]).unwrap();
    let c = train::train(&other, &data, &options(tempfile::tempdir().unwrap().path())).unwrap();
    assert_ne!(strip(&a.history), strip(&c.history), "another seed, another history");
}

#[test]
fn checkpoint_round_trip_gives_identical_outputs() {
    let _serial = common::serial();
    let root = tempfile::tempdir().unwrap();
    let data = task(Experiment::SignLetter);
    let cfg = TrainConfig::new(Experiment::SignLetter, ModelKind::Cvae, Profile::Quick);
    let outcome = train::train(&cfg, &data, &options(root.path())).unwrap();
    let a = TrainedModel::load(&outcome.run.path, Device::Cpu).unwrap();
    let b = TrainedModel::load(&outcome.run.path, Device::Cpu).unwrap();
    let (Net::Cvae(ca), Net::Cvae(cb)) = (&a.built.net, &b.built.net) else { panic!() };
    let z = Tensor::randn([4, ca.latent()], (Kind::Float, Device::Cpu));
    let c = a.spec.encode(&[0, 5, 10, 23], None, Device::Cpu);
    let (xa, xb) = tch::no_grad(|| (ca.decode(&z, &c, false), cb.decode(&z, &c, false)));
    assert_eq!((xa - xb).abs().max().double_value(&[]), 0.0);
    // A fresh, untrained model differs: the weights really came from the file.
    tch::manual_seed(99);
    let fresh = cfg.architecture.build(a.spec.dim(), Device::Cpu);
    let Net::Cvae(cf) = &fresh.net else { panic!() };
    let xf = tch::no_grad(|| cf.decode(&z, &c, false));
    let xa = tch::no_grad(|| ca.decode(&z, &c, false));
    assert!((xa - xf).abs().max().double_value(&[]) > 1e-3);
}

#[test]
fn samples_follow_the_contract() {
    let _serial = common::serial();
    let root = tempfile::tempdir().unwrap();
    let data = task(Experiment::K49);
    let cfg = TrainConfig::new(Experiment::K49, ModelKind::Cvae, Profile::Quick);
    let outcome = train::train(&cfg, &data, &options(root.path())).unwrap();
    let model = TrainedModel::load(&outcome.run.path, Device::Cpu).unwrap();
    // No prior is fitted yet: asking for one is an error, not a silent N(0, I).
    assert!(model.sampler(LatentSource::FittedPrior).is_err());
    let sampler = model.sampler(LatentSource::TrainedPrior).unwrap();
    assert_eq!(sampler.caption(), sample::LATENT_STANDARD);
    let samples = sampler.sample_all_conditions(3, 0).unwrap();
    let path = root.path().join("s.npz");
    samples.write_npz(&path).unwrap();
    let images = npz::read_u8(&path, "images").unwrap();
    assert_eq!(images.shape, vec![49 * 2 * 3, 28, 28]);
    // labels and styles are int64: read them with npyz directly.
    let mut archive = npyz::npz::NpzArchive::open(&path).unwrap();
    let labels: Vec<i64> = archive.by_name("labels").unwrap().unwrap().into_vec().unwrap();
    let styles: Vec<i64> = archive.by_name("styles").unwrap().unwrap().into_vec().unwrap();
    assert_eq!(&labels[..7], &[0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(&styles[..7], &[0, 0, 0, 1, 1, 1, 0]);
    assert_eq!(labels[labels.len() - 1], 48);
    // Same seed, same samples.
    let again = sampler.sample_all_conditions(3, 0).unwrap();
    assert_eq!(again.images, samples.images);
    // The importance-weighted bound: finite, and more codes per image tighten it (on average over 20 images).
    let bounds = condgen::eval::likelihood::importance_weighted_bounds(&model, &data.test, 20, &[1, 16], 3).unwrap();
    let (elbo, iwae) = (bounds[0].1, bounds[1].1);
    assert!(elbo.is_finite() && iwae.is_finite(), "{bounds:?}");
    assert!(iwae > elbo - 0.5, "IWAE_16 {iwae} vs ELBO {elbo}");
    // The Bernoulli likelihood is no density for grey pixels: nats only, the same bound as IWAE_16.
    let nll =
        condgen::eval::likelihood::negative_log_likelihood(&model, &data.test, 20, 16, 3, LatentSource::TrainedPrior)
            .unwrap();
    assert_eq!((nll.bits_per_dim, nll.k, nll.images), (None, 16, 20));
    assert!((nll.nats + iwae).abs() < 1e-6, "{nll:?} vs IWAE_16 {iwae}");
    // Reconstruction of test images by the CVAE.
    let (orig, recon) = sample::reconstruct(&model.built, &model.spec, &data.test, 10).unwrap();
    assert_eq!((orig.shape(), recon.shape()), (&[10usize, 28, 28][..], &[10usize, 28, 28][..]));
}

#[test]
fn resume_continues_to_the_same_history() {
    let _serial = common::serial();
    let data = task(Experiment::K49);
    let cfg = TrainConfig::new(Experiment::K49, ModelKind::Cvae, Profile::Quick).set(&["epochs=3".into()]).unwrap();
    let full = train::train(&cfg, &data, &options(tempfile::tempdir().unwrap().path())).unwrap();

    // Interrupt a second run after its first epoch: the stop flag is raised as
    // soon as the first checkpoint exists.
    let root = tempfile::tempdir().unwrap();
    let opts = options(root.path());
    let run_dir = train::RunDir::for_config(root.path(), &cfg);
    let stop = opts.stop.clone();
    let watcher = std::thread::spawn(move || {
        for _ in 0..6000 {
            if run_dir.pointer().ok().flatten().is_some() {
                stop.store(true, std::sync::atomic::Ordering::SeqCst);
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    });
    let interrupted = train::train(&cfg, &data, &opts);
    watcher.join().unwrap();
    assert!(matches!(interrupted, Err(condgen::Error::Interrupted)), "{interrupted:?}");
    let pointer = train::RunDir::for_config(root.path(), &cfg).pointer().unwrap().unwrap();
    assert!(pointer.epoch >= 1 && pointer.epoch < 3);

    // Without --resume the existing run is not silently overwritten.
    let fresh_opts = options(root.path());
    assert!(matches!(train::train(&cfg, &data, &fresh_opts), Err(condgen::Error::Checkpoint { .. })));

    let resumed = train::train(&cfg, &data, &TrainOptions { resume: true, ..options(root.path()) }).unwrap();
    assert_eq!(resumed.history.len(), 3);
    let losses = |h: &[train::EpochRecord]| h.iter().map(|r| (r.loss, r.test_loss)).collect::<Vec<_>>();
    assert_eq!(losses(&resumed.history), losses(&full.history), "resuming repeats the uninterrupted run exactly");

    // Loading the finished run trains nothing, so its meta.json keeps what training recorded.
    let meta_path = resumed.run.file(train::run::META_FILE);
    let mut meta: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    meta["torch_threads"] = 7.into();
    std::fs::write(&meta_path, serde_json::to_vec(&meta).unwrap()).unwrap();
    train::train(&cfg, &data, &TrainOptions { resume: true, ..options(root.path()) }).unwrap();
    let kept: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    assert_eq!(kept["torch_threads"], 7, "a loaded run's meta.json records its training, not the loading process");

    // A finished run is not reused for other data: the run id names the configuration only.
    let other_source = condgen::data::DataSource::Embedded { seed: 99, looked_in: "elsewhere".into() };
    let other = TaskData { source: other_source, ..data.clone() };
    let reused = train::train(&cfg, &other, &TrainOptions { resume: true, ..options(root.path()) });
    let message = format!("{reused:?}");
    assert!(
        matches!(reused, Err(condgen::Error::Checkpoint { .. })) && message.contains("was trained on"),
        "{message}"
    );
}

#[test]
fn config_overrides_are_checked() {
    let _serial = common::serial();
    let cfg = TrainConfig::new(Experiment::K49, ModelKind::Cvae, Profile::Default);
    let c = cfg.set(&["architecture.latent=32".into(), "kl_weight=0.5".into()]).unwrap();
    assert_eq!(c.kl_weight, 0.5);
    assert!(serde_json::to_string(&c).unwrap().contains("\"latent\":32"));
    for (bad, needle) in [
        ("epochs=0", "epochs must be at least 1"),
        ("batch_size=0", "batch_size must be at least 1"),
        ("architecture.latent=0", "architecture.latent must be at least 1"),
        ("learning_rate=-1", "learning_rate must be a positive number"),
        ("learning_rate=null", "invalid value"),
        ("epochz=3", "unknown key `epochz`; valid keys here: adam_betas, architecture,"),
        (
            "architecture.latnt=3",
            "unknown key `architecture.latnt`; valid keys here: hidden, latent, learned_prior, prior_components, type",
        ),
    ] {
        let err = cfg.set(&[bad.to_string()]).unwrap_err().to_string();
        assert!(err.contains(needle), "{bad}: {err}");
    }
    // A key below one an earlier assignment set to a value: an error, not a panic.
    let err = cfg.set(&["epochs=3".into(), "epochs.x=1".into()]).unwrap_err().to_string();
    assert!(err.contains("`epochs.x=1`: `epochs` is already set to a value"), "{err}");
    // A config file with an unknown key names the file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "epochs = 3\n[architecture]\nhiden = 7\n").unwrap();
    let err = cfg.merge_file(&path).unwrap_err().to_string();
    assert!(err.contains("c.toml") && err.contains("architecture.hiden"), "{err}");
    std::fs::write(&path, "epochs = 3\nkl_weight = 4.0\n").unwrap();
    assert_eq!(cfg.merge_file(&path).unwrap().epochs, 3);
}

#[test]
fn meta_files_of_older_runs_still_load() {
    // Written before the enums were saved as such: the same strings, plus two text copies.
    let old = r#"{"experiment":"sign-letter","model":"cvae","architecture":"conv CVAE","profile":"default",
        "seed":0,"data_source":null,"data_source_text":"real data","train_images":27455,"test_images":7172,
        "git_revision":"abc","device":"Cpu","torch_threads":1,"parameters":5,"parameters_text":"5 parameters",
        "epochs_completed":12,"train_seconds":518.0,"finished":true,"stopped_reason":null}"#;
    let meta: condgen::train::run::RunMeta = serde_json::from_str(old).unwrap();
    assert_eq!(
        (meta.experiment, meta.model, meta.profile),
        (Experiment::SignLetter, ModelKind::Cvae, Profile::Default)
    );
}

#[test]
fn the_cosine_schedule_decays_and_a_constant_one_leaves_digests_alone() {
    use condgen::train::LrSchedule;
    assert_eq!(LrSchedule::Constant.factor(7, 12), 1.0);
    assert_eq!(LrSchedule::Cosine.factor(1, 12), 1.0);
    let factors: Vec<f64> = (1..=12).map(|e| LrSchedule::Cosine.factor(e, 12)).collect();
    assert!(factors.windows(2).all(|w| w[1] < w[0]) && factors[11] > 0.0 && factors[11] < 0.03, "{factors:?}");
    assert!((LrSchedule::Cosine.factor(7, 12) - 0.5).abs() < 1e-12);
    // Constant is left out of the saved config, so run folders of older configs keep their names.
    let cfg = TrainConfig::new(Experiment::SignLetter, ModelKind::Cvae, Profile::Default);
    assert!(!serde_json::to_string(&cfg).unwrap().contains("lr_schedule"));
    let cosine = cfg.set(&["lr_schedule=cosine".to_string()]).unwrap();
    assert_eq!(cosine.lr_schedule, LrSchedule::Cosine);
    assert_ne!(cosine.digest(), TrainConfig::new(Experiment::SignLetter, ModelKind::Cvae, Profile::Default).digest());
}

#[test]
fn a_wider_discriminator_is_an_option_that_leaves_default_digests_alone() {
    let _serial = common::serial();
    let cfg = TrainConfig::new(Experiment::SignLetter, ModelKind::Cgan, Profile::Quick);
    assert!(!serde_json::to_string(&cfg).unwrap().contains("discriminator_channels"));
    let wide = cfg.set(&["architecture.discriminator_channels=24".to_string()]).unwrap();
    assert_ne!(wide.digest(), cfg.digest());
    let spec = wide.condition_spec();
    let count = |c: &TrainConfig, prefix: &str| -> i64 {
        let built = c.build(spec.dim(), tch::Device::Cpu);
        built.vs.variables().iter().filter(|(name, _)| name.starts_with(prefix)).map(|(_, t)| t.numel() as i64).sum()
    };
    assert!(count(&wide, "disc.") > count(&cfg, "disc."), "the critic is wider");
    assert_eq!(count(&wide, "gen."), count(&cfg, "gen."), "the generator is untouched");
    let err = cfg.set(&["architecture.discriminator_channels=0".to_string()]).unwrap_err().to_string();
    assert!(err.contains("discriminator_channels"), "{err}");
}

/// Early stopping ends a CVAE's training once the validation loss has not improved
/// for `patience` epochs, and the run's model is its best validation epoch: in the
/// top-level copy, in what `TrainedModel` loads, and after a resume.
#[test]
fn early_stopping_keeps_the_best_validation_epoch() {
    let _serial = common::serial();
    let data = task(Experiment::K49);
    // A learning rate of 1e-12 leaves the weights where they start, so the validation loss
    // moves only with its z draws: it stops improving within a few epochs.
    let overrides = ["epochs=8", "early_stopping=1", "learning_rate=1e-12"].map(String::from);
    let cfg = TrainConfig::new(Experiment::K49, ModelKind::Cvae, Profile::Quick).set(&overrides).unwrap();
    let root = tempfile::tempdir().unwrap();
    let outcome = train::train(&cfg, &data, &options(root.path())).unwrap();
    let history = &outcome.history;
    let best = train::history::best_validation_epoch(history).unwrap();
    assert!(history.len() < cfg.epochs, "stopped before its last epoch ({} of {})", history.len(), cfg.epochs);
    assert_eq!(history.len(), best + 1, "one epoch of patience after the best");
    assert_eq!(cfg.model_epoch(history), best);
    assert_eq!(cfg.stop_reason(history), Some(train::StopReason::NoImprovement { best, patience: 1 }));

    let run = &outcome.run;
    let meta = run.read_meta().unwrap();
    assert!(meta.finished && meta.stopped_reason.as_deref().is_some_and(|r| r.contains("stopped early")), "{meta:?}");
    let model = std::fs::read(run.file(train::run::MODEL_FILE)).unwrap();
    let best_weights = std::fs::read(run.checkpoint_dir(best).join(train::run::MODEL_FILE)).unwrap();
    assert!(model == best_weights, "model.safetensors holds the best epoch's weights");
    assert!(run.checkpoint_dir(history.len()).is_dir(), "the last checkpoint stays for a resume");
    assert_eq!(TrainedModel::load(&run.path, Device::Cpu).unwrap().epoch, best);

    // Resuming a stopped run trains nothing more.
    let again = train::train(&cfg, &data, &TrainOptions { resume: true, ..options(root.path()) }).unwrap();
    assert_eq!(again.history.len(), history.len());

    // A CGAN has no validation loss to watch, and its discriminator has its own augmentation.
    let cgan = TrainConfig::new(Experiment::K49, ModelKind::Cgan, Profile::Quick);
    for option in ["early_stopping=2", "translate_train_images=true"] {
        let refused = cgan.set(&[option.into()]).and_then(|c| c.validate());
        assert!(matches!(refused, Err(condgen::Error::Config(ref m)) if m.contains("CVAE only")), "{refused:?}");
    }
    // Without early stopping the model is the last epoch.
    let plain = TrainConfig { early_stopping: None, ..cfg.clone() };
    assert_eq!(plain.model_epoch(history), history.len());
}

/// A run held by another process's lock is not trained beside it: training waits for
/// the lock, then trains (or reuses) the run.
#[test]
fn a_locked_run_waits_for_its_lock() {
    let _serial = common::serial();
    let data = task(Experiment::K49);
    let cfg = TrainConfig::new(Experiment::K49, ModelKind::Cgan, Profile::Quick);
    let root = tempfile::tempdir().unwrap();
    let run = train::RunDir::for_config(root.path(), &cfg);
    let held = run.lock(ProgressMode::Lines).unwrap();
    let trainer = {
        let (cfg, opts) = (cfg.clone(), TrainOptions { resume: true, ..options(root.path()) });
        std::thread::spawn(move || train::train(&cfg, &data, &opts).map(|o| o.history.len()))
    };
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(run.pointer().unwrap().is_none() && !trainer.is_finished(), "nothing trains while the lock is held");
    drop(held);
    assert_eq!(trainer.join().unwrap().unwrap(), cfg.epochs);
    assert!(run.lock_path().is_file() && run.pointer().unwrap().is_some());
}

/// A run's training time is timed over real steps and extrapolated to its epochs.
#[test]
fn training_time_is_timed_over_steps_and_extrapolated() {
    let _serial = common::serial();
    for model in [ModelKind::Cvae, ModelKind::Cgan] {
        let cfg = TrainConfig::new(Experiment::K49, model, Profile::Quick);
        let data = task(Experiment::K49);
        let estimate = train::estimate::training_time(&cfg, &data, Device::Cpu, 3).unwrap();
        let images = cfg.training_data(&data).train.len();
        assert_eq!(estimate.timed_steps, 3);
        assert!(estimate.steps_per_epoch * cfg.batch_size >= images, "{estimate:?}");
        assert!(estimate.seconds_per_step > 0.0 && estimate.seconds() > estimate.seconds_per_step, "{estimate:?}");
        assert_eq!(estimate.epochs, cfg.epochs);
    }
}
