//! Real data measured as generated samples are: the reference rows a
//! generator's numbers are read against (half vs half, train vs held-out,
//! blurred), and the hand-made "generators" that teach what each measure sees
//! (real images as samples, class means, a collapsed copy).

use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

use super::reference::{class_matched_subset, draw_per_condition};
use super::{evaluate_samples_against, subset, EvalOptions, Judge, SampleMetrics};
use crate::data::Split;
use crate::sample::{self, Samples};
use crate::task::TaskData;
use crate::Result;

/// Blur widths (Gaussian σ in pixels) of the blurred-real reference rows.
pub const REFERENCE_BLURS: [f64; 4] = [0.5, 1.0, 1.5, 2.0];

/// One reference row: real images measured as if they were samples, so a
/// generator's figures can be read against what real data scores.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReferenceRow {
    /// What was measured, e.g. "real test, half vs half" or "real test blurred σ = 1 px".
    pub name: String,
    /// Gaussian blur σ in pixels (None: not blurred).
    pub blur: Option<f64>,
    pub metrics: SampleMetrics,
}

/// The reference rows of a judge on a task, on the held-out split `opts.split`
/// names (test unless asked; "test" below), at `n` images a side spread over
/// the conditions as a generator's samples are (n / conditions, rounded up, of
/// each; use the generators' sample count: the Fréchet distance and KID's
/// spread depend on sample size), every side drawn like-with-like per condition:
/// - real test half vs half: per condition, one half of a draw of the test
///   split, measured against the other half (a condition with fewer than twice
///   its count is split in two as it is, the shortfall recorded);
/// - real train vs test: train images, drawn with the first half's counts, against the same second half;
/// - real test blurred with σ in [`REFERENCE_BLURS`]: the first half blurred, against the second.
pub fn reference_rows(data: &TaskData, judge: &Judge, n: usize, opts: &EvalOptions) -> Result<Vec<ReferenceRow>> {
    let per_condition = n.div_ceil(data.spec.conditions().max(1)).max(1);
    let held_out = data.held_out(opts.split);
    let split = opts.split.name();
    let with_styles = data.spec.has_style() && held_out.styles.is_some();
    let (classes, styles) = data.spec.all_conditions();
    let counts: std::collections::BTreeMap<(i64, i64), usize> = classes
        .iter()
        .zip(&styles)
        .map(|(&c, &s)| ((i64::from(c), if with_styles { i64::from(s) } else { 0 }), 2 * per_condition))
        .collect();
    // Two disjoint halves of one class-matched draw of the held-out split.
    let (mut first_rows, mut second_rows) = (Vec::new(), Vec::new());
    for rows in draw_per_condition(held_out, &counts, with_styles, opts.seed ^ 0x5EF) {
        let half = rows.len().div_ceil(2);
        first_rows.extend_from_slice(&rows[..half]);
        second_rows.extend_from_slice(&rows[half..]);
    }
    first_rows.sort_unstable();
    second_rows.sort_unstable();
    let (first, second) = (held_out.select(&first_rows), held_out.select(&second_rows));
    let as_samples = |split: &Split| Samples {
        images: split.images.clone(),
        labels: split.labels.iter().map(|&l| l as i64).collect(),
        styles: split.styles.as_ref().map(|v| v.iter().map(|&x| x as i64).collect()),
    };
    let mut rows = Vec::new();
    let mut push = |name: String, blur: Option<f64>, samples: &Samples| -> Result<()> {
        let metrics = evaluate_samples_against(samples, &second, data, judge, opts)?;
        rows.push(ReferenceRow { name, blur, metrics });
        Ok(())
    };
    let first = as_samples(&first);
    push(format!("real {split}, half vs half"), None, &first)?;
    let train = class_matched_subset(&data.train, &first.labels, first.styles.as_deref(), opts.seed ^ 0x7A1);
    push(format!("real train vs {split}"), None, &as_samples(&train))?;
    for sigma in REFERENCE_BLURS {
        let blurred = Samples { images: gaussian_blur(&first.images, sigma), ..first.clone() };
        push(format!("real {split} blurred σ = {sigma} px"), Some(sigma), &blurred)?;
    }
    Ok(rows)
}

/// Gaussian blur of uint8 images (separable kernel of radius ⌈3σ⌉, edges
/// padded by replication). images: [n, 28, 28] → [n, 28, 28]
pub fn gaussian_blur(images: &ndarray::Array3<u8>, sigma: f64) -> ndarray::Array3<u8> {
    let radius = (3.0 * sigma).ceil().max(1.0) as i64;
    let taps: Vec<f32> = (-radius..=radius).map(|i| (-(i * i) as f64 / (2.0 * sigma * sigma)).exp() as f32).collect();
    let total: f32 = taps.iter().sum();
    let kernel = Tensor::from_slice(&taps.iter().map(|t| t / total).collect::<Vec<_>>());
    let xs = crate::data::pixels_to_tensor(&crate::data::row_major(images), Device::Cpu);
    let k = 2 * radius + 1;
    let blurred = tch::no_grad(|| {
        let padded = xs.replication_pad2d([radius, radius, radius, radius]);
        padded.conv2d(&kernel.view([1, 1, 1, k]), None::<Tensor>, [1], [0], [1], 1).conv2d(
            &kernel.view([1, 1, k, 1]),
            None::<Tensor>,
            [1],
            [0],
            [1],
            1,
        )
    });
    sample::to_u8_images(&blurred)
}

/// Judges real test images as if they were samples (a sanity reference: the
/// accuracy should be close to the judge's own test accuracy).
pub fn real_as_samples(data: &TaskData, n: usize, seed: u64) -> Samples {
    let s = subset(&data.test, n, seed);
    Samples {
        labels: s.labels.iter().map(|&l| l as i64).collect(),
        styles: s.styles.map(|v| v.iter().map(|&x| x as i64).collect()),
        images: s.images,
    }
}

/// The degenerate generator the metrics must see through: for every
/// condition, the mean of its train images, repeated `per_condition` times.
/// It is what the judge expects of each condition (accuracy near 100 %) with
/// no variety at all (diversity 0, recall near 0).
pub fn class_mean_samples(data: &TaskData, per_condition: usize) -> Samples {
    let (classes, styles) = data.spec.all_conditions();
    let train = &data.train;
    let mut images =
        ndarray::Array3::<u8>::zeros((classes.len() * per_condition, crate::data::SIDE, crate::data::SIDE));
    for (k, (&class, &style)) in classes.iter().zip(&styles).enumerate() {
        let rows: Vec<usize> = (0..train.len())
            .filter(|&i| train.labels[i] == class && train.styles.as_ref().is_none_or(|s| s[i] == style))
            .collect();
        let mut sum = ndarray::Array2::<f64>::zeros((crate::data::SIDE, crate::data::SIDE));
        for &i in &rows {
            sum += &train.images.index_axis(ndarray::Axis(0), i).mapv(f64::from);
        }
        let mean = (sum / rows.len().max(1) as f64).mapv(|v| v.round() as u8);
        for j in 0..per_condition {
            images.index_axis_mut(ndarray::Axis(0), k * per_condition + j).assign(&mean);
        }
    }
    let (labels, styles) = sample::condition_lists(&data.spec, per_condition);
    let as_i64 = |v: Vec<u8>| v.into_iter().map(i64::from).collect::<Vec<_>>();
    Samples { images, labels: as_i64(labels), styles: data.spec.has_style().then(|| as_i64(styles)) }
}

/// Features of uint8 images by a judge, for notebooks. images: [n, 28, 28] → [n, 128]
pub fn features(judge: &Judge, images: ndarray::ArrayView3<u8>) -> Tensor {
    judge.judge(images).features
}

/// A mode-collapsed copy of `samples`: every sample of a condition replaced by
/// that condition's first sample. Teaching aid: conditional accuracy barely
/// moves, while recall and diversity fall, which is how the metrics catch
/// a collapsed generator.
pub fn collapsed(samples: &Samples) -> Samples {
    let mut images = samples.images.clone();
    let mut first: std::collections::HashMap<(i64, i64), usize> = std::collections::HashMap::new();
    for i in 0..samples.len() {
        let style = samples.styles.as_ref().map_or(0, |s| s[i]);
        let j = *first.entry((samples.labels[i], style)).or_insert(i);
        if j != i {
            let src = samples.images.index_axis(ndarray::Axis(0), j).to_owned();
            images.index_axis_mut(ndarray::Axis(0), i).assign(&src);
        }
    }
    Samples { images, labels: samples.labels.clone(), styles: samples.styles.clone() }
}
