//! Anomaly detection with a VAE, the sign study's example use of one: a VAE
//! reconstructs images like those it was trained on well and unfamiliar ones
//! badly, so its reconstruction error scores how unusual an image is. Scored
//! as a detector: the ROC curve and its area over normal and anomalous images.

use crate::data::Split;
use crate::model::Net;
use crate::sample::TrainedModel;
use crate::task::TaskData;
use crate::{Error, Result};

/// Images encoded and decoded at once.
const BATCH: usize = 512;

/// The anomaly score of each image: its reconstruction negative
/// log-likelihood under the model's likelihood, decoding the posterior mean
/// (nats; higher = less like the training data). The condition given is
/// each image's own label (a VAE's is held at zero whatever it is).
pub fn reconstruction_scores(model: &TrainedModel, split: &Split) -> Result<Vec<f64>> {
    let Net::Cvae(cvae) = &model.built.net else {
        return Err(Error::Unsupported("anomaly scores need a VAE or CVAE; a CGAN has no encoder".into()));
    };
    let device = model.built.vs.device();
    let mut scores = Vec::with_capacity(split.len());
    tch::no_grad(|| {
        for start in (0..split.len()).step_by(BATCH) {
            let part = split.slice(start, start + BATCH);
            let xs = TaskData::images_tensor(&part, device);
            let cond = model.spec.encode(&part.labels, part.styles.as_deref(), device);
            let (mean, _) = cvae.encode(&xs, &cond, false);
            let logits = cvae.decode(&mean, &cond, false);
            scores.extend(Vec::<f64>::try_from(
                model.built.likelihood.nll_each(&logits, &xs).to_kind(tch::Kind::Double),
            )?);
        }
        Ok::<_, Error>(())
    })?;
    Ok(scores)
}

/// Area under the ROC curve of scores where higher means anomalous: the
/// probability that a random anomalous image scores above a random normal
/// one, ties counting half (the Mann–Whitney U statistic over n·m). 0.5 is chance.
pub fn roc_auc(normal: &[f64], anomalous: &[f64]) -> f64 {
    if normal.is_empty() || anomalous.is_empty() {
        return f64::NAN;
    }
    // Rank all scores together (average ranks for ties), then U from the anomalous ranks.
    let mut all: Vec<(f64, bool)> =
        normal.iter().map(|&s| (s, false)).chain(anomalous.iter().map(|&s| (s, true))).collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j + 1 < all.len() && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let average_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += average_rank * all[i..=j].iter().filter(|x| x.1).count() as f64;
        i = j + 1;
    }
    let (n, m) = (normal.len() as f64, anomalous.len() as f64);
    (rank_sum - m * (m + 1.0) / 2.0) / (n * m)
}

/// The 95 % interval of a ROC AUC from its standard error under Hanley & McNeil (1982):
/// SE² = (A(1 − A) + (n₁ − 1)(Q₁ − A²) + (n₂ − 1)(Q₂ − A²)) / (n₁ n₂), Q₁ = A / (2 − A),
/// Q₂ = 2A² / (1 + A); A ± 1.96 SE, within [0, 1].
pub fn auc_interval(auc: f64, normal: usize, anomalous: usize) -> (f64, f64) {
    if normal == 0 || anomalous == 0 {
        return (0.0, 1.0);
    }
    let (a, n1, n2) = (auc, anomalous as f64, normal as f64);
    let (q1, q2) = (a / (2.0 - a), 2.0 * a * a / (1.0 + a));
    let variance = (a * (1.0 - a) + (n1 - 1.0) * (q1 - a * a) + (n2 - 1.0) * (q2 - a * a)) / (n1 * n2);
    let half = 1.96 * variance.max(0.0).sqrt();
    ((a - half).max(0.0), (a + half).min(1.0))
}

/// The ROC curve of scores where higher means anomalous: (false positive
/// rate, true positive rate) at every threshold, from (0, 0) to (1, 1).
pub fn roc_curve(normal: &[f64], anomalous: &[f64]) -> Vec<(f64, f64)> {
    let mut thresholds: Vec<f64> = normal.iter().chain(anomalous).copied().collect();
    thresholds.sort_by(|a, b| b.total_cmp(a));
    thresholds.dedup();
    let rate = |scores: &[f64], t: f64| scores.iter().filter(|&&s| s >= t).count() as f64 / scores.len().max(1) as f64;
    let mut curve = vec![(0.0, 0.0)];
    curve.extend(thresholds.iter().map(|&t| (rate(normal, t), rate(anomalous, t))));
    curve
}

/// One detection task: which images are normal, which anomalous, and how well the scores separate them.
#[derive(Clone, Debug)]
pub struct Detection {
    /// What is flagged, e.g. "held-out letters V W X Y".
    pub name: String,
    pub normal: Vec<f64>,
    pub anomalous: Vec<f64>,
}

impl Detection {
    pub fn auc(&self) -> f64 {
        roc_auc(&self.normal, &self.anomalous)
    }

    pub fn curve(&self) -> Vec<(f64, f64)> {
        roc_curve(&self.normal, &self.anomalous)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_auc_interval_follows_hanley_and_mcneil() {
        // A = 0.5 with 100 images a side: SE = √(0.001675) ≈ 0.0409.
        let (low, high) = auc_interval(0.5, 100, 100);
        assert!((low - 0.4198).abs() < 1e-3 && (high - 0.5802).abs() < 1e-3, "{low} {high}");
        assert_eq!(auc_interval(1.0, 50, 50).1, 1.0, "within [0, 1]");
        assert_eq!(auc_interval(0.7, 0, 10), (0.0, 1.0));
    }
}
