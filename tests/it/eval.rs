//! Metrics on known cases, with a quickly trained judge.

use crate::common;

use condgen::data::{DataOptions, DatasetKind};
use condgen::eval::judge::{blur, JudgeConfig};
use condgen::eval::{self, metrics, EvalOptions, Judge, JudgeKind};
use condgen::Experiment;
use tch::{Device, Kind, Tensor};

#[test]
fn frechet_distance_is_zero_for_a_set_with_itself_and_grows_with_blur() {
    let _serial = common::serial();
    tch::manual_seed(0);
    let a = Tensor::randn([500, 8], (Kind::Float, Device::Cpu));
    assert!(metrics::frechet_distance(&a, &a) < 1e-6);
    // Two Gaussians: N(0, I) vs N(1·e1, I) in 8-d → distance ≈ 1.
    let b = Tensor::randn([20_000, 8], (Kind::Float, Device::Cpu));
    let c = Tensor::randn([20_000, 8], (Kind::Float, Device::Cpu))
        + Tensor::from_slice(&[1f32, 0., 0., 0., 0., 0., 0., 0.]);
    let d = metrics::frechet_distance(&b, &c);
    assert!((d - 1.0).abs() < 0.05, "{d}");
    // Scale: N(0, I) vs N(0, 4I) → Σ (1 + 4 − 2·2) = 8 · 1 = 8.
    let e = Tensor::randn([20_000, 8], (Kind::Float, Device::Cpu)) * 2.0;
    let d = metrics::frechet_distance(&b, &e);
    assert!((d - 8.0).abs() < 0.3, "{d}");
}

#[test]
fn precision_recall_of_real_vs_real_is_near_one_and_falls_for_a_shifted_set() {
    let _serial = common::serial();
    tch::manual_seed(1);
    let a = Tensor::randn([1500, 4], (Kind::Float, Device::Cpu));
    let b = Tensor::randn([1500, 4], (Kind::Float, Device::Cpu));
    let (p, r) = metrics::precision_recall(&a, &b, 3);
    assert!(p > 0.9 && r > 0.9, "{p} {r}");
    let far = Tensor::randn([1500, 4], (Kind::Float, Device::Cpu)) + 3.0;
    let (p, r) = metrics::precision_recall(&a, &far, 3);
    assert!(p < 0.3 && r < 0.3, "{p} {r}");
}

#[test]
fn conditional_accuracy_counts_per_class() {
    let probs = Tensor::from_slice(&[0.9f32, 0.1, 0.2, 0.8, 0.6, 0.4, 0.3, 0.7]).view([4, 2]);
    let acc = metrics::conditional_accuracy(&probs, &[0, 1, 1, 1]).unwrap();
    // rows predict 0 ✓, 1 ✓, 0 ✗ (asked 1), 1 ✓
    assert_eq!(acc.overall, 0.75);
    assert_eq!(acc.per_class, vec![1.0, 2.0 / 3.0]);
    assert!((acc.balanced - (1.0 + 2.0 / 3.0) / 2.0).abs() < 1e-9);
    assert!((acc.mean_confidence - (0.9 + 0.8 + 0.4 + 0.7) / 4.0).abs() < 1e-6);
    // Vowel probabilities are the sum over vowel letters.
    let mut letters = vec![0f32; 24];
    letters[0] = 0.5; // A
    letters[4] = 0.25; // E
    letters[1] = 0.25; // B
    let p = metrics::condition_probs(Experiment::SignVowel, &Tensor::from_slice(&letters).view([1, 24]));
    assert_eq!(Vec::<f32>::try_from(p.view([-1])).unwrap(), vec![0.25, 0.75]);
}

#[test]
fn real_images_judged_as_samples_score_near_the_judge_and_shuffled_labels_near_chance() {
    let _serial = common::serial();
    let dataset = DataOptions::from_env().load(DatasetKind::SignMnist).unwrap();
    eprintln!("data: {}", dataset.source);
    let data = Experiment::SignLetter.prepare(&dataset);
    // A quick judge: 2 epochs on 8,000 images.
    let cfg = JudgeConfig { epochs: 2, max_train_images: Some(8000), ..JudgeConfig::for_kind(JudgeKind::SignLetter) };
    let judge =
        Judge::train(JudgeKind::SignLetter, &data, &cfg, Device::Cpu, condgen::progress::ProgressMode::Quiet).unwrap();
    eprintln!("quick judge test accuracy: {:.3}", judge.meta.test_accuracy);
    assert!(judge.meta.test_accuracy > 0.5, "{}", judge.meta.test_accuracy);
    // Saved and loaded back, it judges the same (weights written atomically, in safetensors).
    let saved = tempfile::tempdir().unwrap();
    judge.save(saved.path()).unwrap();
    let back = Judge::load(saved.path(), Device::Cpu).unwrap();
    let probe = eval::real_as_samples(&data, 48, 5);
    let (a, b) = (judge.judge(probe.images.view()).probs, back.judge(probe.images.view()).probs);
    assert_eq!((a - b).abs().max().double_value(&[]), 0.0);

    let opts = EvalOptions { memorization_reference: 2000, ..EvalOptions::default() };
    let real = eval::real_as_samples(&data, 1200, 3);
    let m = eval::evaluate_samples(&real, &data, &judge, &opts).unwrap();
    eprintln!(
        "real as samples: accuracy {:.3}, FD {:.3}, precision {:.3}, recall {:.3}, memorized {:.3}",
        m.accuracy.overall, m.frechet_distance, m.precision, m.recall, m.memorization_share
    );
    assert!((m.accuracy.overall - judge.meta.test_accuracy).abs() < 0.06);
    assert!(m.precision > 0.6 && m.recall > 0.6, "{} {}", m.precision, m.recall);

    // The same images with shuffled labels: accuracy near chance (1/24).
    let mut shuffled = real.clone();
    shuffled.labels.rotate_left(7);
    let s = eval::evaluate_samples(&shuffled, &data, &judge, &opts).unwrap();
    eprintln!("shuffled labels: accuracy {:.3}", s.accuracy.overall);
    assert!(s.accuracy.overall < 0.15, "{}", s.accuracy.overall);

    // Blurred real images drift away from the real ones in feature space.
    let blurred_images = {
        let n = real.len() as i64;
        let x = Tensor::from_slice(real.images.as_slice().unwrap()).view([n, 1, 28, 28]).to_kind(Kind::Float) / 255.0;
        condgen::sample::to_u8_images(&blur(&x, 1.5))
    };
    let blurred = condgen::sample::Samples { images: blurred_images, ..real.clone() };
    let b = eval::evaluate_samples(&blurred, &data, &judge, &opts).unwrap();
    eprintln!("blurred: FD {:.3}", b.frechet_distance);
    assert!(b.frechet_distance > m.frechet_distance * 2.0, "{} vs {}", b.frechet_distance, m.frechet_distance);
}

#[test]
fn samples_in_a_non_standard_memory_layout_measure_the_same() {
    let _serial = common::serial();
    let dataset = DataOptions::from_env().load(DatasetKind::SignMnist).unwrap();
    let data = Experiment::SignLetter.prepare(&dataset);
    // A tiny judge: the metrics need not be good, only the same.
    let cfg = JudgeConfig {
        epochs: 1,
        max_train_images: Some(512),
        augment: false,
        ..JudgeConfig::for_kind(JudgeKind::SignLetter)
    };
    let judge =
        Judge::train(JudgeKind::SignLetter, &data, &cfg, Device::Cpu, condgen::progress::ProgressMode::Quiet).unwrap();
    let opts = EvalOptions { memorization_reference: 300, ..EvalOptions::default() };
    let real = eval::real_as_samples(&data, 96, 3);
    // The same images in column-major memory, as `.reversed_axes()` of an owned array gives.
    let column_major = real.images.view().reversed_axes().as_standard_layout().into_owned().reversed_axes();
    assert!(!column_major.is_standard_layout() && column_major == real.images);
    let transposed = condgen::sample::Samples { images: column_major, ..real.clone() };
    let expected = eval::evaluate_samples(&real, &data, &judge, &opts).unwrap();
    let got = eval::evaluate_samples(&transposed, &data, &judge, &opts).unwrap();
    assert_eq!(format!("{got:?}"), format!("{expected:?}"));
}
