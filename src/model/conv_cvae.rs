//! The Sign Language MNIST study's convolutional CVAE.
//!
//! Encoder: image ⊕ condition tiled as extra channels → three 3×3 stride-2
//! convolutions without padding (28→13→6→2), each ReLU then batch norm →
//! flatten → dense to (mean, log-variance).
//! Decoder: z ⊕ condition → dense to 7·7·`dense_channels` → reshape →
//! transposed convolutions (3×3, stride 2: 7→14→28), ReLU, batch norm after the
//! first → a final 1-filter transposed convolution (stride 1) giving logits.

use serde::{Deserialize, Serialize};
use tch::nn;
use tch::Tensor;

use super::Cvae;

/// Architecture of the convolutional CVAE. Defaults are the study's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConvCvaeConfig {
    /// Encoder filters of the three stride-2 convolutions.
    pub encoder_filters: [i64; 3],
    /// Latent dimensions.
    pub latent: i64,
    /// Channels of the decoder's 7×7 seed (the study: equal to the latent size).
    pub dense_channels: i64,
    /// Filters of the two stride-2 transposed convolutions.
    pub decoder_filters: [i64; 2],
}

impl Default for ConvCvaeConfig {
    fn default() -> Self {
        ConvCvaeConfig { encoder_filters: [128, 64, 128], latent: 512, dense_channels: 512, decoder_filters: [128, 64] }
    }
}

impl ConvCvaeConfig {
    /// Multiply-accumulates of one forward pass (encoder and decoder) for one
    /// image, counted layer by layer; a training step costs about three times
    /// this (forward, and backward through inputs and weights).
    pub fn forward_macs(&self, cond_dim: i64) -> u64 {
        let conv = |cin: i64, cout: i64, out_hw: i64| cin * cout * 9 * out_hw * out_hw;
        // A transposed convolution scatters each input pixel through a 3×3 kernel.
        let tconv = |cin: i64, cout: i64, in_hw: i64| cin * cout * 9 * in_hw * in_hw;
        let [e0, e1, e2] = self.encoder_filters;
        let [d1, d2] = self.decoder_filters;
        let encoder = conv(1 + cond_dim, e0, 13) + conv(e0, e1, 6) + conv(e1, e2, 2) + e2 * 4 * 2 * self.latent;
        let decoder = (self.latent + cond_dim) * 49 * self.dense_channels
            + tconv(self.dense_channels, d1, 7)
            + tconv(d1, d2, 14)
            + tconv(d2, 1, 28);
        (encoder + decoder) as u64
    }

    /// Floating-point operations of training on one image (≈ 3 × 2 × forward MACs).
    pub fn training_flops_per_image(&self, cond_dim: i64) -> f64 {
        6.0 * self.forward_macs(cond_dim) as f64
    }
}

#[derive(Debug)]
pub struct ConvCvae {
    enc_convs: Vec<(nn::Conv2D, nn::BatchNorm)>,
    enc_out: nn::Linear,
    dec_in: nn::Linear,
    dec_up1: nn::ConvTranspose2D,
    dec_bn1: nn::BatchNorm,
    dec_up2: nn::ConvTranspose2D,
    dec_out: nn::ConvTranspose2D,
    latent: i64,
    dense_channels: i64,
}

impl ConvCvae {
    /// cond_dim: length of the condition vector (1 for a binary task, else one-hot).
    pub fn new(vs: &nn::Path, cfg: &ConvCvaeConfig, cond_dim: i64) -> Self {
        let enc = vs / "enc";
        let stride2 = nn::ConvConfig { stride: 2, ..Default::default() };
        let mut channels = 1 + cond_dim;
        let mut enc_convs = Vec::new();
        for (i, &f) in cfg.encoder_filters.iter().enumerate() {
            let conv = nn::conv2d(&enc / format!("conv{i}"), channels, f, 3, stride2);
            let bn = nn::batch_norm2d(&enc / format!("bn{i}"), f, Default::default());
            enc_convs.push((conv, bn));
            channels = f;
        }
        // 28 → 13 → 6 → 2 without padding
        let flat = channels * 2 * 2;
        let enc_out = nn::linear(&enc / "out", flat, 2 * cfg.latent, Default::default());

        let dec = vs / "dec";
        let up = nn::ConvTransposeConfig { stride: 2, padding: 1, output_padding: 1, ..Default::default() };
        let same = nn::ConvTransposeConfig { stride: 1, padding: 1, ..Default::default() };
        let dec_in = nn::linear(&dec / "in", cfg.latent + cond_dim, 7 * 7 * cfg.dense_channels, Default::default());
        let [f1, f2] = cfg.decoder_filters;
        ConvCvae {
            enc_convs,
            enc_out,
            dec_in,
            dec_up1: nn::conv_transpose2d(&dec / "up1", cfg.dense_channels, f1, 3, up),
            dec_bn1: nn::batch_norm2d(&dec / "bn1", f1, Default::default()),
            dec_up2: nn::conv_transpose2d(&dec / "up2", f1, f2, 3, up),
            dec_out: nn::conv_transpose2d(&dec / "out", f2, 1, 3, same),
            latent: cfg.latent,
            dense_channels: cfg.dense_channels,
        }
    }
}

/// Tiles a condition vector over the image plane. cond: [b, c] → [b, c, 28, 28]
pub fn tile_condition(cond: &Tensor) -> Tensor {
    let s = cond.size();
    cond.view([s[0], s[1], 1, 1]).expand([s[0], s[1], 28, 28], false)
}

impl Cvae for ConvCvae {
    fn encode(&self, xs: &Tensor, cond: &Tensor, train: bool) -> (Tensor, Tensor) {
        let mut h = Tensor::cat(&[xs, &tile_condition(cond)], 1);
        for (conv, bn) in &self.enc_convs {
            h = h.apply(conv).relu().apply_t(bn, train);
        }
        let stats = h.flatten(1, -1).apply(&self.enc_out);
        let halves = stats.chunk(2, 1);
        (halves[0].shallow_clone(), halves[1].shallow_clone())
    }

    fn decode(&self, z: &Tensor, cond: &Tensor, train: bool) -> Tensor {
        let b = z.size()[0];
        Tensor::cat(&[z, cond], 1)
            .apply(&self.dec_in)
            .view([b, self.dense_channels, 7, 7])
            .apply(&self.dec_up1)
            .relu()
            .apply_t(&self.dec_bn1, train)
            .apply(&self.dec_up2)
            .relu()
            .apply(&self.dec_out)
    }

    fn latent(&self) -> i64 {
        self.latent
    }
}
