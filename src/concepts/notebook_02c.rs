//! The library calls of notebooks/02c-gan-concepts.ipynb, cell by cell, so that
//! `cargo test` checks they run (the quick profile) and what they print (the
//! default profile, `--ignored --nocapture`; figures go to $CONDGEN_FIGURES when set).

use super::conditional::{self, ConditionalToyConfig, ToyConditioning};
use super::gan::{self, ToyGanConfig};
use super::lipschitz;
use crate::concepts;
use crate::notebook::{self, Better};
use crate::plot::Figure;
use crate::train::Profile;
use crate::Result;

fn save(index: usize, figure: Figure) {
    if let Some(dir) = std::env::var_os("CONDGEN_FIGURES") {
        figure.save(&std::path::Path::new(&dir).join(format!("02c-{index:02}.png"))).expect("figure saved");
    }
}

fn cells(profile: Profile) -> Result<()> {
    let (ring_steps, conditional_steps) = (gan::ring_steps(profile), conditional::conditional_steps(profile));
    println!("profile {}: {ring_steps} generator steps on the ring, {conditional_steps} on the two classes", profile);
    {
        let cases: Vec<_> = [0.5, 2.0, 6.0, 12.0].iter().map(|&s| concepts::optimal_discriminator(s)).collect();
        for c in &cases {
            println!(
                "shift {:>4}: V(D*, G) = {:+.4}   2·JS − ln 4 = {:+.4}   JS = {:.4} (ln 2 = {:.4})   W1 = {:.1}",
                c.shift,
                c.value,
                2.0 * c.jensen_shannon - 4f64.ln(),
                c.jensen_shannon,
                2f64.ln(),
                c.wasserstein
            );
        }
        save(1, concepts::optimal_discriminator_chart(&cases[..3])?);
    };
    let plain = gan::train_toy_gan(&ToyGanConfig::plain(ring_steps))?;
    for s in &plain.snapshots {
        println!("BCE GAN, step {:>5}: {}   samples per mode {:?}", s.step, s.coverage, s.coverage.per_mode);
    }
    println!("({:.1} s on one thread)", plain.seconds);
    save(2, gan::snapshots_figure(&plain)?);
    let packed = gan::train_toy_gan(&ToyGanConfig::packed(ring_steps, 4))?;
    for s in &packed.snapshots {
        println!("PacGAN, step {:>5}: {}   samples per mode {:?}", s.step, s.coverage, s.coverage.per_mode);
    }
    println!("({:.1} s on one thread)", packed.seconds);
    println!(
        "{}",
        notebook::compare(
            "modes covered at the last step",
            Better::Higher,
            ("PacGAN", packed.last().coverage.covered as f64),
            ("the BCE GAN", plain.last().coverage.covered as f64),
            0
        )
    );
    println!(
        "{}",
        notebook::compare(
            "high-quality share (%)",
            Better::Higher,
            ("PacGAN", 100.0 * packed.last().coverage.high_quality),
            ("the BCE GAN", 100.0 * plain.last().coverage.high_quality),
            1
        )
    );
    save(3, gan::snapshots_figure(&packed)?);
    save(4, gan::coverage_chart(&[&plain, &packed])?);
    let wgan_steps = ring_steps / 4;
    let unconstrained = gan::train_toy_gan(&ToyGanConfig::wgan(wgan_steps, "WGAN, no constraint", 0.0, None))?;
    let clipped =
        gan::train_toy_gan(&ToyGanConfig::wgan(wgan_steps, "WGAN, weights clipped to 0.01", 0.0, Some(0.01)))?;
    let penalised = gan::train_toy_gan(&ToyGanConfig::wgan_gp(wgan_steps))?;
    for run in [&unconstrained, &clipped, &penalised] {
        println!(
            "{:<30} mean ‖∇ₓ D‖ over the last 5 measurements {:>9.3}; step {}: {} ({:.1} s)",
            run.config.name,
            lipschitz::final_gradient_norm(run, 5),
            run.last().step,
            run.last().coverage,
            run.seconds
        );
    }
    save(5, lipschitz::critic_gradient_chart(&[&unconstrained, &clipped, &penalised])?);
    {
        let run = lipschitz::power_iteration(64, 32, 40, 0)?;
        println!("exact σ(W) from the SVD: {:.4} (second singular value {:.4})", run.exact, run.second);
        for &(i, estimate) in run.estimates.iter().filter(|(i, _)| [1.0, 2.0, 5.0, 10.0, 20.0, 40.0].contains(i)) {
            println!(
                "after {i:>2} iterations: {estimate:.4} ({:+.2} % from exact)",
                100.0 * (estimate / run.exact - 1.0)
            );
        }
        println!("largest singular value of W / σ̂ after the last iteration: {:.4}", run.normalised);
        save(6, lipschitz::power_iteration_chart(&run)?);
    };
    let concat =
        conditional::train_conditional_toy(&ConditionalToyConfig::new(ToyConditioning::Concat, conditional_steps))?;
    let projection =
        conditional::train_conditional_toy(&ConditionalToyConfig::new(ToyConditioning::Projection, conditional_steps))?;
    for run in [&concat, &projection] {
        println!("{:<14} D's condition gap {:+.3}; G's conditional batch norm: mean |γ(0) − γ(1)| {:.3}, mean |β(0) − β(1)| {:.3} ({:.1} s)",
        run.config.conditioning.name(), run.condition_gap, run.scale_gap, run.shift_gap, run.seconds);
        println!(
            "{:<14} points in the overlap strip: generated {:.1} % / {:.1} % (class 0 / 1), real {:.1} % / {:.1} %",
            "",
            100.0 * run.generated_overlap[0],
            100.0 * run.generated_overlap[1],
            100.0 * run.real_overlap[0],
            100.0 * run.real_overlap[1]
        );
    }
    println!(
        "{}",
        notebook::compare(
            "D's condition gap",
            Better::Higher,
            ("the projection D", projection.condition_gap),
            ("the concatenating D", concat.condition_gap),
            3
        )
    );
    save(7, conditional::conditional_chart(&projection)?);
    for run in [&plain, &packed] {
        println!("{:<20} raw generator:      {}", run.config.name, run.last().coverage);
        println!("{:<20} averaged generator: {}", "", run.average.coverage);
        println!(
            "{}",
            notebook::compare(
                "high-quality share (%)",
                Better::Higher,
                ("the average", 100.0 * run.average.coverage.high_quality),
                ("the raw generator", 100.0 * run.last().coverage.high_quality),
                1
            )
        );
    }
    save(
        8,
        gan::ring_chart(
            "PacGAN, the averaged generator at the last step",
            &packed.config.ring,
            &packed.average.points,
            500,
        )?,
    );
    let acgan = conditional::train_conditional_toy(&ConditionalToyConfig::new(
        ToyConditioning::AuxiliaryClassifier,
        conditional_steps,
    ))?;
    for run in [&concat, &projection, &acgan] {
        println!(
            "{:<14} {:.1} % of generated points in the overlap strip (real: {:.1} %)",
            run.config.conditioning.name(),
            100.0 * run.generated_overlap_share(),
            100.0 * run.real_overlap_share()
        );
    }
    println!(
        "{}",
        notebook::compare(
            "points in the overlap strip (%)",
            Better::Neither,
            ("AC-GAN", 100.0 * acgan.generated_overlap_share()),
            ("the real data", 100.0 * acgan.real_overlap_share()),
            1
        )
    );
    save(9, conditional::overlap_chart(&[&concat, &projection, &acgan])?);
    save(10, conditional::conditional_chart(&acgan)?);
    Ok(())
}

#[test]
fn the_notebook_runs_with_the_quick_profile() {
    let _rng = crate::test_support::torch_rng();
    tch::set_num_threads(1);
    cells(Profile::Quick).unwrap();
}

#[test]
#[ignore]
fn the_notebook_with_the_default_profile() {
    let _rng = crate::test_support::torch_rng();
    tch::set_num_threads(1);
    cells(Profile::Default).unwrap();
}
