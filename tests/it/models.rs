//! Model shapes, loss values on hand-computed cases, and learning on a tiny batch.

use crate::common;

use condgen::loss;
use condgen::model::{Architecture, ConvCganConfig, ConvCvaeConfig, MlpCganConfig, MlpCvaeConfig, Net};
use condgen::optim::Adam;
use condgen::task::ConditionSpec;
use tch::{Device, Kind, Tensor};

fn images(b: i64) -> Tensor {
    Tensor::rand([b, 1, 28, 28], (Kind::Float, Device::Cpu))
}

fn cond(b: i64, dim: i64) -> Tensor {
    Tensor::zeros([b, dim], (Kind::Float, Device::Cpu))
}

#[test]
fn cvae_output_shapes() {
    let _serial = common::serial();
    for (arch, dim) in [
        (Architecture::ConvCvae(ConvCvaeConfig::default()), 24),
        (Architecture::ConvCvae(ConvCvaeConfig::default()), 1),
        (Architecture::MlpCvae(MlpCvaeConfig::default()), 50),
    ] {
        tch::manual_seed(0);
        let built = arch.build(dim as usize, Device::Cpu);
        let Net::Cvae(cvae) = &built.net else { panic!("a CVAE") };
        let (logits, mean, logvar) = cvae.forward(&images(3), &cond(3, dim), true);
        assert_eq!(logits.size(), vec![3, 1, 28, 28], "{}", arch.name());
        assert_eq!(mean.size(), vec![3, cvae.latent()]);
        assert_eq!(logvar.size(), vec![3, cvae.latent()]);
        eprintln!("{} (cond {dim}): {}", arch.name(), built.describe_parameters());
    }
}

#[test]
fn faithful_parameter_counts() {
    let _serial = common::serial();
    // MLP CVAE 784+50 → 144 → 2×20; 20+50 → 144 → 784
    let built = Architecture::MlpCvae(MlpCvaeConfig::default()).build(50, Device::Cpu);
    let expected = (834 * 144 + 144) + 2 * (144 * 20 + 20) + (70 * 144 + 144) + (144 * 784 + 784);
    assert_eq!(built.parameter_count(""), expected);
    // MLP CGAN generator 64+50 → 256 → 512 → 784; discriminator 784+50 → 512 → 256 → 1
    let built = Architecture::MlpCgan(MlpCganConfig::default()).build(50, Device::Cpu);
    let g = (114 * 256 + 256) + (256 * 512 + 512) + (512 * 784 + 784);
    let d = (834 * 512 + 512) + (512 * 256 + 256) + (256 + 1);
    assert_eq!(built.parameter_count("gen."), g);
    assert_eq!(built.parameter_count("disc."), d);
}

#[test]
fn gan_output_shapes() {
    let _serial = common::serial();
    for (arch, dim) in
        [(Architecture::ConvCgan(ConvCganConfig::default()), 4), (Architecture::MlpCgan(MlpCganConfig::default()), 50)]
    {
        let built = arch.build(dim as usize, Device::Cpu);
        let Net::Gan { generator, discriminator, .. } = &built.net else { panic!("a GAN") };
        let noise = Tensor::randn([5, generator.noise_dim()], (Kind::Float, Device::Cpu));
        let fake = generator.generate(&noise, &cond(5, dim), true);
        assert_eq!(fake.size(), vec![5, 1, 28, 28]);
        assert!(fake.abs().max().double_value(&[]) <= 1.0, "tanh output");
        assert_eq!(discriminator.discriminate(&fake, &cond(5, dim), true).size(), vec![5]);
    }
}

#[test]
fn losses_match_hand_computed_values() {
    let _serial = common::serial();
    // BCE with logits 0 is ln 2 per pixel: 2 pixels per image, 2 images → ln 2 · 2 per image
    let logits = Tensor::zeros([2, 2], (Kind::Float, Device::Cpu));
    let targets = Tensor::from_slice(&[1f32, 0., 0.5, 1.]).view([2, 2]);
    let bce = loss::bce_logits_per_image(&logits, &targets).double_value(&[]);
    assert!((bce - 2.0 * std::f64::consts::LN_2).abs() < 1e-6, "{bce}");
    // KL of N(μ, σ²) vs N(0, 1) per dim: ½(σ² + μ² − 1 − ln σ²); μ = 1, σ² = e → ½(e + 1 − 1 − 1)
    let mean = Tensor::from_slice(&[1f32, 0.]).view([1, 2]);
    let logvar = Tensor::from_slice(&[1f32, 0.]).view([1, 2]);
    let kl = loss::kl_per_image(&mean, &logvar).double_value(&[]);
    assert!((kl - 0.5 * (std::f64::consts::E - 1.0)).abs() < 1e-5, "{kl}");
    // β weights only the KL term
    let (total, b, k) = loss::cvae_loss(&logits.view([1, 4]), &targets.view([1, 4]), &mean, &logvar, 2.0);
    assert!((total.double_value(&[]) - (b.double_value(&[]) + 2.0 * k.double_value(&[]))).abs() < 1e-6);
    // GAN: logits 0 → D = ½ → each BCE term ln 2
    let half = Tensor::zeros([4], (Kind::Float, Device::Cpu));
    let d = loss::gan_discriminator_loss(&half, &half).double_value(&[]);
    assert!((d - 2.0 * std::f64::consts::LN_2).abs() < 1e-6);
    let g = loss::gan_generator_loss(&Tensor::from_slice(&[10f32])).double_value(&[]);
    assert!(g < 1e-4, "a fooled discriminator costs the generator nothing: {g}");
    // WGAN critic: E[fake] − E[real]
    let w = loss::wgan_critic_loss(&Tensor::from_slice(&[1f32, 3.]), &Tensor::from_slice(&[0f32, 1.]));
    assert!((w.double_value(&[]) + 1.5).abs() < 1e-6);
}

#[test]
fn gradient_penalty_of_a_linear_critic() {
    let _serial = common::serial();
    // critic(x) = Σ 0.5·x: gradient norm 0.5·√784 = 14 → penalty (14 − 1)² = 169
    let real = Tensor::rand([4, 1, 28, 28], (Kind::Float, Device::Cpu));
    let fake = Tensor::rand([4, 1, 28, 28], (Kind::Float, Device::Cpu));
    let gp = loss::gradient_penalty(&real, &fake, |x| (x * 0.5).sum_dim_intlist(&[1i64, 2, 3][..], false, Kind::Float));
    assert!((gp.double_value(&[]) - 169.0).abs() < 1e-3, "{}", gp.double_value(&[]));
}

#[test]
fn cvae_learns_a_tiny_fixed_batch() {
    let _serial = common::serial();
    tch::manual_seed(1);
    let built =
        Architecture::MlpCvae(MlpCvaeConfig { hidden: 64, latent: 4, ..Default::default() }).build(3, Device::Cpu);
    let Net::Cvae(cvae) = &built.net else { unreachable!() };
    let xs = (Tensor::rand([16, 1, 28, 28], (Kind::Float, Device::Cpu)) + 0.5).floor(); // binary images
    let c = Tensor::eye(3, (Kind::Float, Device::Cpu)).repeat([6, 1]).narrow(0, 0, 16);
    let mut opt = Adam::for_prefix(&built.vs, "", 1e-2, (0.9, 0.999));
    let mut losses = Vec::new();
    for _ in 0..150 {
        let (logits, mean, logvar) = cvae.forward(&xs, &c, true);
        let (total, _, _) = loss::cvae_loss(&logits, &xs, &mean, &logvar, 1.0);
        opt.backward_step(&total);
        losses.push(total.double_value(&[]));
    }
    let (first, last) = (losses[0], losses[losses.len() - 1]);
    eprintln!("CVAE tiny batch: {first:.1} → {last:.1}");
    assert!(last < first * 0.7, "{first} → {last}");
}

/// A CGAN on two fixed images (a left and a right half): its samples become
/// those images. Which one it draws for which condition is not asserted: on
/// this toy the MLP discriminator learns realism long before it learns the
/// 2-dimensional condition (conditioning is measured by the judges instead).
#[test]
fn cgan_learns_a_tiny_fixed_batch() {
    let _serial = common::serial();
    tch::manual_seed(2);
    let built =
        Architecture::MlpCgan(MlpCganConfig { noise: 8, generator_hidden: [32, 64], discriminator_hidden: [64, 32] })
            .build(2, Device::Cpu);
    let Net::Gan { generator, discriminator, .. } = &built.net else { unreachable!() };
    let ones = Tensor::ones([28, 14], (Kind::Float, Device::Cpu));
    let zeros = Tensor::zeros([28, 14], (Kind::Float, Device::Cpu));
    // Targets in the generator's range [-1, 1].
    let a = Tensor::cat(&[&ones, &zeros], 1).view([1, 1, 28, 28]) * 2.0 - 1.0;
    let b = Tensor::cat(&[&zeros, &ones], 1).view([1, 1, 28, 28]) * 2.0 - 1.0;
    let real = Tensor::cat(&[a.repeat([8, 1, 1, 1]), b.repeat([8, 1, 1, 1])], 0);
    let c = Tensor::cat(
        &[
            Tensor::from_slice(&[1f32, 0.]).view([1, 2]).repeat([8, 1]),
            Tensor::from_slice(&[0f32, 1.]).view([1, 2]).repeat([8, 1]),
        ],
        0,
    );
    let mut opt_g = Adam::for_prefix(&built.vs, "gen.", 1e-3, (0.5, 0.999));
    let mut opt_d = Adam::for_prefix(&built.vs, "disc.", 1e-3, (0.5, 0.999));
    // Mean absolute distance of each sample to the nearer of the two targets.
    let nearest = |fake: &Tensor| {
        let dims = &[1i64, 2, 3][..];
        let da = (fake - &a).abs().mean_dim(dims, false, Kind::Float);
        let db = (fake - &b).abs().mean_dim(dims, false, Kind::Float);
        da.minimum(&db).mean(Kind::Float).double_value(&[])
    };
    let noise0 = Tensor::randn([16, 8], (Kind::Float, Device::Cpu));
    let start = tch::no_grad(|| nearest(&generator.generate(&noise0, &c, false)));
    for _ in 0..2000 {
        let noise = Tensor::randn([16, 8], (Kind::Float, Device::Cpu));
        let fake = generator.generate(&noise, &c, true);
        let d_loss = loss::gan_discriminator_loss(
            &discriminator.discriminate(&real, &c, true),
            &discriminator.discriminate(&fake.detach(), &c, true),
        );
        opt_d.backward_step(&d_loss);
        let g_loss = loss::gan_generator_loss(&discriminator.discriminate(&fake, &c, true));
        opt_g.backward_step(&g_loss);
    }
    let end = tch::no_grad(|| nearest(&generator.generate(&noise0, &c, false)));
    eprintln!("CGAN tiny batch: mean |fake − nearest target| {start:.3} → {end:.3}");
    assert!(end < start * 0.3, "{start} → {end}");
}

#[test]
fn adam_first_step_moves_each_weight_by_the_learning_rate() {
    let _serial = common::serial();
    // After one step m̂ = g and v̂ = g², so the update is lr · g / (|g| + ε) ≈ lr · sign(g).
    let vs = tch::nn::VarStore::new(Device::Cpu);
    let w = vs.root().var_copy("w", &Tensor::from_slice(&[1f32, 2., -3., 4.]));
    let mut opt = Adam::for_prefix(&vs, "", 0.1, (0.9, 0.999));
    let loss = (&w * Tensor::from_slice(&[2f32, -0.5, 3., 1e-3])).sum(Kind::Float);
    opt.backward_step(&loss);
    let got = Vec::<f32>::try_from(w.detach()).unwrap();
    let want = [0.9f32, 2.1, -3.1, 3.9];
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-4, "{got:?} vs {want:?}");
    }
    // A second step with the same gradient: m̂ and v̂ unchanged, the same move again.
    let loss = (&w * Tensor::from_slice(&[2f32, -0.5, 3., 1e-3])).sum(Kind::Float);
    opt.backward_step(&loss);
    let got = Vec::<f32>::try_from(w.detach()).unwrap();
    for (g, w) in got.iter().zip([0.8f32, 2.2, -3.2, 3.8]) {
        assert!((g - w).abs() < 1e-4, "{got:?}");
    }
}

/// Decoupled weight decay shrinks weight matrices by 1 − lr·λ before Adam's move and
/// leaves vectors (biases, scales) alone: with a zero gradient Adam does not move.
#[test]
fn adamw_decays_matrices_only() {
    let _serial = common::serial();
    let vs = tch::nn::VarStore::new(Device::Cpu);
    let matrix = vs.root().var_copy("matrix", &Tensor::from_slice(&[1f32, -2., 3., 4.]).view([2, 2]));
    let bias = vs.root().var_copy("bias", &Tensor::from_slice(&[1f32, -2.]));
    let mut opt = Adam::for_prefix(&vs, "", 0.1, (0.9, 0.999));
    opt.weight_decay = 0.5;
    let loss = (&matrix * 0.0).sum(Kind::Float) + (&bias * 0.0).sum(Kind::Float);
    opt.backward_step(&loss);
    let got = Vec::<f32>::try_from(matrix.detach().flatten(0, -1)).unwrap();
    assert_eq!(got, vec![0.95, -1.9, 2.85, 3.8], "shrunk by 1 − 0.1 × 0.5");
    assert_eq!(Vec::<f32>::try_from(bias.detach()).unwrap(), vec![1.0, -2.0], "a vector is not decayed");
}

/// The fused single-pass CPU update and the libtorch-op path give the same
/// parameters over several steps, on a weight large enough to be split across
/// threads and a small one updated inline.
#[test]
fn fused_adam_matches_the_libtorch_op_path() {
    let _serial = common::serial();
    tch::manual_seed(11);
    let init_big = Tensor::randn([300, 700], (Kind::Float, Device::Cpu));
    let init_small = Tensor::randn([37], (Kind::Float, Device::Cpu));
    let targets: Vec<(Tensor, Tensor)> = (0..5)
        .map(|_| {
            (Tensor::randn([300, 700], (Kind::Float, Device::Cpu)), Tensor::randn([37], (Kind::Float, Device::Cpu)))
        })
        .collect();
    let run = |fused: bool| {
        let vs = tch::nn::VarStore::new(Device::Cpu);
        let big = vs.root().var_copy("big", &init_big);
        let small = vs.root().var_copy("small", &init_small);
        let mut opt = Adam::for_prefix(&vs, "", 1e-2, (0.9, 0.999));
        opt.fused_cpu = fused;
        for (tb, ts) in &targets {
            // Gradients of very different scales per element exercise the ε and √v parts.
            let loss = (&big - tb).square().sum(Kind::Float) * 1e-3 + (&small * ts).sum(Kind::Float);
            opt.backward_step(&loss);
        }
        (big.detach().copy(), small.detach().copy())
    };
    let (fb, fs) = run(true);
    let (pb, ps) = run(false);
    let moved = (&fb - &init_big).abs().max().double_value(&[]);
    assert!(moved > 0.04, "five steps of lr 1e-2 move the weights: {moved}");
    let diff_big = (&fb - &pb).abs().max().double_value(&[]);
    let diff_small = (&fs - &ps).abs().max().double_value(&[]);
    assert!(diff_big < 1e-5 && diff_small < 1e-5, "fused vs op path: {diff_big}, {diff_small}");
}

/// Freezing D during the generator's step (so autograd skips D's weight
/// gradients) changes nothing the optimizers see: G gets the same gradients,
/// and D's next step starts from the gradients of its own loss only.
#[test]
fn gan_step_with_frozen_discriminator_matches_a_plain_backward() {
    let _serial = common::serial();
    let spec = ConditionSpec::OneHot { classes: 3, style_bit: false };
    let cfg = MlpCganConfig { noise: 8, generator_hidden: [16, 32], discriminator_hidden: [32, 16] };
    tch::manual_seed(5);
    let images = Tensor::rand([6, 1, 28, 28], (Kind::Float, Device::Cpu));
    let conditions = spec.encode(&[0, 1, 2, 0, 1, 2], None, Device::Cpu);
    let weights = |built: &condgen::model::Built| -> Vec<(String, Tensor)> {
        let mut v: Vec<(String, Tensor)> =
            built.vs.variables().into_iter().map(|(n, t)| (n, t.detach().copy())).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    // condgen's step, twice.
    tch::manual_seed(6);
    let built = Architecture::MlpCgan(cfg.clone()).build(spec.dim(), Device::Cpu);
    let start = weights(&built);
    let Net::Gan { generator, discriminator, .. } = &built.net else { panic!("a GAN") };
    let mut opt_g = Adam::for_prefix(&built.vs, "gen.", 1e-3, (0.5, 0.999));
    let mut opt_d = Adam::for_prefix(&built.vs, "disc.", 1e-3, (0.5, 0.999));
    tch::manual_seed(7);
    for _ in 0..2 {
        let objective = condgen::train::GanObjective {
            loss: condgen::train::GanLoss::Bce,
            gradient_penalty_weight: 10.0,
            spec,
            generator_auxiliary_weight: 1.0,
        };
        condgen::train::gan_step(
            generator.as_ref(),
            discriminator.as_ref(),
            &mut opt_g,
            &mut opt_d,
            &images,
            &conditions,
            &objective,
            true,
        );
    }
    let got = weights(&built);
    // The same two steps written plainly: D's weight gradients computed in the G step, then discarded.
    let reference = Architecture::MlpCgan(cfg).build(spec.dim(), Device::Cpu);
    tch::no_grad(|| {
        let mut vars = reference.vs.variables();
        for (name, w) in &start {
            vars.get_mut(name).unwrap().copy_(w);
        }
    });
    let Net::Gan { generator: g2, discriminator: d2, .. } = &reference.net else { panic!("a GAN") };
    let mut ref_g = Adam::for_prefix(&reference.vs, "gen.", 1e-3, (0.5, 0.999));
    let mut ref_d = Adam::for_prefix(&reference.vs, "disc.", 1e-3, (0.5, 0.999));
    tch::manual_seed(7);
    for _ in 0..2 {
        let real = &images * 2.0 - 1.0;
        let noise = Tensor::randn([6, g2.noise_dim()], (Kind::Float, Device::Cpu));
        let fake = g2.generate(&noise, &conditions, true);
        let d_loss = loss::gan_discriminator_loss(
            &d2.discriminate(&real, &conditions, true),
            &d2.discriminate(&fake.detach(), &conditions, true),
        );
        ref_d.backward_step(&d_loss);
        let g_loss = loss::gan_generator_loss(&d2.discriminate(&fake, &conditions, true));
        ref_g.backward_step(&g_loss);
    }
    let want = weights(&reference);
    for ((name, a), (_, b)) in got.iter().zip(&want) {
        let diff = (a - b).abs().max().double_value(&[]);
        assert!(diff < 1e-6, "{name}: {diff}");
    }
    let moved: f64 =
        got.iter().zip(&start).map(|((_, a), (_, b))| (a - b).abs().max().double_value(&[])).fold(0.0, f64::max);
    assert!(moved > 1e-4, "the steps moved the weights: {moved}");
    assert!(discriminator_params_trainable(&built), "D is trainable again after the step");
}

fn discriminator_params_trainable(built: &condgen::model::Built) -> bool {
    built.vs.variables().iter().filter(|(n, _)| n.starts_with("disc.")).all(|(_, t)| t.requires_grad())
}

/// The closed-form KL agrees with a Monte Carlo estimate of E_q[log q − log p].
#[test]
fn closed_form_kl_matches_monte_carlo() {
    let _guard = common::serial();
    tch::manual_seed(3);
    let mean = Tensor::from_slice(&[0.5f32, -1.0, 0.0, 2.0]).view([2, 2]);
    let logvar = Tensor::from_slice(&[0.0f32, -1.0, 1.0, 0.3]).view([2, 2]);
    let closed = loss::kl_per_image(&mean, &logvar).double_value(&[]);
    let mc = loss::kl_monte_carlo(&mean, &logvar, 200_000).double_value(&[]);
    assert!((closed - mc).abs() < 0.02 * closed.max(1.0), "closed form {closed} vs Monte Carlo {mc}");
    // And a wrong closed form (σ instead of σ²) would be caught.
    let wrong = ((logvar.exp().sqrt() + mean.square() - &logvar - 1.0).sum(tch::Kind::Float) * 0.25).double_value(&[]);
    assert!((wrong - mc).abs() > 0.05, "the check must be able to fail");
}

/// The conv CVAE's MAC count matches a layer-by-layer hand count of the study's model
/// (24-letter condition): the basis of the report's "share of paper compute".
#[test]
fn conv_cvae_mac_count_matches_a_hand_count() {
    let hand: u64 = 25 * 128 * 9 * 169   // enc conv0: (1+24)→128, 13×13 out
        + 128 * 64 * 9 * 36              // enc conv1: 6×6 out
        + 64 * 128 * 9 * 4               // enc conv2: 2×2 out
        + 512 * 1024                     // enc out: 128·2·2 → 2·512
        + (512 + 24) * 7 * 7 * 512       // dec in
        + 512 * 128 * 9 * 7 * 7          // up1: each 7×7 input pixel through a 3×3 kernel
        + 128 * 64 * 9 * 14 * 14         // up2
        + 64 * 9 * 28 * 28; // out (stride 1)
    assert_eq!(ConvCvaeConfig::default().forward_macs(24), hand);
    let quarter = ConvCvaeConfig {
        encoder_filters: [64, 32, 64],
        latent: 64,
        dense_channels: 64,
        decoder_filters: [64, 32],
        ..Default::default()
    };
    let ratio = hand as f64 / quarter.forward_macs(24) as f64;
    assert!((6.0..9.0).contains(&ratio), "quarter widths cost about a seventh: {ratio}");
}
