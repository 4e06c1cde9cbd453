//! A DCGAN-style conditional GAN for the sign tasks, conditioned like the conv
//! CVAE (the condition tiled as extra image channels for the discriminator,
//! concatenated to the noise for the generator).
//!
//! Generator: [noise ⊕ condition] → dense 7·7·`base`·2, batch norm, ReLU →
//! transposed conv 4×4 stride 2 (7→14), batch norm, ReLU → transposed conv
//! 4×4 stride 2 (14→28) → Tanh.
//! Discriminator: image ⊕ tiled condition → conv 4×4 stride 2 (28→14),
//! LeakyReLU 0.2 → conv 4×4 stride 2 (14→7), LeakyReLU 0.2 → dense → 1 logit.
//! No batch norm in the discriminator, so the same network serves as a
//! WGAN-GP critic (the penalty is per-sample).

use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

use super::conv_cvae::tile_condition;
use super::{Discriminator, Generator};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConvCganConfig {
    /// Noise dimensions fed to the generator.
    pub noise: i64,
    /// Base channel count: the generator's 7×7 seed has 2·base channels, its
    /// 14×14 layer base; the discriminator has base then 2·base filters.
    pub base_channels: i64,
}

impl Default for ConvCganConfig {
    fn default() -> Self {
        ConvCganConfig { noise: 100, base_channels: 64 }
    }
}

#[derive(Debug)]
pub struct ConvGenerator {
    dense: nn::Linear,
    bn0: nn::BatchNorm,
    up1: nn::ConvTranspose2D,
    bn1: nn::BatchNorm,
    up2: nn::ConvTranspose2D,
    noise: i64,
    seed_channels: i64,
}

impl ConvGenerator {
    pub fn new(vs: &nn::Path, cfg: &ConvCganConfig, cond_dim: i64) -> Self {
        let base = cfg.base_channels;
        let up = nn::ConvTransposeConfig { stride: 2, padding: 1, ..Default::default() };
        ConvGenerator {
            dense: nn::linear(vs / "dense", cfg.noise + cond_dim, 7 * 7 * 2 * base, Default::default()),
            bn0: nn::batch_norm1d(vs / "bn0", 7 * 7 * 2 * base, Default::default()),
            up1: nn::conv_transpose2d(vs / "up1", 2 * base, base, 4, up),
            bn1: nn::batch_norm2d(vs / "bn1", base, Default::default()),
            up2: nn::conv_transpose2d(vs / "up2", base, 1, 4, up),
            noise: cfg.noise,
            seed_channels: 2 * base,
        }
    }
}

impl Generator for ConvGenerator {
    fn generate(&self, noise: &Tensor, cond: &Tensor, train: bool) -> Tensor {
        let b = noise.size()[0];
        Tensor::cat(&[noise, cond], 1)
            .apply(&self.dense)
            .apply_t(&self.bn0, train)
            .relu()
            .view([b, self.seed_channels, 7, 7])
            .apply(&self.up1)
            .apply_t(&self.bn1, train)
            .relu()
            .apply(&self.up2)
            .tanh()
    }

    fn noise_dim(&self) -> i64 {
        self.noise
    }
}

#[derive(Debug)]
pub struct ConvDiscriminator {
    conv1: nn::Conv2D,
    conv2: nn::Conv2D,
    out: nn::Linear,
}

impl ConvDiscriminator {
    pub fn new(vs: &nn::Path, cfg: &ConvCganConfig, cond_dim: i64) -> Self {
        let base = cfg.base_channels;
        let down = nn::ConvConfig { stride: 2, padding: 1, ..Default::default() };
        ConvDiscriminator {
            conv1: nn::conv2d(vs / "conv1", 1 + cond_dim, base, 4, down),
            conv2: nn::conv2d(vs / "conv2", base, 2 * base, 4, down),
            out: nn::linear(vs / "out", 2 * base * 7 * 7, 1, Default::default()),
        }
    }
}

impl Discriminator for ConvDiscriminator {
    fn discriminate(&self, xs: &Tensor, cond: &Tensor, _train: bool) -> Tensor {
        let b = xs.size()[0];
        Tensor::cat(&[xs, &tile_condition(cond)], 1)
            .apply(&self.conv1)
            .apply(&nn::func(super::leaky_relu_02))
            .apply(&self.conv2)
            .apply(&nn::func(super::leaky_relu_02))
            .flatten(1, -1)
            .apply(&self.out)
            .view([b])
    }
}
