//! The figures of both studies (and beyond), drawn from trained runs. Each
//! function returns a [`Figure`]; notebooks show them inline, the report
//! saves them.

use ndarray::{Array3, Axis};
use tch::Tensor;

use crate::data::k49::ROMAJI;
use crate::data::{PIXELS, SIDE};
use crate::eval::metrics::condition_probs;
use crate::eval::Judge;
use crate::plot::{self, Figure, GridSpec, Mark, Series};
use crate::sample::{self, Sampler, Samples, TrainedModel};
use crate::task::{ConditionSpec, Experiment, TaskData};
use crate::train::history::EpochRecord;
use crate::Result;

/// The label of every condition of `spec`, in [`ConditionSpec::all_conditions`]
/// order: the class's label, and for K49 its style (thin or thick).
pub fn condition_labels(data: &TaskData, spec: &ConditionSpec) -> Vec<String> {
    let (classes, styles) = spec.all_conditions();
    classes
        .iter()
        .zip(&styles)
        .map(|(&c, &s)| {
            let name = condition_label(data, c as usize);
            if spec.has_style() {
                format!("{name} {}", if s == 1 { "thick" } else { "thin" })
            } else {
                name
            }
        })
        .collect()
}

/// A judge's probability of the requested condition at or above this marks a
/// sample good (red frame, as the study marked its good examples).
pub const GOOD_CONFIDENCE: f64 = 0.9;

/// Latin label of a condition (K49 characters become romaji: the figure font is Latin-only).
pub fn condition_label(data: &TaskData, class: usize) -> String {
    match data.experiment {
        Experiment::K49 => format!("{class} {}", ROMAJI.get(class).copied().unwrap_or("?")),
        _ => data.condition_names.get(class).cloned().unwrap_or_else(|| class.to_string()).replace('°', " deg"),
    }
}

/// Marks by judge verdict: Good when the judge gives the requested condition
/// ≥ 90 %, Bad when it prefers another condition, None otherwise.
pub fn judge_marks(judge: &Judge, experiment: Experiment, samples: &Samples) -> Result<Vec<Mark>> {
    let probs = condition_probs(experiment, &judge.judge(samples.images.view()).probs);
    let pred: Vec<i64> = Vec::try_from(probs.argmax(1, false))?;
    let labels = Tensor::from_slice(&samples.labels);
    let conf: Vec<f32> = Vec::try_from(probs.gather(1, &labels.unsqueeze(1), false).view([-1]))?;
    let marks = samples
        .labels
        .iter()
        .enumerate()
        .map(|(i, &l)| {
            if pred.get(i) != Some(&l) {
                Mark::Bad
            } else if conf.get(i).copied().unwrap_or(0.0) as f64 >= GOOD_CONFIDENCE {
                Mark::Good
            } else {
                Mark::None
            }
        })
        .collect();
    Ok(marks)
}

/// `per_row` samples of each listed condition (style 0), one row per condition,
/// marked by the judge when one is given; the title names the latent source.
pub fn samples_grid(
    sampler: &Sampler,
    data: &TaskData,
    conditions: &[u8],
    per_row: usize,
    seed: u64,
    judge: Option<&Judge>,
    title: &str,
) -> Result<Figure> {
    let classes: Vec<u8> = conditions.iter().flat_map(|&c| std::iter::repeat_n(c, per_row)).collect();
    let styles = vec![0u8; classes.len()];
    let samples = sampler.generate(&classes, &styles, seed)?;
    let marks = judge.map(|j| judge_marks(j, data.experiment, &samples)).transpose()?.unwrap_or_default();
    let row_labels: Vec<String> = conditions.iter().map(|&c| condition_label(data, c as usize)).collect();
    let title = format!("{title} ({})", sampler.caption());
    let good = format!("the judge sees the requested condition, ≥ {:.0} % sure", 100.0 * GOOD_CONFIDENCE);
    let key = [
        (good.as_str(), Mark::Good),
        ("it sees another condition", Mark::Bad),
        ("(no frame: requested, less sure)", Mark::None),
    ];
    let legend: &[(&str, Mark)] = if marks.is_empty() { &[] } else { &key };
    let spec =
        GridSpec { row_labels: &row_labels, marks: &marks, legend, ..GridSpec::new(&title, conditions.len(), per_row) };
    plot::image_grid(samples.images.view(), &spec)
}

/// A grid of samples the report draws for every sign task and model, and the
/// notebooks show: the same conditions, row length and seed in both places.
#[derive(Clone, Copy, Debug)]
pub struct SampleFigure {
    pub experiment: Experiment,
    /// Short name: the report's file is `<experiment>-<model>-<name>.png`.
    pub name: &'static str,
    /// What the grid shows, after the architecture's name in its title.
    pub title: &'static str,
    /// One row per condition.
    pub conditions: &'static [u8],
    pub per_row: usize,
    pub seed: u64,
}

/// Every sign task's sample grids, in the report's order (the studies' figures:
/// consonant and vowel rows, one row per letter, letters C and Q, the four angles, 90° alone).
pub const SIGN_SAMPLE_FIGURES: [SampleFigure; 7] = [
    SampleFigure {
        experiment: Experiment::SignVowel,
        name: "consonant",
        title: "consonant samples",
        conditions: &[0],
        per_row: 10,
        seed: 11,
    },
    SampleFigure {
        experiment: Experiment::SignVowel,
        name: "vowel",
        title: "vowel samples",
        conditions: &[1],
        per_row: 10,
        seed: 12,
    },
    SampleFigure {
        experiment: Experiment::SignLetter,
        name: "all",
        title: "one row per letter",
        conditions: &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23],
        per_row: 8,
        seed: 13,
    },
    SampleFigure {
        experiment: Experiment::SignLetter,
        name: "C",
        title: "letter C",
        conditions: &[2],
        per_row: 10,
        seed: 14,
    },
    SampleFigure {
        experiment: Experiment::SignLetter,
        name: "Q",
        title: "letter Q",
        conditions: &[15],
        per_row: 10,
        seed: 15,
    },
    SampleFigure {
        experiment: Experiment::SignRotation,
        name: "all",
        title: "the four rotation angles",
        conditions: &[0, 1, 2, 3],
        per_row: 8,
        seed: 16,
    },
    SampleFigure {
        experiment: Experiment::SignRotation,
        name: "90",
        title: "90 deg only",
        conditions: &[1],
        per_row: 10,
        seed: 17,
    },
];

impl SampleFigure {
    /// The sign task's figure called `name` (see [`SIGN_SAMPLE_FIGURES`]).
    pub fn named(experiment: Experiment, name: &str) -> Result<&'static SampleFigure> {
        SIGN_SAMPLE_FIGURES.iter().find(|f| f.experiment == experiment && f.name == name).ok_or_else(|| {
            let names: Vec<&str> =
                SIGN_SAMPLE_FIGURES.iter().filter(|f| f.experiment == experiment).map(|f| f.name).collect();
            crate::Error::InvalidInput(format!(
                "{experiment} has no sample figure {name:?}; it has {}",
                names.join(", ")
            ))
        })
    }

    /// The grid, drawn by `sampler` and marked by `judge` when one is given.
    pub fn draw(&self, sampler: &Sampler, data: &TaskData, judge: Option<&Judge>) -> Result<Figure> {
        let title = format!("{}: {}", sampler.model.config.architecture.name(), self.title);
        samples_grid(sampler, data, self.conditions, self.per_row, self.seed, judge, &title)
    }
}

/// K49: samples of the first `classes` classes, thin and thick side by side.
pub fn style_grid(sampler: &Sampler, data: &TaskData, classes: usize, per_style: usize, seed: u64) -> Result<Figure> {
    let mut cls = Vec::new();
    let mut sty = Vec::new();
    for c in 0..classes as u8 {
        for s in [0u8, 1] {
            cls.extend(std::iter::repeat_n(c, per_style));
            sty.extend(std::iter::repeat_n(s, per_style));
        }
    }
    let samples = sampler.generate(&cls, &sty, seed)?;
    let row_labels: Vec<String> = (0..classes).map(|c| condition_label(data, c)).collect();
    let col_labels: Vec<String> =
        (0..2 * per_style).map(|i| if i < per_style { "thin".to_string() } else { "thick".to_string() }).collect();
    let title = format!(
        "{}: samples per class, thin | thick ({})",
        sampler.model.config.architecture.name(),
        sampler.caption()
    );
    let spec =
        GridSpec { row_labels: &row_labels, col_labels: &col_labels, ..GridSpec::new(&title, classes, 2 * per_style) };
    plot::image_grid(samples.images.view(), &spec)
}

/// The first `n` test images (top row) and their CVAE reconstructions (bottom row).
pub fn reconstruction_grid(model: &TrainedModel, data: &TaskData, n: usize) -> Result<Figure> {
    let (orig, recon) = sample::reconstruct(&model.built, &model.spec, &data.test, n)?;
    let both = ndarray::concatenate(Axis(0), &[orig.view(), recon.view()]).expect("same image shape");
    let rows = ["original".to_string(), "reconstruction".to_string()];
    let cols: Vec<String> =
        data.test.labels[..n.min(data.test.len())].iter().map(|&l| condition_label(data, l as usize)).collect();
    let title = format!("{}: {n} test images and their reconstructions", model.config.architecture.name());
    let spec = GridSpec { row_labels: &rows, col_labels: &cols, ..GridSpec::new(&title, 2, n) };
    plot::image_grid(both.view(), &spec)
}

/// A VampPrior CVAE's learned pseudo-inputs: one row per condition (style 0), its K
/// pseudo-images across; the prior of a condition is the encoder's posteriors of its row.
pub fn pseudo_inputs_grid(model: &TrainedModel, data: &TaskData) -> Result<Figure> {
    let crate::model::Net::Cvae(cvae) = &model.built.net else {
        return Err(crate::Error::Unsupported("pseudo-inputs belong to a CVAE's VampPrior".into()));
    };
    let classes: Vec<u8> = (0..model.spec.classes() as u8).collect();
    let cond = model.spec.encode(&classes, None, model.built.vs.device());
    let Some(pseudo) = tch::no_grad(|| cvae.pseudo_inputs(&cond)) else {
        return Err(crate::Error::Unsupported("this CVAE's prior has no pseudo-inputs (not a VampPrior)".into()));
    };
    let images = sample::to_u8_images(&pseudo);
    let per_condition = images.dim().0 / classes.len().max(1);
    let rows: Vec<String> = classes.iter().map(|&c| condition_label(data, c as usize)).collect();
    let title = format!("VampPrior: the {per_condition} learned pseudo-inputs of each condition");
    let spec = GridSpec { row_labels: &rows, ..GridSpec::new(&title, classes.len(), per_condition) };
    plot::image_grid(images.view(), &spec)
}

/// CVAE: the decoder with z fixed while the condition moves linearly from
/// class `a` to class `b` in `steps` steps; one row per z, drawn from `a`'s prior of training.
pub fn interpolation_grid(
    model: &TrainedModel,
    data: &TaskData,
    a: u8,
    b: u8,
    steps: usize,
    rows: usize,
    seed: u64,
) -> Result<Figure> {
    let images = sample::interpolate_condition(model, a, b, steps, rows, seed)?;
    let cols: Vec<String> = (0..steps)
        .map(|s| match s {
            0 => condition_label(data, a as usize),
            s if s + 1 == steps => condition_label(data, b as usize),
            _ => String::new(),
        })
        .collect();
    let title = format!(
        "CVAE: condition interpolated from {a} to {b} (one {} per row, for {a})",
        model.snapshot_latent_source(),
        a = condition_label(data, a as usize),
        b = condition_label(data, b as usize),
    );
    let spec = GridSpec { col_labels: &cols, ..GridSpec::new(&title, rows, steps) };
    plot::image_grid(images.view(), &spec)
}

/// The swap test as a picture: row r holds one z drawn from the prior of condition
/// `from[r]` (the sampler's source: its fitted prior, or the prior it was trained with)
/// and style 0, decoded under each condition of `to` across the columns. A decoder that
/// follows its condition changes the class along a row and keeps the rest (what z
/// carries); one whose z carries the class draws `from[r]` in every column.
/// With z ~ N(0, I) the prior is the same for every row's condition.
pub fn swap_grid(sampler: &Sampler, data: &TaskData, from: &[u8], to: &[u8], seed: u64) -> Result<Figure> {
    let model = sampler.model;
    let crate::model::Net::Cvae(cvae) = &model.built.net else {
        return Err(crate::Error::Unsupported("the swap grid needs a CVAE: a CGAN's noise has no condition".into()));
    };
    let classes = model.spec.classes();
    if let Some(&c) = from.iter().chain(to).find(|&&c| c as usize >= classes) {
        return Err(crate::Error::InvalidInput(format!("condition {c} does not exist ({classes} classes)")));
    }
    let (rows, cols) = (from.len(), to.len());
    let latent_classes: Vec<u8> = from.iter().flat_map(|&a| std::iter::repeat_n(a, cols)).collect();
    let decoded_classes: Vec<u8> = from.iter().flat_map(|_| to.iter().copied()).collect();
    let styles = vec![0u8; rows * cols];
    let device = model.built.vs.device();
    tch::manual_seed(seed as i64);
    let images =
        tch::no_grad(|| {
            // One noise draw per row, repeated across it: the row keeps its z.
            let eps = Tensor::randn([rows as i64, cvae.latent()], (tch::Kind::Float, device))
                .repeat_interleave_self_int(cols as i64, 0, None);
            let z =
                sample::latent_from_noise(cvae.as_ref(), &model.spec, sampler.prior(), &latent_classes, &styles, &eps);
            let cond = model.spec.encode(&decoded_classes, Some(&styles), device);
            sample::images_of_codes(&model.built, &z, &cond)
        });
    let images = sample::to_u8_images(&images);
    let col_labels: Vec<String> = to.iter().map(|&c| condition_label(data, c as usize)).collect();
    let row_labels: Vec<String> = from.iter().map(|&c| format!("z of {}", condition_label(data, c as usize))).collect();
    let title = format!("CVAE: z drawn for the row's condition ({}), decoded under each column's", sampler.caption());
    let spec = GridSpec { col_labels: &col_labels, row_labels: &row_labels, ..GridSpec::new(&title, rows, cols) };
    plot::image_grid(images.view(), &spec)
}

/// Real test images (first row) above fixed-noise snapshots of the given
/// epochs, the first `classes` conditions, one image each.
pub fn real_vs_fake_grid(model: &TrainedModel, data: &TaskData, epochs: &[usize], classes: usize) -> Result<Figure> {
    let spec_per = model.config.snapshot_per_condition;
    let mut rows: Vec<Array3<u8>> = Vec::new();
    let mut row_labels = vec!["real".to_string()];
    // One real test image of each of the first classes.
    let mut real = Vec::new();
    for c in 0..classes as u8 {
        if let Some(i) = data.test.labels.iter().position(|&l| l == c) {
            real.extend_from_slice(&data.test.image(i));
        } else {
            real.extend(std::iter::repeat_n(0u8, PIXELS));
        }
    }
    rows.push(Array3::from_shape_vec((classes, 28, 28), real).expect("classes·784"));
    let styles = if model.spec.has_style() { 2 } else { 1 };
    for &e in epochs {
        let snap = crate::data::npz::read_u8(&model.run.snapshot_path(e), "images")?;
        let mut row = Vec::new();
        for c in 0..classes {
            // Snapshots are grouped by condition: per class (and style), `spec_per` images.
            let idx = c * styles * spec_per;
            row.extend_from_slice(&snap.data[idx * PIXELS..(idx + 1) * PIXELS]);
        }
        rows.push(Array3::from_shape_vec((classes, 28, 28), row).expect("classes·784"));
        row_labels.push(format!("epoch {e}"));
    }
    let views: Vec<_> = rows.iter().map(|r| r.view()).collect();
    let all = ndarray::concatenate(Axis(0), &views).expect("same image shape");
    let cols: Vec<String> = (0..classes).map(|c| condition_label(data, c)).collect();
    let title = format!(
        "{}: real vs generated over epochs (fixed noise, {})",
        model.config.architecture.name(),
        model.snapshot_latent_source()
    );
    let spec = GridSpec { row_labels: &row_labels, col_labels: &cols, ..GridSpec::new(&title, rows.len(), classes) };
    plot::image_grid(all.view(), &spec)
}

/// One history column as a chart series over epochs (epochs without a value are skipped).
pub fn history_series(history: &[EpochRecord], name: &str, column: HistoryColumn) -> Series {
    Series::new(name, history.iter().filter_map(|r| column(r).map(|v| (r.epoch as f64, v))).collect())
}

/// A history column: the value an epoch recorded, if any.
pub type HistoryColumn = fn(&EpochRecord) -> Option<f64>;

/// History columns over epochs as one line chart: `columns` are (legend name, column).
pub fn history_chart(
    history: &[EpochRecord],
    title: &str,
    y_desc: &str,
    columns: &[(&str, HistoryColumn)],
) -> Result<Figure> {
    let series: Vec<Series> = columns.iter().map(|&(name, column)| history_series(history, name, column)).collect();
    plot::line_chart(title, "epoch", y_desc, &series)
}

/// CVAE loss over epochs: train total, reconstruction (the negative
/// log-likelihood under the run's likelihood: BCE for the Bernoulli) and KL, and validation total.
pub fn cvae_loss_chart(history: &[EpochRecord], title: &str) -> Result<Figure> {
    plot::line_chart(title, "epoch", "loss per image", &cvae_loss_series(history))
}

/// As [`cvae_loss_chart`], with the run's model marked on the validation curve: the
/// epoch its weights come from (the best validation epoch under early stopping).
pub fn cvae_loss_chart_at(history: &[EpochRecord], model_epoch: usize, title: &str) -> Result<Figure> {
    let mut series = cvae_loss_series(history);
    let marked = history.iter().filter(|r| r.epoch == model_epoch).filter_map(|r| Some((r.epoch as f64, r.test_loss?)));
    series.push(Series::markers(format!("the model (epoch {model_epoch})"), marked.collect()));
    plot::line_chart(title, "epoch", "loss per image", &series)
}

fn cvae_loss_series(history: &[EpochRecord]) -> Vec<Series> {
    let columns: [(&str, HistoryColumn); 4] = [
        ("train total (reconstruction + KL)", |r| r.loss),
        ("train reconstruction", |r| r.bce),
        ("train KL", |r| r.kl),
        ("validation total", |r| r.test_loss),
    ];
    columns.iter().map(|&(name, column)| history_series(history, name, column)).collect()
}

/// CGAN losses over epochs: discriminator and generator, and D(x), D(G(z)).
pub fn gan_loss_chart(history: &[EpochRecord], title: &str) -> Result<Figure> {
    history_chart(
        history,
        title,
        "mean over the epoch",
        &[
            ("discriminator loss", |r| r.d_loss),
            ("generator loss", |r| r.g_loss),
            ("D(x) real", |r| r.d_real),
            ("D(G(z)) fake", |r| r.d_fake),
        ],
    )
}

/// Per-class conditional accuracy as a bar chart, with the quality bar as a reference line.
pub fn per_class_accuracy_chart(data: &TaskData, per_class: &[f64], title: &str, bar: Option<f64>) -> Result<Figure> {
    let labels: Vec<String> = (0..per_class.len()).map(|c| condition_label(data, c)).collect();
    let values: Vec<f64> = per_class.iter().map(|v| if v.is_nan() { 0.0 } else { 100.0 * v }).collect();
    plot::bar_chart(title, "judge accuracy (%)", &labels, &values, bar.map(|b| (100.0 * b, "quality bar")))
}

// ---- Figures of the data itself (no model needed) ----

/// Real train images: `per_class` of each of the first `classes` conditions, one row each.
pub fn real_grid(data: &TaskData, classes: usize, per_class: usize, title: &str) -> Result<Figure> {
    let classes = classes.min(data.spec.classes());
    let mut pixels = Vec::with_capacity(classes * per_class * PIXELS);
    for c in 0..classes as u8 {
        push_first_images(&mut pixels, &data.train, per_class, |i| data.train.labels[i] == c);
    }
    let images = Array3::from_shape_vec((classes * per_class, SIDE, SIDE), pixels).expect("n·784");
    let row_labels: Vec<String> = (0..classes).map(|c| condition_label(data, c)).collect();
    let spec = GridSpec { row_labels: &row_labels, ..GridSpec::new(title, classes, per_class) };
    plot::image_grid(images.view(), &spec)
}

/// Appends the first `n` images of `split` whose index passes `keep`, padded
/// with black images when fewer exist (a grid keeps its shape).
fn push_first_images(pixels: &mut Vec<u8>, split: &crate::data::Split, n: usize, keep: impl Fn(usize) -> bool) {
    let mut found = (0..split.len()).filter(|&i| keep(i));
    for _ in 0..n {
        match found.next() {
            Some(i) => pixels.extend_from_slice(&split.image(i)),
            None => pixels.extend(std::iter::repeat_n(0u8, PIXELS)),
        }
    }
}

/// Train images per condition as bars (class balance).
pub fn class_balance_chart(data: &TaskData, title: &str) -> Result<Figure> {
    let counts = data.train.class_counts(data.spec.classes());
    let labels: Vec<String> = (0..counts.len()).map(|c| condition_label(data, c)).collect();
    let values: Vec<f64> = counts.iter().map(|&c| c as f64).collect();
    let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
    plot::bar_chart(title, "train images", &labels, &values, Some((mean, "mean")))
}

/// K49 style split on real train images: for each of the first `classes`
/// classes, `per_style` thin then `per_style` thick images; the row label
/// carries the class median foreground count (pixels ≥ 128) that splits them.
pub fn real_style_grid(data: &TaskData, classes: usize, per_style: usize) -> Result<Figure> {
    let (Some(styles), Some(medians)) = (&data.train.styles, &data.style_medians) else {
        return Err(crate::Error::Unsupported("the thick/thin split exists only for K49-format data".into()));
    };
    let classes = classes.min(data.spec.classes());
    let mut pixels = Vec::with_capacity(classes * 2 * per_style * PIXELS);
    for c in 0..classes as u8 {
        for want in [0u8, 1] {
            push_first_images(&mut pixels, &data.train, per_style, |i| data.train.labels[i] == c && styles[i] == want);
        }
    }
    let images = Array3::from_shape_vec((classes * 2 * per_style, SIDE, SIDE), pixels).expect("n·784");
    let row_labels: Vec<String> =
        (0..classes).map(|c| format!("{} (median {:.0})", condition_label(data, c), medians[c])).collect();
    let col_labels: Vec<String> =
        (0..2 * per_style).map(|i| if i < per_style { "thin".to_string() } else { "thick".to_string() }).collect();
    let spec = GridSpec {
        row_labels: &row_labels,
        col_labels: &col_labels,
        ..GridSpec::new(
            "Real train images: thin | thick (foreground pixels vs the class median)",
            classes,
            2 * per_style,
        )
    };
    plot::image_grid(images.view(), &spec)
}

/// The rotation task's four conditions on the same `n` real test images:
/// one row per angle (counter-clockwise, as numpy's rot90).
pub fn rotation_grid(split: &crate::data::Split, n: usize) -> Result<Figure> {
    let n = n.min(split.len());
    let mut pixels = Vec::with_capacity(4 * n * PIXELS);
    for k in 0..4 {
        for i in 0..n {
            pixels.extend_from_slice(&crate::data::rot90(&split.image(i), k));
        }
    }
    let images = Array3::from_shape_vec((4 * n, SIDE, SIDE), pixels).expect("n·784");
    let rows: Vec<String> = ["0 deg", "90 deg", "180 deg", "270 deg"].iter().map(|s| s.to_string()).collect();
    let spec = GridSpec {
        row_labels: &rows,
        ..GridSpec::new("The rotation task: the same images at 0, 90, 180, 270 deg", 4, n)
    };
    plot::image_grid(images.view(), &spec)
}

/// CVAE latent traversal: the decoder's output for condition `class` over an
/// `steps`×`steps` grid of the first two latent dimensions in [-range, range]
/// (every other dimension 0, the prior's mean).
pub fn latent_traversal_grid(
    model: &TrainedModel,
    data: &TaskData,
    class: u8,
    steps: usize,
    range: f64,
) -> Result<Figure> {
    let images = sample::decode_latent_plane(model, class, steps, range)?;
    let title = format!(
        "Latent traversal for {}: z1 across, z2 down, in [-{range}, {range}]",
        condition_label(data, class as usize)
    );
    plot::image_grid(images.view(), &GridSpec::new(&title, steps, steps))
}

/// Precision, recall and judge accuracy of a CVAE's samples against the
/// sampling temperature ([`crate::eval::temperature_sweep`]).
pub fn temperature_sweep_chart(sweep: &[(f64, crate::eval::SampleMetrics)], title: &str) -> Result<Figure> {
    let series = [
        Series::new("precision (%)", sweep.iter().map(|(t, m)| (*t, 100.0 * m.precision)).collect()),
        Series::new("recall (%)", sweep.iter().map(|(t, m)| (*t, 100.0 * m.recall)).collect()),
        Series::new("judge accuracy (%)", sweep.iter().map(|(t, m)| (*t, 100.0 * m.accuracy.overall)).collect()),
    ];
    plot::line_chart(title, "sampling temperature (noise scale)", "%", &series)
}

/// ROC curves of anomaly detectors, with the chance diagonal.
pub fn roc_chart(detections: &[crate::eval::anomaly::Detection], title: &str) -> Result<Figure> {
    let mut series: Vec<Series> =
        detections.iter().map(|d| Series::new(format!("{} (AUC {:.3})", d.name, d.auc()), d.curve())).collect();
    series.push(Series::new("chance", vec![(0.0, 0.0), (1.0, 1.0)]));
    plot::line_chart(title, "false positive rate", "true positive rate", &series)
}

/// `samples` of an unconditional model, `rows` × `cols`, unmarked (it was asked for no condition).
pub fn unconditional_grid(samples: &Samples, rows: usize, cols: usize, title: &str) -> Result<Figure> {
    let n = (rows * cols).min(samples.len());
    let images = samples.images.slice(ndarray::s![..n, .., ..]);
    plot::image_grid(images, &GridSpec::new(title, rows, cols))
}

/// The share of samples the judge assigns to each condition, with the even share as reference.
pub fn condition_share_chart(data: &TaskData, shares: &[f64], title: &str) -> Result<Figure> {
    let labels: Vec<String> = (0..shares.len()).map(|c| condition_label(data, c)).collect();
    let percent: Vec<f64> = shares.iter().map(|s| 100.0 * s).collect();
    plot::bar_chart(
        title,
        "share of samples (%)",
        &labels,
        &percent,
        Some((100.0 / shares.len().max(1) as f64, "even share")),
    )
}

/// CVAE with a latent of at least 2 dimensions: the posterior means (first two
/// dimensions) of up to `per_class` validation images of each listed class, against
/// the circles of radius 1 and 2 that hold 39 % and 86 % of N(0, I)'s mass in
/// the plane. Codes far from the circles, or clumped inside them, leave regions
/// where z ~ N(0, I) lands with no training code nearby: the "holes" that a
/// prior fitted to the codes avoids.
pub fn latent_codes_chart(model: &TrainedModel, data: &TaskData, classes: &[u8], per_class: usize) -> Result<Figure> {
    let mut series = Vec::new();
    for &class in classes {
        let idx: Vec<usize> = data
            .validation
            .labels
            .iter()
            .enumerate()
            .filter(|(_, &l)| l == class)
            .map(|(i, _)| i)
            .take(per_class)
            .collect();
        let points = sample::posterior_means_2d(model, &data.validation.select(&idx))?;
        series.push(Series::markers(condition_label(data, class as usize), points));
    }
    for radius in [1.0, 2.0] {
        let circle = (0..=120).map(|i| {
            let a = i as f64 / 120.0 * std::f64::consts::TAU;
            (radius * a.cos(), radius * a.sin())
        });
        series.push(Series::new(format!("N(0, I): radius {radius}"), circle.collect()));
    }
    plot::line_chart_equal_axes("Posterior means of validation images (z1, z2) against N(0, I)", "z1", "z2", &series)
}

/// A CVAE's KL per latent dimension (nats, on the validation split), one bar each,
/// with the 0.1-nat line below which a dimension carries almost nothing.
pub fn kl_per_dimension_chart(kl_per_dim: &[f64], title: &str) -> Result<Figure> {
    let labels: Vec<String> = (1..=kl_per_dim.len()).map(|d| format!("z{d}")).collect();
    let line = crate::notebook::CARRYING_NATS;
    plot::bar_chart(title, "KL (nats)", &labels, kl_per_dim, Some((line, &format!("{line} nats"))))
}

/// Pairs of a sample and its nearest train image on each row of [`nearest_train_gallery`].
pub const GALLERY_PAIRS_PER_ROW: usize = 5;

/// The data-copying gallery: `n` samples, spread evenly over `samples` (so over
/// its conditions, which come grouped), each beside its nearest image of `train`
/// in the judge's feature space, with that distance under the train image. A
/// copying generator shows pairs that look alike at small distances; a pair of
/// identical pixels is framed in yellow. Every image of `train` is judged, so a
/// caller with a large split may pass a seeded subset.
pub fn nearest_train_gallery(
    samples: &Samples,
    train: &crate::data::Split,
    judge: &Judge,
    n: usize,
    title: &str,
) -> Result<Figure> {
    if train.is_empty() {
        return Err(crate::Error::InvalidInput("nearest-train gallery: the train split is empty".into()));
    }
    let n = n.min(samples.len());
    if n == 0 {
        return Err(crate::Error::InvalidInput("nearest-train gallery: no samples to show".into()));
    }
    let picks: Vec<usize> = (0..n).map(|i| i * samples.len() / n).collect();
    let shown = samples.images.select(Axis(0), &picks);
    let (distances, nearest) = crate::eval::copying::nearest_neighbours(
        &judge.judge(shown.view()).features,
        &judge.judge(train.images.view()).features,
    )?;

    let per_row = n.min(GALLERY_PAIRS_PER_ROW);
    let rows = n.div_ceil(per_row);
    let cols = 2 * per_row;
    // Cells past the last pair stay empty.
    let mut pixels = vec![0u8; 2 * n * PIXELS];
    let mut cell_labels = vec![String::new(); rows * cols];
    let mut marks = vec![Mark::None; rows * cols];
    for (i, (&d, &j)) in distances.iter().zip(&nearest).enumerate() {
        let cell = 2 * i;
        let sample_image = shown.index_axis(Axis(0), i);
        let train_image = train.images.index_axis(Axis(0), j as usize);
        for (k, image) in [(cell, &sample_image), (cell + 1, &train_image)] {
            pixels[k * PIXELS..(k + 1) * PIXELS].iter_mut().zip(image.iter()).for_each(|(out, &v)| *out = v);
        }
        cell_labels[cell + 1] = format!("d {d:.2}");
        if sample_image == train_image {
            marks[cell] = Mark::Bad;
            marks[cell + 1] = Mark::Bad;
        }
    }
    let images = Array3::from_shape_vec((2 * n, SIDE, SIDE), pixels).expect("2n·784");
    let col_labels: Vec<String> =
        (0..cols).map(|c| if c % 2 == 0 { "sample" } else { "nearest train" }.to_string()).collect();
    let title = format!("{title}: nearest of {} train images (judge features, distance d)", train.len());
    let copies = marks.contains(&Mark::Bad);
    let legend: &[(&str, Mark)] = if copies { &[("identical pixels", Mark::Bad)] } else { &[] };
    let marks: &[Mark] = if copies { &marks } else { &[] };
    let spec = GridSpec {
        col_labels: &col_labels,
        cell_labels: &cell_labels,
        marks,
        legend,
        ..GridSpec::new(&title, rows, cols)
    };
    plot::image_grid(images.view(), &spec)
}
