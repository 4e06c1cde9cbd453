//! Analytic FLOP counts of a training step, to put achieved FLOP/s against SGEMM.
//!
//! Only the layers with weights count (convolutions, transposed convolutions,
//! dense layers), as PyTorch's `FlopCounterMode` does: batch norm, ReLU, bias
//! adds, the reparameterization, the loss and the optimiser are O(parameters +
//! activations), under 1% of the total here. Each count below agrees exactly
//! with `FlopCounterMode` on the reference script's models (checked by hand:
//! conv CVAE 383.8 MFLOP per image, MLP CVAE 1.25, MLP CGAN step 11.65).
//!
//! Backward costs two forwards (gradients with respect to weights and to
//! inputs), except that a layer whose input needs no gradient (the first layer
//! of a network fed data) computes no input gradient: hence
//! 2 FLOP/MAC × (3 × forward MACs − those first layers' MACs).

use crate::model::{ConvCvaeConfig, MlpCganConfig, MlpCvaeConfig};

/// Multiply-accumulates per image of each weighted layer of the conv CVAE's
/// forward pass: (layer name, MACs). cond_dim: length of the condition vector.
///
/// - convolution: out_h · out_w · out_c · in_c · k²
/// - transposed convolution: in_h · in_w · in_c · out_c · k² (every input pixel
///   scatters a k×k×out_c patch; what libtorch's GEMM + col2im computes)
/// - dense: in · out
pub fn conv_cvae_layer_macs(cfg: &ConvCvaeConfig, cond_dim: i64) -> Vec<(String, i64)> {
    const K2: i64 = 9; // 3×3 kernels throughout
    let mut layers = Vec::new();
    // Encoder: image ⊕ tiled condition, 3×3 stride-2 convolutions without padding.
    let (mut side, mut channels) = (28i64, 1 + cond_dim);
    for (i, &f) in cfg.encoder_filters.iter().enumerate() {
        side = (side - 3) / 2 + 1;
        layers.push((format!("enc.conv{i}"), side * side * f * channels * K2));
        channels = f;
    }
    layers.push(("enc.out".into(), side * side * channels * 2 * cfg.latent));
    // Decoder: dense to a 7×7 seed, two stride-2 transposed convolutions (7→14→28),
    // then a 1-filter stride-1 transposed convolution at 28×28.
    let seed = 7 * 7 * cfg.dense_channels;
    layers.push(("dec.in".into(), (cfg.latent + cond_dim) * seed));
    let [f1, f2] = cfg.decoder_filters;
    layers.push(("dec.up1".into(), 7 * 7 * cfg.dense_channels * f1 * K2));
    layers.push(("dec.up2".into(), 14 * 14 * f1 * f2 * K2));
    layers.push(("dec.out".into(), 28 * 28 * f2 * K2));
    layers
}

/// Forward multiply-accumulates per image of the conv CVAE (sum of [`conv_cvae_layer_macs`]).
pub fn conv_cvae_forward_macs(cfg: &ConvCvaeConfig, cond_dim: i64) -> i64 {
    conv_cvae_layer_macs(cfg, cond_dim).iter().map(|(_, m)| m).sum()
}

/// FLOPs per image of one conv CVAE training step (forward + backward):
/// 2 × (3 × forward MACs − the first convolution's MACs), i.e. ≈ 3 × forward
/// MACs × 2, less the input gradient of the first convolution, whose input
/// (image ⊕ condition) needs none (2.5% at the study's widths).
pub fn conv_cvae_train_flops_per_image(cfg: &ConvCvaeConfig, cond_dim: i64) -> f64 {
    let layers = conv_cvae_layer_macs(cfg, cond_dim);
    let forward: i64 = layers.iter().map(|(_, m)| m).sum();
    2.0 * (3 * forward - layers[0].1) as f64
}

/// FLOPs per image of one MLP CVAE training step (see the module doc): the
/// encoder's first layer takes data and gets no input gradient.
pub fn mlp_cvae_train_flops_per_image(cfg: &MlpCvaeConfig, cond_dim: i64) -> f64 {
    let enc_hidden = (784 + cond_dim) * cfg.hidden;
    let forward = enc_hidden + 2 * cfg.hidden * cfg.latent + (cfg.latent + cond_dim) * cfg.hidden + cfg.hidden * 784;
    2.0 * (3 * forward - enc_hidden) as f64
}

/// FLOPs per real image of one MLP CGAN step as `gan_step` takes it (BCE, one
/// discriminator and one generator update), with g / d the generator's /
/// discriminator's forward MACs and g1 / d1 those of their first layers:
///
/// - generator forward: g
/// - discriminator update: forward on real and on (detached) fake, 2d; backward
///   2d for weights + 2(d − d1) for inputs (neither input needs a gradient)
/// - generator update: discriminator forward d and backward 2d (its input, the
///   fake, needs a gradient); generator backward g + (g − g1)
///
/// total 2 × (3g − g1 + 9d − 2·d1).
pub fn mlp_cgan_step_flops_per_image(cfg: &MlpCganConfig, cond_dim: i64) -> f64 {
    let [gh1, gh2] = cfg.generator_hidden;
    let [dh1, dh2] = cfg.discriminator_hidden;
    let g1 = (cfg.noise + cond_dim) * gh1;
    let g = g1 + gh1 * gh2 + gh2 * 784;
    let d1 = (784 + cond_dim) * dh1;
    let d = d1 + dh1 * dh2 + dh2;
    2.0 * (3 * g - g1 + 9 * d - 2 * d1) as f64
}
