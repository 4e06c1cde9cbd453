//! The improved CGAN recipe, part by part: hinge and projection against
//! hand-computed values, spectral norm against an SVD, the generator's weight
//! average, the AC-GAN loss, and a tiny run showing the condition is used.

use crate::common;

use condgen::data::{DataOptions, DatasetKind};
use condgen::loss;
use condgen::model::layers::{dense, projection_score, with_minibatch_std};
use condgen::model::{Architecture, ConvCganConfig, Net, WeightAverage};
use condgen::train::{self, GanLoss, Profile, TrainConfig};
use condgen::{ConditionSpec, Experiment};
use tch::{nn, Device, Kind, Tensor};

fn t(v: &[f32]) -> Tensor {
    Tensor::from_slice(v)
}

/// The largest singular value, by an SVD.
fn largest_singular_value(w: &Tensor) -> f64 {
    let (_, s, _) = w.svd(true, true);
    s.max().double_value(&[])
}

fn close(a: f64, b: f64, what: &str) {
    assert!((a - b).abs() < 1e-5, "{what}: {a} vs {b}");
}

#[test]
fn hinge_losses_match_hand_computed_values() {
    // D: mean(relu(1 − [2, 0.5])) + mean(relu(1 + [−2, 0.5])) = mean(0, 0.5) + mean(0, 1.5) = 0.25 + 0.75
    let d = loss::hinge_discriminator_loss(&t(&[2.0, 0.5]), &t(&[-2.0, 0.5])).double_value(&[]);
    close(d, 1.0, "hinge D");
    // G: −mean([−2, 0.5]) = 0.75
    close(loss::hinge_generator_loss(&t(&[-2.0, 0.5])).double_value(&[]), 0.75, "hinge G");
}

#[test]
fn projection_score_matches_hand_computed_values() {
    // score = ψ + ⟨e, φ⟩ per row: 0.5 + (1·2 + 0·3) = 2.5; −1 + (−1·1 + 2·0.5) = −1
    let psi = t(&[0.5, -1.0]);
    let embedded = t(&[1.0, 0.0, -1.0, 2.0]).view([2, 2]);
    let features = t(&[2.0, 3.0, 1.0, 0.5]).view([2, 2]);
    let s = Vec::<f32>::try_from(projection_score(&psi, &embedded, &features)).unwrap();
    close(s[0] as f64, 2.5, "row 0");
    close(s[1] as f64, -1.0, "row 1");
}

#[test]
fn spectral_norm_brings_the_largest_singular_value_to_one() {
    let _serial = common::serial();
    tch::manual_seed(3);
    let vs = nn::VarStore::new(Device::Cpu);
    let layer = dense(&(vs.root() / "l"), 20, 12, true, true);
    // Scale the weight up so that without normalisation σ would be far from 1.
    let raw = vs.variables()["l.weight"].shallow_clone();
    tch::no_grad(|| {
        let _ = raw.shallow_clone().g_mul_scalar_(7.0);
    });
    let raw_sigma = largest_singular_value(&raw);
    assert!(raw_sigma > 2.0, "the raw weight has σ {raw_sigma}");
    let xs = Tensor::randn([4, 20], (Kind::Float, Device::Cpu));
    // One power iteration per training forward; it converges as (σ2/σ1)^(2k).
    for _ in 0..300 {
        let _ = layer.forward_t(&xs, true);
    }
    let sigma = largest_singular_value(&layer.effective_weight());
    assert!((sigma - 1.0).abs() < 1e-3, "σ of the normalised weight: {sigma}");
    // In eval mode the estimate is not updated: the output is deterministic.
    let a = layer.forward_t(&xs, false);
    let b = layer.forward_t(&xs, false);
    assert_eq!(a.max().double_value(&[]), b.max().double_value(&[]));
}

#[test]
fn weight_average_follows_its_update_rule() {
    let _serial = common::serial();
    let vs = nn::VarStore::new(Device::Cpu);
    let live = (vs.root() / "gen").var_copy("w", &t(&[1.0, 2.0]));
    let avg = (vs.root() / "gen_ema").var_copy("w", &t(&[0.0, 0.0]));
    let average = WeightAverage::new(&vs, "gen", "gen_ema", 0.9);
    assert_eq!(average.len(), 1);
    // Early steps cap the decay: step 1 → min(0.9, 2/11).
    close(average.decay_at(1), 2.0 / 11.0, "capped decay");
    close(average.decay_at(1000), 0.9, "decay");
    average.update(1000);
    let got = Vec::<f32>::try_from(&avg).unwrap();
    close(got[0] as f64, 0.1, "0.9·0 + 0.1·1");
    close(got[1] as f64, 0.2, "0.9·0 + 0.1·2");
    average.reset();
    assert_eq!(Vec::<f32>::try_from(&avg).unwrap(), Vec::<f32>::try_from(&live).unwrap());
}

#[test]
fn auxiliary_condition_loss_matches_hand_computed_values() {
    // One-hot over 2 classes + a style bit; logits 0 everywhere: CE ln 2 + BCE ln 2.
    let spec = ConditionSpec::OneHot { classes: 2, style_bit: true };
    let cond = spec.encode(&[0, 1], Some(&[1, 0]), Device::Cpu);
    let logits = Tensor::zeros([2, 3], (Kind::Float, Device::Cpu));
    let l = loss::condition_classification_loss(&logits, &cond, spec).double_value(&[]);
    close(l, 2.0 * std::f64::consts::LN_2, "CE + BCE at logits 0");
    // A bit: logit 2 for target 1 → ln(1 + e^−2).
    let l = loss::condition_classification_loss(&t(&[2.0]).view([1, 1]), &t(&[1.0]).view([1, 1]), ConditionSpec::Bit);
    close(l.double_value(&[]), (1.0 + (-2f64).exp()).ln(), "BCE of a bit");
}

/// The generator's auxiliary weight scales the head's loss in G's objective only:
/// from the same start, G's loss at weights 0, 1 and 3 is adv, adv + aux, adv + 3·aux.
#[test]
fn generator_auxiliary_weight_scales_the_heads_loss_in_the_generator_objective() {
    let _serial = common::serial();
    let spec = ConditionSpec::OneHot { classes: 3, style_bit: false };
    let mut arch = ConvCganConfig::improved(8, 4);
    arch.auxiliary_classifier = true;
    let images = Tensor::rand([6, 1, 28, 28], (Kind::Float, Device::Cpu));
    let conditions = spec.encode(&[0, 1, 2, 0, 1, 2], None, Device::Cpu);
    let g_loss = |weight: f64| {
        tch::manual_seed(11);
        let built = Architecture::ConvCgan(arch.clone()).build(spec.dim(), Device::Cpu);
        let Net::Gan { generator, discriminator, .. } = &built.net else { panic!("a GAN") };
        let mut opt_g = condgen::optim::Adam::for_prefix(&built.vs, "gen.", 1e-3, (0.0, 0.9));
        let mut opt_d = condgen::optim::Adam::for_prefix(&built.vs, "disc.", 1e-3, (0.0, 0.9));
        let objective = train::GanObjective {
            loss: GanLoss::Hinge,
            gradient_penalty_weight: 10.0,
            spec,
            generator_auxiliary_weight: weight,
        };
        let stats = train::gan_step(
            generator.as_ref(),
            discriminator.as_ref(),
            &mut opt_g,
            &mut opt_d,
            &images,
            &conditions,
            &objective,
            true,
        );
        (stats.g_loss.unwrap(), stats.d_loss)
    };
    let ((g0, d0), (g1, d1), (g3, d3)) = (g_loss(0.0), g_loss(1.0), g_loss(3.0));
    assert!(g1 - g0 > 1e-3, "the head's loss is positive: {g0} {g1}");
    assert!(((g3 - g0) - 3.0 * (g1 - g0)).abs() < 1e-4, "linear in the weight: {g0} {g1} {g3}");
    assert!((d0 - d1).abs() < 1e-6 && (d1 - d3).abs() < 1e-6, "D's objective does not change: {d0} {d1} {d3}");

    // A config option, checked: non-negative, a CGAN's only. The improved recipe sets it.
    let cfg = TrainConfig::new(Experiment::SignLetter, condgen::model::ModelKind::Cgan, Profile::Quick);
    let recipe = condgen::train::recipes::improved_generator_auxiliary_weight;
    assert_eq!(cfg.generator_auxiliary_weight, Some(recipe(Experiment::SignLetter)));
    let k49 = TrainConfig::new(Experiment::K49, condgen::model::ModelKind::Cgan, Profile::Quick).into_improved_cgan();
    assert_eq!(k49.generator_auxiliary_weight, Some(recipe(Experiment::K49)));
    let set = |kv: &str| cfg.set(&[kv.to_string()]);
    assert_eq!(set("generator_auxiliary_weight=1").unwrap().generator_auxiliary_weight, Some(1.0));
    assert!(set("generator_auxiliary_weight=-1").is_err());
    let cvae = TrainConfig::new(Experiment::SignLetter, condgen::model::ModelKind::Cvae, Profile::Quick);
    assert!(cvae.set(&["generator_auxiliary_weight=2".to_string()]).is_err(), "a CVAE has no such term");
    // Unset (the study's MLP CGAN), it stays out of config.json: earlier run ids are unchanged.
    let cfg = TrainConfig::new(Experiment::K49, condgen::model::ModelKind::Cgan, Profile::Quick);
    assert!(serde_json::to_value(&cfg).unwrap().get("generator_auxiliary_weight").is_none());
}

#[test]
fn every_recipe_option_builds_and_keeps_the_average_out_of_training() {
    let _serial = common::serial();
    let mut cfg = ConvCganConfig::improved(8, 4);
    cfg.auxiliary_classifier = true;
    let built = Architecture::ConvCgan(cfg).build(24, Device::Cpu);
    let Net::Gan { generator, discriminator, average } = &built.net else { panic!("a GAN") };
    assert!(average.is_some(), "the improved recipe samples from a weight average");
    let noise = Tensor::randn([3, generator.noise_dim()], (Kind::Float, Device::Cpu));
    let cond = ConditionSpec::OneHot { classes: 24, style_bit: false }.encode(&[0, 5, 23], None, Device::Cpu);
    let fake = generator.generate(&noise, &cond, true);
    assert_eq!(fake.size(), vec![3, 1, 28, 28]);
    let (scores, logits) = discriminator.discriminate_and_classify(&fake, &cond, true);
    assert_eq!(scores.size(), vec![3]);
    assert_eq!(logits.expect("an AC-GAN head").size(), vec![3, 24]);
    // SNGAN's five-layer discriminator, projection on position-summed features.
    let mut standard = ConvCganConfig::improved(8, 4);
    standard.discriminator_layout = condgen::model::DiscriminatorLayout::Standard;
    let deep = Architecture::ConvCgan(standard).build(24, Device::Cpu);
    let Net::Gan { discriminator: deep_d, .. } = &deep.net else { panic!("a GAN") };
    assert_eq!(deep_d.discriminate(&fake, &cond, true).size(), vec![3]);
    let names = deep.vs.variables();
    assert!((1..=5).all(|i| names.contains_key(&format!("disc.conv{i}.weight"))), "five convolutions built");
    assert!(!names.contains_key("disc.conv6.weight"));
    // The average's variables are not trainable, and not counted as parameters.
    let averaged: i64 =
        built.vs.variables().iter().filter(|(n, _)| n.starts_with("gen_ema.")).map(|(_, t)| t.numel() as i64).sum();
    assert!(averaged > 0);
    assert!(built.vs.variables().iter().filter(|(n, _)| n.starts_with("gen_ema.")).all(|(_, t)| !t.requires_grad()));
    assert_eq!(built.parameter_count(""), built.parameter_count("gen.") + built.parameter_count("disc."));
}

/// ProGAN's minibatch standard deviation: the appended channel is the mean over
/// features of their spread across the batch; a batch of copies scores ~0 with a
/// finite gradient; the option builds for both layouts and leaves default run ids alone.
#[test]
fn minibatch_std_appends_the_batch_spread_and_is_an_option() {
    let _serial = common::serial();
    // Two features of one pixel over a batch of 2: spreads (population) 1 and 3, mean 2.
    let xs = t(&[0.0, 10.0, 2.0, 4.0]).view([2, 2, 1, 1]);
    let out = with_minibatch_std(&xs);
    assert_eq!(out.size(), vec![2, 3, 1, 1]);
    close(out.double_value(&[0, 2, 0, 0]), 2.0, "first image's spread channel");
    close(out.double_value(&[1, 2, 0, 0]), 2.0, "second image's spread channel");
    close(out.narrow(1, 0, 2).sum(Kind::Float).double_value(&[]), 16.0, "the features pass unchanged");
    let copies = Tensor::ones([4, 3, 2, 2], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    let spread = with_minibatch_std(&copies).narrow(1, 3, 1).mean(Kind::Float);
    assert!(spread.double_value(&[]) < 1e-3, "copies have no spread");
    spread.backward();
    assert!(bool::try_from(copies.grad().isfinite().all()).unwrap(), "finite gradient on identical images");

    let cond = ConditionSpec::OneHot { classes: 24, style_bit: false }.encode(&[0, 5, 23], None, Device::Cpu);
    let fake = Tensor::rand([3, 1, 28, 28], (Kind::Float, Device::Cpu));
    for layout in [condgen::model::DiscriminatorLayout::Dcgan, condgen::model::DiscriminatorLayout::Standard] {
        let mut cfg = ConvCganConfig::improved(8, 4);
        cfg.discriminator_layout = layout;
        cfg.minibatch_std = true;
        let built = Architecture::ConvCgan(cfg).build(24, Device::Cpu);
        let Net::Gan { discriminator, .. } = &built.net else { panic!("a GAN") };
        let (scores, logits) = discriminator.discriminate_and_classify(&fake, &cond, true);
        assert_eq!(scores.size(), vec![3], "{layout:?}");
        assert_eq!(logits.expect("an AC-GAN head").size(), vec![3, 24], "{layout:?}");
    }
    let cfg = TrainConfig::new(Experiment::SignLetter, condgen::model::ModelKind::Cgan, Profile::Default);
    assert!(!serde_json::to_string(&cfg).unwrap().contains("minibatch_std"));
    let with = cfg.set(&["architecture.minibatch_std=true".to_string()]).unwrap();
    assert_ne!(with.digest(), cfg.digest());
}

/// DiffAugment: a translation moves pixels by the offset and fills with 0, a
/// cutout zeroes exactly its square, gradients flow through both, the
/// discriminator augments only in training, and the option leaves default run ids alone.
#[test]
fn diff_augment_translates_and_cuts_out_differentiably() {
    use condgen::model::augment::{cutout, diff_augment, translate, DiscriminatorAugment};
    let _serial = common::serial();
    // A 4×4 image holding 1..16 row by row, moved 1 down and 2 left.
    let xs = Tensor::arange_start(1, 17, (Kind::Float, Device::Cpu)).view([1, 1, 4, 4]).set_requires_grad(true);
    let moved = translate(&xs, &Tensor::from_slice(&[1i64, -2]).view([1, 2]));
    let expect = t(&[0., 0., 0., 0., 3., 4., 0., 0., 7., 8., 0., 0., 11., 12., 0., 0.]).view([1, 1, 4, 4]);
    assert_eq!(moved, expect, "translated: {moved}");
    moved.sum(Kind::Float).backward();
    let kept = t(&[0., 0., 1., 1., 0., 0., 1., 1., 0., 0., 1., 1., 0., 0., 0., 0.]).view([1, 1, 4, 4]);
    assert_eq!(xs.grad(), kept, "the gradient reaches exactly the pixels kept");
    // A 2×2 cutout centred at (1, 3): rows 0–1, column 2–3; none outside the image.
    let ones = Tensor::ones([2, 1, 4, 4], (Kind::Float, Device::Cpu));
    let cut = cutout(&ones, &Tensor::from_slice(&[1i64, 3, 0, 0]).view([2, 2]), 2);
    assert_eq!(cut.get(0).sum(Kind::Float).double_value(&[]), 12.0);
    assert_eq!(cut.double_value(&[0, 0, 0, 2]) + cut.double_value(&[0, 0, 1, 3]), 0.0);
    assert_eq!(cut.get(1).sum(Kind::Float).double_value(&[]), 15.0, "a square cut off at the corner");
    // Every policy keeps the shape; off is the identity.
    let batch = Tensor::rand([5, 1, 28, 28], (Kind::Float, Device::Cpu));
    assert_eq!(diff_augment(&batch, DiscriminatorAugment::Off), batch);
    for policy in [DiscriminatorAugment::Translation, DiscriminatorAugment::TranslationCutout] {
        assert_eq!(diff_augment(&batch, policy).size(), vec![5, 1, 28, 28], "{policy:?}");
    }

    let cond = ConditionSpec::OneHot { classes: 24, style_bit: false }.encode(&[0, 5, 23], None, Device::Cpu);
    let mut cfg = ConvCganConfig::improved(8, 4);
    cfg.augment = DiscriminatorAugment::TranslationCutout;
    let built = Architecture::ConvCgan(cfg).build(24, Device::Cpu);
    let Net::Gan { discriminator, .. } = &built.net else { panic!("a GAN") };
    let fake = batch.narrow(0, 0, 3);
    let scores = |train: bool| discriminator.discriminate(&fake, &cond, train);
    assert_eq!(scores(false), scores(false), "no augmentation outside training");
    let cfg = TrainConfig::new(Experiment::SignLetter, condgen::model::ModelKind::Cgan, Profile::Default);
    assert!(!serde_json::to_string(&cfg).unwrap().contains("augment"));
    let with = cfg.set(&["architecture.augment=translation-cutout".to_string()]).unwrap();
    assert_ne!(with.digest(), cfg.digest());

    // The quick profile of the variant trains, and its generator draws finite images.
    let root = tempfile::tempdir().unwrap();
    let data = Experiment::SignLetter.prepare(&DataOptions::from_env().load(DatasetKind::SignMnist).unwrap());
    let quick = TrainConfig::new(Experiment::SignLetter, condgen::model::ModelKind::Cgan, Profile::Quick)
        .set(&["architecture.augment=translation-cutout".to_string()])
        .unwrap();
    let opts = common::cpu_train_options(root.path());
    let outcome = train::train(&quick, &data, &opts).unwrap();
    let model = condgen::sample::TrainedModel::load(&outcome.run.path, Device::Cpu).unwrap();
    let generator = model.built.net.sampling_generator().unwrap();
    let noise = Tensor::randn([24, generator.noise_dim()], (Kind::Float, Device::Cpu));
    let classes: Vec<u8> = (0..24).collect();
    let spec = Experiment::SignLetter.condition_spec();
    let images = tch::no_grad(|| generator.generate(&noise, &spec.encode(&classes, None, Device::Cpu), false));
    assert!(bool::try_from(images.isfinite().all()).unwrap());
}

/// A tiny run of the improved recipe (the quick profile) on sign-letter:
/// with z fixed, changing only the condition changes the image measurably.
#[test]
fn a_tiny_improved_run_uses_its_condition() {
    let _serial = common::serial();
    let root = tempfile::tempdir().unwrap();
    let ds = DataOptions::from_env().load(DatasetKind::SignMnist).unwrap();
    let data = Experiment::SignLetter.prepare(&ds);
    let cfg = TrainConfig::new(Experiment::SignLetter, condgen::model::ModelKind::Cgan, Profile::Quick);
    assert!(
        matches!(&cfg.architecture, Architecture::ConvCgan(c) if c.generator_ema > 0.0),
        "quick sign CGAN is the recipe"
    );
    assert_eq!(cfg.gan_loss, GanLoss::Hinge);
    let opts = common::cpu_train_options(root.path());
    let outcome = train::train(&cfg, &data, &opts).unwrap();
    let model = condgen::sample::TrainedModel::load(&outcome.run.path, Device::Cpu).unwrap();
    let generator = model.built.net.sampling_generator().unwrap();
    let spec = Experiment::SignLetter.condition_spec();
    tch::manual_seed(11);
    let noise = Tensor::randn([1, generator.noise_dim()], (Kind::Float, Device::Cpu)).repeat([24, 1]);
    let classes: Vec<u8> = (0..24).collect();
    let images = tch::no_grad(|| generator.generate(&noise, &spec.encode(&classes, None, Device::Cpu), false));
    // Mean absolute pixel change (in [0, 1] units) between letters, same z.
    let change = ((&images - images.mean_dim(0, true, Kind::Float)).abs().mean(Kind::Float) / 2.0).double_value(&[]);
    assert!(change > 0.01, "the condition moves pixels by {change} on average");
    // Its projection discriminator scores a real image differently under another condition.
    let probe = condgen::concepts::discriminator_probe(&model, &data.test, 64).unwrap();
    assert!(probe.condition_gap.abs() > 1e-4, "{probe:?}");
    assert!(probe.input_gradient > 0.0 && probe.real_score.is_finite() && probe.fake_score.is_finite(), "{probe:?}");
}

/// The notebook's short-run ablation: each row adds exactly one part to the
/// row before, from the DCGAN baseline to the improved recipe itself.
#[test]
fn cgan_ablation_adds_one_part_per_row() {
    use condgen::model::conv_cgan::DiscriminatorConditioning;
    let rows = TrainConfig::cgan_ablation(Experiment::K49, Profile::Quick);
    let configs: Vec<&TrainConfig> = rows.iter().map(|(_, c)| c).collect();
    let arch = |cfg: &TrainConfig| match &cfg.architecture {
        Architecture::ConvCgan(c) => c.clone(),
        other => panic!("not a conv CGAN: {other:?}"),
    };
    let base = arch(configs[0]);
    assert_eq!(base, ConvCganConfig { noise: base.noise, base_channels: base.base_channels, ..Default::default() });
    assert_eq!((configs[0].gan_loss, configs[0].adam_betas), (GanLoss::Bce, [0.5, 0.999]));
    let projection = ConvCganConfig { discriminator: DiscriminatorConditioning::Projection, ..base.clone() };
    let spectral = ConvCganConfig { spectral_norm: true, ..projection.clone() };
    let expected = [
        TrainConfig { architecture: Architecture::ConvCgan(projection), ..configs[0].clone() },
        TrainConfig { architecture: Architecture::ConvCgan(spectral), ..configs[0].clone() },
        TrainConfig { gan_loss: GanLoss::Hinge, ..configs[2].clone() },
    ];
    for (i, want) in expected.iter().enumerate() {
        assert_eq!(configs[i + 1], want, "row {}", i + 1);
    }
    assert_eq!(*configs[4], TrainConfig::improved_cgan(Experiment::K49, Profile::Quick));
    for cfg in configs {
        cfg.validate().unwrap();
    }
    // The teaching chart of the two discriminator losses draws.
    condgen::concepts::discriminator_loss_chart().unwrap();
}

#[test]
fn profiles_set_the_study_and_the_wgan_gp_settings() {
    // The K49 study's CGAN (seed B): noise 64, batch 32, Adam lr 1e-3 with PyTorch's default betas.
    let paper = TrainConfig::new(Experiment::K49, condgen::model::ModelKind::Cgan, Profile::Paper);
    assert!(matches!(&paper.architecture, Architecture::MlpCgan(c) if c.noise == 64));
    assert_eq!((paper.batch_size, paper.learning_rate, paper.adam_betas), (32, 1e-3, [0.9, 0.999]));
    assert_eq!(paper.gan_loss, GanLoss::Bce);
    // WGAN-GP as prescribed: 5 critic steps, Adam (0, 0.9), lr 1e-4; no batch norm in the MLP critic.
    let w = paper.with_wgan_gp();
    assert_eq!(
        (w.gan_loss, w.discriminator_steps, w.learning_rate, w.adam_betas),
        (GanLoss::WganGp, 5, 1e-4, [0.0, 0.9])
    );
    assert_eq!(w.epochs, paper.epochs);
    w.validate().unwrap();
    // The improved conv CGAN also serves K49.
    let k = TrainConfig::improved_cgan(Experiment::K49, Profile::Quick);
    assert!(matches!(&k.architecture, Architecture::ConvCgan(c) if c.spectral_norm && c.generator_ema > 0.0));
    k.validate().unwrap();
}
