//! The sign study's section 3 pieces: an unconditional VAE (the CVAE's
//! network with its condition held at zero), held-out classes, anomaly
//! scores read as ROC curves, and the prior's sampling temperature.

use condgen::data::{DataOptions, DatasetKind};
use condgen::eval::anomaly::{roc_auc, roc_curve};
use condgen::model::ModelKind;
use condgen::task::ConditionSpec;
use condgen::train::{Profile, TrainConfig};
use condgen::Experiment;
use tch::Device;

#[test]
fn roc_auc_matches_hand_computed_values() {
    // Anomalous 2 beats 1, ties 2, loses to 3: 1.5 of 3; anomalous 4 beats all three. 4.5 / 6.
    assert!((roc_auc(&[1.0, 2.0, 3.0], &[2.0, 4.0]) - 0.75).abs() < 1e-12);
    assert_eq!(roc_auc(&[1.0, 2.0], &[3.0, 4.0]), 1.0, "perfectly separated");
    assert_eq!(roc_auc(&[3.0, 4.0], &[1.0, 2.0]), 0.0, "perfectly reversed");
    assert_eq!(roc_auc(&[1.0, 1.0], &[1.0]), 0.5, "all tied: chance");
    assert!(roc_auc(&[], &[1.0]).is_nan());
    let curve = roc_curve(&[1.0, 2.0, 3.0], &[2.0, 4.0]);
    assert_eq!(curve.first(), Some(&(0.0, 0.0)));
    assert_eq!(curve.last(), Some(&(1.0, 1.0)));
    assert!(curve.windows(2).all(|w| w[1].0 >= w[0].0 && w[1].1 >= w[0].1), "monotone: {curve:?}");
}

#[test]
fn an_unconditional_vae_sees_zero_whatever_the_class() {
    let letter = Experiment::SignLetter.condition_spec();
    let ignored = letter.ignored();
    assert_eq!(ignored, ConditionSpec::Ignored { classes: 24 });
    assert_eq!((ignored.dim(), ignored.classes(), ignored.is_conditional()), (1, 24, false));
    let cond = ignored.encode(&[0, 5, 23], None, Device::Cpu);
    assert_eq!(cond.size(), vec![3, 1]);
    assert_eq!(cond.abs().sum(tch::Kind::Float).double_value(&[]), 0.0);

    let vae = TrainConfig {
        unconditional: true,
        ..TrainConfig::new(Experiment::SignLetter, ModelKind::Cvae, Profile::Quick)
    };
    assert!(vae.validate().is_ok());
    assert_eq!(vae.condition_spec(), ignored);
    let gan = TrainConfig {
        unconditional: true,
        ..TrainConfig::new(Experiment::SignLetter, ModelKind::Cgan, Profile::Quick)
    };
    assert!(gan.validate().is_err(), "a CGAN needs its condition");
}

#[test]
fn held_out_classes_leave_both_splits_and_are_checked() {
    let ds = DataOptions::from_env().load(DatasetKind::SignMnist).unwrap();
    let data = Experiment::SignLetter.prepare(&ds);
    let cfg = TrainConfig {
        held_out_classes: vec![20, 21, 22, 23],
        ..TrainConfig::new(Experiment::SignLetter, ModelKind::Cvae, Profile::Default)
    };
    assert!(cfg.validate().is_ok());
    let seen = cfg.training_data(&data);
    assert!(seen.train.labels.iter().chain(&seen.test.labels).all(|&l| l < 20));
    let removed = data.train.labels.iter().filter(|&&l| l >= 20).count();
    assert!(removed > 0);
    assert_eq!(seen.train.len(), data.train.len() - removed);
    for bad in [vec![24], (0..24).collect()] {
        let cfg = TrainConfig { held_out_classes: bad, ..cfg.clone() };
        assert!(cfg.validate().is_err());
    }
}
