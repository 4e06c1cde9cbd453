//! The judge's verdict on the fixed-noise snapshots a run saved during training.

use ndarray::Array3;

use crate::data::SIDE;
use crate::eval::metrics::{condition_probs, conditional_accuracy};
use crate::eval::Judge;
use crate::sample::TrainedModel;
use crate::Result;

/// The judge's accuracy on each saved snapshot, for curves over epochs.
pub fn snapshot_accuracy(model: &TrainedModel, judge: &Judge) -> Result<Vec<(f64, f64)>> {
    let mut points = Vec::new();
    for &e in &model.config.snapshot_epochs {
        let path = model.run.snapshot_path(e);
        if !path.is_file() {
            continue;
        }
        let snap = crate::data::npz::read_u8(&path, "images")?;
        let (classes, _) = model.spec.all_conditions();
        let per = model.config.snapshot_per_condition;
        let labels: Vec<i64> = classes.iter().flat_map(|&c| std::iter::repeat_n(c as i64, per)).collect();
        let images = Array3::from_shape_vec((snap.shape.first().copied().unwrap_or(0), SIDE, SIDE), snap.data)
            .map_err(|e| crate::Error::npz(&path, "images", format!("not [n, 28, 28]: {e}")))?;
        let probs = condition_probs(model.experiment(), &judge.judge(images.view()).probs);
        let acc = conditional_accuracy(&probs, &labels)?;
        points.push((e as f64, 100.0 * acc.overall));
    }
    Ok(points)
}
