//! The Kuzushiji-49 study's MLP CGAN.
//!
//! The study gives no hidden sizes; condgen uses the common choice of the
//! conditional-GAN tutorials it follows: generator [noise 64 ⊕ condition] →
//! 256 → 512 → 784 (ReLU, Tanh out), discriminator [784 ⊕ condition] → 512 →
//! 256 → 1 (ReLU). The discriminator returns a logit: its sigmoid is the
//! study's sigmoid output, and the BCE is computed on logits for stability.

use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

use super::{Discriminator, Generator};
use crate::data::{PIXELS_I64, SIDE_I64};

/// Architecture of the MLP CGAN.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MlpCganConfig {
    /// Noise dimensions fed to the generator.
    pub noise: i64,
    /// Generator hidden layers.
    pub generator_hidden: [i64; 2],
    /// Discriminator hidden layers.
    pub discriminator_hidden: [i64; 2],
}

impl Default for MlpCganConfig {
    fn default() -> Self {
        MlpCganConfig { noise: 64, generator_hidden: [256, 512], discriminator_hidden: [512, 256] }
    }
}

#[derive(Debug)]
pub struct MlpGenerator {
    layers: [nn::Linear; 3],
    noise: i64,
}

impl MlpGenerator {
    pub fn new(vs: &nn::Path, cfg: &MlpCganConfig, cond_dim: i64) -> Self {
        let [h1, h2] = cfg.generator_hidden;
        let c = Default::default();
        MlpGenerator {
            layers: [
                nn::linear(vs / "fc1", cfg.noise + cond_dim, h1, c),
                nn::linear(vs / "fc2", h1, h2, c),
                nn::linear(vs / "out", h2, PIXELS_I64, c),
            ],
            noise: cfg.noise,
        }
    }
}

impl Generator for MlpGenerator {
    fn generate(&self, noise: &Tensor, cond: &Tensor, _train: bool) -> Tensor {
        let b = noise.size()[0];
        Tensor::cat(&[noise, cond], 1)
            .apply(&self.layers[0])
            .relu()
            .apply(&self.layers[1])
            .relu()
            .apply(&self.layers[2])
            .tanh()
            .view([b, 1, SIDE_I64, SIDE_I64])
    }

    fn noise_dim(&self) -> i64 {
        self.noise
    }
}

#[derive(Debug)]
pub struct MlpDiscriminator {
    layers: [nn::Linear; 3],
}

impl MlpDiscriminator {
    pub fn new(vs: &nn::Path, cfg: &MlpCganConfig, cond_dim: i64) -> Self {
        let [h1, h2] = cfg.discriminator_hidden;
        let c = Default::default();
        MlpDiscriminator {
            layers: [
                nn::linear(vs / "fc1", PIXELS_I64 + cond_dim, h1, c),
                nn::linear(vs / "fc2", h1, h2, c),
                nn::linear(vs / "out", h2, 1, c),
            ],
        }
    }
}

impl Discriminator for MlpDiscriminator {
    fn discriminate(&self, xs: &Tensor, cond: &Tensor, _train: bool) -> Tensor {
        let b = xs.size()[0];
        Tensor::cat(&[&xs.view([b, PIXELS_I64]), cond], 1)
            .apply(&self.layers[0])
            .relu()
            .apply(&self.layers[1])
            .relu()
            .apply(&self.layers[2])
            .view([b])
    }
}
