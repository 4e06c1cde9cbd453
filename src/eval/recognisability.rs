//! "Does it look like the data?" where the condition's own judge cannot tell.
//!
//! - sign-rotation: the rotation judge sees only which way a picture points.
//!   [`upright_letter_confidence`] turns each sample upright (by its requested
//!   angle) and asks the letter judge how surely it shows one of the 24
//!   letters; [`real_rotated_reference`] does the same for real rotated test images.
//! - sign-vowel: the judge's consonant/vowel verdict sums 24 letter
//!   probabilities, so a blend of letters can pass. [`recognisable_share`] asks
//!   whether the letter judge sees one letter (top-1 probability ≥ 0.5);
//!   [`real_recognisable_reference`] gives real test images' figures.

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::intervals::{self, Interval};
use super::judge::{Judge, JudgeKind};
use crate::data::{rot90, PIXELS, SIDE};
use crate::sample::Samples;
use crate::task::{Experiment, TaskData};
use crate::{Error, Result};

/// Top-1 probability at or above which an image counts as recognisable.
pub const RECOGNISABLE_TOP1: f64 = 0.5;

/// How surely the letter judge sees a letter in a set of images.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recognisability {
    /// Images judged.
    pub images: usize,
    /// Mean probability of the letter judge's most probable letter.
    pub mean_top1: f64,
    /// Mean entropy of its 24-letter distribution, in nats (at most ln 24 ≈ 3.18).
    pub mean_entropy: f64,
    /// Share of images whose top-1 probability is at least [`RECOGNISABLE_TOP1`].
    pub recognisable_share: f64,
    /// Bootstrap 95 % intervals over the images of the three means above (top-1,
    /// entropy, share); None in measures from before they were taken.
    #[serde(default)]
    pub intervals: Option<[Interval; 3]>,
}

/// Sign-rotation samples (labels 0..3: asked for 0°, 90°, 180°, 270°
/// counter-clockwise) turned upright and judged by the letter judge.
pub fn upright_letter_confidence(samples: &Samples, letter_judge: &Judge) -> Result<Recognisability> {
    letter_recognisability(&upright(samples)?, letter_judge)
}

/// Sign-vowel samples judged by the letter judge: how many show one letter
/// (top-1 ≥ 0.5), not a blend. Works for any upright sign images.
pub fn recognisable_share(samples: &Samples, letter_judge: &Judge) -> Result<Recognisability> {
    letter_recognisability(samples, letter_judge)
}

/// [`upright_letter_confidence`] of `n` real rotated test images (a seeded
/// subset of `data`'s test split, which must be sign-rotation's).
pub fn real_rotated_reference(data: &TaskData, letter_judge: &Judge, n: usize, seed: u64) -> Result<Recognisability> {
    require(data, &[Experiment::SignRotation])?;
    upright_letter_confidence(&super::real_as_samples(data, n, seed), letter_judge)
}

/// [`recognisable_share`] of `n` real test images (a seeded subset of `data`'s
/// test split: sign-vowel's or sign-letter's, the same images).
pub fn real_recognisable_reference(
    data: &TaskData,
    letter_judge: &Judge,
    n: usize,
    seed: u64,
) -> Result<Recognisability> {
    require(data, &[Experiment::SignVowel, Experiment::SignLetter])?;
    recognisable_share(&super::real_as_samples(data, n, seed), letter_judge)
}

/// The measurement that fits `experiment`'s samples: upright letter confidence
/// for sign-rotation, the recognisable share for sign-vowel, None otherwise
/// (sign-letter's and K49's judges already judge the image's content).
pub fn for_samples(experiment: Experiment, samples: &Samples, letter_judge: &Judge) -> Result<Option<Recognisability>> {
    match experiment {
        Experiment::SignRotation => upright_letter_confidence(samples, letter_judge).map(Some),
        Experiment::SignVowel => recognisable_share(samples, letter_judge).map(Some),
        _ => Ok(None),
    }
}

/// The real test reference of [`for_samples`] for `data.experiment` (n images, seeded).
pub fn real_reference(data: &TaskData, letter_judge: &Judge, n: usize, seed: u64) -> Result<Option<Recognisability>> {
    match data.experiment {
        Experiment::SignRotation => real_rotated_reference(data, letter_judge, n, seed).map(Some),
        Experiment::SignVowel => real_recognisable_reference(data, letter_judge, n, seed).map(Some),
        _ => Ok(None),
    }
}

/// Each image rotated back by its label's quarter turns (label k: the image was
/// asked for, or made by, k·90° counter-clockwise; see `task.rs`'s rotations),
/// so that every image stands upright. Labels and styles are kept.
pub fn upright(samples: &Samples) -> Result<Samples> {
    let n = samples.len();
    if samples.images.dim() != (n, SIDE, SIDE) {
        return Err(Error::InvalidInput(format!("samples: images are {:?} for {n} labels", samples.images.shape())));
    }
    let mut pixels = Vec::with_capacity(n * PIXELS);
    for (i, &k) in samples.labels.iter().enumerate() {
        if !(0..4).contains(&k) {
            return Err(Error::InvalidInput(format!("rotation label {k} outside 0..3")));
        }
        let image: Vec<u8> = samples.images.index_axis(ndarray::Axis(0), i).iter().copied().collect();
        // k counter-clockwise quarter turns are undone by 4 − k more.
        pixels.extend_from_slice(&rot90(&image, (4 - k as usize) % 4));
    }
    Ok(Samples {
        images: ndarray::Array3::from_shape_vec((n, SIDE, SIDE), pixels).expect("n·784 pixels"),
        labels: samples.labels.clone(),
        styles: samples.styles.clone(),
    })
}

/// Top-1 probability, entropy and recognisable share of the letter judge on `samples`' images.
fn letter_recognisability(samples: &Samples, letter_judge: &Judge) -> Result<Recognisability> {
    if letter_judge.meta.kind != JudgeKind::SignLetter {
        return Err(Error::InvalidInput(format!("needs the sign-letter judge, not {}", letter_judge.meta.kind.name())));
    }
    if samples.is_empty() {
        return Err(Error::InvalidInput("no images to judge".into()));
    }
    let probs = letter_judge.judge(samples.images.view()).probs.to_kind(Kind::Double);
    let top1 = probs.max_dim(1, false).0;
    let entropy = -(&probs * probs.clamp_min(1e-30).log()).sum_dim_intlist(1, false, Kind::Double);
    let recognisable = top1.ge(RECOGNISABLE_TOP1).to_kind(Kind::Double);
    let values = |t: &Tensor| Vec::<f64>::try_from(t.to_device(tch::Device::Cpu));
    let (top1, entropy, recognisable) = (values(&top1)?, values(&entropy)?, values(&recognisable)?);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let interval = |v: &[f64], seed: u64| {
        intervals::bootstrap_statistic(v.len(), intervals::RESAMPLES, seed, |w| intervals::weighted_average(v, w))
    };
    Ok(Recognisability {
        images: samples.len(),
        mean_top1: mean(&top1),
        mean_entropy: mean(&entropy),
        recognisable_share: mean(&recognisable),
        intervals: Some([interval(&top1, 1), interval(&entropy, 2), interval(&recognisable, 3)]),
    })
}

fn require(data: &TaskData, experiments: &[Experiment]) -> Result<()> {
    if experiments.contains(&data.experiment) {
        Ok(())
    } else {
        let names: Vec<&str> = experiments.iter().map(|e| e.name()).collect();
        Err(Error::InvalidInput(format!("needs {} data, not {}", names.join(" or "), data.experiment)))
    }
}
