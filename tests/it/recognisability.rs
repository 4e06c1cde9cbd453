//! The letter judge on rotation samples turned upright and on vowel samples,
//! with a tiny judge trained on the embedded stand-in.

use crate::common;

use condgen::data::standin;
use condgen::eval::judge::JudgeConfig;
use condgen::eval::recognisability::{self, Recognisability};
use condgen::eval::{self, Judge, JudgeKind};
use condgen::progress::ProgressMode;
use condgen::sample::Samples;
use condgen::Experiment;
use ndarray::{Array3, Axis};
use rand::{Rng, SeedableRng};
use tch::Device;

fn as_samples(split: &condgen::data::Split) -> Samples {
    Samples { images: split.images.clone(), labels: split.labels.iter().map(|&l| i64::from(l)).collect(), styles: None }
}

#[test]
fn a_real_rotated_test_image_turned_upright_is_the_original() {
    let dataset = standin::sign_mnist(standin::DEFAULT_SEED);
    let letters = Experiment::SignLetter.prepare(&dataset);
    let rotations = Experiment::SignRotation.prepare(&dataset);
    // Image i·4 + k of the rotation task is letter image i turned k·90° counter-clockwise.
    let rotated = as_samples(&rotations.test.head(4 * 25));
    assert_eq!(rotated.labels[..8], [0, 1, 2, 3, 0, 1, 2, 3]);
    let upright = recognisability::upright(&rotated).unwrap();
    assert_eq!(upright.labels, rotated.labels);
    for i in 0..100 {
        assert_eq!(upright.images.index_axis(Axis(0), i), letters.test.images.index_axis(Axis(0), i / 4), "image {i}");
    }
    // The turns are not all the identity: a rotated image differs from its original.
    assert_ne!(rotated.images.index_axis(Axis(0), 1), letters.test.images.index_axis(Axis(0), 0));

    let mut bad = rotated.clone();
    bad.labels[0] = 4;
    assert!(recognisability::upright(&bad).is_err());
}

fn show(name: &str, r: &Recognisability) {
    eprintln!(
        "{name}: top-1 {:.3}, entropy {:.3} nats, recognisable {:.3} ({} images)",
        r.mean_top1, r.mean_entropy, r.recognisable_share, r.images
    );
}

#[test]
fn the_letter_judge_recognises_real_images_upright_or_turned_back_and_not_noise_or_grey() {
    let _serial = common::serial();
    let dataset = standin::sign_mnist(standin::DEFAULT_SEED);
    let letters = Experiment::SignLetter.prepare(&dataset);
    let rotations = Experiment::SignRotation.prepare(&dataset);
    let vowels = Experiment::SignVowel.prepare(&dataset);
    // A small judge: two epochs on 4,000 images in batches of 32 (about 90 % test accuracy).
    let cfg = JudgeConfig {
        epochs: 2,
        max_train_images: Some(4000),
        batch_size: 32,
        augment: false,
        ..JudgeConfig::for_kind(JudgeKind::SignLetter)
    };
    let judge = Judge::train(JudgeKind::SignLetter, &letters, &cfg, Device::Cpu, ProgressMode::Quiet).unwrap();
    eprintln!("tiny judge test accuracy: {:.3}", judge.meta.test_accuracy);

    // Real vowel/consonant test images: the letter judge is sure of most of them.
    let real = recognisability::real_recognisable_reference(&vowels, &judge, 600, 3).unwrap();
    show("real test (vowel task)", &real);
    assert_eq!(real.images, 600);
    assert!(real.mean_top1 > 0.6 && real.recognisable_share > 0.6, "{real:?}");
    let via_dispatch = recognisability::real_reference(&vowels, &judge, 600, 3).unwrap();
    assert_eq!(via_dispatch, Some(real.clone()));

    // Rotated real images turned back score as their upright originals.
    let n = 150;
    let rotated = as_samples(&rotations.test.head(4 * n));
    let turned_back = recognisability::upright_letter_confidence(&rotated, &judge).unwrap();
    let originals = as_samples(&letters.test.head(n));
    let upright = recognisability::recognisable_share(&originals, &judge).unwrap();
    show("rotated test turned upright", &turned_back);
    show("their upright originals", &upright);
    assert_eq!(turned_back.images, 4 * upright.images);
    assert!((turned_back.mean_top1 - upright.mean_top1).abs() < 1e-5);
    assert!((turned_back.mean_entropy - upright.mean_entropy).abs() < 1e-5);
    assert!((turned_back.recognisable_share - upright.recognisable_share).abs() < 1e-9);
    // Not turned back, the letter judge is less sure of them.
    let sideways = recognisability::recognisable_share(&rotated, &judge).unwrap();
    show("rotated test as they are", &sideways);
    assert!(sideways.mean_top1 < upright.mean_top1 - 0.1);
    let reference = recognisability::real_rotated_reference(&rotations, &judge, 600, 5).unwrap();
    show("real rotated reference", &reference);
    assert!(reference.mean_top1 > 0.6, "{reference:?}");

    // Uniform noise and constant grey: low confidence, high entropy.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let noise = Array3::from_shape_fn((300, 28, 28), |_| rng.gen::<u8>());
    let grey = Array3::from_elem((300, 28, 28), 128u8);
    for (name, images) in [("uniform noise", noise), ("constant grey", grey)] {
        let fake = Samples { images, labels: vec![0; 300], styles: None };
        let r = recognisability::recognisable_share(&fake, &judge).unwrap();
        show(name, &r);
        assert!(r.mean_top1 < real.mean_top1 - 0.2, "{name}: {r:?}");
        assert!(r.mean_entropy > real.mean_entropy + 0.5, "{name}: {r:?}");
    }
}

#[test]
fn recognisability_needs_the_letter_judge_and_fits_rotation_and_vowel_only() {
    let _serial = common::serial();
    let dataset = standin::sign_mnist(standin::DEFAULT_SEED);
    let mut rotations = Experiment::SignRotation.prepare(&dataset);
    let mut letters = Experiment::SignLetter.prepare(&dataset);
    // Untrained judges: only what is refused and what fits is tested.
    rotations.truncate(100, 100);
    letters.truncate(100, 100);
    let cfg = JudgeConfig { epochs: 0, augment: false, ..JudgeConfig::for_kind(JudgeKind::SignRotation) };
    let rotation_judge =
        Judge::train(JudgeKind::SignRotation, &rotations, &cfg, Device::Cpu, ProgressMode::Quiet).unwrap();
    let samples = eval::real_as_samples(&rotations, 8, 1);
    let err = recognisability::upright_letter_confidence(&samples, &rotation_judge).unwrap_err();
    assert!(err.to_string().contains("sign-letter judge"), "{err}");

    let cfg = JudgeConfig { epochs: 0, augment: false, ..JudgeConfig::for_kind(JudgeKind::SignLetter) };
    let letter_judge = Judge::train(JudgeKind::SignLetter, &letters, &cfg, Device::Cpu, ProgressMode::Quiet).unwrap();
    let letter_samples = eval::real_as_samples(&letters, 8, 1);
    assert_eq!(recognisability::for_samples(Experiment::SignLetter, &letter_samples, &letter_judge).unwrap(), None);
    assert_eq!(recognisability::real_reference(&letters, &letter_judge, 8, 1).unwrap(), None);
    assert!(recognisability::real_rotated_reference(&letters, &letter_judge, 8, 1).is_err());
    let r = recognisability::for_samples(Experiment::SignRotation, &samples, &letter_judge).unwrap().unwrap();
    assert_eq!(r.images, 8);
    // An untrained judge's 24-letter distribution is near uniform: entropy near ln 24.
    assert!(r.mean_entropy > 0.9 * 24f64.ln() && r.mean_entropy <= 24f64.ln() + 1e-9, "{r:?}");
}
