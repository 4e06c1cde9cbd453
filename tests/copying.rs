//! The data-copying test on the embedded Sign stand-in, with a small quickly
//! trained judge: train images offered as samples are flagged, held-out test
//! images are not.

mod common;

use condgen::data::{standin, Split};
use condgen::eval::judge::JudgeConfig;
use condgen::eval::{self, EvalOptions, Judge, JudgeKind};
use condgen::progress::ProgressMode;
use condgen::sample::Samples;
use condgen::task::TaskData;
use condgen::Experiment;
use tch::Device;

/// The Sign stand-in's letter task cut to `train` / `test` images, and a judge
/// trained for one epoch on `judge_images` of its train images.
fn letters_and_judge(train: usize, test: usize, judge_images: usize) -> (TaskData, Judge) {
    let mut data = Experiment::SignLetter.prepare(&standin::sign_mnist(standin::DEFAULT_SEED));
    data.truncate(train, test);
    let cfg = JudgeConfig {
        epochs: 1,
        max_train_images: Some(judge_images),
        augment: false,
        ..JudgeConfig::for_kind(JudgeKind::SignLetter)
    };
    let judge = Judge::train(JudgeKind::SignLetter, &data, &cfg, Device::Cpu, ProgressMode::Quiet).unwrap();
    (data, judge)
}

fn as_samples(split: &Split) -> Samples {
    Samples {
        images: split.images.clone(),
        labels: split.labels.iter().map(|&l| l as i64).collect(),
        styles: split.styles.as_ref().map(|s| s.iter().map(|&x| x as i64).collect()),
    }
}

#[test]
fn train_images_offered_as_samples_are_flagged_and_held_out_images_are_not() {
    let _serial = common::serial();
    // A generator's whole training set is the train reference: 2,000 images.
    let (data, judge) = letters_and_judge(2000, 1600, 1000);
    eprintln!("judge test accuracy {:.3}", judge.meta.test_accuracy);
    let opts = EvalOptions { memorization_reference: data.train.len(), ..EvalOptions::default() };
    // Held out: the second half of the test images; samples: 800 images of each kind.
    let held_out = data.test.select(&(800..1600).collect::<Vec<_>>());
    let measure = |name: &str, samples: &Split| {
        let m = eval::evaluate_samples_against(&as_samples(samples), &held_out, &data, &judge, &opts).unwrap();
        eprintln!(
            "{name}: C_T {:?} over {:?} of {:?} cells, memorized {:.3}",
            m.copying_ct, m.copying_cells_used, m.copying_cells, m.memorization_share
        );
        m
    };

    let test = measure("held-out test images", &data.test.head(800));
    // 2,000 train, 800 held-out and 800 generated images: 10 cells.
    assert_eq!(test.copying_cells, Some(10));
    let c_t = test.copying_ct.expect("C_T measured");
    assert!(c_t.abs() < 2.0, "held-out test images: C_T {c_t}");

    let train = measure("train images", &data.train.head(800));
    let c_t = train.copying_ct.expect("C_T measured");
    assert!(c_t < -10.0, "train images: C_T {c_t}");

    // Half copies, half new images: still flagged.
    let mut half = data.train.head(400);
    half.images.append(condgen::ndarray::Axis(0), data.test.head(400).images.view()).unwrap();
    half.labels.extend_from_slice(&data.test.labels[..400]);
    let c_t = measure("half train, half test", &half).copying_ct.expect("C_T measured");
    assert!(c_t < -3.0, "half copies: C_T {c_t}");
}
