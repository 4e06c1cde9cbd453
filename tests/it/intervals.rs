//! Bootstrap intervals: the resampling arithmetic on known cases, and intervals
//! that hold the point estimate and narrow with more samples.

use crate::common;

use condgen::eval::intervals::{self, Interval, PointValues};
use condgen::eval::metrics::{self, ClassDistances, FrechetReference};
use tch::{Device, Kind, Tensor};

#[test]
fn percentile_interval_takes_the_2_5th_and_97_5th_percentiles() {
    let values: Vec<f64> = (0..=1000).rev().map(f64::from).collect();
    assert_eq!(Interval::percentile_95(&values), Interval { low: 25.0, high: 975.0 });
    let with_nan = [f64::NAN, 1.0, 1.0];
    assert_eq!(Interval::percentile_95(&with_nan), Interval { low: 1.0, high: 1.0 });
    let empty_sums = [-0.0, -0.0];
    assert!(Interval::percentile_95(&empty_sums).low.is_sign_positive(), "shown as 0.0, not -0.0");
    // Centred: the bootstrap's spread placed around the estimate (median 500 → 100).
    assert_eq!(Interval::centred_on(&values, 100.0), Interval { low: 0.0, high: 575.0 });
    assert_eq!(Interval::centred_on(&values, 600.0), Interval { low: 125.0, high: 1075.0 });
}

#[test]
fn weighted_measures_equal_the_measures_of_the_resample_they_stand_for() {
    let _serial = common::serial();
    tch::manual_seed(3);
    let real = Tensor::randn([300, 6], (Kind::Float, Device::Cpu));
    let fake = Tensor::randn([200, 6], (Kind::Float, Device::Cpu)) * 1.5 + 0.5;
    let labels: Vec<i64> = (0..200).map(|i| i % 4).collect();
    // A resample: row i drawn w_i times; the same set written out row by row.
    let w: Vec<f64> = (0..200).map(|i| ((i * 7) % 3) as f64).collect();
    let rows: Vec<i64> = (0..200).flat_map(|i| std::iter::repeat_n(i as i64, w[i] as usize)).collect();
    let expanded = fake.index_select(0, &Tensor::from_slice(&rows));
    let expanded_labels: Vec<i64> = rows.iter().map(|&r| labels[r as usize]).collect();
    let weights = Tensor::from_slice(&w);

    let reference = FrechetReference::new(&real);
    let weighted = reference.distance(&fake, Some(&weights));
    let written_out = metrics::frechet_distance(&real, &expanded);
    assert!((weighted - written_out).abs() < 1e-6 * written_out, "{weighted} vs {written_out}");
    assert!((reference.distance(&fake, None) - metrics::frechet_distance(&real, &fake)).abs() < 1e-9);

    // Diversity over pairs of distinct draws: a row paired with its own copies is left out.
    let distances = ClassDistances::new(&fake, &labels);
    let ones = Tensor::ones([200], (Kind::Double, Device::Cpu));
    let unweighted = metrics::within_class_diversity(&fake, &labels);
    assert!((distances.mean(Some(&ones)) - unweighted).abs() < 1e-9);
    let by_hand = {
        let per_class: Vec<f64> = (0..4)
            .map(|c| {
                let members: Vec<usize> = (0..expanded_labels.len()).filter(|&j| expanded_labels[j] == c).collect();
                let (mut sum, mut pairs) = (0.0, 0.0);
                for &a in &members {
                    for &b in &members {
                        if rows[a] != rows[b] {
                            sum += (&expanded.get(a as i64) - &expanded.get(b as i64)).norm().double_value(&[]);
                            pairs += 1.0;
                        }
                    }
                }
                sum / pairs
            })
            .collect();
        per_class.iter().sum::<f64>() / 4.0
    };
    let weighted = distances.mean(Some(&weights));
    assert!((weighted - by_hand).abs() < 1e-4 * by_hand, "{weighted} vs {by_hand}");
}

/// Samples of 4 conditions, a `hit_rate` share of them right, drawn from the real distribution.
fn intervals_of(n: i64, hit_rate: f64) -> (intervals::MetricIntervals, f64, f64) {
    let real = Tensor::randn([n, 5], (Kind::Float, Device::Cpu));
    let fake = Tensor::randn([n, 5], (Kind::Float, Device::Cpu));
    let labels: Vec<i64> = (0..n).map(|i| i % 4).collect();
    let conditions: Vec<(i64, i64)> = labels.iter().map(|&l| (l, 0)).collect();
    let correct: Vec<bool> = (0..n).map(|i| ((i / 4) as f64 * 0.618_034).fract() < hit_rate).collect();
    let confidence: Vec<f64> = correct.iter().map(|&c| if c { 0.9 } else { 0.2 }).collect();
    let (fake_in_real, real_in_fake) = metrics::manifold_membership(&real, &fake, 3);
    let (balls, covered) = metrics::density_coverage_points(&real, &fake, 5).unwrap();
    let memorized = vec![false; n as usize];
    let frechet = FrechetReference::new(&real);
    let frechet_distance = frechet.distance(&fake, None);
    let diversity = ClassDistances::new(&fake, &labels);
    let points = PointValues {
        fake_conditions: &conditions,
        labels: &labels,
        classes: 4,
        correct: &correct,
        confidence: &confidence,
        fake_in_real: &fake_in_real,
        balls_per_fake: Some((&balls, 5)),
        memorized: &memorized,
        style_hits: None,
        fake_features: &fake,
        frechet: &frechet,
        frechet_distance,
        diversity: &diversity,
        real_conditions: &conditions,
        real_in_fake: &real_in_fake,
        real_covered: Some(&covered),
    };
    let accuracy = metrics::share_of(&correct);
    (intervals::bootstrap(&points, 200, 7), accuracy, frechet_distance)
}

#[test]
fn bootstrap_intervals_hold_the_estimate_and_narrow_with_more_samples() {
    let _serial = common::serial();
    tch::manual_seed(4);
    let (small, accuracy, fd_small) = intervals_of(400, 0.8);
    let (large, _, _) = intervals_of(3200, 0.8);
    let holds = |i: Interval, v: f64| i.low <= v && v <= i.high;
    assert!(holds(small.accuracy, accuracy), "{:?} {accuracy}", small.accuracy);
    let width = |i: Interval| i.high - i.low;
    // 8× the samples: about √8 ≈ 2.8× narrower.
    assert!(width(large.accuracy) < 0.5 * width(small.accuracy), "{:?} vs {:?}", large.accuracy, small.accuracy);
    assert!(width(large.recall) < width(small.recall) && width(large.precision) < width(small.precision));
    assert!(
        small.worst_condition.high <= small.accuracy.high + 1e-12,
        "the worst condition is no better than the mean"
    );
    assert_eq!(small.memorization_share, Interval { low: 0.0, high: 0.0 }, "a constant has a zero-width interval");
    assert!(small.density.is_some() && small.coverage.is_some() && small.style_accuracy.is_none());
    // Two samples of one distribution: FD's interval is near 0, and holds the estimate.
    assert!(small.frechet_distance.low >= 0.0 && small.frechet_distance.high < 1.0, "{:?}", small.frechet_distance);
    assert!(holds(small.frechet_distance, fd_small), "{:?} {fd_small}", small.frechet_distance);
}
