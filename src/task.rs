//! The four experiments and how each one conditions its models.
//!
//! - `sign-vowel`: consonant (0) vs vowel (1), one bit.
//! - `sign-letter`: 24 letters, one-hot.
//! - `sign-rotation`: every image in 4 copies rotated counter-clockwise by k·90°, one-hot k.
//! - `k49`: 49 classes one-hot, followed by the thick/thin style bit.

use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

use crate::data::{rot90, sign, DataOptions, DataSource, Dataset, DatasetKind, Split, PIXELS};
use crate::Result;

/// One of the four conditioning tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Experiment {
    SignVowel,
    SignLetter,
    SignRotation,
    K49,
}

impl Experiment {
    pub const ALL: [Experiment; 4] =
        [Experiment::SignVowel, Experiment::SignLetter, Experiment::SignRotation, Experiment::K49];

    pub fn name(self) -> &'static str {
        match self {
            Experiment::SignVowel => "sign-vowel",
            Experiment::SignLetter => "sign-letter",
            Experiment::SignRotation => "sign-rotation",
            Experiment::K49 => "k49",
        }
    }

    pub fn dataset(self) -> DatasetKind {
        match self {
            Experiment::K49 => DatasetKind::K49,
            _ => DatasetKind::SignMnist,
        }
    }

    /// How the condition is fed to a model.
    pub fn condition_spec(self) -> ConditionSpec {
        match self {
            Experiment::SignVowel => ConditionSpec::Bit,
            Experiment::SignLetter => ConditionSpec::OneHot { classes: 24, style_bit: false },
            Experiment::SignRotation => ConditionSpec::OneHot { classes: 4, style_bit: false },
            Experiment::K49 => ConditionSpec::OneHot { classes: 49, style_bit: true },
        }
    }

    /// The names of the task's classes, in class order, known without the data
    /// files: consonant and vowel, the letters, the four rotations, the K49
    /// characters (what the class map names). [`TaskData::condition_names`] holds
    /// the loaded dataset's names.
    pub fn class_names(self) -> Vec<String> {
        let names: &[&str] = match self {
            Experiment::SignVowel => &["consonant", "vowel"],
            Experiment::SignLetter => &crate::data::sign::LETTERS,
            Experiment::SignRotation => &["0°", "90°", "180°", "270°"],
            Experiment::K49 => &crate::data::k49::CHARACTERS,
        };
        names.iter().map(|s| s.to_string()).collect()
    }

    /// Loads the dataset and derives this task's conditions.
    pub fn load(self, opts: &DataOptions) -> Result<TaskData> {
        Ok(self.prepare(&opts.load(self.dataset())?))
    }

    /// Derives this task's conditions from a loaded dataset.
    pub fn prepare(self, ds: &Dataset) -> TaskData {
        // Every split goes through the same derivation: a task's validation images
        // are its dataset's (for rotation, their four rotated copies).
        let derive: fn(&Split) -> Split = match self {
            Experiment::SignVowel => |split| relabel(split, sign::is_vowel),
            Experiment::SignLetter | Experiment::K49 => Split::clone,
            Experiment::SignRotation => rotations,
        };
        let condition_names = match self {
            Experiment::SignVowel | Experiment::SignRotation => self.class_names(),
            // The dataset's own names (a K49 class map read from disk).
            Experiment::SignLetter | Experiment::K49 => ds.class_names.clone(),
        };
        TaskData {
            experiment: self,
            spec: self.condition_spec(),
            condition_names,
            train: derive(&ds.train),
            validation: derive(&ds.validation),
            test: derive(&ds.test),
            source: ds.source.clone(),
            style_medians: ds.style_medians.clone(),
        }
    }
}

impl std::fmt::Display for Experiment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One of the two splits nothing trains on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum HeldOut {
    /// The validation split: every choice (epochs, priors, loss weights, temperatures, recipes) is made on it.
    Validation,
    /// The test split: read once, by the final report.
    #[default]
    Test,
}

impl HeldOut {
    pub fn name(self) -> &'static str {
        match self {
            HeldOut::Validation => "validation",
            HeldOut::Test => "test",
        }
    }
}

impl std::fmt::Display for HeldOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How a condition is presented to a model: a vector of `dim()` floats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ConditionSpec {
    /// A single 0/1 input (binary task).
    Bit,
    /// One-hot over `classes`, followed by a 0/1 style bit when `style_bit`.
    OneHot { classes: usize, style_bit: bool },
    /// No condition: a single input held at 0 whatever the class (an
    /// unconditional VAE with the CVAE's network). `classes` is the task's,
    /// for the judge.
    Ignored { classes: usize },
}

impl ConditionSpec {
    /// Length of the condition vector.
    pub fn dim(&self) -> usize {
        match *self {
            ConditionSpec::Bit | ConditionSpec::Ignored { .. } => 1,
            ConditionSpec::OneHot { classes, style_bit } => classes + style_bit as usize,
        }
    }

    /// Number of distinct classes (2 for `Bit`).
    pub fn classes(&self) -> usize {
        match *self {
            ConditionSpec::Bit => 2,
            ConditionSpec::OneHot { classes, .. } | ConditionSpec::Ignored { classes } => classes,
        }
    }

    /// The same task's classes with the condition held at zero (see [`ConditionSpec::Ignored`]).
    pub fn ignored(&self) -> ConditionSpec {
        ConditionSpec::Ignored { classes: self.classes() }
    }

    /// Whether the condition tells the model anything.
    pub fn is_conditional(&self) -> bool {
        !matches!(self, ConditionSpec::Ignored { .. })
    }

    pub fn has_style(&self) -> bool {
        matches!(self, ConditionSpec::OneHot { style_bit: true, .. })
    }

    /// Number of (class, style) pairs a generator is asked for: classes × 2 with the style bit.
    pub fn conditions(&self) -> usize {
        self.classes() * if self.has_style() { 2 } else { 1 }
    }

    /// Writes the condition vector of one (class, style) into `out` ([dim], zeroed here).
    pub fn write(&self, class: u8, style: u8, out: &mut [f32]) {
        out.fill(0.0);
        match *self {
            ConditionSpec::Bit => out[0] = class as f32,
            ConditionSpec::Ignored { .. } => {}
            ConditionSpec::OneHot { classes, style_bit } => {
                out[class as usize] = 1.0;
                if style_bit {
                    out[classes] = style as f32;
                }
            }
        }
    }

    /// Condition vectors for many (class, style) pairs: [n, dim] f32 on `device`.
    /// styles: [n] or None (style bit 0).
    pub fn encode(&self, classes: &[u8], styles: Option<&[u8]>, device: Device) -> Tensor {
        let dim = self.dim();
        let mut buf = vec![0f32; classes.len() * dim];
        for (i, (&c, row)) in classes.iter().zip(buf.chunks_exact_mut(dim)).enumerate() {
            self.write(c, styles.map_or(0, |s| s[i]), row);
        }
        Tensor::from_slice(&buf).view([classes.len() as i64, dim as i64]).to_device(device)
    }

    /// Every condition once, in class order (and style 0 then 1 when there is a
    /// style bit): (classes, styles) each of length `num_conditions`.
    pub fn all_conditions(&self) -> (Vec<u8>, Vec<u8>) {
        let n = self.classes();
        if self.has_style() {
            let classes = (0..n as u8).flat_map(|c| [c, c]).collect();
            let styles = (0..n).flat_map(|_| [0u8, 1u8]).collect();
            (classes, styles)
        } else {
            ((0..n as u8).collect(), vec![0; n])
        }
    }
}

/// A task's data: images with the task's condition labels.
#[derive(Clone, Debug)]
pub struct TaskData {
    pub experiment: Experiment,
    pub spec: ConditionSpec,
    /// Human-readable name of each condition class.
    pub condition_names: Vec<String>,
    /// What models and judges train on: the dataset's train split, without its validation images.
    pub train: Split,
    /// The dataset's validation split ([`crate::data::validation`]), never trained
    /// on: the CVAE's per-epoch held-out loss, and every selection, are measured on it.
    pub validation: Split,
    /// The test split, read once, by the final report.
    pub test: Split,
    pub source: DataSource,
    pub style_medians: Option<Vec<f64>>,
}

impl TaskData {
    /// Keeps at most `n_train` train images and at most `n_test` validation and
    /// `n_test` test images (for quick runs).
    pub fn truncate(&mut self, n_train: usize, n_test: usize) {
        self.train = self.train.head(n_train);
        self.validation = self.validation.head(n_test);
        self.test = self.test.head(n_test);
    }

    /// The same data without the images of `classes` (every split).
    pub fn without_classes(&self, classes: &[u8]) -> TaskData {
        if classes.is_empty() {
            return self.clone();
        }
        let keep = |split: &Split| {
            let rows: Vec<usize> = (0..split.len()).filter(|&i| !classes.contains(&split.labels[i])).collect();
            split.select(&rows)
        };
        TaskData {
            train: keep(&self.train),
            validation: keep(&self.validation),
            test: keep(&self.test),
            ..self.clone()
        }
    }

    /// The held-out split `which` names: where samples are measured ([`crate::eval::EvalOptions::split`]).
    pub fn held_out(&self, which: HeldOut) -> &Split {
        match which {
            HeldOut::Validation => &self.validation,
            HeldOut::Test => &self.test,
        }
    }

    /// Images of one split as float tensor [n, 1, 28, 28] in [0, 1].
    pub fn images_tensor(split: &Split, device: Device) -> Tensor {
        crate::data::pixels_to_tensor(&crate::data::row_major(&split.images), device)
    }
}

fn relabel(split: &Split, f: fn(u8) -> u8) -> Split {
    Split { images: split.images.clone(), labels: split.labels.iter().map(|&l| f(l)).collect(), styles: None }
}

/// Every image four times, rotated by k·90° counter-clockwise; label k.
/// Image i·4 + k is image i rotated k times.
fn rotations(split: &Split) -> Split {
    let n = split.len();
    let mut pixels = Vec::with_capacity(n * 4 * PIXELS);
    let mut labels = Vec::with_capacity(n * 4);
    for i in 0..n {
        for k in 0..4 {
            pixels.extend_from_slice(&rot90(&split.image(i), k));
            labels.push(k as u8);
        }
    }
    Split {
        images: ndarray::Array3::from_shape_vec((n * 4, 28, 28), pixels).expect("n·4·784 pixels"),
        labels,
        styles: None,
    }
}
