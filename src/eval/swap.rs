//! Does the condition steer a CVAE? The swap test: z drawn from the prior of
//! one condition, decoded under another, and judged. A decoder that follows
//! its condition draws the condition it was decoded under; one whose z carries
//! the class draws the condition z came from, whatever it is told.
//!
//! With z ~ N(0, I) the prior is the same for every condition, so the test is
//! plain conditional accuracy; it says something for priors that differ per
//! condition: a fitted prior, or a learned p(z | c).

use serde::{Deserialize, Serialize};
use tch::Device;

use super::{metrics, Judge};
use crate::sample::Sampler;
use crate::task::TaskData;
use crate::Result;

/// What the judge saw in swapped samples.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SwapTest {
    /// Images judged: every ordered pair of different classes, equally often.
    pub images: usize,
    /// Share judged as the condition they were decoded under (the condition steers).
    pub judged_as_decoded: f64,
    /// Share judged as the condition their z was drawn for (z carries the class).
    pub judged_as_latent: f64,
}

/// The swap test of `sampler` on `data`'s task with its judge: about `budget`
/// images over every ordered pair (a, b), a ≠ b, of the task's classes (style 0),
/// z from a's prior, decoded under b. Seeded.
pub fn swap_test(sampler: &Sampler, data: &TaskData, judge: &Judge, budget: usize, seed: u64) -> Result<SwapTest> {
    let classes = data.spec.classes() as u8;
    let pairs: Vec<(u8, u8)> =
        (0..classes).flat_map(|a| (0..classes).filter(move |&b| b != a).map(move |b| (a, b))).collect();
    let per_pair = budget.div_ceil(pairs.len().max(1)).max(1);
    let (latent, decoded): (Vec<u8>, Vec<u8>) =
        pairs.iter().flat_map(|&pair| std::iter::repeat_n(pair, per_pair)).unzip();
    let styles = vec![0u8; latent.len()];
    let samples = sampler.generate_swapped((&latent, &styles), (&decoded, &styles), seed)?;
    let probs = metrics::condition_probs(data.experiment, &judge.judge(samples.images.view()).probs);
    let predicted = Vec::<i64>::try_from(probs.argmax(1, false).to_device(Device::Cpu))?;
    let share = |targets: &[u8]| {
        predicted.iter().zip(targets).filter(|(&p, &t)| p == i64::from(t)).count() as f64
            / predicted.len().max(1) as f64
    };
    Ok(SwapTest { images: predicted.len(), judged_as_decoded: share(&decoded), judged_as_latent: share(&latent) })
}
