//! The benchmark report as markdown.

use std::fmt::Write;

use crate::plan::BenchModel;
use crate::results::{BenchReport, ModelResult, RateUnit, MEMORY_TARGET_MB, PIPELINE_SHARE_TARGET, SGEMM_SHARE_TARGET};

/// 1234567.8 → "1,234,568"
fn fmt_int(x: f64) -> String {
    if !x.is_finite() {
        return "n/a".into();
    }
    condgen::model::fmt_count(x.round() as i64)
}

/// A rate with sensible precision: 12,345 / 84.9 / 0.331
fn fmt_rate(x: f64) -> String {
    if !x.is_finite() {
        "n/a".into()
    } else if x >= 1000.0 {
        fmt_int(x)
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.3}")
    }
}

/// Seconds as "42 s", "3.5 min" or "1.2 h".
pub(crate) fn fmt_duration(s: f64) -> String {
    if !s.is_finite() {
        "n/a".into()
    } else if s < 120.0 {
        format!("{s:.0} s")
    } else if s < 7200.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

/// Milliseconds with three significant-ish digits.
fn fmt_ms(s: f64) -> String {
    let ms = s * 1e3;
    if ms >= 100.0 {
        format!("{ms:.0}")
    } else if ms >= 10.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.2}")
    }
}

fn fmt_met(m: Option<bool>) -> &'static str {
    match m {
        Some(true) => "met",
        Some(false) => "**not met**",
        None => "n/a",
    }
}

fn unit_text(u: RateUnit) -> &'static str {
    match u {
        RateUnit::ImagesPerSecond => "images/s",
        RateUnit::StepsPerSecond => "steps/s",
    }
}

/// "min–max" of per-repeat step times, ms.
fn spread(v: &[f64]) -> String {
    let lo = v.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if v.len() < 2 {
        String::new()
    } else {
        format!(" ({}–{})", fmt_ms(lo), fmt_ms(hi))
    }
}

fn model_label(r: &ModelResult) -> String {
    let what = match r.model {
        BenchModel::MlpCvae => "MLP CVAE 784-144-20",
        BenchModel::MlpCgan => "MLP CGAN, 1 D + 1 G step",
        BenchModel::ConvCvae => "conv CVAE",
    };
    format!("{what}, batch {}", r.batch_size)
}

impl BenchReport {
    /// Markdown: a table per measurement (model | condgen | PyTorch | ratio |
    /// target | met?, SGEMM, FLOP/s, pipeline share, memory, 50-epoch
    /// extrapolations, per-step overhead), the targets, and the machine.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        self.write_header(&mut s);
        self.write_step_rates(&mut s);
        self.write_step_times(&mut s);
        self.write_overhead(&mut s);
        self.write_sgemm(&mut s);
        self.write_conv_flops(&mut s);
        self.write_pipeline(&mut s);
        self.write_memory(&mut s);
        self.write_extrapolations(&mut s);
        self.write_cross_check(&mut s);
        self.write_targets(&mut s);
        self.write_machine(&mut s);
        s
    }

    /// Title, how the figures were taken, and why the reference is missing if it is.
    fn write_header(&self, s: &mut String) {
        let p = &self.plan;
        let _ = writeln!(s, "# condgen vs PyTorch: training-step benchmark\n");
        let _ = writeln!(
            s,
            "Medians over {} repeat(s); a repeat times {} consecutive training steps of the MLP models ({} untimed \
             warm-up steps first) or {} of the conv CVAE ({} warm-up). Both sides: {} intra-op thread(s), the same \
             libtorch, random batches of K49 shape, Adam lr 1e-3.{}\n",
            p.repeats,
            p.mlp_steps,
            p.mlp_warmup,
            p.conv_steps,
            p.conv_warmup,
            p.threads,
            if p.quick { " **Quick (smoke) run: figures are indicative only.**" } else { "" }
        );
        if let Some(e) = &self.reference_error {
            let _ = writeln!(s, "**PyTorch reference unavailable (in whole or in part):** {e}\n");
        }
    }

    /// "Training steps": each model's rate on both sides against its target.
    fn write_step_rates(&self, s: &mut String) {
        let _ = writeln!(s, "## Training steps\n");
        let _ = writeln!(s, "| model | unit | condgen | PyTorch | ratio | target | met? |");
        let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---|");
        for r in &self.models {
            let u = r.rate_unit;
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} |",
                model_label(r),
                unit_text(u),
                fmt_rate(r.condgen.rate(u)),
                r.pytorch.as_ref().map_or("n/a".into(), |t| fmt_rate(t.rate(u))),
                r.ratio.map_or("n/a".into(), |x| format!("{x:.2}×")),
                r.target_ratio.map_or(String::new(), |t| format!("≥ {t:.1}×")),
                fmt_met(r.met)
            );
        }
    }

    /// Step times and GFLOP/s of every case, the sweep's included.
    fn write_step_times(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "\nStep times, ms: median (fastest–slowest repeat); GFLOP/s from the analytic FLOPs of a step \
             (weighted layers, forward + backward, as PyTorch's FlopCounterMode counts them).\n"
        );
        let _ = writeln!(
            s,
            "| model | condgen ms/step | PyTorch ms/step | condgen images/s | PyTorch images/s | MFLOP/image | condgen GFLOP/s | PyTorch GFLOP/s |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|");
        for r in self.models.iter().chain(&self.sweep) {
            let _ = writeln!(
                s,
                "| {} | {}{} | {} | {} | {} | {:.2} | {:.1} | {} |",
                model_label(r),
                fmt_ms(r.condgen.median_step_seconds),
                spread(&r.condgen.step_seconds),
                r.pytorch.as_ref().map_or("n/a".into(), |t| format!(
                    "{}{}",
                    fmt_ms(t.median_step_seconds),
                    spread(&t.step_seconds)
                )),
                fmt_int(r.condgen.images_per_second),
                r.pytorch.as_ref().map_or("n/a".into(), |t| fmt_int(t.images_per_second)),
                r.flops_per_image / 1e6,
                r.condgen_gflops,
                r.pytorch_gflops.map_or("n/a".into(), |g| format!("{g:.1}")),
            );
        }
    }

    /// "Per-step overhead": the fitted fixed and per-image costs, and the ratio by batch size (with a sweep only).
    fn write_overhead(&self, s: &mut String) {
        if self.sweep.is_empty() {
            return;
        }
        let _ = writeln!(s, "\n## Per-step overhead (batch-size sweep)\n");
        let _ = writeln!(
            s,
            "Step time fitted as fixed + per-image × batch (least squares over the batch sizes listed). The fixed \
             part is what does not shrink with the batch: op dispatch, autograd bookkeeping, the optimiser's \
             per-parameter work, allocation.\n"
        );
        let _ = writeln!(s, "| model | side | batch sizes | fixed ms/step | µs/image |");
        let _ = writeln!(s, "|---|---|---|---:|---:|");
        for f in &self.overhead_fits {
            let sizes: Vec<String> = f.batch_sizes.iter().map(|b| b.to_string()).collect();
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.2} | {:.1} |",
                f.model.title(),
                f.side,
                sizes.join(", "),
                f.fixed_ms,
                f.per_image_us
            );
        }
        let _ = writeln!(s, "\n| model | condgen ms/step | PyTorch ms/step | ratio (PyTorch / condgen time) |");
        let _ = writeln!(s, "|---|---:|---:|---:|");
        let mut rows: Vec<&ModelResult> = self.models.iter().filter(|r| r.model != BenchModel::ConvCvae).collect();
        rows.extend(&self.sweep);
        rows.sort_by_key(|r| (r.model.id(), r.batch_size));
        for r in rows {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                model_label(r),
                fmt_ms(r.condgen.median_step_seconds),
                r.pytorch.as_ref().map_or("n/a".into(), |t| fmt_ms(t.median_step_seconds)),
                r.ratio.map_or("n/a".into(), |x| format!("{x:.2}×"))
            );
        }
    }

    /// "SGEMM": at the start of the run and between the conv CVAE's repeats.
    fn write_sgemm(&self, s: &mut String) {
        let g = &self.sgemm;
        let _ = writeln!(s, "\n## SGEMM ({0}×{0} f32, 2·n³ FLOP per product)\n", g.size);
        let _ = writeln!(
            s,
            "Medians of repeats alternating between the sides: at the start of the run, and between the \
             repeats of each conv CVAE case (the yardstick of its FLOP/s, under the same load).\n"
        );
        let _ =
            writeln!(s, "| when | condgen (tch `matmul`) GFLOP/s | PyTorch (`torch.matmul`) GFLOP/s | numpy GFLOP/s |");
        let _ = writeln!(s, "|---|---:|---:|---:|");
        let _ = writeln!(
            s,
            "| start of run | {:.1} | {} | {} |",
            g.condgen_gflops,
            g.torch_gflops.map_or("n/a".into(), |x| format!("{x:.1}")),
            g.numpy_gflops.map_or("n/a (numpy not installed)".into(), |x| format!("{x:.1}"))
        );
        for row in &self.conv_flops.rows {
            let _ = writeln!(
                s,
                "| between conv CVAE batch {} repeats | {:.1} | {} | |",
                row.batch_size,
                row.sgemm_condgen_gflops,
                row.sgemm_torch_gflops.map_or("n/a".into(), |x| format!("{x:.1}"))
            );
        }
    }

    /// "Conv CVAE achieved FLOP/s": each side against its own SGEMM.
    fn write_conv_flops(&self, s: &mut String) {
        let c = &self.conv_flops;
        let _ = writeln!(
            s,
            "\n### Conv CVAE achieved FLOP/s\n\nCounted analytically: {:.1} M forward MACs per image (convolutions, \
             transposed convolutions, dense layers); a training step ≈ 3 × forward × 2 FLOP/MAC, less the first \
             convolution's input gradient that libtorch skips = {:.1} MFLOP per image (PyTorch's FlopCounterMode \
             counts the same). Each side is put against its own SGEMM, measured between the case's repeats.\n",
            c.forward_macs_per_image as f64 / 1e6,
            c.train_flops_per_image / 1e6
        );
        let _ = writeln!(
            s,
            "| batch | condgen GFLOP/s | its SGEMM | % | PyTorch GFLOP/s | its SGEMM | % | target | met? |"
        );
        let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        for row in &c.rows {
            let _ = writeln!(
                s,
                "| {} | {:.1} | {:.1} | {:.0}% | {} | {} | {} | ≥ 50% | {} |",
                row.batch_size,
                row.condgen_gflops,
                row.sgemm_condgen_gflops,
                100.0 * row.condgen_share_of_sgemm,
                row.pytorch_gflops.map_or("n/a".into(), |x| format!("{x:.1}")),
                row.sgemm_torch_gflops.map_or("n/a".into(), |x| format!("{x:.1}")),
                row.pytorch_share_of_sgemm.map_or("n/a".into(), |x| format!("{:.0}%", 100.0 * x)),
                fmt_met(Some(row.condgen_share_of_sgemm >= SGEMM_SHARE_TARGET))
            );
        }
    }

    /// "Data pipeline": the Batcher's time per batch against a step.
    fn write_pipeline(&self, s: &mut String) {
        let _ = writeln!(s, "\n## Data pipeline\n");
        let _ = writeln!(
            s,
            "`condgen::data::Batcher` walking a synthetic split of K49 shape (one shuffled epoch per repeat, \
             new Batcher each time as the training loops do), time per batch against condgen's median step.\n"
        );
        let _ =
            writeln!(s, "| model | batch | images | batches | Batcher ms/batch | step ms | share | target | met? |");
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---|");
        for q in &self.pipeline {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {:.3} | {} | {:.2}% | ≤ 5% | {} |",
                q.model.title(),
                q.batch_size,
                fmt_int(q.images as f64),
                fmt_int(q.batches as f64),
                q.seconds_per_batch * 1e3,
                fmt_ms(q.step_seconds),
                100.0 * q.share,
                fmt_met(Some(q.share <= PIPELINE_SHARE_TARGET))
            );
        }
    }

    /// "Peak memory": the child training run and this process.
    fn write_memory(&self, s: &mut String) {
        let m = &self.memory;
        let _ = writeln!(s, "\n## Peak memory\n");
        let _ = writeln!(s, "| run | peak RSS | target | met? |");
        let _ = writeln!(s, "|---|---:|---:|---|");
        let _ = writeln!(
            s,
            "| K49 MLP CVAE training, 1 epoch (child process) | {} | ≤ 1,500 MB | {} |",
            m.peak_rss_mb.map_or(format!("n/a ({})", m.status), |x| format!("{} MB", fmt_int(x))),
            fmt_met(m.peak_rss_mb.map(|x| x <= MEMORY_TARGET_MB))
        );
        if let Some(x) = self.bench_peak_rss_mb {
            let _ =
                writeln!(s, "| this benchmark process (all models, conv CVAE at batch 256) | {} MB | | |", fmt_int(x));
        }
        if let Some(cmd) = &m.command {
            let _ = writeln!(
                s,
                "\nCommand: `{cmd}`. Peak: VmHWM of /proc/<pid>/status polled every 20 ms{}.",
                m.ru_maxrss_mb.map_or(String::new(), |x| format!(
                    " (wait4's ru_maxrss says {} MB, an upper bound: a child spawned with CLONE_VM inherits \
                     the parent's high-water mark at exec)",
                    fmt_int(x)
                ))
            );
        }
        if let Some(d) = &m.data_source {
            let _ = writeln!(
                s,
                "Data of the child run: {d}; {} train images.",
                m.train_images.map_or("?".into(), |n| fmt_int(n as f64))
            );
        }
        if let (Some(w), Some(t)) = (m.wall_seconds, m.train_seconds) {
            let _ = writeln!(
                s,
                "Child run: {} wall in all (loading, training, test loss, checkpoint), of which {} in the training loop.",
                fmt_duration(w),
                fmt_duration(t)
            );
        }
        if let Some(msg) = &m.message {
            let _ = writeln!(s, "\nMemory run {}: {}", m.status, msg.replace('\n', "\n    "));
        }
    }

    /// "50 K49 epochs, extrapolated": the method and a row per model.
    fn write_extrapolations(&self, s: &mut String) {
        let p = &self.plan;
        let _ = writeln!(s, "\n## {} K49 epochs, extrapolated\n", self.extrapolations.first().map_or(50, |e| e.epochs));
        let _ = writeln!(
            s,
            "Per epoch: steps × (condgen's median step + the Batcher's time per batch), plus for the CVAE the \
             test-loss evaluation the training loop runs after every epoch (`cvae_test_loss` timed on {} synthetic \
             test images, scaled to {}). Not included: checkpoints and snapshots (a few MB per epoch) and data loading \
             (once per run). Steps per epoch: ceil(images / batch) for the CVAE, floor for the CGAN (drop_last). \
             Floor: the same steps' FLOPs at the best SGEMM rate of this run ({:.1} GFLOP/s), a bound no \
             implementation beats on this machine.\n",
            fmt_int(self.eval.images as f64),
            fmt_int(p.test_images as f64),
            self.extrapolations.first().map_or(f64::NAN, |e| e.floor_sgemm_gflops)
        );
        let _ = writeln!(
            s,
            "| model | images | batch | steps/epoch | step ms | Batcher ms | eval s/epoch | epoch | total | floor | target | met? |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        for e in &self.extrapolations {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {:.3} | {:.1} | {} | {} | {} | ≤ {} | {} |",
                e.model.title(),
                fmt_int(e.images as f64),
                e.batch_size,
                fmt_int(e.steps_per_epoch as f64),
                fmt_ms(e.step_seconds),
                e.pipeline_seconds * 1e3,
                e.eval_seconds,
                fmt_duration(e.epoch_seconds),
                fmt_duration(e.total_seconds),
                fmt_duration(e.compute_floor_seconds),
                fmt_duration(e.target_seconds),
                fmt_met(Some(e.met))
            );
        }
    }

    /// The child run's measured training loop against the extrapolation's, when both exist.
    fn write_cross_check(&self, s: &mut String) {
        let m = &self.memory;
        if let (Some(t), Some(cvae)) =
            (m.train_seconds, self.extrapolations.iter().find(|e| e.model == BenchModel::MlpCvae))
        {
            let loop_estimate = cvae.steps_per_epoch as f64 * (cvae.step_seconds + cvae.pipeline_seconds);
            let _ = writeln!(
                s,
                "\nCross-check: the child run's measured training loop took {} for one epoch of {} images; the \
                 extrapolation's training-loop part is {} for {} images.",
                fmt_duration(t),
                m.train_images.map_or("?".into(), |n| fmt_int(n as f64)),
                fmt_duration(loop_estimate),
                fmt_int(cvae.images as f64)
            );
        }
    }

    /// "Targets": met or not, and where the misses are explained.
    fn write_targets(&self, s: &mut String) {
        let _ = writeln!(s, "\n## Targets\n");
        let _ = writeln!(s, "| target | measured | threshold | met? |");
        let _ = writeln!(s, "|---|---:|---:|---|");
        for t in &self.targets {
            let _ = writeln!(s, "| {} | {} | {} | {} |", t.name, t.measured, t.threshold, fmt_met(t.met));
        }
        // The why of missed targets needs profiling and prose, so it lives in a
        // hand-written file beside this generated one.
        let _ = writeln!(
            s,
            "\nWhy targets are missed, what was tried and what it changed: [benchmark-findings.md](benchmark-findings.md) \
             (hand-written)."
        );
    }

    /// "Machine": hardware, versions, load and wall time.
    fn write_machine(&self, s: &mut String) {
        let h = &self.machine;
        let _ = writeln!(s, "\n## Machine\n");
        let _ = writeln!(s, "| | |");
        let _ = writeln!(s, "|---|---|");
        let _ = writeln!(s, "| CPU | {} |", h.cpu_model);
        let _ = writeln!(s, "| logical cores | {} |", h.logical_cores);
        let _ = writeln!(s, "| threads (both sides) | {} |", h.threads);
        let _ = writeln!(s, "| torch (reference) | {} |", h.torch_version.as_deref().unwrap_or("n/a"));
        let _ = writeln!(s, "| python | {} |", h.python_version.as_deref().unwrap_or("n/a"));
        let _ = writeln!(s, "| numpy | {} |", h.numpy_version.as_deref().unwrap_or("not installed"));
        let _ =
            writeln!(s, "| libtorch (condgen) | {} |", h.libtorch.as_deref().unwrap_or("as linked (LIBTORCH not set)"));
        let _ = writeln!(s, "| condgen | {} ({} build) |", h.condgen_version, h.build);
        let _ = writeln!(
            s,
            "| load average (1/5/15 min) | start {}, end {} |",
            h.load_average_start.as_deref().unwrap_or("?"),
            h.load_average_end.as_deref().unwrap_or("?")
        );
        let _ = writeln!(s, "| benchmark wall time | {} |", fmt_duration(self.seconds));
    }
}
