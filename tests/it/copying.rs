//! The data-copying test and the nearest-train gallery on the embedded Sign
//! stand-in, with a small quickly trained judge: train images offered as
//! samples are flagged, held-out test images are not.
//!
//! Set CONDGEN_PLOT_OUT=DIR to keep the galleries for looking at.

use crate::common;

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

#[test]
fn the_nearest_train_gallery_pairs_each_sample_with_its_nearest_train_image() {
    let _serial = common::serial();
    let (data, judge) = letters_and_judge(1000, 200, 512);
    let check = |fig: &condgen::plot::Figure, name: &str| {
        let img = condgen::image::load_from_memory_with_format(&fig.png, condgen::image::ImageFormat::Png)
            .expect("a valid PNG")
            .to_rgb8();
        assert_eq!((img.width(), img.height()), (fig.width, fig.height));
        if let Ok(dir) = std::env::var("CONDGEN_PLOT_OUT") {
            fig.save(&std::path::Path::new(&dir).join(format!("{name}.png"))).unwrap();
        }
        img
    };
    // Test images: no pair is identical, so no frames and no legend.
    let fresh = eval::real_as_samples(&data, 100, 1);
    let fig = eval_gallery(&fresh, &data, &judge, 12, "held-out test images");
    let fresh_img = check(&fig, "gallery-test");
    // Train images: each one's nearest train image is itself, framed as identical pixels.
    let copies = as_samples(&data.train.head(100));
    let fig = eval_gallery(&copies, &data, &judge, 12, "train images");
    let copies_img = check(&fig, "gallery-train");
    assert!(copies_img.height() > fresh_img.height(), "the copies' gallery has a legend line");
    let yellow = |img: &condgen::image::RgbImage| img.pixels().filter(|p| p.0 == [255, 200, 0]).count();
    assert_eq!(yellow(&fresh_img), 0);
    assert!(yellow(&copies_img) > 12 * 2 * 4 * 80, "every pair framed");
    // 12 pairs, 5 to a row: 3 rows of 10 columns; more pairs than samples are cut to the samples.
    let layout_of = |rows, cols| condgen::plot::GridLayout::new(&condgen::plot::GridSpec::new("t", rows, cols), 28, 28);
    assert!(fresh_img.width() >= layout_of(3, 10).unwrap().width);
    let few = as_samples(&data.test.head(3));
    assert!(eval_gallery(&few, &data, &judge, 12, "three").width < fig.width);
    // No samples or no train images: an error, not a panic.
    let none = as_samples(&data.test.head(0));
    assert!(condgen::figures::nearest_train_gallery(&none, &data.train, &judge, 5, "none").is_err());
    assert!(condgen::figures::nearest_train_gallery(&few, &data.train.head(0), &judge, 5, "none").is_err());
}

fn eval_gallery(samples: &Samples, data: &TaskData, judge: &Judge, n: usize, title: &str) -> condgen::plot::Figure {
    condgen::figures::nearest_train_gallery(samples, &data.train, judge, n, title).unwrap()
}
