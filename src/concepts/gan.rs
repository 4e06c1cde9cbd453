//! A GAN on a plane: the ring of 8 Gaussians (Metz et al. 2017, "Unrolled
//! GANs"), small MLPs trained on it in seconds on one CPU thread, and what
//! they cover. The toy shows mode collapse as it happens, and what cures it.
//!
//! - [`Ring`]: the data, 8 Gaussians of width σ on a circle of radius 2.
//! - [`mode_coverage`]: how many of the ring's modes a set of samples covers,
//!   and how many samples lie near a mode at all.
//! - [`train_toy_gan`]: a seeded training run ([`ToyGanConfig`]: the
//!   non-saturating BCE GAN, the same with a discriminator that judges packs of
//!   samples (PacGAN), or a WGAN with a gradient penalty, weight clipping or no
//!   constraint), with snapshots of its samples, the critic's gradient norm on
//!   interpolates, and a moving average of the generator.
//! - [`snapshots_figure`]: real vs generated points at each snapshot.

use std::time::Instant;

use tch::{nn, Device, Kind, Tensor};

use crate::loss;
use crate::model::layers::{dense, Dense};
use crate::model::WeightAverage;
use crate::optim::Adam;
use crate::plot::{self, Figure, Series};
use crate::train::Profile;
use crate::{Error, Result};

const FLOAT_CPU: (Kind, Device) = (Kind::Float, Device::Cpu);

/// Samples drawn to measure coverage (VEEGAN's and Unrolled GAN's 2,500).
pub const COVERAGE_SAMPLES: i64 = 2500;
/// A mode counts as covered when at least this share of the samples lies within 3σ of it
/// (20 of 2,500 in VEEGAN's protocol, Srivastava et al. 2017).
pub const MODE_MIN_SHARE: f64 = 0.008;

/// Modes of equal weight, Gaussians of width σ on a circle.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ring {
    pub modes: usize,
    pub radius: f64,
    pub sigma: f64,
}

impl Default for Ring {
    /// The standard toy: 8 modes, radius 2, σ = 0.05.
    fn default() -> Self {
        Ring { modes: 8, radius: 2.0, sigma: 0.05 }
    }
}

impl Ring {
    /// The modes' centres, the first on the positive x axis, counter-clockwise.
    pub fn centres(&self) -> Vec<(f64, f64)> {
        (0..self.modes)
            .map(|k| {
                let angle = 2.0 * std::f64::consts::PI * k as f64 / self.modes as f64;
                (self.radius * angle.cos(), self.radius * angle.sin())
            })
            .collect()
    }

    /// n points, each from a mode chosen uniformly (torch's global generator). → [n, 2]
    pub fn sample(&self, n: i64) -> Tensor {
        let k = Tensor::randint(self.modes as i64, [n], (Kind::Int64, Device::Cpu)).to_kind(Kind::Float);
        let angle = k * (2.0 * std::f64::consts::PI / self.modes as f64);
        Tensor::stack(&[angle.cos(), angle.sin()], 1) * self.radius + Tensor::randn([n, 2], FLOAT_CPU) * self.sigma
    }
}

/// What a set of samples covers of a [`Ring`].
#[derive(Clone, Debug, PartialEq)]
pub struct ModeCoverage {
    /// Modes holding at least [`MODE_MIN_SHARE`] of the samples within 3σ.
    pub covered: usize,
    /// The ring's number of modes.
    pub modes: usize,
    /// Share of the samples within 3σ of their nearest mode ("high quality").
    pub high_quality: f64,
    /// Samples within 3σ of each mode.
    pub per_mode: Vec<usize>,
}

impl std::fmt::Display for ModeCoverage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} of {} modes covered, {:.1} % of samples within 3σ of a mode",
            self.covered,
            self.modes,
            100.0 * self.high_quality
        )
    }
}

/// Rows of a [n, 2] tensor as points.
pub fn points(xs: &Tensor) -> Result<Vec<(f64, f64)>> {
    if xs.dim() != 2 || xs.size()[1] != 2 {
        return Err(Error::InvalidInput(format!("expected points [n, 2], got {:?}", xs.size())));
    }
    let flat = Vec::<f64>::try_from(xs.to_kind(Kind::Double).flatten(0, -1))?;
    Ok(flat.chunks(2).map(|p| (p[0], p[1])).collect())
}

/// Each sample is given to its nearest mode when it lies within 3σ of it
/// (else to none); a mode is covered when it holds at least [`MODE_MIN_SHARE`]
/// of the samples. An error for an empty set.
pub fn mode_coverage(samples: &[(f64, f64)], ring: &Ring) -> Result<ModeCoverage> {
    if samples.is_empty() {
        return Err(Error::InvalidInput("mode_coverage: no samples".into()));
    }
    let centres = ring.centres();
    let mut per_mode = vec![0usize; centres.len()];
    for &(x, y) in samples {
        let (k, d2) = centres
            .iter()
            .map(|&(cx, cy)| (x - cx).powi(2) + (y - cy).powi(2))
            .enumerate()
            .fold((0, f64::INFINITY), |best, (k, d2)| if d2 < best.1 { (k, d2) } else { best });
        if d2 <= (3.0 * ring.sigma).powi(2) {
            per_mode[k] += 1;
        }
    }
    let n = samples.len() as f64;
    let covered = per_mode.iter().filter(|&&c| c as f64 >= MODE_MIN_SHARE * n).count();
    let high_quality = per_mode.iter().sum::<usize>() as f64 / n;
    Ok(ModeCoverage { covered, modes: centres.len(), high_quality, per_mode })
}

/// The adversarial objective of a toy run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ToyLoss {
    /// The non-saturating GAN: D's BCE, G maximises log D(G(z)) ([`loss::gan_discriminator_loss`]).
    Bce,
    /// WGAN: the critic maximises E D(x) − E D(G(z)) ([`loss::wgan_critic_loss`]), kept
    /// Lipschitz by a gradient penalty of this weight ([`loss::gradient_penalty`]; 0 = none)
    /// and/or by clipping every critic weight to [−c, c] after each step (`clip`).
    Wgan { penalty: f64, clip: Option<f64> },
}

/// A toy run's settings: two MLPs of `hidden` ReLU units × 2 layers.
#[derive(Clone, Debug, PartialEq)]
pub struct ToyGanConfig {
    pub name: String,
    pub ring: Ring,
    pub loss: ToyLoss,
    /// Generator steps.
    pub steps: usize,
    /// Critic (discriminator) steps per generator step.
    pub critic_steps: usize,
    /// PacGAN (Lin et al. 2018): D judges packs of this many samples, all real or all
    /// generated, concatenated into one input of 2·pack numbers (1 = single samples).
    pub pack: usize,
    pub batch: i64,
    pub noise: i64,
    pub hidden: i64,
    pub learning_rate: f64,
    pub betas: (f64, f64),
    /// Decay of the moving average of G's weights ([`WeightAverage`]).
    pub ema_decay: f64,
    /// Generator steps after which the samples are kept (0 = before training).
    pub snapshots: Vec<usize>,
    /// Every this many generator steps the critic's gradient norm is measured.
    pub record_every: usize,
    pub seed: u64,
}

/// Generator steps of the ring runs in each profile (the quick profile only checks that the cells run).
pub fn ring_steps(profile: Profile) -> usize {
    match profile {
        Profile::Quick => 600,
        _ => 6000,
    }
}

impl ToyGanConfig {
    /// The non-saturating BCE GAN of the ring experiment, `steps` generator steps:
    /// 64-D noise, Adam (0.5, 0.999) at lr 1e-3, batch 256 (on seed 0 it collapses; see the tests).
    pub fn plain(steps: usize) -> ToyGanConfig {
        ToyGanConfig {
            name: "BCE GAN".into(),
            ring: Ring::default(),
            loss: ToyLoss::Bce,
            steps,
            critic_steps: 1,
            pack: 1,
            batch: 256,
            noise: 64,
            hidden: 128,
            learning_rate: 1e-3,
            betas: (0.5, 0.999),
            ema_decay: 0.999,
            snapshots: vec![steps / 10, steps / 3, steps],
            record_every: (steps / 30).max(1),
            seed: 0,
        }
    }

    /// WGAN-GP (Gulrajani et al. 2017) as the paper trains its toys: penalty 10,
    /// 5 critic steps per generator step, Adam (0.5, 0.9), lr 1e-4.
    pub fn wgan_gp(steps: usize) -> ToyGanConfig {
        ToyGanConfig {
            name: "WGAN-GP".into(),
            loss: ToyLoss::Wgan { penalty: 10.0, clip: None },
            critic_steps: 5,
            learning_rate: 1e-4,
            betas: (0.5, 0.9),
            ..ToyGanConfig::plain(steps)
        }
    }

    /// The BCE GAN of [`ToyGanConfig::plain`] whose discriminator judges packs of `pack` samples (PacGAN).
    pub fn packed(steps: usize, pack: usize) -> ToyGanConfig {
        ToyGanConfig { name: format!("PacGAN, packs of {pack}"), pack, ..ToyGanConfig::plain(steps) }
    }

    /// The same WGAN with another Lipschitz constraint (or none).
    pub fn wgan(steps: usize, name: &str, penalty: f64, clip: Option<f64>) -> ToyGanConfig {
        ToyGanConfig { name: name.into(), loss: ToyLoss::Wgan { penalty, clip }, ..ToyGanConfig::wgan_gp(steps) }
    }
}

/// The samples of a toy generator after some step.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub step: usize,
    /// [`COVERAGE_SAMPLES`] generated points (fixed noise).
    pub points: Vec<(f64, f64)>,
    pub coverage: ModeCoverage,
}

/// What a toy run did.
#[derive(Clone, Debug)]
pub struct ToyGanRun {
    pub config: ToyGanConfig,
    pub snapshots: Vec<Snapshot>,
    /// The moving average of G's weights after the last step, on the same noise.
    pub average: Snapshot,
    /// (generator step, mean ‖∇ₓ D‖ at interpolates between real and generated points).
    pub critic_gradient: Vec<(f64, f64)>,
    /// (generator step, modes covered by the fixed noise's samples), at the same steps.
    pub modes_covered: Vec<(f64, f64)>,
    /// Wall-clock seconds of the run.
    pub seconds: f64,
}

impl ToyGanRun {
    /// The snapshot after the last step.
    pub fn last(&self) -> &Snapshot {
        self.snapshots.last().expect("a run keeps its last step")
    }
}

/// An MLP `widths[0] → … → widths[last]` with ReLU between layers.
#[derive(Debug)]
pub struct ToyMlp {
    layers: Vec<Dense>,
}

impl ToyMlp {
    pub fn new(vs: &nn::Path, widths: &[i64]) -> ToyMlp {
        let layers = widths.windows(2).enumerate().map(|(i, w)| dense(&(vs / i), w[0], w[1], true, false)).collect();
        ToyMlp { layers }
    }

    /// xs: [b, widths[0]] → [b, widths[last]]
    pub fn forward(&self, xs: &Tensor) -> Tensor {
        let last = self.layers.len() - 1;
        self.layers.iter().enumerate().fold(xs.shallow_clone(), |h, (i, layer)| {
            let h = layer.forward_t(&h, true);
            if i < last {
                h.relu()
            } else {
                h
            }
        })
    }

    /// A critic's scores: xs [b, widths[0]] → [b] (the last width must be 1).
    pub fn score(&self, xs: &Tensor) -> Tensor {
        self.forward(xs).squeeze_dim(1)
    }
}

/// Mean ‖∇ₓ D‖ over interpolates of `real` and `fake` ([`loss::interpolate_gradient_norms`]).
fn mean_gradient_norm(real: &Tensor, fake: &Tensor, critic: impl Fn(&Tensor) -> Tensor) -> f64 {
    loss::interpolate_gradient_norms(real, fake, critic).mean(Kind::Float).double_value(&[])
}

/// Trains `cfg` on its ring from its seed (deterministic on the CPU with one thread).
pub fn train_toy_gan(cfg: &ToyGanConfig) -> Result<ToyGanRun> {
    if cfg.steps == 0 || cfg.critic_steps == 0 || cfg.batch < 2 || cfg.pack == 0 || cfg.batch % cfg.pack as i64 != 0 {
        return Err(Error::InvalidInput(format!(
            "{}: steps, critic steps, a batch of 2 or more and a pack that divides it are needed",
            cfg.name
        )));
    }
    let start = Instant::now();
    tch::manual_seed(cfg.seed as i64);
    let vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    let (h, noise) = (cfg.hidden, cfg.noise);
    let generator = ToyMlp::new(&(&root / "g"), &[noise, h, h, 2]);
    let average = ToyMlp::new(&(&root / "g_ema"), &[noise, h, h, 2]);
    let pack = cfg.pack as i64;
    let critic = ToyMlp::new(&(&root / "d"), &[2 * pack, h, h, 1]);
    // xs: [b, 2] → [b / pack] scores, one per pack.
    let judge = |xs: &Tensor| critic.score(&xs.view([-1, 2 * pack]));
    for (name, t) in vs.variables() {
        if name.starts_with("g_ema.") {
            let _ = t.set_requires_grad(false);
        }
    }
    let ema = WeightAverage::new(&vs, "g", "g_ema", cfg.ema_decay);
    ema.reset();
    let mut opt_g = Adam::for_prefix(&vs, "g.", cfg.learning_rate, cfg.betas);
    let mut opt_d = Adam::for_prefix(&vs, "d.", cfg.learning_rate, cfg.betas);
    let critic_weights: Vec<Tensor> =
        vs.variables().into_iter().filter(|(n, _)| n.starts_with("d.")).map(|(_, t)| t).collect();

    let fixed_noise = Tensor::randn([COVERAGE_SAMPLES, noise], FLOAT_CPU);
    let snapshot = |net: &ToyMlp, step: usize| -> Result<Snapshot> {
        let pts = points(&tch::no_grad(|| net.forward(&fixed_noise)))?;
        let coverage = mode_coverage(&pts, &cfg.ring)?;
        Ok(Snapshot { step, points: pts, coverage })
    };
    let mut snapshots = Vec::new();
    if cfg.snapshots.contains(&0) {
        snapshots.push(snapshot(&generator, 0)?);
    }
    let (mut critic_gradient, mut modes_covered) = (Vec::new(), Vec::new());
    for step in 1..=cfg.steps {
        for _ in 0..cfg.critic_steps {
            let real = cfg.ring.sample(cfg.batch);
            let fake = tch::no_grad(|| generator.forward(&Tensor::randn([cfg.batch, noise], FLOAT_CPU)));
            let (real_scores, fake_scores) = (judge(&real), judge(&fake));
            let d_loss = match cfg.loss {
                ToyLoss::Bce => loss::gan_discriminator_loss(&real_scores, &fake_scores),
                ToyLoss::Wgan { penalty, .. } => {
                    let wasserstein = loss::wgan_critic_loss(&real_scores, &fake_scores);
                    if penalty > 0.0 {
                        wasserstein + loss::gradient_penalty(&real, &fake, judge) * penalty
                    } else {
                        wasserstein
                    }
                }
            };
            opt_d.backward_step(&d_loss);
            if let ToyLoss::Wgan { clip: Some(c), .. } = cfg.loss {
                tch::no_grad(|| {
                    for w in &critic_weights {
                        let _ = w.shallow_clone().clamp_(-c, c);
                    }
                });
            }
        }
        opt_d.set_trainable(false);
        let fake_scores = judge(&generator.forward(&Tensor::randn([cfg.batch, noise], FLOAT_CPU)));
        let g_loss = match cfg.loss {
            ToyLoss::Bce => loss::gan_generator_loss(&fake_scores),
            ToyLoss::Wgan { .. } => loss::wgan_generator_loss(&fake_scores),
        };
        opt_g.backward_step(&g_loss);
        opt_d.set_trainable(true);
        ema.update(step as i64);
        if !g_loss.double_value(&[]).is_finite() {
            return Err(Error::Diverged(format!("{}: the generator's loss is not finite at step {step}", cfg.name)));
        }
        if step % cfg.record_every == 0 || step == cfg.steps {
            let fake = tch::no_grad(|| generator.forward(&Tensor::randn([cfg.batch, noise], FLOAT_CPU)));
            critic_gradient.push((step as f64, mean_gradient_norm(&cfg.ring.sample(cfg.batch), &fake, judge)));
            modes_covered.push((step as f64, snapshot(&generator, step)?.coverage.covered as f64));
        }
        if cfg.snapshots.contains(&step) || step == cfg.steps && !cfg.snapshots.contains(&cfg.steps) {
            snapshots.push(snapshot(&generator, step)?);
        }
    }
    let average = snapshot(&average, cfg.steps)?;
    Ok(ToyGanRun {
        config: cfg.clone(),
        snapshots,
        average,
        critic_gradient,
        modes_covered,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// The real ring and `generated` points in one square chart. The real points are
/// drawn after seeding torch's generator with 1, so every chart shows the same ones.
pub fn ring_chart(title: &str, ring: &Ring, generated: &[(f64, f64)], shown: usize) -> Result<Figure> {
    tch::manual_seed(1);
    let real = points(&ring.sample(shown as i64))?;
    let series = vec![
        Series::markers("real", real),
        Series::markers("generated", generated.iter().copied().take(shown).collect()),
    ];
    plot::line_chart_equal_axes(title, "x₁", "x₂", &series)
}

/// One [`ring_chart`] per snapshot of `run` (500 points each), side by side,
/// each captioned with its step and the modes it covers.
pub fn snapshots_figure(run: &ToyGanRun) -> Result<Figure> {
    let charts = run
        .snapshots
        .iter()
        .map(|s| {
            let title = format!("{}, step {}", run.config.name, s.step);
            Ok((
                format!("{} of {} modes", s.coverage.covered, s.coverage.modes),
                ring_chart(&title, &run.config.ring, &s.points, 500)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let refs: Vec<(&str, &Figure)> = charts.iter().map(|(c, f)| (c.as_str(), f)).collect();
    plot::side_by_side(&refs)
}

/// Modes covered over training (measured at the steps of the critic's gradient norm), one line per run.
pub fn coverage_chart(runs: &[&ToyGanRun]) -> Result<Figure> {
    let series: Vec<Series> =
        runs.iter().map(|r| Series::new(r.config.name.clone(), r.modes_covered.clone())).collect();
    plot::line_chart("Modes of the ring covered", "generator step", "modes covered", &series)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_perfect_sampler_covers_every_mode_and_one_point_one() {
        let _rng = crate::test_support::torch_rng();
        tch::manual_seed(0);
        let ring = Ring::default();
        let perfect = mode_coverage(&points(&ring.sample(2500)).unwrap(), &ring).unwrap();
        assert_eq!(perfect.covered, 8);
        // In the plane, P(‖ε‖ ≤ 3σ) = 1 − e^(−9/2) ≈ 0.989.
        assert!(perfect.high_quality > 0.97, "{perfect}");
        let one = mode_coverage(&vec![(2.0, 0.01); 100], &ring).unwrap();
        assert_eq!((one.covered, one.high_quality), (1, 1.0));
        let far = mode_coverage(&[(0.0, 0.0)], &ring).unwrap();
        assert_eq!((far.covered, far.high_quality), (0, 0.0));
        assert!(mode_coverage(&[], &ring).is_err());
    }
}

#[cfg(test)]
mod claims {
    use super::*;

    /// What notebook 02c shows with the default profile: the BCE GAN collapses, PacGAN covers the ring.
    #[test]
    fn the_plain_gan_collapses_and_packing_cures_it() {
        let _rng = crate::test_support::torch_rng();
        tch::set_num_threads(1);
        let steps = ring_steps(Profile::Default);
        let plain = train_toy_gan(&ToyGanConfig::plain(steps)).unwrap();
        let packed = train_toy_gan(&ToyGanConfig::packed(steps, 4)).unwrap();
        assert!(plain.last().coverage.covered <= 2, "{}", plain.last().coverage);
        assert_eq!(packed.last().coverage.covered, 8, "{}", packed.last().coverage);
    }
}
