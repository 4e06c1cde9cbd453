//! Beyond the studies, per experiment: per-class accuracy, CVAE and CGAN on the
//! same conditions, and the judge's accuracy of the snapshots over epochs.

use crate::eval;
use crate::figures;
use crate::model::ModelKind;
use crate::plot::{self, Figure};
use crate::sample::LatentSource;
use crate::task::Experiment;
use crate::Result;

use super::super::context::{Context, FigureWriter, Judges};
use super::super::runs::Runs;
use super::super::targets;

/// Writes the section.
pub fn write(fig: &mut FigureWriter, ctx: &Context, runs: &Runs, judges: &Judges) -> Result<()> {
    fig.md.push_str("\n## Beyond the studies\n\n");
    for exp in Experiment::ALL {
        let data = ctx.task(exp);
        let mut panels = Vec::new();
        for model in [ModelKind::Cvae, ModelKind::Cgan] {
            let r = runs.first(exp, model);
            let title = format!("{exp} {}: per-class judge accuracy, as drawn", model.name());
            panels.push((
                model.name(),
                figures::per_class_accuracy_chart(
                    data,
                    &r.metrics.as_trained().accuracy.per_class,
                    &title,
                    Some(targets::quality_bar(exp)),
                )?,
            ));
        }
        let refs: Vec<(&str, &Figure)> = panels.iter().map(|(n, f)| (*n, f)).collect();
        fig.add(
            &format!("{exp}-per-class-accuracy"),
            &format!("{exp}: per-class accuracy, CVAE | CGAN, as each model draws (the CVAE's z from the prior it was trained with)"),
            &plot::side_by_side(&refs)?,
        )?;
        // CVAE vs CGAN on the same conditions and noise seed.
        let conds: Vec<u8> = (0..data.spec.classes().min(10) as u8).collect();
        let mut grids = Vec::new();
        for model in [ModelKind::Cvae, ModelKind::Cgan] {
            let m = ctx.model(&runs.first(exp, model).run)?;
            grids.push((
                model.name(),
                figures::samples_grid(
                    &m.sampler(LatentSource::TrainedPrior)?,
                    data,
                    &conds,
                    6,
                    21,
                    Some(judges.of(exp)),
                    &format!("{exp} {}", model.name()),
                )?,
            ));
        }
        let refs: Vec<(&str, &Figure)> = grids.iter().map(|(n, f)| (*n, f)).collect();
        fig.add(
            &format!("{exp}-cvae-vs-cgan"),
            &format!("{exp}: CVAE | CGAN on the same conditions, as each model draws (the CVAE's z from the prior it was trained with)"),
            &plot::side_by_side(&refs)?,
        )?;
        // Judge accuracy of the fixed-noise snapshots over epochs.
        let mut series = Vec::new();
        for model in [ModelKind::Cvae, ModelKind::Cgan] {
            let m = ctx.model(&runs.first(exp, model).run)?;
            series.push(plot::Series::new(model.name(), eval::snapshot_accuracy(&m, judges.of(exp))?));
        }
        fig.add(
            &format!("{exp}-accuracy-over-epochs"),
            &format!("{exp}: judge accuracy of the fixed-noise snapshots over epochs (the CVAE's z from the prior it was trained with)"),
            &plot::line_chart(&format!("{exp}: snapshot accuracy"), "epoch", "judge accuracy (%)", &series)?,
        )?;
    }
    Ok(())
}
