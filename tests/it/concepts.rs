//! The teaching computations say what the theory says.

use crate::common;

use condgen::concepts::{bernoulli_floor, gradient_estimators, optimal_discriminator};
use condgen::data::Split;
use ndarray::Array3;

#[test]
fn both_gradient_estimators_are_unbiased_and_the_score_function_is_noisier() {
    let _serial = common::serial();
    let rows = gradient_estimators(1.5, 1.0, 100, 200, 7).unwrap();
    let (exact, reparam, score) = (&rows[0], &rows[1], &rows[2]);
    assert_eq!(exact.mean, 3.0);
    // Mean of 200 estimates: within four standard errors of 2μ.
    for row in [reparam, score] {
        let stderr = row.std / 200f64.sqrt();
        assert!((row.mean - 3.0).abs() < 4.0 * stderr + 1e-9, "{}: {} ± {}", row.estimator, row.mean, stderr);
    }
    // Var of 2z over 100 draws: 4σ²/100 → std 0.2; the score function's is several times larger.
    assert!((reparam.std - 0.2).abs() < 0.05, "{}", reparam.std);
    assert!(score.std > 3.0 * reparam.std, "{} vs {}", score.std, reparam.std);
}

fn split(pixels: &[u8]) -> Split {
    let n = 2;
    let images = Array3::from_shape_fn((n, 28, 28), |(i, r, c)| pixels[(i * 784 + r * 28 + c) % pixels.len()]);
    Split { images, labels: vec![0; n], styles: None }
}

#[test]
fn a_bernoulli_floor_is_zero_on_binary_images_and_784_ln2_on_mid_grey() {
    let binary = bernoulli_floor(&split(&[0, 255, 255, 0, 0]));
    assert_eq!(binary.nats_per_image, 0.0);
    assert_eq!(binary.grey_share, 0.0);
    // 127.5/255 is not a byte; 128/255 is within 1e-4 of ½, where H = ln 2.
    let grey = bernoulli_floor(&split(&[128]));
    assert!((grey.nats_per_image - 784.0 * 2f64.ln()).abs() < 0.01, "{}", grey.nats_per_image);
    assert_eq!(grey.grey_share, 1.0);
}

#[test]
fn the_games_value_at_the_optimal_discriminator_is_twice_js_minus_ln4() {
    for shift in [0.0, 0.5, 2.0, 6.0] {
        let d = optimal_discriminator(shift);
        assert!((d.value - (2.0 * d.jensen_shannon - 4f64.ln())).abs() < 1e-6, "shift {shift}: {d:?}");
        assert!(d.jensen_shannon <= 2f64.ln() + 1e-9);
    }
    // Equal distributions: D* = ½ everywhere, JS = 0. Far apart: JS saturates at ln 2 while W1 keeps growing.
    let same = optimal_discriminator(0.0);
    assert!(same.jensen_shannon.abs() < 1e-9 && same.curve.iter().all(|(_, d)| (d - 0.5).abs() < 1e-9));
    let (far, farther) = (optimal_discriminator(8.0), optimal_discriminator(12.0));
    assert!((farther.jensen_shannon - far.jensen_shannon).abs() < 1e-3);
    assert!(farther.wasserstein > far.wasserstein);
}
