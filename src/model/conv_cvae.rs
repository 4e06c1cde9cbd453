//! The Sign Language MNIST study's convolutional CVAE, with the decoder options
//! of issue 17 (all off by default: the default-built model is the study's).
//!
//! Encoder: image ⊕ condition tiled as extra channels → three 3×3 stride-2
//! convolutions without padding (28→13→6→2), each ReLU then batch norm →
//! flatten → dense to (mean, log-variance).
//! Decoder: z ⊕ condition → dense to 7·7·`dense_channels` → reshape →
//! two upsampling stages (7→14→28; the study: 3×3 stride-2 transposed
//! convolutions), ReLU, batch norm after the first → a final 1-filter transposed
//! convolution (3×3, stride 1) giving logits.
//!
//! Options ([`ConvCvaeConfig`]): the upsampling ([`DecoderUpsampling`]), a learned
//! condition embedding in place of the raw condition vector, and the condition
//! fed (tiled) to every upsampling stage as well as to the decoder's input.

use serde::{Deserialize, Serialize};
use tch::nn;
use tch::Tensor;

use super::layers::Upsample;
pub use super::layers::Upsampling as DecoderUpsampling;
use super::prior_net::{ConditionalPrior, PriorNet};
use super::vamp_prior::VampPrior;
use super::Cvae;
use crate::data::{PIXELS_I64, SIDE_I64};

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
    /// Filters of the two upsampling stages.
    pub decoder_filters: [i64; 2],
    /// How the decoder upsamples (the study: `transposed3`).
    pub decoder_upsampling: DecoderUpsampling,
    /// 0 (the study): the condition vector as it is (one-hot, or a bit) is
    /// concatenated to the encoder's image channels and to the decoder's input.
    /// n > 0: a learned embedding of size n, a linear layer on the condition
    /// vector, takes its place; the encoder (`enc.cond_embed`) and the decoder
    /// (`dec.cond_embed`) have one each.
    pub condition_embedding: i64,
    /// The decoder also gets the condition (embedded when there is a
    /// `condition_embedding`), tiled over the feature map and concatenated as extra
    /// channels, before each of its two upsampling stages, not only at its dense input.
    pub condition_every_stage: bool,
    /// Train a learned conditional prior p(z | c) with the model and sample from
    /// it ([`super::prior_net::PriorNet`], under `prior`); off (the study): N(0, I).
    #[serde(default, skip_serializing_if = "crate::serde_helpers::omitted_at_default")]
    pub learned_prior: bool,
    /// Gaussians per condition in the learned prior (1: one Gaussian; K > 1: a
    /// mixture of K diagonal Gaussians, [`super::prior_net`]). Only with `learned_prior`.
    #[serde(default = "crate::serde_helpers::one", skip_serializing_if = "crate::serde_helpers::omitted_at_one")]
    pub prior_components: i64,
    /// The learned prior is a conditional VampPrior: the encoder's posteriors of
    /// `prior_components` learned pseudo-inputs per condition ([`super::vamp_prior`]),
    /// not free Gaussians. Only with `learned_prior`.
    #[serde(default, skip_serializing_if = "crate::serde_helpers::omitted_at_default")]
    pub vamp_prior: bool,
}

impl Default for ConvCvaeConfig {
    fn default() -> Self {
        ConvCvaeConfig {
            encoder_filters: [128, 64, 128],
            latent: 512,
            dense_channels: 512,
            decoder_filters: [128, 64],
            decoder_upsampling: DecoderUpsampling::Transposed3,
            condition_embedding: 0,
            condition_every_stage: false,
            learned_prior: false,
            prior_components: 1,
            vamp_prior: false,
        }
    }
}

impl ConvCvaeConfig {
    /// Length of the condition as the networks see it: the embedding's size, or
    /// the raw vector's (`cond_dim`).
    pub fn condition_width(&self, cond_dim: i64) -> i64 {
        if self.condition_embedding > 0 {
            self.condition_embedding
        } else {
            cond_dim
        }
    }

    /// Multiply-accumulates per image of each weighted layer of one forward pass
    /// (encoder and decoder): (variable prefix, MACs), with the options' shapes.
    ///
    /// - convolution: out_h · out_w · out_c · in_c · k²
    /// - transposed convolution: in_h · in_w · in_c · out_c · k² (each input pixel
    ///   scatters a k×k×out_c patch)
    /// - dense: in · out
    pub fn layer_macs(&self, cond_dim: i64) -> Vec<(String, i64)> {
        let c = self.condition_width(cond_dim);
        let mut layers = Vec::new();
        if self.condition_embedding > 0 {
            layers.push(("enc.cond_embed".to_string(), cond_dim * c));
        }
        // 3×3 stride-2 convolutions without padding: 28 → 13 → 6 → 2
        let (mut side, mut channels) = (28i64, 1 + c);
        for (i, &f) in self.encoder_filters.iter().enumerate() {
            side = (side - 3) / 2 + 1;
            layers.push((format!("enc.conv{i}"), side * side * f * channels * 9));
            channels = f;
        }
        layers.push(("enc.out".into(), side * side * channels * 2 * self.latent));
        if self.condition_embedding > 0 {
            layers.push(("dec.cond_embed".to_string(), cond_dim * c));
        }
        layers.push(("dec.in".into(), (self.latent + c) * 7 * 7 * self.dense_channels));
        let stage = if self.condition_every_stage { c } else { 0 };
        let [f1, f2] = self.decoder_filters;
        let up = |cin: i64, cout: i64, in_hw: i64| match self.decoder_upsampling {
            DecoderUpsampling::Transposed3 => in_hw * in_hw * cin * cout * 9,
            DecoderUpsampling::Transposed4 => in_hw * in_hw * cin * cout * 16,
            // A 3×3 convolution at the doubled resolution.
            DecoderUpsampling::ResizeConv => 4 * in_hw * in_hw * cin * cout * 9,
        };
        layers.push(("dec.up1".into(), up(self.dense_channels + stage, f1, 7)));
        layers.push(("dec.up2".into(), up(f1 + stage, f2, 14)));
        // A 1-filter 3×3 stride-1 transposed convolution at 28×28.
        layers.push(("dec.out".into(), PIXELS_I64 * f2 * 9));
        layers
    }

    /// Multiply-accumulates of one forward pass (encoder and decoder) for one
    /// image, the sum of [`ConvCvaeConfig::layer_macs`]; a training step costs
    /// about three times this (forward, and backward through inputs and weights).
    pub fn forward_macs(&self, cond_dim: i64) -> u64 {
        self.layer_macs(cond_dim).iter().map(|(_, m)| *m as u64).sum()
    }

    /// Floating-point operations of training on one image
    /// ([`super::flops::conv_cvae_train_flops_per_image`]).
    pub fn training_flops_per_image(&self, cond_dim: i64) -> f64 {
        super::flops::conv_cvae_train_flops_per_image(self, cond_dim)
    }

    /// Floating-point operations a VampPrior adds to one training step whose batch holds
    /// `conditions` distinct conditions: the pseudo-input layer and the encoder on K
    /// pseudo-inputs per condition, forward and both backward passes (the pseudo-inputs
    /// are trained, so their input gradient counts); 0 without a VampPrior.
    pub fn prior_training_flops_per_step(&self, cond_dim: i64, conditions: usize) -> f64 {
        if !(self.learned_prior && self.vamp_prior) {
            return 0.0;
        }
        let encoder: i64 =
            self.layer_macs(cond_dim).iter().filter(|(n, _)| n.starts_with("enc.")).map(|(_, m)| m).sum();
        let pseudo = cond_dim * PIXELS_I64; // per pseudo-input
        2.0 * 3.0 * ((encoder + pseudo) * self.prior_components) as f64 * conditions as f64
    }
}

#[derive(Debug)]
pub struct ConvCvae {
    /// `condition_embedding` > 0: the encoder's and the decoder's embeddings of the condition.
    enc_cond: Option<nn::Linear>,
    dec_cond: Option<nn::Linear>,
    enc_convs: Vec<(nn::Conv2D, nn::BatchNorm)>,
    enc_out: nn::Linear,
    dec_in: nn::Linear,
    dec_up1: Upsample,
    dec_bn1: nn::BatchNorm,
    dec_up2: Upsample,
    dec_out: nn::ConvTranspose2D,
    latent: i64,
    dense_channels: i64,
    condition_every_stage: bool,
    prior: Option<LearnedPrior>,
}

/// The form of a conv CVAE's learned prior.
#[derive(Debug)]
enum LearnedPrior {
    Gaussians(PriorNet),
    Vamp(VampPrior),
}

impl ConvCvae {
    /// cond_dim: length of the condition vector (1 for a binary task, else one-hot).
    pub fn new(vs: &nn::Path, cfg: &ConvCvaeConfig, cond_dim: i64) -> Self {
        let c = cfg.condition_width(cond_dim);
        let embed = |p: nn::Path| (cfg.condition_embedding > 0).then(|| nn::linear(p, cond_dim, c, Default::default()));
        let enc = vs / "enc";
        let enc_cond = embed(&enc / "cond_embed");
        let stride2 = nn::ConvConfig { stride: 2, ..Default::default() };
        let mut channels = 1 + c;
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
        let dec_cond = embed(&dec / "cond_embed");
        let same = nn::ConvTransposeConfig { stride: 1, padding: 1, ..Default::default() };
        let dec_in = nn::linear(&dec / "in", cfg.latent + c, 7 * 7 * cfg.dense_channels, Default::default());
        let stage = if cfg.condition_every_stage { c } else { 0 };
        let [f1, f2] = cfg.decoder_filters;
        ConvCvae {
            enc_cond,
            dec_cond,
            enc_convs,
            enc_out,
            dec_in,
            dec_up1: Upsample::new(&dec / "up1", cfg.dense_channels + stage, f1, cfg.decoder_upsampling),
            dec_bn1: nn::batch_norm2d(&dec / "bn1", f1, Default::default()),
            dec_up2: Upsample::new(&dec / "up2", f1 + stage, f2, cfg.decoder_upsampling),
            dec_out: nn::conv_transpose2d(&dec / "out", f2, 1, 3, same),
            latent: cfg.latent,
            dense_channels: cfg.dense_channels,
            condition_every_stage: cfg.condition_every_stage,
            prior: cfg.learned_prior.then(|| match cfg.vamp_prior {
                true => LearnedPrior::Vamp(VampPrior::new(&(vs / "prior"), cond_dim, cfg.prior_components)),
                false => {
                    LearnedPrior::Gaussians(PriorNet::new(&(vs / "prior"), cond_dim, cfg.latent, cfg.prior_components))
                }
            }),
        }
    }
}

/// Tiles a condition vector over the image plane. cond: [b, c] → [b, c, 28, 28]
pub fn tile_condition(cond: &Tensor) -> Tensor {
    tile_condition_to(cond, SIDE_I64)
}

/// Tiles a condition vector over a `side`×`side` plane. cond: [b, c] → [b, c, side, side]
pub fn tile_condition_to(cond: &Tensor, side: i64) -> Tensor {
    let s = cond.size();
    cond.view([s[0], s[1], 1, 1]).expand([s[0], s[1], side, side], false)
}

/// Concatenates the tiled condition to a feature map. h: [b, ch, s, s], cond: [b, c] → [b, ch + c, s, s]
fn with_condition(h: &Tensor, cond: &Tensor) -> Tensor {
    Tensor::cat(&[h, &tile_condition_to(cond, h.size()[2])], 1)
}

/// The condition as a network sees it: embedded, or as it is. cond: [b, c] → [b, width]
fn condition(embedding: &Option<nn::Linear>, cond: &Tensor) -> Tensor {
    match embedding {
        Some(e) => cond.apply(e),
        None => cond.shallow_clone(),
    }
}

impl Cvae for ConvCvae {
    fn encode(&self, xs: &Tensor, cond: &Tensor, train: bool) -> (Tensor, Tensor) {
        let mut h = with_condition(xs, &condition(&self.enc_cond, cond));
        for (conv, bn) in &self.enc_convs {
            h = h.apply(conv).relu().apply_t(bn, train);
        }
        let stats = h.flatten(1, -1).apply(&self.enc_out);
        let halves = stats.chunk(2, 1);
        (halves[0].shallow_clone(), halves[1].shallow_clone())
    }

    fn decode(&self, z: &Tensor, cond: &Tensor, train: bool) -> Tensor {
        let b = z.size()[0];
        let c = condition(&self.dec_cond, cond);
        let stage = |h: Tensor| if self.condition_every_stage { with_condition(&h, &c) } else { h };
        let h = Tensor::cat(&[z, &c], 1).apply(&self.dec_in).view([b, self.dense_channels, 7, 7]);
        let h = self.dec_up1.forward(&stage(h)).relu().apply_t(&self.dec_bn1, train);
        self.dec_up2.forward(&stage(h)).relu().apply(&self.dec_out)
    }

    fn latent(&self) -> i64 {
        self.latent
    }

    fn prior(&self, cond: &Tensor) -> Option<ConditionalPrior> {
        self.prior.as_ref().map(|p| match p {
            LearnedPrior::Gaussians(net) => net.forward(cond),
            // Eval mode: batch norm's running statistics, the ones sampling uses.
            LearnedPrior::Vamp(vamp) => vamp.forward(cond, |x, c| self.encode(x, c, false)),
        })
    }

    fn pseudo_inputs(&self, cond: &Tensor) -> Option<Tensor> {
        match &self.prior {
            Some(LearnedPrior::Vamp(vamp)) => Some(vamp.pseudo_inputs(cond)),
            _ => None,
        }
    }
}
