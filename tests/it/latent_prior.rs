//! The per-condition latent prior fitted to a CVAE's codes: what it fits, how
//! it samples, and how it is saved.

use crate::common;

use condgen::data::Split;
use condgen::model::{Architecture, LatentPrior, MlpCvaeConfig, Net};
use condgen::task::{ConditionSpec, TaskData};
use ndarray::Array3;
use tch::{Device, Kind, Tensor};

/// `n` random images; labels cycle over the first `used` of 3 classes.
fn split(n: usize, used: u8) -> Split {
    let pixels: Vec<u8> = (0..n * 784).map(|i| ((i * 2654435761) >> 7) as u8).collect();
    Split {
        images: Array3::from_shape_vec((n, 28, 28), pixels).unwrap(),
        labels: (0..n).map(|i| (i % used as usize) as u8).collect(),
        styles: None,
    }
}

#[test]
fn fits_each_condition_to_its_own_codes() {
    let _serial = common::serial();
    tch::manual_seed(0);
    let spec = ConditionSpec::OneHot { classes: 3, style_bit: false };
    let built = Architecture::MlpCvae(MlpCvaeConfig { hidden: 16, latent: 4 }).build(spec.dim(), Device::Cpu);
    let Net::Cvae(cvae) = &built.net else { panic!("a CVAE") };
    // Class 2 has no images: it keeps N(0, I).
    let data = split(300, 2);
    let prior = LatentPrior::fit(cvae.as_ref(), &spec, &data, 7, 1, Device::Cpu);
    assert_eq!(prior.counts, vec![150, 150, 0]);
    assert_eq!(prior.means.size(), vec![3, 4]);
    assert_eq!(prior.cholesky.size(), vec![3, 4, 4]);

    // The mean of class 1 is the mean of the codes of class 1's images.
    let class1: Vec<usize> = (0..300).filter(|i| i % 2 == 1).collect();
    let imgs: Vec<u8> = class1.iter().flat_map(|&i| data.image(i).to_vec()).collect();
    let part = Split {
        images: Array3::from_shape_vec((class1.len(), 28, 28), imgs).unwrap(),
        labels: vec![1; class1.len()],
        styles: None,
    };
    let codes = tch::no_grad(|| {
        cvae.encode(&TaskData::images_tensor(&part, Device::Cpu), &spec.encode(&part.labels, None, Device::Cpu), false)
            .0
    });
    let expected = codes.mean_dim(0i64, false, Kind::Float);
    let got = prior.means.get(1);
    assert!((&expected - &got).abs().max().double_value(&[]) < 1e-4, "{expected:?} vs {got:?}");
    assert_eq!(prior.means.get(2).abs().sum(Kind::Float).double_value(&[]), 0.0);
    assert!((prior.cholesky.get(2) - Tensor::eye(4, (Kind::Float, Device::Cpu))).abs().max().double_value(&[]) < 1e-6);

    // Zero noise lands on each condition's mean; many draws recover its covariance.
    let eps0 = Tensor::zeros([2, 4], (Kind::Float, Device::Cpu));
    let z0 = prior.transform(&spec, &[0, 1], &[0, 0], &eps0);
    assert!((z0 - prior.means.narrow(0, 0, 2)).abs().max().double_value(&[]) < 1e-6);
    let n = 20_000;
    let eps = Tensor::randn([n, 4], (Kind::Float, Device::Cpu));
    let z = prior.transform(&spec, &vec![1; n as usize], &vec![0; n as usize], &eps);
    let centred = &z - z.mean_dim(0i64, true, Kind::Float);
    let sample_cov = centred.transpose(0, 1).matmul(&centred) / (n - 1) as f64;
    let c = codes - &expected;
    let fitted_cov = c.transpose(0, 1).matmul(&c) / (class1.len() - 1) as f64;
    let scale = fitted_cov.abs().max().double_value(&[]);
    let err = (sample_cov - &fitted_cov).abs().max().double_value(&[]);
    assert!(err < 0.05 * scale, "covariance off by {err} (scale {scale})");
}

#[test]
fn saves_and_loads_and_rejects_a_mismatched_model() {
    let _serial = common::serial();
    tch::manual_seed(1);
    let spec = ConditionSpec::OneHot { classes: 3, style_bit: false };
    let built = Architecture::MlpCvae(MlpCvaeConfig { hidden: 16, latent: 4 }).build(spec.dim(), Device::Cpu);
    let Net::Cvae(cvae) = &built.net else { panic!("a CVAE") };
    let prior = LatentPrior::fit(cvae.as_ref(), &spec, &split(90, 3), 3, 1, Device::Cpu);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latent_prior.safetensors");
    prior.save(&path).unwrap();
    let back = LatentPrior::load(&path, &spec, 4).unwrap();
    assert_eq!(back.epoch, 3);
    assert_eq!(back.counts, prior.counts);
    assert!((back.means - &prior.means).abs().max().double_value(&[]) == 0.0);
    assert!((back.cholesky - &prior.cholesky).abs().max().double_value(&[]) == 0.0);

    // Another latent size or condition count is an error naming the file, not a panic.
    let err = LatentPrior::load(&path, &spec, 8).unwrap_err().to_string();
    assert!(err.contains("latent_prior.safetensors") && err.contains("8 latent"), "{err}");
    let other = ConditionSpec::OneHot { classes: 3, style_bit: true };
    assert!(LatentPrior::load(&path, &other, 4).is_err());
    std::fs::write(&path, b"not safetensors").unwrap();
    assert!(LatentPrior::load(&path, &spec, 4).is_err());
}

/// Codes of one condition in two tight blobs, at (−4, 0) (a quarter of them) and (4, 0).
fn two_blobs(n: i64) -> Tensor {
    tch::manual_seed(3);
    let noise = Tensor::randn([n, 2], (Kind::Double, Device::Cpu)) * 0.3;
    let left = (Tensor::arange(n, (Kind::Int64, Device::Cpu)).remainder(4).eq(0)).to_kind(Kind::Double);
    let x = (left * -8.0 + 4.0).unsqueeze(1);
    noise + Tensor::cat(&[x, Tensor::zeros([n, 1], (Kind::Double, Device::Cpu))], 1)
}

#[test]
fn a_mixture_finds_each_look_of_a_condition_and_draws_from_both() {
    let _serial = common::serial();
    let n = 400;
    let codes = two_blobs(n).to_kind(Kind::Float);
    let prior = LatentPrior::from_codes(&codes, &vec![0; n as usize], 1, 2, 1);
    assert_eq!(prior.components, 2);
    assert_eq!(prior.means.size(), vec![2, 2]);
    // One component per blob, weighted by its share of the codes.
    let mut fitted: Vec<(f64, f64)> =
        (0..2).map(|k| (prior.means.double_value(&[k, 0]), prior.weights.double_value(&[0, k]))).collect();
    fitted.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!((fitted[0].0 + 4.0).abs() < 0.1 && (fitted[1].0 - 4.0).abs() < 0.1, "{fitted:?}");
    assert!((fitted[0].1 - 0.25).abs() < 0.01 && (fitted[1].1 - 0.75).abs() < 0.01, "{fitted:?}");

    // Draws land in the blobs in those shares, not between them as one Gaussian's do.
    let spec = ConditionSpec::OneHot { classes: 1, style_bit: false };
    tch::manual_seed(4);
    let m = 4000;
    let eps = Tensor::randn([m, 2], (Kind::Float, Device::Cpu));
    let x = prior.transform(&spec, &vec![0; m as usize], &vec![0; m as usize], &eps).select(1, 0);
    let between = x.abs().lt(2.0).to_kind(Kind::Float).mean(Kind::Float).double_value(&[]);
    let left = x.lt(0.0).to_kind(Kind::Float).mean(Kind::Float).double_value(&[]);
    assert!(between < 0.01, "{between} of the draws fall between the blobs");
    assert!((left - 0.25).abs() < 0.03, "{left}");
    let single = LatentPrior::from_codes(&codes, &vec![0; n as usize], 1, 1, 1);
    let x1 = single.transform(&spec, &vec![0; m as usize], &vec![0; m as usize], &eps).select(1, 0);
    assert!(
        x1.abs().lt(2.0).to_kind(Kind::Float).mean(Kind::Float).double_value(&[]) > 0.2,
        "one Gaussian fills the gap"
    );
}

#[test]
fn a_mixture_round_trips_and_a_prior_saved_before_mixtures_loads_as_one_gaussian() {
    let _serial = common::serial();
    let spec = ConditionSpec::OneHot { classes: 2, style_bit: false };
    let codes = Tensor::cat(&[two_blobs(40), two_blobs(40)], 0).to_kind(Kind::Float);
    let condition: Vec<i64> = (0..80).map(|i| i / 40).collect();
    let prior = LatentPrior::from_codes(&codes, &condition, 2, 3, 5);
    assert_eq!(prior.cholesky.size(), vec![6, 2, 2]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latent_prior.safetensors");
    prior.save(&path).unwrap();
    let back = LatentPrior::load(&path, &spec, 2).unwrap();
    assert_eq!(back.components, 3);
    assert!((back.weights - &prior.weights).abs().max().double_value(&[]) == 0.0);

    // The older file format: means, cholesky, counts and epoch only.
    let one = LatentPrior::from_codes(&codes, &condition, 2, 1, 5);
    let tensors = [
        ("means", one.means.shallow_clone()),
        ("cholesky", one.cholesky.shallow_clone()),
        ("counts", Tensor::from_slice(&one.counts)),
        ("epoch", Tensor::from_slice(&[5i64])),
    ];
    Tensor::write_safetensors(&tensors, &path).unwrap();
    let old = LatentPrior::load(&path, &spec, 2).unwrap();
    assert_eq!(old.components, 1);
    assert!((old.means - &one.means).abs().max().double_value(&[]) == 0.0);
}
