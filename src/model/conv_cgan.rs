//! A DCGAN-style conditional GAN at 28×28, with the conditioning and
//! stabilisation of modern conditional GANs as options.
//!
//! Generator: [noise ⊕ condition] → dense 7·7·2`base` → norm, ReLU →
//! transposed conv 4×4 stride 2 (7→14) → norm, ReLU → transposed conv 4×4
//! stride 2 (14→28) → Tanh (or, as an option, nearest-neighbour ×2 then a 3×3
//! convolution in place of each transposed convolution). "norm" is batch norm (the baseline), or
//! conditional batch norm: a scale and shift per condition, so the condition
//! steers every stage, not only the input.
//!
//! Discriminator (DCGAN layout, the baseline): conv 4×4 stride 2 (28→14),
//! LeakyReLU 0.2 → conv 4×4 stride 2 (14→7), LeakyReLU 0.2 → features φ(x)
//! [b, 2·base·49] → dense → 1 score. Or, as an option, the "standard CNN" of
//! Miyato et al. 2018 (SNGAN, table 3) cut to 28×28: 3×3 (base) → 4×4 stride 2
//! (base) → 3×3 (2·base) → 4×4 stride 2 (2·base) → 3×3 (4·base), LeakyReLU 0.2
//! after each, then a sum over the 7×7 positions: φ(x) [b, 4·base]. Five layers
//! instead of two see a hand's shape, not only its local texture.
//! It sees the condition either
//! - tiled as extra input channels (the baseline; the weakest way), or
//! - by projection (Miyato & Koyama 2018): score = ψ(φ(x)) + ⟨E c, φ(x)⟩, the
//!   form the optimal discriminator of a conditional GAN takes when p(c|x) is
//!   log-linear in the features.
//!
//! Options: spectral normalisation on every discriminator layer, and an
//! auxiliary classifier head predicting the condition (AC-GAN, Odena et al. 2017).
//! No batch norm in the discriminator, so the same network serves as a
//! WGAN-GP critic (the penalty is per-sample).

use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

use super::augment::{diff_augment, DiscriminatorAugment};
use super::conv_cvae::tile_condition;
use super::layers::{
    conv, dense, projection_score, with_minibatch_std, ConditionalBatchNorm, Conv, Dense, Upsample, Upsampling,
};
use super::{Discriminator, Generator};

/// How the discriminator sees the condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum DiscriminatorConditioning {
    /// The condition tiled over the image as extra input channels (DCGAN baseline).
    Tiled,
    /// A projection of the condition's embedding onto the image features.
    Projection,
}

/// The discriminator's layers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum DiscriminatorLayout {
    /// Two 4×4 stride-2 convolutions, features flattened (DCGAN).
    #[default]
    Dcgan,
    /// SNGAN's standard CNN: five convolutions (3×3 and 4×4 stride 2 in turn), features summed over positions.
    Standard,
}

/// How the generator's hidden layers see the condition (its input always has it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum GeneratorConditioning {
    /// Only concatenated to the noise; plain batch norm (DCGAN baseline).
    Input,
    /// Also through conditional batch norm at every stage.
    BatchNorm,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConvCganConfig {
    /// Noise dimensions fed to the generator.
    pub noise: i64,
    /// Base channel count: the generator's 7×7 seed has 2·base channels, its
    /// 14×14 layer base; the discriminator has base then 2·base filters.
    pub base_channels: i64,
    /// The discriminator's own base channel count when it differs from the
    /// generator's (None = `base_channels`): a wider critic at little cost to G.
    #[serde(default, skip_serializing_if = "crate::serde_helpers::omitted_at_default")]
    pub discriminator_channels: Option<i64>,
    /// How the discriminator sees the condition.
    pub discriminator: DiscriminatorConditioning,
    /// The discriminator's layers: DCGAN's two convolutions or SNGAN's five.
    pub discriminator_layout: DiscriminatorLayout,
    /// Spectral normalisation on every discriminator layer.
    pub spectral_norm: bool,
    /// How the generator's hidden layers see the condition.
    pub generator_conditioning: GeneratorConditioning,
    /// How the generator doubles its resolution (7→14→28): 4×4 stride-2
    /// transposed convolutions (DCGAN), or resize-then-convolve, which prints no checkerboard.
    pub generator_upsampling: Upsampling,
    /// Decay of an exponential moving average of the generator's weights,
    /// which then draws every sample (0 = no average; samples from the trained weights).
    pub generator_ema: f64,
    /// AC-GAN: a discriminator head that predicts the condition, trained on
    /// real images and making the generator's images classifiable.
    pub auxiliary_classifier: bool,
    /// Minibatch standard deviation (Karras et al. 2018, ProGAN §3): the
    /// discriminator's last feature map gets one more channel, the spread of its
    /// features across the batch, so a generator that draws one image per condition is easy to tell.
    /// Off: it changed little when measured (report/DECISIONS.md, "Minibatch standard deviation").
    #[serde(default, skip_serializing_if = "crate::serde_helpers::omitted_at_default")]
    pub minibatch_std: bool,
    /// DiffAugment (Zhao et al. 2020): what the discriminator's inputs, real and
    /// generated alike, go through in training ([`DiscriminatorAugment`]).
    /// Off: it trades coverage for fidelity (report/DECISIONS.md, "DiffAugment").
    #[serde(default, skip_serializing_if = "crate::serde_helpers::omitted_at_default")]
    pub augment: DiscriminatorAugment,
}

impl Default for ConvCganConfig {
    /// The DCGAN baseline: tiled condition, no spectral norm, plain batch norm, no average.
    fn default() -> Self {
        ConvCganConfig {
            noise: 100,
            base_channels: 64,
            discriminator_channels: None,
            discriminator: DiscriminatorConditioning::Tiled,
            discriminator_layout: DiscriminatorLayout::Dcgan,
            spectral_norm: false,
            generator_conditioning: GeneratorConditioning::Input,
            generator_upsampling: Upsampling::Transposed4,
            generator_ema: 0.0,
            auxiliary_classifier: false,
            minibatch_std: false,
            augment: DiscriminatorAugment::Off,
        }
    }
}

impl ConvCganConfig {
    /// The improved recipe: projection discriminator with spectral norm and an
    /// AC-GAN head, conditional batch norm in the generator, an averaged generator
    /// (train it with the hinge loss; see [`crate::train::TrainConfig::into_improved_cgan`]).
    pub fn improved(noise: i64, base_channels: i64) -> Self {
        ConvCganConfig {
            noise,
            base_channels,
            discriminator_channels: None,
            discriminator: DiscriminatorConditioning::Projection,
            discriminator_layout: DiscriminatorLayout::Dcgan,
            spectral_norm: true,
            generator_conditioning: GeneratorConditioning::BatchNorm,
            generator_upsampling: Upsampling::ResizeConv,
            generator_ema: 0.999,
            auxiliary_classifier: true,
            minibatch_std: false,
            augment: DiscriminatorAugment::Off,
        }
    }
}

/// Normalisation of a generator stage.
#[derive(Debug)]
enum StageNorm {
    Plain(nn::BatchNorm),
    Conditional(ConditionalBatchNorm),
}

impl StageNorm {
    fn forward_t(&self, xs: &Tensor, cond: &Tensor, train: bool) -> Tensor {
        match self {
            StageNorm::Plain(bn) => xs.apply_t(bn, train),
            StageNorm::Conditional(cbn) => cbn.forward_t(xs, cond, train),
        }
    }
}

#[derive(Debug)]
pub struct ConvGenerator {
    dense: nn::Linear,
    norm0: StageNorm,
    up1: Upsample,
    norm1: StageNorm,
    up2: Upsample,
    noise: i64,
    seed_channels: i64,
}

impl ConvGenerator {
    pub fn new(vs: &nn::Path, cfg: &ConvCganConfig, cond_dim: i64) -> Self {
        let base = cfg.base_channels;
        // The baseline normalises the dense layer's 7·7·2·base outputs one by one
        // (batch_norm1d); the conditional variant normalises its 2·base channels.
        let (norm0, norm1) = match cfg.generator_conditioning {
            GeneratorConditioning::Input => (
                StageNorm::Plain(nn::batch_norm1d(vs / "bn0", 7 * 7 * 2 * base, Default::default())),
                StageNorm::Plain(nn::batch_norm2d(vs / "bn1", base, Default::default())),
            ),
            GeneratorConditioning::BatchNorm => (
                StageNorm::Conditional(ConditionalBatchNorm::new(&(vs / "cbn0"), 2 * base, cond_dim)),
                StageNorm::Conditional(ConditionalBatchNorm::new(&(vs / "cbn1"), base, cond_dim)),
            ),
        };
        ConvGenerator {
            dense: nn::linear(vs / "dense", cfg.noise + cond_dim, 7 * 7 * 2 * base, Default::default()),
            norm0,
            up1: Upsample::new(vs / "up1", 2 * base, base, cfg.generator_upsampling),
            norm1,
            up2: Upsample::new(vs / "up2", base, 1, cfg.generator_upsampling),
            noise: cfg.noise,
            seed_channels: 2 * base,
        }
    }
}

impl Generator for ConvGenerator {
    fn generate(&self, noise: &Tensor, cond: &Tensor, train: bool) -> Tensor {
        let b = noise.size()[0];
        let seed = Tensor::cat(&[noise, cond], 1).apply(&self.dense);
        let seed = match &self.norm0 {
            StageNorm::Plain(bn) => seed.apply_t(bn, train).view([b, self.seed_channels, 7, 7]),
            conditional => conditional.forward_t(&seed.view([b, self.seed_channels, 7, 7]), cond, train),
        };
        let h = self.up1.forward(&seed.relu());
        self.up2.forward(&self.norm1.forward_t(&h, cond, train).relu()).tanh()
    }

    fn noise_dim(&self) -> i64 {
        self.noise
    }
}

#[derive(Debug)]
pub struct ConvDiscriminator {
    /// The convolutions, each followed by a LeakyReLU.
    convs: Vec<Conv>,
    layout: DiscriminatorLayout,
    /// Appends the minibatch-std channel to the last feature map.
    minibatch_std: bool,
    /// Applied to every input in training.
    augment: DiscriminatorAugment,
    out: Dense,
    /// Projection: the condition's embedding E c, one vector per condition in feature space.
    embed: Option<Dense>,
    /// AC-GAN: condition logits from the features.
    classifier: Option<Dense>,
}

impl ConvDiscriminator {
    pub fn new(vs: &nn::Path, cfg: &ConvCganConfig, cond_dim: i64) -> Self {
        let base = cfg.discriminator_channels.unwrap_or(cfg.base_channels);
        let sn = cfg.spectral_norm;
        let projection = cfg.discriminator == DiscriminatorConditioning::Projection;
        let in_channels = if projection { 1 } else { 1 + cond_dim };
        let extra = i64::from(cfg.minibatch_std);
        let (convs, features) = match cfg.discriminator_layout {
            DiscriminatorLayout::Dcgan => (
                vec![
                    conv(&(vs / "conv1"), in_channels, base, 4, 2, 1, sn),
                    conv(&(vs / "conv2"), base, 2 * base, 4, 2, 1, sn),
                ],
                (2 * base + extra) * 7 * 7,
            ),
            DiscriminatorLayout::Standard => {
                // (in, out, kernel, stride, padding): 28 → 28 → 14 → 14 → 7 → 7
                let layers = [
                    (in_channels, base, 3, 1, 1),
                    (base, base, 4, 2, 1),
                    (base, 2 * base, 3, 1, 1),
                    (2 * base, 2 * base, 4, 2, 1),
                    (2 * base, 4 * base, 3, 1, 1),
                ];
                let convs = layers
                    .iter()
                    .enumerate()
                    .map(|(i, &(cin, cout, k, s, p))| conv(&(vs / format!("conv{}", i + 1)), cin, cout, k, s, p, sn))
                    .collect();
                (convs, 4 * base + extra)
            }
        };
        ConvDiscriminator {
            convs,
            layout: cfg.discriminator_layout,
            minibatch_std: cfg.minibatch_std,
            augment: cfg.augment,
            out: dense(&(vs / "out"), features, 1, true, sn),
            embed: projection.then(|| dense(&(vs / "embed"), cond_dim, features, false, sn)),
            classifier: cfg.auxiliary_classifier.then(|| dense(&(vs / "classifier"), features, cond_dim, true, sn)),
        }
    }

    /// φ(x): [b, 2·base·49] (DCGAN layout) or [b, 4·base] (standard layout),
    /// with one more channel (49 or 1 more features) under `minibatch_std`
    fn features(&self, xs: &Tensor, cond: &Tensor, train: bool) -> Tensor {
        let xs = if train { diff_augment(xs, self.augment) } else { xs.shallow_clone() };
        let input = match self.embed {
            Some(_) => xs,
            None => Tensor::cat(&[&xs, &tile_condition(cond)], 1),
        };
        let h = self.convs.iter().fold(input, |h, c| super::leaky_relu_02(&c.forward_t(&h, train)));
        let h = if self.minibatch_std { with_minibatch_std(&h) } else { h };
        match self.layout {
            DiscriminatorLayout::Dcgan => h.flatten(1, -1),
            DiscriminatorLayout::Standard => h.sum_dim_intlist([2, 3].as_slice(), false, Kind::Float),
        }
    }

    fn score(&self, features: &Tensor, cond: &Tensor, train: bool) -> Tensor {
        let b = features.size()[0];
        let unconditional = self.out.forward_t(features, train).view([b]);
        match &self.embed {
            Some(embed) => projection_score(&unconditional, &embed.forward_t(cond, train), features),
            None => unconditional,
        }
    }
}

impl Discriminator for ConvDiscriminator {
    fn discriminate(&self, xs: &Tensor, cond: &Tensor, train: bool) -> Tensor {
        self.score(&self.features(xs, cond, train), cond, train)
    }

    fn discriminate_and_classify(&self, xs: &Tensor, cond: &Tensor, train: bool) -> (Tensor, Option<Tensor>) {
        let features = self.features(xs, cond, train);
        let logits = self.classifier.as_ref().map(|c| c.forward_t(&features, train));
        (self.score(&features, cond, train), logits)
    }
}
