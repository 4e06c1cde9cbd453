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

/// KID's unbiased MMD² written out term by term: x, y as rows of d features.
fn direct_mmd2(x: &[Vec<f64>], y: &[Vec<f64>]) -> f64 {
    let d = x[0].len() as f64;
    let k = |a: &[f64], b: &[f64]| (a.iter().zip(b).map(|(p, q)| p * q).sum::<f64>() / d + 1.0).powi(3);
    let (m, n) = (x.len() as f64, y.len() as f64);
    let (mut xx, mut yy, mut xy) = (0.0, 0.0, 0.0);
    for (i, a) in x.iter().enumerate() {
        for (j, b) in x.iter().enumerate() {
            if i != j {
                xx += k(a, b);
            }
        }
        for b in y {
            xy += k(a, b);
        }
    }
    for (i, a) in y.iter().enumerate() {
        for (j, b) in y.iter().enumerate() {
            if i != j {
                yy += k(a, b);
            }
        }
    }
    xx / (m * (m - 1.0)) + yy / (n * (n - 1.0)) - 2.0 * xy / (m * n)
}

fn rows_tensor(rows: &[Vec<f64>]) -> Tensor {
    let flat: Vec<f64> = rows.concat();
    Tensor::from_slice(&flat).view([rows.len() as i64, rows[0].len() as i64])
}

fn tensor_rows(t: &Tensor) -> Vec<Vec<f64>> {
    let d = t.size()[1] as usize;
    Vec::<f64>::try_from(t.to_kind(Kind::Double).contiguous().view([-1]))
        .unwrap()
        .chunks(d)
        .map(<[f64]>::to_vec)
        .collect()
}

#[test]
fn kid_of_a_tiny_example_equals_the_formula_written_out() {
    let x = vec![vec![1.0, 2.0], vec![0.5, -1.0], vec![-2.0, 0.25]];
    let y = vec![vec![0.0, 1.0], vec![3.0, -0.5], vec![1.5, 1.5]];
    let expected = direct_mmd2(&x, &y);
    let got = metrics::mmd2_unbiased(&rows_tensor(&x), &rows_tensor(&y)).unwrap();
    assert!((got - expected).abs() < 1e-5 * expected.abs().max(1.0), "{got} vs {expected}");
    // Subsets of all 3 rows a side: every subset is the whole set, the spread is 0.
    let kid = metrics::kernel_distance(&rows_tensor(&x), &rows_tensor(&y), 7, 1000, 1).unwrap();
    assert_eq!((kid.subsets, kid.subset_size), (7, 3));
    assert!((kid.mean - expected).abs() < 1e-5 * expected.abs().max(1.0) && kid.std < 1e-9, "{kid:?} vs {expected}");
    // Sides of different sizes: the general unbiased estimator.
    let y4 = [y.clone(), vec![vec![-1.0, -1.0]]].concat();
    let got = metrics::mmd2_unbiased(&rows_tensor(&x), &rows_tensor(&y4)).unwrap();
    assert!((got - direct_mmd2(&x, &y4)).abs() < 1e-5, "{got}");
    // Fewer than 2 rows a side: not measurable.
    assert!(metrics::mmd2_unbiased(&rows_tensor(&x[..1]), &rows_tensor(&y)).is_none());
}

#[test]
fn kid_over_subsets_is_the_mean_and_spread_of_each_subsets_mmd() {
    // The subsets' sums come from whole kernel matrices (quadratic forms of
    // indicator vectors): the same numbers as each subset measured on its own.
    let _serial = common::serial();
    tch::manual_seed(7);
    let real = Tensor::randn([40, 6], (Kind::Float, Device::Cpu));
    let fake = Tensor::randn([33, 6], (Kind::Float, Device::Cpu)) * 1.3 + 0.2;
    let kid = metrics::kernel_distance(&real, &fake, 12, 15, 99).unwrap();
    let (real_rows, fake_rows) = (tensor_rows(&real), tensor_rows(&fake));
    let values: Vec<f64> = metrics::kid_subset_draws(40, 33, 15, 12, 99)
        .iter()
        .map(|(xs, ys)| {
            let x: Vec<Vec<f64>> = xs.iter().map(|&i| real_rows[i].clone()).collect();
            let y: Vec<Vec<f64>> = ys.iter().map(|&j| fake_rows[j].clone()).collect();
            direct_mmd2(&x, &y)
        })
        .collect();
    let mean = values.iter().sum::<f64>() / 12.0;
    let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 12.0).sqrt();
    assert_eq!(kid.subset_size, 15);
    assert!((kid.mean - mean).abs() < 1e-6 * mean.abs().max(1e-3), "{} vs {mean}", kid.mean);
    assert!((kid.std - std).abs() < 1e-6 * std.max(1e-3), "{} vs {std}", kid.std);
    assert!(std > 0.0);
    // Seeded: the same seed gives the same figures, another seed other subsets.
    assert_eq!(metrics::kernel_distance(&real, &fake, 12, 15, 99), Some(kid));
    assert_ne!(metrics::kernel_distance(&real, &fake, 12, 15, 100).unwrap().mean, kid.mean);
}

#[test]
fn kid_of_two_halves_of_one_gaussian_is_near_zero_and_of_a_shifted_one_clearly_positive() {
    let _serial = common::serial();
    tch::manual_seed(3);
    let a = Tensor::randn([2400, 128], (Kind::Float, Device::Cpu));
    let (first, second) = (a.narrow(0, 0, 1200), a.narrow(0, 1200, 1200));
    let same = metrics::kernel_distance(&first, &second, metrics::KID_SUBSETS, metrics::KID_SUBSET_SIZE, 5).unwrap();
    eprintln!("same distribution: KID {:.6} ± {:.6}", same.mean, same.std);
    assert_eq!(same.subset_size, 1000);
    assert!(same.std > 0.0 && same.mean.abs() < 3.0 * same.std, "{same:?}");
    let shifted = Tensor::randn([1200, 128], (Kind::Float, Device::Cpu)) + 0.3;
    let far = metrics::kernel_distance(&first, &shifted, metrics::KID_SUBSETS, metrics::KID_SUBSET_SIZE, 5).unwrap();
    eprintln!("shifted by 0.3 per unit: KID {:.6} ± {:.6}", far.mean, far.std);
    assert!(far.mean > 20.0 * far.std && far.mean > 50.0 * same.mean.abs(), "{far:?} vs {same:?}");
}

#[test]
fn kid_of_the_reports_size_is_a_finite_mean_and_spread_over_its_subsets() {
    let _serial = common::serial();
    tch::manual_seed(4);
    let real = Tensor::randn([2400, 128], (Kind::Float, Device::Cpu)).relu();
    let fake = Tensor::randn([2400, 128], (Kind::Float, Device::Cpu)).relu();
    // The report's size: 100 subsets of 1,000 from 2,400 × 128 a side. Its speed is a
    // benchmark's concern, not a test's: the time is printed, not asserted.
    let start = std::time::Instant::now();
    let kid = metrics::kernel_distance(&real, &fake, metrics::KID_SUBSETS, metrics::KID_SUBSET_SIZE, 0).unwrap();
    eprintln!("KID, 100 subsets of 1000 from 2400 × 128 a side: {:.3} s", start.elapsed().as_secs_f64());
    assert!(kid.mean.is_finite() && kid.std.is_finite() && kid.std >= 0.0, "{kid:?}");
    assert_eq!((kid.subsets, kid.subset_size), (metrics::KID_SUBSETS, metrics::KID_SUBSET_SIZE));
}

#[test]
fn per_condition_kid_sees_a_generator_that_collapses_inside_each_class() {
    let _serial = common::serial();
    tch::manual_seed(5);
    // Six classes, each a Gaussian around its own centre in 16 dimensions.
    let (classes, per, d) = (6i64, 100i64, 16i64);
    let centres = Tensor::randn([classes, d], (Kind::Float, Device::Cpu)) * 3.0;
    let conditions: Vec<(i64, i64)> = (0..classes).flat_map(|c| (0..per).map(move |_| (c, 0))).collect();
    let class_of = Tensor::from_slice(&conditions.iter().map(|c| c.0).collect::<Vec<_>>());
    let draw = || centres.index_select(0, &class_of) + Tensor::randn([classes * per, d], (Kind::Float, Device::Cpu));
    let (real, other_real) = (draw(), draw());
    // Collapsed: every sample of a class is that class's first real-like draw.
    let firsts = Tensor::from_slice(&conditions.iter().map(|c| c.0 * per).collect::<Vec<_>>());
    let collapsed = other_real.index_select(0, &firsts);
    let (real_mean, real_worst) = metrics::per_condition_kid(&real, &conditions, &other_real, &conditions).unwrap();
    let (col_mean, col_worst) = metrics::per_condition_kid(&real, &conditions, &collapsed, &conditions).unwrap();
    let pooled = |fake: &Tensor| metrics::kernel_distance(&real, fake, 100, 1000, 0).unwrap().mean;
    eprintln!(
        "per-condition KID: real {real_mean:.4} (worst {real_worst:.4}), collapsed {col_mean:.4} (worst {col_worst:.4}); \
         pooled: real {:.4}, collapsed {:.4}",
        pooled(&other_real),
        pooled(&collapsed)
    );
    assert!(real_worst >= real_mean && col_worst >= col_mean);
    assert!(col_mean > 20.0 * real_mean.abs().max(1e-3), "{col_mean} vs {real_mean}");
    // Pooled over classes the collapse is diluted: per condition it stands out more.
    assert!(col_mean / pooled(&collapsed) > 1.5, "{col_mean} vs pooled {}", pooled(&collapsed));
    // A condition with a single sample on a side is left out; none left: None.
    assert!(metrics::per_condition_kid(&real, &conditions, &collapsed.narrow(0, 0, 1), &conditions[..1]).is_none());
}

#[test]
fn density_and_coverage_of_a_hand_checked_example() {
    // 1-d: real 0, 1, 3, 7; fake 0.5, 8, 20.
    let real = Tensor::from_slice(&[0f32, 1., 3., 7.]).view([4, 1]);
    let fake = Tensor::from_slice(&[0.5f32, 8., 20.]).view([3, 1]);
    // k = 1: radii 1, 1, 2, 4. 0.5 lies in the balls of 0 and 1, 8 in that of 7, 20 in none:
    // density (2 + 1 + 0) / (1 · 3) = 1; real 0, 1, 7 are covered, 3 is not: coverage 3/4.
    assert_eq!(metrics::density_coverage(&real, &fake, 1), Some((1.0, 0.75)));
    // k = 2: radii 3, 2, 3, 6. 0.5 lies in the balls of 0, 1 and 3, 8 in that of 7:
    // density (3 + 1) / (2 · 3) = 2/3; every real ball holds a fake: coverage 1.
    let (density, coverage) = metrics::density_coverage(&real, &fake, 2).unwrap();
    assert!((density - 2.0 / 3.0).abs() < 1e-12 && coverage == 1.0, "{density} {coverage}");
    // No more real points than k: not measurable.
    assert_eq!(metrics::density_coverage(&real, &fake, 4), None);
}

#[test]
fn density_of_real_vs_real_is_near_one_and_a_collapsed_set_covers_little() {
    let _serial = common::serial();
    tch::manual_seed(6);
    let k = metrics::DENSITY_COVERAGE_K;
    let a = Tensor::randn([1500, 4], (Kind::Float, Device::Cpu));
    let b = Tensor::randn([1500, 4], (Kind::Float, Device::Cpu));
    let (density, coverage) = metrics::density_coverage(&a, &b, k).unwrap();
    eprintln!("real vs real: density {density:.3}, coverage {coverage:.3}");
    assert!((density - 1.0).abs() < 0.15 && coverage > 0.9, "{density} {coverage}");
    // 1500 samples, 10 distinct points: most real balls hold none.
    let collapsed = b.narrow(0, 0, 10).repeat([150, 1]);
    let (_, coverage) = metrics::density_coverage(&a, &collapsed, k).unwrap();
    eprintln!("collapsed to 10 points: coverage {coverage:.3}");
    assert!(coverage < 0.1, "{coverage}");
}

#[test]
fn the_reference_is_drawn_per_condition_with_the_samples_counts() {
    use condgen::data::Split;
    // Classes 0 ×3, 1 ×2, 2 ×1; K49-like styles on class 0: 0, 1, 1.
    let images = ndarray::Array3::<u8>::from_shape_fn((6, 28, 28), |(i, _, _)| i as u8);
    let split = Split { images, labels: vec![0, 1, 0, 1, 2, 0], styles: Some(vec![0, 0, 1, 0, 0, 1]) };
    // Samples: class 0 ×2, class 1 ×3 (one more than there are), class 3 ×1 (none).
    let labels = [0i64, 0, 1, 1, 1, 3];
    let reference = eval::class_matched_subset(&split, &labels, None, 9);
    assert_eq!(reference.class_counts(4), vec![2, 2, 0, 0]);
    assert_eq!(eval::class_matched_subset(&split, &labels, None, 9).images, reference.images, "seeded");
    // With styles on both sides, (class, style) is the condition: class 0 style 1 ×2.
    let styles = [1i64, 1, 0, 0, 0, 0];
    let reference = eval::class_matched_subset(&split, &labels, Some(&styles), 9);
    assert_eq!(reference.labels, vec![1, 0, 1, 0]);
    assert_eq!(reference.styles, Some(vec![0, 1, 0, 1]));
    // The shortfall counts samples without a reference image of their condition: one of class 1, the class 3 one.
    let samples = condgen::sample::Samples {
        images: ndarray::Array3::zeros((6, 28, 28)),
        labels: labels.to_vec(),
        styles: Some(styles.to_vec()),
    };
    let features = |n: i64| Tensor::randn([n, 8], (Kind::Float, Device::Cpu));
    let measured = eval::ReferenceMeasures::measure(&features(4), &reference, &features(6), &samples, 0);
    assert_eq!(measured.reference_shortfall, 2);
}

#[test]
fn a_generator_collapsed_inside_each_class_shows_in_per_condition_kid_and_coverage() {
    let _serial = common::serial();
    let dataset = DataOptions::from_env().load(DatasetKind::SignMnist).unwrap();
    let data = Experiment::SignLetter.prepare(&dataset);
    let cfg = JudgeConfig {
        epochs: 1,
        max_train_images: Some(2000),
        augment: false,
        ..JudgeConfig::for_kind(JudgeKind::SignLetter)
    };
    let judge =
        Judge::train(JudgeKind::SignLetter, &data, &cfg, Device::Cpu, condgen::progress::ProgressMode::Quiet).unwrap();
    let opts = EvalOptions { memorization_reference: 300, ..EvalOptions::default() };
    // Real train images, 20 per letter, as samples; the reference comes from the test split.
    let per = 20;
    let labels: Vec<i64> = (0..24).flat_map(|c| std::iter::repeat_n(c, per)).collect();
    let train = eval::class_matched_subset(&data.train, &labels, None, 11);
    let real = condgen::sample::Samples {
        images: train.images.clone(),
        labels: train.labels.iter().map(|&l| i64::from(l)).collect(),
        styles: None,
    };
    let r = eval::evaluate_samples(&real, &data, &judge, &opts).unwrap();
    assert_eq!((r.real_reference_images, r.reference_shortfall), (real.len(), Some(0)));
    let collapsed = eval::collapsed(&real);
    let c = eval::evaluate_samples(&collapsed, &data, &judge, &opts).unwrap();
    let means = eval::class_mean_samples(&data, per);
    let m = eval::evaluate_samples(&means, &data, &judge, &opts).unwrap();
    for (name, s) in [("real train", &r), ("collapsed", &c), ("class means", &m)] {
        eprintln!("{name:>11}: {}", condgen::table::summary(s));
    }
    let kid_pc = |s: &eval::SampleMetrics| s.kid_per_condition_mean.unwrap();
    assert!(kid_pc(&c) > 5.0 * kid_pc(&r).max(1e-6), "{} vs {}", kid_pc(&c), kid_pc(&r));
    assert!(kid_pc(&m) > 5.0 * kid_pc(&r).max(1e-6), "{} vs {}", kid_pc(&m), kid_pc(&r));
    assert!(c.kid_per_condition_worst.unwrap() >= kid_pc(&c));
    assert!(c.coverage.unwrap() < 0.5 * r.coverage.unwrap(), "{:?} vs {:?}", c.coverage, r.coverage);
    assert!(m.coverage.unwrap() < 0.5 * r.coverage.unwrap(), "{:?} vs {:?}", m.coverage, r.coverage);

    // Reference rows: both halves drawn per condition, 10 a letter a side.
    let rows = eval::reference_rows(&data, &judge, 240, &opts).unwrap();
    let half = &rows[0].metrics;
    assert_eq!((half.samples, half.real_reference_images, half.reference_shortfall), (240, 240, Some(0)));
    assert!(half.accuracy.per_class.iter().all(|v| !v.is_nan()), "every letter drawn");
    for row in &rows {
        eprintln!("{:>28}: {}", row.name, condgen::table::summary(&row.metrics));
    }
    let blurred = &rows.last().unwrap().metrics;
    assert!(blurred.kid_mean.unwrap() > half.kid_mean.unwrap(), "blur moves KID");
}
