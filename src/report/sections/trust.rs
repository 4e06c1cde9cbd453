//! What accuracy cannot see, for the first seed's main runs: the fitted prior's
//! choice on validation codes, the CVAEs' held-out likelihood, the
//! Classification Accuracy Score, and whether rotation and vowel samples show
//! letters the letter judge recognises.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::eval::cas::{self, CasConfig, RealBaseline};
use crate::eval::recognisability::{self, Recognisability};
use crate::eval::{self, likelihood};
use crate::figures;
use crate::model::ModelKind;
use crate::sample::{LatentSource, Samples, TrainedModel};
use crate::task::Experiment;
use crate::train::Profile;
use crate::Result;

use super::super::context::{Context, FigureWriter, Judges};
use super::super::measures;
use super::super::runs::{RunResult, Runs};
use super::super::targets::CAS_RATIO_BAR;

/// Importance samples per image of the held-out likelihood (the quick profile: fewer).
const NLL_SAMPLES: [usize; 2] = [500, 32];
/// Test images the held-out likelihood is averaged over (the quick profile: fewer).
const NLL_IMAGES: [usize; 2] = [200, 32];

/// Writes the four tables and the nearest-train galleries.
pub fn write(fig: &mut FigureWriter, ctx: &Context, runs: &Runs, judges: &Judges) -> Result<()> {
    fig.md.push_str("\n## Beyond accuracy: the prior's choice, likelihood, CAS, recognisable letters, copies\n");
    write_prior_choice(fig.md, ctx, runs)?;
    write_likelihood(fig.md, ctx, runs)?;
    write_swap_test(fig.md, ctx, runs, judges)?;
    // Each main run's samples, drawn once for the three measures below.
    let drawn: Vec<(&RunResult, Samples)> =
        runs.main_first_seed().map(|r| Ok((r, as_trained_samples(ctx, r)?))).collect::<Result<_>>()?;
    write_cas(fig.md, ctx, &drawn)?;
    write_recognisability(fig.md, ctx, &drawn, judges)?;
    write_nearest_train(fig, ctx, &drawn, judges)
}

/// The first seed's main CVAE runs.
/// A CVAE's prior as the likelihood and swap-test rows name it.
fn prior_name(m: &TrainedModel, prior: LatentSource) -> &'static str {
    match prior {
        LatentSource::FittedPrior => "fitted",
        LatentSource::TrainedPrior if m.has_learned_prior() => "learned p(z | c)",
        LatentSource::TrainedPrior => "N(0, I)",
    }
}

fn cvaes(runs: &Runs) -> impl Iterator<Item = &RunResult> {
    runs.main_first_seed().filter(|r| r.model == ModelKind::Cvae)
}

/// A run's samples as the model draws them (a CVAE's z from the prior it was trained with), as the evaluation draws them.
fn as_trained_samples(ctx: &Context, r: &RunResult) -> Result<Samples> {
    let m = ctx.model(&r.run)?;
    let per_condition = ctx.eval_opts.per_condition(&ctx.task(r.experiment).spec);
    m.sampler(LatentSource::TrainedPrior)?.sample_all_conditions(per_condition, ctx.eval_opts.seed)
}

/// Each CVAE's fitted prior: the shape chosen on the validation images' codes, its size, and its overfit.
fn write_prior_choice(md: &mut String, ctx: &Context, runs: &Runs) -> Result<()> {
    md.push_str(
        "\n### The fitted prior, chosen on validation codes\n\nEvery shape (1 to 32 components per condition; full, \
         diagonal or tied covariances) is fitted to the posterior means of the training images and scored by the mean \
         log-density of the validation images' codes (nats per code, log p(z given c)); the best is kept. The gap between the two log-densities is the \
         prior's own overfit. Its parameters come on top of the network's, and its fitting time on top of training.\n\n\
         | run | network parameters | chosen prior | prior parameters | train log-density | validation log-density | gap | candidates | seconds |\n\
         |---|---|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in cvaes(runs) {
        let m = ctx.model_with_prior(&r.run, r.experiment)?;
        let Some(s) = m.prior_selection()? else { continue };
        let c = s.chosen();
        let _ = writeln!(
            md,
            "| {} {} | {} | {} × {} | {} | {:.1} | {:.1} | {:.1} | {} | {:.1} |",
            r.experiment,
            r.label(),
            r.parameters,
            c.components,
            c.covariance,
            c.parameters,
            c.train_log_density,
            c.held_out_log_density,
            c.overfit_gap(),
            s.candidates.len(),
            s.seconds
        );
    }
    Ok(())
}

/// Each CVAE's held-out negative log-likelihood by the importance-weighted bound,
/// under the prior it was trained with and under its fitted prior.
fn write_likelihood(md: &mut String, ctx: &Context, runs: &Runs) -> Result<()> {
    let quick = usize::from(ctx.opts.profile == Profile::Quick);
    let (k, n) = (NLL_SAMPLES[quick], NLL_IMAGES[quick]);
    let _ = writeln!(
        md,
        "\n### Held-out likelihood of the CVAEs\n\nThe importance-weighted bound (Burda et al. 2016) with K = {k} codes \
         per image on the first {n} test images: an upper bound on −log p(x | c) in nats per image and, under a \
         density likelihood (Gaussian), in bits per pixel of the 8-bit images, the pixels dequantised uniformly; the \
         interval is ± 1.96 standard errors over the images. Each CVAE twice: under the prior it was trained \
         with (N(0, I), or a learned p(z | c)), and under its fitted prior, the density its post-hoc samples come from (the same codes from the \
         encoder, weighed by that prior). Bits per pixel are the unit of published image likelihoods, but no \
         published figure exists for these data (Sign Language MNIST, and the K49 data named above); \
         binarised-MNIST nats are another data model. The Bernoulli likelihood is no density for grey pixels: its \
         nats compare only with other Bernoulli rows.\n\n\
         | run | likelihood | prior | −IWAE (nats) | 95 % interval | bits per pixel |\n|---|---|---|---:|---|---:|"
    );
    for r in cvaes(runs) {
        let m = ctx.model_with_prior(&r.run, r.experiment)?;
        let kind = m.built.likelihood.kind.name();
        for (prior, name) in [(LatentSource::TrainedPrior, "N(0, I)"), (LatentSource::FittedPrior, "fitted")] {
            let test = &ctx.task(r.experiment).test;
            let key = (measure_key(r), n, k, ctx.eval_opts.seed, prior);
            let nll = measures::cached(&r.run, &format!("likelihood-{}", slug(name)), &key, || {
                likelihood::negative_log_likelihood(&m, test, n, k, ctx.eval_opts.seed, prior)
            })?;
            let bits = nll.bits_per_dim.map_or("-".to_string(), |b| format!("{b:.3}"));
            let half = 1.96 * nll.standard_error;
            let _ = writeln!(
                md,
                "| {} {} | {kind} | {} | {:.1} | [{:.1}, {:.1}] | {bits} |",
                r.experiment,
                r.label(),
                crate::table::escape_cell(prior_name(&m, prior)),
                nll.nats,
                nll.nats - half,
                nll.nats + half
            );
        }
    }
    Ok(())
}

/// The swap test of every main CVAE: z from one condition's prior, decoded under another.
fn write_swap_test(md: &mut String, ctx: &Context, runs: &Runs, judges: &Judges) -> Result<()> {
    let n = ctx.opts.eval_samples;
    let _ = writeln!(
        md,
        "\n### Does the condition steer? The swap test\n\nAt least {n} images per row, every ordered pair of \
         different classes equally often: z drawn from the prior of class a, decoded under class b, judged. A decoder that follows \
         its condition draws b (\"judged as decoded\"); one whose z carries the class draws a (\"judged as z's \
         class\"). Under N(0, I) every class has the same prior, so the test is plain accuracy there (of style 0, for K49); it speaks for \
         a prior that differs per class (the fitted one, or a learned p(z | c)).\n\n\
         Intervals: Wilson 95 % over the images judged.\n\n\
         | run | z from | judged as decoded | judged as z's class |\n|---|---|---:|---:|"
    );
    let mut led_by_z = Vec::new();
    for r in cvaes(runs) {
        let m = ctx.model_with_prior(&r.run, r.experiment)?;
        let (data, judge) = (ctx.task(r.experiment), judges.of(r.experiment));
        for source in [LatentSource::TrainedPrior, LatentSource::FittedPrior] {
            let sampler = m.sampler(source)?;
            let key = (measure_key(r), judge.meta.test_accuracy, n, ctx.eval_opts.seed, sampler.caption());
            let swap = measures::cached(&r.run, &format!("swap-test-{source:?}").to_lowercase(), &key, || {
                eval::swap::swap_test(&sampler, data, judge, n, ctx.eval_opts.seed)
            })?;
            let share = |p: f64| {
                let (low, high) = crate::stats::wilson_interval(p, swap.images);
                format!("{:.1} [{:.1}, {:.1}] %", 100.0 * p, 100.0 * low, 100.0 * high)
            };
            let _ = writeln!(
                md,
                "| {} {} | {} | {} | {} |",
                r.experiment,
                r.label(),
                crate::table::escape_cell(&sampler.caption()),
                share(swap.judged_as_decoded),
                share(swap.judged_as_latent)
            );
            // z's class wins when the two Wilson intervals do not overlap.
            let prior_per_class = source == LatentSource::FittedPrior || m.has_learned_prior();
            let (latent_low, _) = crate::stats::wilson_interval(swap.judged_as_latent, swap.images);
            let (_, decoded_high) = crate::stats::wilson_interval(swap.judged_as_decoded, swap.images);
            if prior_per_class && latent_low > decoded_high {
                led_by_z.push(format!("{} {} ({})", r.experiment, r.label(), prior_name(&m, source)));
            }
        }
    }
    if !led_by_z.is_empty() {
        let _ = writeln!(
            md,
            "\nWhere z's prior differs per class, z's class wins over the condition decoded (their intervals apart) for: {}. These decoders \
             follow their codes more than their condition, so their accuracy under that prior comes from where z is \
             drawn, not from the condition.",
            led_by_z.join(", ")
        );
    }
    Ok(())
}

/// Classification Accuracy Score of every main run's samples beside the same classifier trained on real images.
fn write_cas(md: &mut String, ctx: &Context, drawn: &[(&RunResult, Samples)]) -> Result<()> {
    let cfg = match ctx.opts.profile {
        Profile::Quick => CasConfig { epochs: 2, test_images: Some(1_000), ..CasConfig::default() },
        _ => CasConfig::default(),
    };
    let _ = writeln!(
        md,
        "\n### Classification Accuracy Score\n\nA classifier (the judges' network, {} epochs of {}-image batches) trained \
         only on a run's samples as drawn (a CVAE's z from the prior it was trained with), tested on {} real test images; beside it the same \
         classifier trained on as many real train images per class (Ravuri & Vinyals 2019). Intervals: bootstrap \
         95 % over the test images, both classifiers scored on each resample. Balanced: the mean of the \
         per-class accuracies (the vowel test split is 77 % consonants). The bar is the same for every \
         generator held to bars (the study models are not): a balanced ratio of at least {CAS_RATIO_BAR:.2} (balanced, so that a task whose test split is \
         mostly one class cannot pass on that class alone).\n\n\
         | run | CAS, samples-trained | real-trained | ratio | balanced ratio | balanced ratio ≥ {CAS_RATIO_BAR:.2} |\n\
         |---|---:|---:|---:|---:|---|",
        cfg.epochs,
        cfg.batch_size,
        cfg.test_images.map_or("all".to_string(), |n| n.to_string())
    );
    let mut baselines: HashMap<Experiment, RealBaseline> = HashMap::new();
    for (r, samples) in drawn {
        let data = ctx.task(r.experiment);
        let key = (measure_key(r), &cfg, samples.len(), ctx.eval_opts.seed);
        // The real baseline is trained only when a run's score is not stored.
        let score = measures::cached(&r.run, "cas", &key, || {
            let baseline = match baselines.entry(r.experiment) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let counts = cas::samples_split(samples, data.spec.classes())?.class_counts(data.spec.classes());
                    e.insert(cas::real_baseline(data, &counts, &cfg, ctx.opts.device)?)
                }
            };
            cas::score_against(samples, data, baseline, ctx.opts.device)
        })?;
        let met = match (r.is_study_model(), score.balanced_ratio() >= CAS_RATIO_BAR) {
            (true, _) => "-",
            (false, true) => "yes",
            (false, false) => "**no**",
        };
        let _ = writeln!(
            md,
            "| {} {} | {} | {:.3} | {} | {:.2} | {met} |",
            r.experiment,
            r.label(),
            shown(score.samples_trained, score.samples_trained_interval, 3),
            score.real_trained,
            shown(score.ratio, score.ratio_interval, 2),
            score.balanced_ratio()
        );
    }
    Ok(())
}

/// The letter judge on rotation samples turned upright and on vowel samples, beside real test images.
fn write_recognisability(
    md: &mut String,
    ctx: &Context,
    drawn: &[(&RunResult, Samples)],
    judges: &Judges,
) -> Result<()> {
    md.push_str(
        "\n### Letters the letter judge recognises where the condition judge cannot tell\n\nThe rotation judge sees \
         only orientation and the vowel task pools 19 consonants, so a blob can pass them. Here the letter judge \
         reads rotation samples turned upright by the angle asked for, and vowel samples as they are: the mean \
         probability of its top letter, the entropy of its 24-letter distribution, and the share of samples whose top \
         letter has probability ≥ 0.5; real test images measured the same way above each task's runs. Intervals: bootstrap 95 % \
         over the images.\n\n\
         | images | mean top-1 | entropy (nats) | recognisable share |\n|---|---:|---:|---:|\n",
    );
    let letter_judge = judges.of(Experiment::SignLetter);
    let row = |md: &mut String, name: &str, r: &Recognisability| {
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {} % |",
            shown(r.mean_top1, r.intervals.map(|i| i[0]), 3),
            shown(r.mean_entropy, r.intervals.map(|i| i[1]), 2),
            shown(100.0 * r.recognisable_share, r.intervals.map(|i| i[2].scaled(100.0)), 1)
        );
    };
    for exp in [Experiment::SignVowel, Experiment::SignRotation] {
        let data = ctx.task(exp);
        let n = ctx.opts.eval_samples;
        if let Some(real) = recognisability::real_reference(data, letter_judge, n, ctx.eval_opts.seed)? {
            row(md, &format!("{exp}: real test images"), &real);
        }
        for (r, samples) in drawn.iter().filter(|(r, _)| r.experiment == exp) {
            if let Some(measured) = recognisability::for_samples(exp, samples, letter_judge)? {
                row(md, &format!("{exp} {}", r.label()), &measured);
            }
        }
    }
    Ok(())
}

/// Samples of each gallery, and the train images searched for their nearest neighbours.
const GALLERY_SAMPLES: usize = 20;
const GALLERY_TRAIN_IMAGES: usize = 5_000;

/// Every main run's samples as drawn, each beside its nearest train image in the judge's feature space.
fn write_nearest_train(
    fig: &mut FigureWriter,
    ctx: &Context,
    drawn: &[(&RunResult, Samples)],
    judges: &Judges,
) -> Result<()> {
    let _ = writeln!(
        fig.md,
        "\n### Nearest train images\n\n{GALLERY_SAMPLES} samples of each run as drawn (a CVAE's z from the prior it was trained with), spread \
         over its conditions, each beside its nearest image among {GALLERY_TRAIN_IMAGES} train images in the judge's \
         feature space, with that distance; a yellow frame marks a pixel-identical pair. The copying test C_T in the \
         metrics tables asks the same question of every sample against validation images.\n"
    );
    for (r, samples) in drawn {
        let data = ctx.task(r.experiment);
        let train = eval::subset(&data.train, GALLERY_TRAIN_IMAGES, ctx.eval_opts.seed ^ 1);
        let title = format!("{} {}", r.experiment, r.label());
        let gallery =
            figures::nearest_train_gallery(samples, &train, judges.of(r.experiment), GALLERY_SAMPLES, &title)?;
        let caption = format!("{title}: samples | nearest train image");
        fig.add(&format!("{}-{}-nearest-train", r.experiment, slug(&r.label())), &caption, &gallery)?;
    }
    Ok(())
}

/// What every stored measure of a run depends on besides its own settings: the
/// model's epoch and the data it is measured on ([`measures::cached`]).
fn measure_key(r: &RunResult) -> (usize, &str) {
    (r.metrics.epoch, r.metrics.data_source.as_str())
}

/// A value with `decimals` places and its 95 % interval when there is one.
fn shown(value: f64, interval: Option<crate::eval::Interval>, decimals: usize) -> String {
    let format = |v: f64| format!("{v:.decimals$}");
    crate::table::with_interval(&format(value), interval, format)
}

/// A label as a file-name part: lower case, words joined by single dashes ("cgan (study model, WGAN-GP)" → "cgan-study-model-wgan-gp").
fn slug(label: &str) -> String {
    label
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("-")
        .to_lowercase()
}
