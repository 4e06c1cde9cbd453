//! How a conditional GAN's discriminator sees the condition, on a plane: two
//! overlapping classes, a generator conditioned through conditional batch norm,
//! and three discriminators — the condition concatenated to the input, the
//! projection discriminator (Miyato & Koyama 2018), and AC-GAN's auxiliary
//! classifier (Odena et al. 2017). AC-GAN's known failure (Shu 2017; Gong et
//! al. 2019, TAC-GAN): its generator also minimises the classifier's
//! uncertainty, so it draws class-separable samples and avoids the region where
//! the classes overlap. Measured as the share of generated samples in that region.

use std::time::Instant;

use tch::{nn, Device, Kind, Tensor};

use super::gan::{points, ToyMlp};
use crate::loss;
use crate::model::layers::{dense, projection_score, ConditionalBatchNorm, Dense};
use crate::optim::Adam;
use crate::plot::{self, Figure, Series};
use crate::task::ConditionSpec;
use crate::train::Profile;
use crate::{Error, Result};

const FLOAT_CPU: (Kind, Device) = (Kind::Float, Device::Cpu);
const CLASSES: i64 = 2;
/// Samples per class drawn to measure a generator.
pub const MEASURED_PER_CLASS: i64 = 2000;

/// Two classes of equal weight: class 0 ~ N((−m, 0), s² I), class 1 ~ N((m, 0), s² I).
/// The overlap region is the strip |x₁| < `strip` between them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TwoClasses {
    pub m: f64,
    pub s: f64,
    pub strip: f64,
}

impl Default for TwoClasses {
    fn default() -> Self {
        TwoClasses { m: 0.6, s: 0.5, strip: 0.3 }
    }
}

impl TwoClasses {
    /// n points of the given classes. labels: [n] int64 → [n, 2]
    pub fn sample(&self, labels: &Tensor) -> Tensor {
        let n = labels.size()[0];
        let sign = labels.to_kind(Kind::Float) * 2.0 - 1.0;
        let centre = Tensor::stack(&[sign * self.m, Tensor::zeros([n], FLOAT_CPU)], 1);
        centre + Tensor::randn([n, 2], FLOAT_CPU) * self.s
    }

    /// Share of `pts` in the overlap strip.
    pub fn overlap_share(&self, pts: &[(f64, f64)]) -> f64 {
        pts.iter().filter(|p| p.0.abs() < self.strip).count() as f64 / pts.len().max(1) as f64
    }
}

fn one_hot(labels: &Tensor) -> Tensor {
    labels.one_hot(CLASSES).to_kind(Kind::Float)
}

/// How the discriminator sees the condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToyConditioning {
    /// D([x ⊕ c]): the condition concatenated to the input.
    Concat,
    /// D(x, c) = ψ(φ(x)) + ⟨E c, φ(x)⟩ ([`projection_score`]).
    Projection,
    /// An unconditional D(x) with a head classifying c (AC-GAN), trained on real points;
    /// the generator is also trained to make its points classifiable.
    AuxiliaryClassifier,
}

impl ToyConditioning {
    pub fn name(self) -> &'static str {
        match self {
            ToyConditioning::Concat => "concatenation",
            ToyConditioning::Projection => "projection",
            ToyConditioning::AuxiliaryClassifier => "AC-GAN",
        }
    }
}

/// A toy conditional run's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct ConditionalToyConfig {
    pub data: TwoClasses,
    pub conditioning: ToyConditioning,
    pub steps: usize,
    pub batch: i64,
    pub noise: i64,
    pub hidden: i64,
    pub learning_rate: f64,
    pub betas: (f64, f64),
    pub seed: u64,
}

/// Generator steps of the conditional runs in each profile.
pub fn conditional_steps(profile: Profile) -> usize {
    match profile {
        Profile::Quick => 400,
        _ => 4000,
    }
}

impl ConditionalToyConfig {
    pub fn new(conditioning: ToyConditioning, steps: usize) -> Self {
        ConditionalToyConfig {
            data: TwoClasses::default(),
            conditioning,
            steps,
            batch: 256,
            noise: 2,
            hidden: 64,
            learning_rate: 1e-3,
            betas: (0.5, 0.999),
            seed: 0,
        }
    }
}

/// G(z, c): [z ⊕ c] → dense → conditional batch norm → ReLU → dense → conditional batch norm → ReLU → dense → 2.
#[derive(Debug)]
struct ToyConditionalGenerator {
    layers: [Dense; 3],
    norms: [ConditionalBatchNorm; 2],
}

impl ToyConditionalGenerator {
    fn new(vs: &nn::Path, noise: i64, h: i64) -> Self {
        ToyConditionalGenerator {
            layers: [
                dense(&(vs / "fc1"), noise + CLASSES, h, true, false),
                dense(&(vs / "fc2"), h, h, true, false),
                dense(&(vs / "out"), h, 2, true, false),
            ],
            norms: [
                ConditionalBatchNorm::new(&(vs / "cbn1"), h, CLASSES),
                ConditionalBatchNorm::new(&(vs / "cbn2"), h, CLASSES),
            ],
        }
    }

    /// noise: [b, noise], cond: [b, 2] → [b, 2]
    fn generate(&self, noise: &Tensor, cond: &Tensor, train: bool) -> Tensor {
        let mut h = Tensor::cat(&[noise, cond], 1);
        for (layer, norm) in self.layers.iter().zip(&self.norms) {
            let x = layer.forward_t(&h, train);
            let s = x.size();
            h = norm.forward_t(&x.view([s[0], s[1], 1, 1]), cond, train).view([s[0], s[1]]).relu();
        }
        self.layers[2].forward_t(&h, train)
    }
}

/// The three discriminators, each giving (score [b], class logits [b, 2] for AC-GAN).
#[derive(Debug)]
struct ToyConditionalDiscriminator {
    conditioning: ToyConditioning,
    /// Concat: the whole network on [x ⊕ c]; otherwise φ, whose last layer is followed by a ReLU.
    body: ToyMlp,
    psi: Option<Dense>,
    /// Projection: the class embedding E; AC-GAN: the classifier head.
    head: Option<Dense>,
}

impl ToyConditionalDiscriminator {
    fn new(vs: &nn::Path, conditioning: ToyConditioning, h: i64) -> Self {
        let body = match conditioning {
            ToyConditioning::Concat => ToyMlp::new(&(vs / "body"), &[2 + CLASSES, h, h, 1]),
            _ => ToyMlp::new(&(vs / "body"), &[2, h, h]),
        };
        let psi = (conditioning != ToyConditioning::Concat).then(|| dense(&(vs / "psi"), h, 1, true, false));
        let head = match conditioning {
            ToyConditioning::Concat => None,
            ToyConditioning::Projection => Some(dense(&(vs / "embed"), CLASSES, h, false, false)),
            ToyConditioning::AuxiliaryClassifier => Some(dense(&(vs / "classify"), h, CLASSES, true, false)),
        };
        ToyConditionalDiscriminator { conditioning, body, psi, head }
    }

    /// xs: [b, 2], cond: [b, 2] → (scores [b], class logits [b, 2] for AC-GAN)
    fn forward(&self, xs: &Tensor, cond: &Tensor) -> (Tensor, Option<Tensor>) {
        if self.conditioning == ToyConditioning::Concat {
            return (self.body.score(&Tensor::cat(&[xs, cond], 1)), None);
        }
        let features = self.body.forward(xs).relu();
        let psi = self.psi.as_ref().expect("φ-based D has ψ").forward_t(&features, true).squeeze_dim(1);
        let head = self.head.as_ref().expect("φ-based D has a head");
        match self.conditioning {
            ToyConditioning::Projection => (projection_score(&psi, &head.forward_t(cond, true), &features), None),
            _ => (psi, Some(head.forward_t(&features, true))),
        }
    }
}

/// What a conditional toy run learned, measured on [`MEASURED_PER_CLASS`] samples per class.
#[derive(Clone, Debug)]
pub struct ConditionalToyRun {
    pub config: ConditionalToyConfig,
    /// Generated points of class 0 and of class 1.
    pub generated: [Vec<(f64, f64)>; 2],
    /// Real points of class 0 and of class 1 (as many).
    pub real: [Vec<(f64, f64)>; 2],
    /// Share of each class's generated points in the overlap strip.
    pub generated_overlap: [f64; 2],
    /// The same share of real points.
    pub real_overlap: [f64; 2],
    /// Mean D(x, c) − D(x, c') on real points with their own and the other class
    /// (0 for AC-GAN, whose adversarial score does not see c).
    pub condition_gap: f64,
    /// Mean |γ(0) − γ(1)| and |β(0) − β(1)| over the channels of G's first
    /// conditional batch norm: how differently it scales and shifts the two classes.
    pub scale_gap: f64,
    pub shift_gap: f64,
    pub seconds: f64,
}

/// Trains `cfg` from its seed (BCE, non-saturating; AC-GAN adds its classification loss to both players).
pub fn train_conditional_toy(cfg: &ConditionalToyConfig) -> Result<ConditionalToyRun> {
    if cfg.steps == 0 || cfg.batch < 2 {
        return Err(Error::InvalidInput("train_conditional_toy: steps and a batch of 2 or more are needed".into()));
    }
    let start = Instant::now();
    tch::manual_seed(cfg.seed as i64);
    let vs = nn::VarStore::new(Device::Cpu);
    let generator = ToyConditionalGenerator::new(&(vs.root() / "g"), cfg.noise, cfg.hidden);
    let critic = ToyConditionalDiscriminator::new(&(vs.root() / "d"), cfg.conditioning, cfg.hidden);
    let mut opt_g = Adam::for_prefix(&vs, "g.", cfg.learning_rate, cfg.betas);
    let mut opt_d = Adam::for_prefix(&vs, "d.", cfg.learning_rate, cfg.betas);
    let spec = ConditionSpec::OneHot { classes: CLASSES as usize, style_bit: false };
    let labels = || Tensor::randint(CLASSES, [cfg.batch], (Kind::Int64, Device::Cpu));
    for step in 1..=cfg.steps {
        let real_labels = labels();
        let (real, real_c) = (cfg.data.sample(&real_labels), one_hot(&real_labels));
        let fake_c = one_hot(&labels());
        let fake =
            tch::no_grad(|| generator.generate(&Tensor::randn([cfg.batch, cfg.noise], FLOAT_CPU), &fake_c, true));
        let (real_scores, real_logits) = critic.forward(&real, &real_c);
        let (fake_scores, _) = critic.forward(&fake, &fake_c);
        let mut d_loss = loss::gan_discriminator_loss(&real_scores, &fake_scores);
        if let Some(logits) = &real_logits {
            d_loss += loss::condition_classification_loss(logits, &real_c, spec);
        }
        opt_d.backward_step(&d_loss);

        opt_d.set_trainable(false);
        let fake_c = one_hot(&labels());
        let fake = generator.generate(&Tensor::randn([cfg.batch, cfg.noise], FLOAT_CPU), &fake_c, true);
        let (scores, logits) = critic.forward(&fake, &fake_c);
        let mut g_loss = loss::gan_generator_loss(&scores);
        if let Some(logits) = &logits {
            g_loss += loss::condition_classification_loss(logits, &fake_c, spec);
        }
        opt_g.backward_step(&g_loss);
        opt_d.set_trainable(true);
        if !g_loss.double_value(&[]).is_finite() {
            return Err(Error::Diverged(format!("{}: G's loss is not finite at step {step}", cfg.conditioning.name())));
        }
    }

    // Measured on both classes, the generator in evaluation mode (batch norm's running statistics).
    let n = MEASURED_PER_CLASS;
    let class_labels = Tensor::cat(
        &[Tensor::zeros([n], (Kind::Int64, Device::Cpu)), Tensor::ones([n], (Kind::Int64, Device::Cpu))],
        0,
    );
    let cond = one_hot(&class_labels);
    let generated = tch::no_grad(|| generator.generate(&Tensor::randn([2 * n, cfg.noise], FLOAT_CPU), &cond, false));
    let real = cfg.data.sample(&class_labels);
    let halves =
        |t: &Tensor| -> Result<[Vec<(f64, f64)>; 2]> { Ok([points(&t.narrow(0, 0, n))?, points(&t.narrow(0, n, n))?]) };
    let (generated, real_points) = (halves(&generated)?, halves(&real)?);
    let condition_gap = tch::no_grad(|| {
        let own = critic.forward(&real, &cond).0;
        let other = critic.forward(&real, &one_hot(&(-&class_labels + 1))).0;
        (own - other).mean(Kind::Float).double_value(&[])
    });
    let (scale_gap, shift_gap) = tch::no_grad(|| {
        let (gamma, beta) = generator.norms[0].scale_and_shift(&Tensor::eye(CLASSES, FLOAT_CPU));
        let gap = |t: &Tensor| (t.get(0) - t.get(1)).abs().mean(Kind::Float).double_value(&[]);
        (gap(&gamma), gap(&beta))
    });
    let overlap = |p: &[Vec<(f64, f64)>; 2]| [cfg.data.overlap_share(&p[0]), cfg.data.overlap_share(&p[1])];
    Ok(ConditionalToyRun {
        config: cfg.clone(),
        generated_overlap: overlap(&generated),
        real_overlap: overlap(&real_points),
        generated,
        real: real_points,
        condition_gap,
        scale_gap,
        shift_gap,
        seconds: start.elapsed().as_secs_f64(),
    })
}

impl ConditionalToyRun {
    /// Generated share in the overlap strip, both classes together.
    pub fn generated_overlap_share(&self) -> f64 {
        (self.generated_overlap[0] + self.generated_overlap[1]) / 2.0
    }

    /// Real share in the overlap strip, both classes together.
    pub fn real_overlap_share(&self) -> f64 {
        (self.real_overlap[0] + self.real_overlap[1]) / 2.0
    }
}

/// Generated points of both classes (600 each) over the real ones, and the strip's edges.
pub fn conditional_chart(run: &ConditionalToyRun) -> Result<Figure> {
    let shown = 600;
    let take = |p: &Vec<(f64, f64)>| p.iter().copied().take(shown).collect::<Vec<_>>();
    let strip = run.config.data.strip;
    // Both edges in one series, a non-finite point between them breaking the line.
    let edges = vec![(-strip, -2.0), (-strip, 2.0), (f64::NAN, f64::NAN), (strip, -2.0), (strip, 2.0)];
    let series = vec![
        Series::markers("real, class 0", take(&run.real[0])),
        Series::markers("real, class 1", take(&run.real[1])),
        Series::markers("generated, class 0", take(&run.generated[0])),
        Series::markers("generated, class 1", take(&run.generated[1])),
        Series::new("overlap strip", edges),
    ];
    plot::line_chart_equal_axes(
        &format!("Two overlapping classes: {}", run.config.conditioning.name()),
        "x₁",
        "x₂",
        &series,
    )
}

/// Share of generated points in the overlap strip, one bar per run, with the real share as the reference line.
pub fn overlap_chart(runs: &[&ConditionalToyRun]) -> Result<Figure> {
    let labels: Vec<String> = runs.iter().map(|r| r.config.conditioning.name().to_string()).collect();
    let values: Vec<f64> = runs.iter().map(|r| 100.0 * r.generated_overlap_share()).collect();
    let real = runs.first().map_or(0.0, |r| 100.0 * r.real_overlap_share());
    plot::bar_chart(
        "Generated points in the overlap strip",
        "% of generated points",
        &labels,
        &values,
        Some((real, "real")),
    )
}

#[cfg(test)]
mod claims {
    use super::*;

    /// What notebook 02c shows with the default profile: AC-GAN's generator thins out the overlap.
    #[test]
    fn acgan_avoids_the_overlap() {
        let _rng = crate::test_support::torch_rng();
        tch::set_num_threads(1);
        let cfg = ConditionalToyConfig::new(ToyConditioning::AuxiliaryClassifier, conditional_steps(Profile::Default));
        let run = train_conditional_toy(&cfg).unwrap();
        assert!(
            run.generated_overlap_share() < 0.5 * run.real_overlap_share(),
            "{} vs {}",
            run.generated_overlap_share(),
            run.real_overlap_share()
        );
        assert!(run.condition_gap.abs() < 1e-6, "AC-GAN's adversarial score ignores c");
    }
}
