//! Statistics of the timings: medians, per-step overhead fits, FLOP/s shares, extrapolated epochs.

use condgen::model::flops::conv_cvae_train_flops_per_image;
use condgen::model::ConvCvaeConfig;

use crate::plan::{BenchModel, Plan};
use crate::results::{ConvFlops, ConvFlopsRow, EvalResult, Extrapolation, ModelResult, OverheadFit, PipelineResult};

/// Least-squares fixed + per-image cost per side over the main case and the sweep.
pub fn overhead_fits(models: &[ModelResult], sweep: &[ModelResult]) -> Vec<OverheadFit> {
    let mut fits = Vec::new();
    for model in [BenchModel::MlpCvae, BenchModel::MlpCgan] {
        let rows: Vec<&ModelResult> = models.iter().chain(sweep).filter(|r| r.model == model).collect();
        let mut batch_sizes: Vec<usize> = rows.iter().map(|r| r.batch_size).collect();
        batch_sizes.sort_unstable();
        if batch_sizes.len() < 2 {
            continue;
        }
        let ours: Vec<(f64, f64)> = rows.iter().map(|r| (r.batch_size as f64, r.condgen.median_step_seconds)).collect();
        let theirs: Option<Vec<(f64, f64)>> =
            rows.iter().map(|r| r.pytorch.as_ref().map(|p| (r.batch_size as f64, p.median_step_seconds))).collect();
        for (side, points) in [("condgen", Some(ours)), ("PyTorch", theirs)] {
            if let Some((a, b)) = points.and_then(|p| linear_fit(&p)) {
                fits.push(OverheadFit {
                    model,
                    side: side.to_string(),
                    fixed_ms: a * 1e3,
                    per_image_us: b * 1e6,
                    batch_sizes: batch_sizes.clone(),
                });
            }
        }
    }
    fits
}

/// y ≈ a + b·x by least squares: Some((a, b)) with two or more distinct x.
pub fn linear_fit(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| {
        let b = sxy / sxx;
        (my - b * mx, b)
    })
}

pub fn conv_flops(models: &[ModelResult], conv_sgemm: &[(usize, Vec<f64>, Vec<f64>)]) -> ConvFlops {
    let cfg = ConvCvaeConfig::default();
    let cond = BenchModel::ConvCvae.condition().dim() as i64;
    let rows = models
        .iter()
        .filter(|r| r.model == BenchModel::ConvCvae)
        .map(|r| {
            let (ours_sg, theirs_sg) = conv_sgemm
                .iter()
                .find(|(b, _, _)| *b == r.batch_size)
                .map(|(_, o, t)| (median(o), (!t.is_empty()).then(|| median(t))))
                .unwrap_or((f64::NAN, None));
            ConvFlopsRow {
                batch_size: r.batch_size,
                condgen_gflops: r.condgen_gflops,
                sgemm_condgen_gflops: ours_sg,
                condgen_share_of_sgemm: r.condgen_gflops / ours_sg,
                pytorch_gflops: r.pytorch_gflops,
                sgemm_torch_gflops: theirs_sg,
                pytorch_share_of_sgemm: r.pytorch_gflops.zip(theirs_sg).map(|(g, s)| g / s),
            }
        })
        .collect();
    ConvFlops {
        forward_macs_per_image: cfg.forward_macs(cond) as i64,
        train_flops_per_image: conv_cvae_train_flops_per_image(&cfg, cond),
        rows,
    }
}

/// 50 K49 epochs: steps per epoch × (median step + Batcher per batch) + the CVAE's test evaluation.
pub fn extrapolate(
    plan: &Plan,
    models: &[ModelResult],
    pipeline: &[PipelineResult],
    eval: &EvalResult,
    sgemm_gflops: f64,
) -> Vec<Extrapolation> {
    let mut rows = Vec::new();
    for (model, batch, target_minutes) in [(BenchModel::MlpCvae, 128usize, 4.0), (BenchModel::MlpCgan, 32, 15.0)] {
        let Some(step) = models.iter().find(|r| r.model == model && r.batch_size == batch) else { continue };
        let pipe = pipeline.iter().find(|p| p.model == model).map_or(0.0, |p| p.seconds_per_batch);
        let (steps_per_epoch, eval_seconds) = match model {
            BenchModel::MlpCgan => (plan.train_images / batch, 0.0), // drop_last
            _ => (plan.train_images.div_ceil(batch), eval.seconds_per_epoch),
        };
        let step_seconds = step.condgen.median_step_seconds;
        let epoch_seconds = steps_per_epoch as f64 * (step_seconds + pipe) + eval_seconds;
        let total_seconds = epoch_seconds * plan.epochs as f64;
        let target_seconds = target_minutes * 60.0;
        let step_flops = step.flops_per_image * batch as f64;
        let compute_floor_seconds = steps_per_epoch as f64 * step_flops * plan.epochs as f64 / (sgemm_gflops * 1e9);
        rows.push(Extrapolation {
            model,
            batch_size: batch,
            images: plan.train_images,
            epochs: plan.epochs,
            steps_per_epoch,
            step_seconds,
            pipeline_seconds: pipe,
            eval_seconds,
            epoch_seconds,
            total_seconds,
            compute_floor_seconds,
            floor_sgemm_gflops: sgemm_gflops,
            target_seconds,
            met: total_seconds <= target_seconds,
        });
    }
    rows
}

pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}
