//! The analytic FLOP counts (`condgen::model::flops`) against hand counts and
//! PyTorch's FlopCounterMode: the report's compute shares and the benchmark's
//! FLOP/s both rest on them.

use crate::common;

use condgen::model::flops;
use condgen::model::ConvCvaeConfig;

#[test]
fn flop_counter_matches_a_hand_count_on_a_tiny_config() {
    let cfg = ConvCvaeConfig {
        encoder_filters: [2, 3, 4],
        latent: 5,
        dense_channels: 6,
        decoder_filters: [7, 8],
        ..Default::default()
    };
    // cond 1 → 2 input channels; spatial 28 → 13 → 6 → 2 (3×3, stride 2, no padding).
    let by_hand = [
        ("enc.conv0", 13 * 13 * 2 * 2 * 9), // 6,084
        ("enc.conv1", 6 * 6 * 3 * 2 * 9),   // 1,944
        ("enc.conv2", 2 * 2 * 4 * 3 * 9),   // 432
        ("enc.out", 16 * 10),               // 4·2·2 → 2·5: 160
        ("dec.in", 6 * 294),                // 5+1 → 7·7·6: 1,764
        ("dec.up1", 49 * 6 * 7 * 9),        // 7×7×6 → 14×14×7: 18,522
        ("dec.up2", 196 * 7 * 8 * 9),       // 14×14×7 → 28×28×8: 98,784
        ("dec.out", 784 * 8 * 9),           // 28×28×8 → 28×28×1: 56,448
    ];
    let layers = cfg.layer_macs(1);
    let names: Vec<&str> = layers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, by_hand.iter().map(|(n, _)| *n).collect::<Vec<_>>());
    for ((name, macs), (_, hand)) in layers.iter().zip(by_hand) {
        assert_eq!(*macs, hand as i64, "{name}");
    }
    assert_eq!(cfg.forward_macs(1), 184_138);
    // ≈ 3 × forward MACs × 2, less the first convolution's input gradient (6,084 MACs).
    assert_eq!(cfg.training_flops_per_image(1), 2.0 * (3.0 * 184_138.0 - 6_084.0));
}

#[test]
fn mlp_flop_counts_match_hand_counts() {
    use condgen::model::{MlpCganConfig, MlpCvaeConfig};
    // MLP CVAE 784-144-20, condition 50: forward 834·144 + 2·144·20 + 70·144 + 144·784 = 248,832 MACs;
    // the first layer (120,096) gets no input gradient. PyTorch's FlopCounterMode: 40.09 MFLOP at batch 32.
    let cvae = flops::mlp_cvae_train_flops_per_image(&MlpCvaeConfig::default(), 50);
    assert_eq!(cvae, 2.0 * (3.0 * 248_832.0 - 120_096.0));
    // MLP CGAN: g = 114·256 + 256·512 + 512·784 = 561,664 (g1 = 29,184),
    // d = 834·512 + 512·256 + 256 = 558,336 (d1 = 427,008). FlopCounterMode: 373 MFLOP per step at batch 32.
    let gan = flops::mlp_cgan_step_flops_per_image(&MlpCganConfig::default(), 50);
    assert_eq!(gan, 2.0 * (3.0 * 561_664.0 - 29_184.0 + 9.0 * 558_336.0 - 2.0 * 427_008.0));
    assert!((gan * 32.0 / 1e6 - 373.0).abs() < 0.5, "{}", gan * 32.0 / 1e6);
    // A tiny CGAN by hand: noise 1, cond 1, G 2→3→4→784, D 785→5→6→1.
    let tiny = MlpCganConfig { noise: 1, generator_hidden: [3, 4], discriminator_hidden: [5, 6] };
    let (g1, d1) = (2 * 3, 785 * 5);
    let (g, d) = (g1 + 3 * 4 + 4 * 784, d1 + 5 * 6 + 6);
    assert_eq!(flops::mlp_cgan_step_flops_per_image(&tiny, 1), 2.0 * (3 * g - g1 + 9 * d - 2 * d1) as f64);
}

#[test]
fn flop_counter_agrees_with_the_models_weights() {
    let _serial = common::serial();
    // Each layer's MACs per image = its weight count × the positions it is applied at.
    let cfg = ConvCvaeConfig::default();
    let built = condgen::model::Architecture::ConvCvae(cfg.clone()).build(24, tch::Device::Cpu);
    let vars = built.vs.variables();
    let weight = |name: &str| vars[&format!("{name}.weight")].numel() as i64;
    let positions = [("enc.conv0", 13 * 13), ("enc.conv1", 6 * 6), ("enc.conv2", 2 * 2), ("enc.out", 1), ("dec.in", 1)];
    let inputs = [("dec.up1", 7 * 7), ("dec.up2", 14 * 14), ("dec.out", 28 * 28)];
    let expected: i64 = positions.iter().chain(&inputs).map(|(n, p)| weight(n) * p).sum();
    assert_eq!(cfg.forward_macs(24) as i64, expected);
    // PyTorch's FlopCounterMode on the reference model: 131.2 MFLOP forward, 383.8 forward + backward.
    assert_eq!(expected, 65_591_424);
    assert_eq!(cfg.training_flops_per_image(24), 383_814_144.0);
}

#[test]
fn a_vamp_priors_pseudo_inputs_cost_the_encoder_per_pseudo_input_and_condition() {
    let cfg = ConvCvaeConfig { encoder_filters: [2, 3, 4], latent: 5, ..Default::default() };
    assert_eq!(cfg.prior_training_flops_per_step(1, 2), 0.0, "N(0, I) costs nothing");
    let vamp = ConvCvaeConfig { learned_prior: true, prior_components: 3, vamp_prior: true, ..cfg };
    // The encoder of the tiny config above (cond 1): 6,084 + 1,944 + 432 + 160 MACs, and 784 for the pseudo-input layer.
    let per_pseudo_input = 6_084 + 1_944 + 432 + 160 + 784;
    let expected = 2.0 * 3.0 * (per_pseudo_input * 3 * 2) as f64;
    assert_eq!(vamp.prior_training_flops_per_step(1, 2), expected);
}
