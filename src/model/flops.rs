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
//!
//! The conv CVAE's layers are counted by [`ConvCvaeConfig::layer_macs`]; the
//! report's compute shares and the benchmark's FLOP/s both use these counts.

use super::{ConvCvaeConfig, MlpCganConfig, MlpCvaeConfig};
use crate::data::PIXELS_I64;

/// FLOPs per image of one MLP CVAE training step (see the module doc): the
/// encoder's first layer takes data and gets no input gradient.
pub fn mlp_cvae_train_flops_per_image(cfg: &MlpCvaeConfig, cond_dim: i64) -> f64 {
    let enc_hidden = (PIXELS_I64 + cond_dim) * cfg.hidden;
    let forward =
        enc_hidden + 2 * cfg.hidden * cfg.latent + (cfg.latent + cond_dim) * cfg.hidden + cfg.hidden * PIXELS_I64;
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
    let g = g1 + gh1 * gh2 + gh2 * PIXELS_I64;
    let d1 = (PIXELS_I64 + cond_dim) * dh1;
    let d = d1 + dh1 * dh2 + dh2;
    2.0 * (3 * g - g1 + 9 * d - 2 * d1) as f64
}

/// FLOPs per image of one conv CVAE training step (forward + backward):
/// 2 × (3 × forward MACs − the MACs of the layers fed data alone), i.e. ≈ 3 ×
/// forward MACs × 2 less the input gradients nobody needs: those of the first
/// convolution (image ⊕ one-hot condition; 2.5 % at the study's widths) or,
/// with condition embeddings, of the embeddings (their input is the one-hot
/// condition, while the first convolution then passes a gradient to the embedding).
pub fn conv_cvae_train_flops_per_image(cfg: &ConvCvaeConfig, cond_dim: i64) -> f64 {
    let layers = cfg.layer_macs(cond_dim);
    let forward: i64 = layers.iter().map(|(_, m)| m).sum();
    let data_fed = |name: &str| {
        if cfg.condition_embedding > 0 {
            name.ends_with(".cond_embed")
        } else {
            name == "enc.conv0"
        }
    };
    let no_input_gradient: i64 = layers.iter().filter(|(n, _)| data_fed(n)).map(|(_, m)| m).sum();
    2.0 * (3 * forward - no_input_gradient) as f64
}
