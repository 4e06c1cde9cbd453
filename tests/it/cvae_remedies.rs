//! Posterior collapse: its diagnostics (KL per latent dimension, active units)
//! and its remedies (KL warm-up, free bits, the continuous Bernoulli and
//! Gaussian likelihoods, the conv decoder's upsampling and conditioning options).

use crate::common;

use condgen::data::{DataOptions, DatasetKind, Split};
use condgen::loss;
use condgen::model::conv_cvae::DecoderUpsampling;
use condgen::model::{Architecture, ConvCvaeConfig, Likelihood, MlpCvaeConfig, ModelKind, Net, PixelLikelihood};
use condgen::optim::Adam;
use condgen::sample::{LatentSource, TrainedModel};
use condgen::task::ConditionSpec;
use condgen::train::{self, history, CvaeObjective, EpochRecord, Profile, TrainConfig};
use condgen::Experiment;
use ndarray::Array3;
use tch::{Device, Kind, Tensor};

fn scalar(t: &Tensor) -> f64 {
    t.double_value(&[])
}

fn logit(lambda: f64) -> f64 {
    (lambda / (1.0 - lambda)).ln()
}

/// log C(λ) of the continuous Bernoulli from its definition, in f64.
fn log_c_by_hand(lambda: f64) -> f64 {
    let x = 1.0 - 2.0 * lambda;
    (2.0 * x.atanh() / x).ln()
}

/// log C at each logit, through the library (f32).
fn log_c(logits: &[f32]) -> Vec<f64> {
    let t = loss::continuous_bernoulli_log_normaliser(&Tensor::from_slice(logits));
    Vec::<f64>::try_from(&t.to_kind(Kind::Double)).unwrap()
}

#[test]
fn continuous_bernoulli_log_normaliser_matches_hand_values() {
    let _serial = common::serial();
    let ln2 = std::f64::consts::LN_2;
    // λ = ½ exactly, and the limit λ → ½ from both sides: log 2.
    for (got, l) in log_c(&[0.0, 1e-6, -1e-6, 1e-3, -1e-3]).iter().zip([0.0, 1e-6, -1e-6, 1e-3, -1e-3]) {
        assert!((got - ln2).abs() < 1e-6, "logit {l}: {got} vs log 2");
    }
    // Away from ½: λ = 0.2 gives 1 − 2λ = 0.6, artanh 0.6 = ln 2, so log C = ln(ln 2 / 0.3) = 0.837459…;
    // λ = 0.9: artanh(−0.8) = −ln 3, log C = ln(ln 3 / 0.4) = 1.010338…
    let hand = [(0.2, (ln2 / 0.3).ln()), (0.9, (3f64.ln() / 0.4).ln())];
    for (lambda, expected) in hand {
        assert!((log_c_by_hand(lambda) - expected).abs() < 1e-12, "the hand formula itself");
        let got = log_c(&[logit(lambda) as f32])[0];
        assert!((got - expected).abs() < 1e-5, "λ = {lambda}: {got} vs {expected}");
    }
    // Symmetric in λ ↔ 1 − λ, and ≥ log 2.
    let lambdas = [0.01, 0.1, 0.3, 0.45, 0.499, 0.51, 0.7, 0.99];
    let logits: Vec<f32> = lambdas.iter().map(|&l| logit(l) as f32).collect();
    let flipped: Vec<f32> = logits.iter().map(|l| -l).collect();
    for ((a, b), lambda) in log_c(&logits).iter().zip(log_c(&flipped)).zip(lambdas) {
        assert!((a - b).abs() < 1e-6, "symmetry at λ = {lambda}");
        assert!((a - log_c_by_hand(lambda)).abs() < 1e-5, "λ = {lambda}: {a} vs {}", log_c_by_hand(lambda));
        assert!(*a >= ln2 - 1e-7);
    }
    // Continuous where the Taylor branch hands over (|logit| = 0.1), and exact at the
    // tails where λ itself rounds to 1 in f32: log C → log |logit|.
    let edge = log_c(&[0.0999, 0.1001, 40.0, -40.0]);
    let exact = |l: f64| (l / (l / 2.0).tanh()).ln();
    assert!((edge[0] - exact(0.0999)).abs() < 1e-6 && (edge[1] - exact(0.1001)).abs() < 1e-6, "{edge:?}");
    assert!((edge[2] - 40f64.ln()).abs() < 1e-5 && (edge[3] - 40f64.ln()).abs() < 1e-5, "{edge:?}");
    // Finite gradients, also at λ = ½ where the exact form is 0/0.
    let xs = Tensor::from_slice(&[0.0f32, 0.05, 3.0, -20.0]).set_requires_grad(true);
    let grads =
        Tensor::run_backward(&[loss::continuous_bernoulli_log_normaliser(&xs).sum(Kind::Float)], &[&xs], false, false);
    assert_eq!(grads[0].isfinite().all().to_kind(Kind::Int64).int64_value(&[]), 1, "{:?}", grads[0]);
    assert!(scalar(&grads[0].get(0)).abs() < 1e-6, "log C is flat at λ = ½");
}

/// The continuous Bernoulli's density exp(−NLL) integrates to 1 over [0, 1], and
/// its mean is what [`Likelihood::mean`] gives (not λ).
#[test]
fn continuous_bernoulli_is_a_density_and_its_mean_is_not_lambda() {
    let _serial = common::serial();
    let n = 2001;
    let xs: Vec<f64> = (0..n).map(|i| i as f64 / (n - 1) as f64).collect();
    for lambda in [0.2, 0.5, 0.9, 0.999] {
        let l = logit(lambda) as f32;
        let logits = Tensor::full([n as i64, 1, 1, 1], l as f64, (Kind::Float, Device::Cpu));
        let targets = Tensor::from_slice(&xs).to_kind(Kind::Float).view([n as i64, 1, 1, 1]);
        // nll_per_image over single-pixel images is the batch mean; take each image alone.
        let density: Vec<f64> = (0..n as i64)
            .map(|i| {
                (-scalar(&loss::continuous_bernoulli_nll_per_image(&logits.narrow(0, i, 1), &targets.narrow(0, i, 1))))
                    .exp()
            })
            .collect();
        let h = 1.0 / (n - 1) as f64;
        let trapezoid = |f: &dyn Fn(usize) -> f64| h * ((0..n).map(f).sum::<f64>() - 0.5 * (f(0) + f(n - 1)));
        let mass = trapezoid(&|i| density[i]);
        let mean = trapezoid(&|i| xs[i] * density[i]);
        assert!((mass - 1.0).abs() < 1e-3, "λ = {lambda}: ∫ p = {mass}");
        let library = scalar(&Likelihood::ContinuousBernoulli.mean(&Tensor::from_slice(&[l])).get(0));
        assert!((library - mean).abs() < 1e-3, "λ = {lambda}: mean {library} vs ∫ x p = {mean}");
    }
    // By hand: CB(0.2) has mean 0.2/(−0.6) + 1/(2 ln 2) = 0.388014…
    let by_hand = 0.2 / -0.6 + 1.0 / (2.0 * std::f64::consts::LN_2);
    let got = scalar(&loss::continuous_bernoulli_mean(&Tensor::from_slice(&[logit(0.2) as f32])).get(0));
    assert!((got - by_hand).abs() < 1e-6, "{got} vs {by_hand}");
    // Continuous across the Taylor hand-over (|logit| = 1), monotone, in (0, 1).
    let t = loss::continuous_bernoulli_mean(&Tensor::from_slice(&[
        -30.0f32, -5.0, -1.0001, -0.9999, 0.0, 0.9999, 1.0001, 5.0, 30.0,
    ]));
    let m = Vec::<f64>::try_from(&t.to_kind(Kind::Double)).unwrap();
    assert!((m[2] - m[3]).abs() < 1e-4 && (m[5] - m[6]).abs() < 1e-4, "{m:?}");
    assert!(m.windows(2).all(|w| w[0] < w[1]) && m[0] > 0.0 && m[8] < 1.0, "{m:?}");
    assert!((m[4] - 0.5).abs() < 1e-7);
    // The Bernoulli and Gaussian means are σ(logits).
    let l = Tensor::from_slice(&[-2.0f32, 0.0, 3.0]);
    for kind in [Likelihood::Bernoulli, Likelihood::Gaussian] {
        assert!(scalar(&(kind.mean(&l) - l.sigmoid()).abs().max()) < 1e-7);
    }
}

#[test]
fn kl_warmup_rises_linearly_over_its_steps() {
    let _serial = common::serial();
    // Off: the full weight from the first step.
    assert_eq!(loss::kl_warmup_weight(0.7, 0, 0), 0.7);
    // 2 epochs of 10 steps: β at the epoch boundaries 0, ½ and the full weight, then constant.
    let warmup = 2 * 10;
    let beta = |epoch: usize, step: usize| loss::kl_warmup_weight(2.0, (epoch - 1) * 10 + step, warmup);
    assert_eq!(beta(1, 0), 0.0);
    assert!((beta(1, 5) - 0.5).abs() < 1e-12);
    assert!((beta(2, 0) - 1.0).abs() < 1e-12);
    assert!((beta(2, 9) - 1.9).abs() < 1e-12);
    assert_eq!(beta(3, 0), 2.0);
    assert_eq!(beta(7, 3), 2.0);
    let steps: Vec<f64> = (0..=warmup).map(|s| loss::kl_warmup_weight(2.0, s, warmup)).collect();
    assert!(steps.windows(2).all(|w| (w[1] - w[0] - 0.1).abs() < 1e-12), "linear: {steps:?}");
}

#[test]
fn free_bits_clamp_each_dimension_and_stop_its_gradient() {
    let _serial = common::serial();
    let kl = Tensor::from_slice(&[0.1f32, 0.5, 2.0, 0.0]).set_requires_grad(true);
    assert!((scalar(&loss::free_bits_kl(&kl, 0.0)) - 2.6).abs() < 1e-6, "off: the plain sum");
    // max(0.25, ·) per dimension: 0.25 + 0.5 + 2 + 0.25
    let clamped = loss::free_bits_kl(&kl, 0.25);
    assert!((scalar(&clamped) - 3.0).abs() < 1e-6, "{clamped:?}");
    let grad = Tensor::run_backward(&[clamped], &[&kl], false, false).remove(0);
    assert_eq!(Vec::<f32>::try_from(&grad).unwrap(), vec![0.0, 1.0, 1.0, 0.0], "below λ no gradient");

    // kl_per_dimension sums to the KL per image, and the objective uses the clamp.
    let mean = Tensor::from_slice(&[0.5f32, 0.0, -1.0, 1.5, 0.0, 0.01]).view([2, 3]);
    let logvar = Tensor::from_slice(&[0.0f32, 0.0, 0.2, -0.5, 0.0, 0.0]).view([2, 3]);
    let dims = loss::kl_per_dimension(&mean, &logvar);
    assert_eq!(dims.size(), vec![3]);
    assert!((scalar(&dims.sum(Kind::Float)) - scalar(&loss::kl_per_image(&mean, &logvar))).abs() < 1e-6);
    assert!(scalar(&dims.get(1)).abs() < 1e-9, "dimension 1 is the prior in both images");
    let lik = PixelLikelihood::default();
    let logits = Tensor::zeros([2, 1, 28, 28], (Kind::Float, Device::Cpu));
    let images = Tensor::full([2, 1, 28, 28], 0.5, (Kind::Float, Device::Cpu));
    let conditions = Tensor::eye(2, (Kind::Float, Device::Cpu));
    let plain = CvaeObjective::elbo(&lik, 1.0).terms(&logits, &images, &conditions, (&mean, &logvar), None);
    let free = CvaeObjective { likelihood: &lik, kl_weight: 1.0, free_bits: 0.5, mmd_weight: 0.0 }.terms(
        &logits,
        &images,
        &conditions,
        (&mean, &logvar),
        None,
    );
    let expected_kl: f64 = Vec::<f64>::try_from(&dims.to_kind(Kind::Double)).unwrap().iter().map(|k| k.max(0.5)).sum();
    assert!((scalar(&free.0) - scalar(&free.1) - expected_kl).abs() < 1e-4);
    assert!((scalar(&free.2) - scalar(&plain.2)).abs() < 1e-9, "the reported KL stays the plain one");
    assert!((scalar(&plain.1) - 784.0 * std::f64::consts::LN_2).abs() < 1e-2, "BCE of ½ against logit 0");
}

#[test]
fn conditional_mmd_matches_a_hand_computation_and_sees_condition_dependence() {
    let _serial = common::serial();
    let f = |v: &[f32], rows: i64| Tensor::from_slice(v).view([rows, -1]);
    // Hand-computed: latent 1, posterior draws {0, 1}, prior draws {2, 3}, one
    // condition (condition kernel 2). The inverse multiquadric at distance² d is
    // K(d) = Σ_s 2s / (2s + d). Pairs i ≠ j only: within each set 2·K(1); across,
    // (z0, ε1) at distance² 9 and (z1, ε0) at 1, mean K(9) + K(1).
    // MMD² = 4·K(1) − 2·(K(9) + K(1)) = 2·K(1) − 2·K(9).
    let imq = |d: f64| -> f64 { loss::MMD_KERNEL_SCALES.iter().map(|s| 2.0 * s / (2.0 * s + d)).sum() };
    let same = f(&[1.0, 1.0], 2);
    let mmd = loss::conditional_mmd(&f(&[0.0, 1.0], 2), &f(&[2.0, 3.0], 2), &same);
    let by_hand = 2.0 * imq(1.0) - 2.0 * imq(9.0);
    assert!((scalar(&mmd) - by_hand).abs() < 1e-4, "{} vs {by_hand}", scalar(&mmd));
    let identical = loss::conditional_mmd(&f(&[0.0, 1.0], 2), &f(&[0.0, 1.0], 2), &same);
    assert!(scalar(&identical).abs() < 1e-5, "the same draws: 0");

    tch::manual_seed(5);
    let n = 256;
    let prior = Tensor::randn([n, 4], (Kind::Float, Device::Cpu));
    let labels = Tensor::arange(n, (Kind::Int64, Device::Cpu)).remainder(2);
    let conditions = labels.one_hot(2).to_kind(Kind::Float);
    // Independent draws from N(0, I), whatever the condition: about 0.
    let matched = loss::conditional_mmd(&Tensor::randn([n, 4], (Kind::Float, Device::Cpu)), &prior, &conditions);
    // The same points as another N(0, I) draw, but sorted so that condition 0
    // gets the low first coordinates: the aggregate matches, each condition does not.
    let draw = Tensor::randn([n, 4], (Kind::Float, Device::Cpu));
    let order = draw.select(1, 0).argsort(0, false);
    let by_condition = labels.argsort(0, false).argsort(0, false);
    let dependent = draw.index_select(0, &order).index_select(0, &by_condition);
    let leaked = loss::conditional_mmd(&dependent, &prior, &conditions);
    let shifted =
        loss::conditional_mmd(&(Tensor::randn([n, 4], (Kind::Float, Device::Cpu)) + 1.5), &prior, &conditions);
    let (matched, leaked, shifted) = (scalar(&matched), scalar(&leaked), scalar(&shifted));
    assert!(matched.abs() < 0.05, "matched draws: {matched}");
    assert!(leaked > 4.0 * matched.abs().max(0.01), "condition-dependent z: {leaked} vs matched {matched}");
    assert!(shifted > leaked, "a shifted aggregate: {shifted}");

    // It enters the objective with its weight.
    let lik = PixelLikelihood::default();
    let (logits, images) = (
        Tensor::zeros([n, 1, 28, 28], (Kind::Float, Device::Cpu)),
        Tensor::full([n, 1, 28, 28], 0.5, (Kind::Float, Device::Cpu)),
    );
    let (mean, logvar) = (dependent.shallow_clone(), Tensor::full([n, 4], -30.0, (Kind::Float, Device::Cpu)));
    let plain = CvaeObjective::elbo(&lik, 1.0).terms(&logits, &images, &conditions, (&mean, &logvar), None);
    let with_mmd = CvaeObjective { mmd_weight: 100.0, ..CvaeObjective::elbo(&lik, 1.0) }.terms(
        &logits,
        &images,
        &conditions,
        (&mean, &logvar),
        None,
    );
    let added = scalar(&with_mmd.0) - scalar(&plain.0);
    assert!(added > 100.0 * leaked * 0.5 && added < 100.0 * leaked * 1.5, "added {added}, 100 × {leaked}");
}

/// `n` pseudo-random images; labels cycle over 3 classes.
fn random_split(n: usize) -> Split {
    let pixels: Vec<u8> = (0..n * 784).map(|i| ((i * 2654435761) >> 7) as u8).collect();
    Split {
        images: Array3::from_shape_vec((n, 28, 28), pixels).unwrap(),
        labels: (0..n).map(|i| (i % 3) as u8).collect(),
        styles: None,
    }
}

#[test]
fn active_units_count_only_latents_whose_mean_follows_the_input() {
    let _serial = common::serial();
    // Constructed means: unit 0 varies (variance 1), unit 1 is constant, unit 2
    // varies by less than the threshold (variance 0.0009), unit 3 by more (0.04).
    let n = 1000;
    let rows: Vec<f32> = (0..n)
        .flat_map(|i| {
            let s = if i % 2 == 0 { 1.0f32 } else { -1.0 };
            [s, 0.7, 0.03 * s, 0.2 * s]
        })
        .collect();
    let means = Tensor::from_slice(&rows).view([n, 4]);
    assert_eq!(loss::active_units(&means), 2);
    assert_eq!(loss::active_units(&means.narrow(0, 0, 1)), 0, "one row has no variance");

    // A CVAE whose encoder ignores its input in every latent but the first.
    tch::manual_seed(0);
    let spec = ConditionSpec::OneHot { classes: 3, style_bit: false };
    let built = Architecture::MlpCvae(MlpCvaeConfig { hidden: 16, latent: 4, ..Default::default() })
        .build(spec.dim(), Device::Cpu);
    let vars = built.vs.variables();
    tch::no_grad(|| {
        let mut w = vars["enc.mean.weight"].shallow_clone();
        let _ = w.fill_(0.0);
        let _ = w.narrow(0, 0, 1).fill_(5.0);
    });
    let Net::Cvae(cvae) = &built.net else { panic!("a CVAE") };
    let stats = train::cvae_test_loss(cvae.as_ref(), &built.likelihood, &random_split(600), spec, 1.0, Device::Cpu);
    assert_eq!(stats.active_units, 1, "{stats:?}");
    assert_eq!(stats.kl_per_dim.len(), 4);
    assert!((stats.kl_per_dim.iter().sum::<f64>() - stats.kl).abs() < 1e-6 * stats.kl.max(1.0));
    assert!((stats.loss - stats.bce - stats.kl).abs() < 1e-6 * stats.loss.abs().max(1.0));
    // The ignoring latents have one posterior mean, their bias b, for every image:
    // KL = ½(b² + σ² − log σ² − 1) ≥ ½ b².
    let bias = &vars["enc.mean.bias"];
    for j in 1..4usize {
        let mean_j = scalar(&bias.get(j as i64));
        assert!(stats.kl_per_dim[j] >= 0.5 * mean_j * mean_j - 1e-6, "dimension {j}: {stats:?}");
    }
}

/// The small conv CVAE of these tests, with one combination of the decoder options.
fn conv_config(upsampling: DecoderUpsampling, embedding: i64, every_stage: bool) -> ConvCvaeConfig {
    ConvCvaeConfig {
        encoder_filters: [8, 4, 8],
        latent: 6,
        dense_channels: 5,
        decoder_filters: [7, 3],
        decoder_upsampling: upsampling,
        condition_embedding: embedding,
        condition_every_stage: every_stage,
        learned_prior: false,
        prior_components: 1,
        vamp_prior: false,
    }
}

#[test]
fn every_decoder_option_gives_28x28_images_and_counts_its_macs() {
    let _serial = common::serial();
    tch::manual_seed(1);
    let cond_dim = 24i64;
    for upsampling in [DecoderUpsampling::Transposed3, DecoderUpsampling::Transposed4, DecoderUpsampling::ResizeConv] {
        for (embedding, every_stage) in [(0, false), (0, true), (5, false), (5, true)] {
            let cfg = conv_config(upsampling, embedding, every_stage);
            let label = format!("{upsampling:?}, embedding {embedding}, every stage {every_stage}");
            let built = Architecture::ConvCvae(cfg.clone()).build(cond_dim as usize, Device::Cpu);
            let Net::Cvae(cvae) = &built.net else { panic!("a CVAE") };
            let b = 3;
            let cond = Tensor::eye(cond_dim, (Kind::Float, Device::Cpu)).narrow(0, 0, b);
            let xs = Tensor::rand([b, 1, 28, 28], (Kind::Float, Device::Cpu));
            for train in [true, false] {
                let (mean, logvar) = cvae.encode(&xs, &cond, train);
                assert_eq!(mean.size(), vec![b, 6], "{label}");
                assert_eq!(logvar.size(), vec![b, 6], "{label}");
                let z = Tensor::randn([b, 6], (Kind::Float, Device::Cpu));
                assert_eq!(cvae.decode(&z, &cond, train).size(), vec![b, 1, 28, 28], "{label}");
            }
            // forward_macs follows the options: each weighted layer's weights × the
            // positions it is applied at (a transposed convolution at its input's,
            // the resize-conv's convolution at its doubled output's).
            let vars = built.vs.variables();
            let weight = |name: &str| vars[&format!("{name}.weight")].numel() as u64;
            let up_positions = |input: u64| match upsampling {
                DecoderUpsampling::ResizeConv => 4 * input,
                _ => input,
            };
            let mut expected = weight("enc.conv0") * 169
                + weight("enc.conv1") * 36
                + weight("enc.conv2") * 4
                + weight("enc.out")
                + weight("dec.in")
                + weight("dec.up1") * up_positions(49)
                + weight("dec.up2") * up_positions(196)
                + weight("dec.out") * 784;
            if embedding > 0 {
                expected += weight("enc.cond_embed") + weight("dec.cond_embed");
            }
            assert_eq!(cfg.forward_macs(cond_dim), expected, "{label}");
        }
    }
}

/// The default-built conv CVAE keeps the study's variable names and shapes.
#[test]
fn default_conv_cvae_keeps_the_studys_variables() {
    let _serial = common::serial();
    let cfg = ConvCvaeConfig {
        encoder_filters: [8, 4, 8],
        latent: 6,
        dense_channels: 5,
        decoder_filters: [7, 3],
        ..Default::default()
    };
    assert_eq!(cfg.decoder_upsampling, DecoderUpsampling::Transposed3);
    let built = Architecture::ConvCvae(cfg).build(2, Device::Cpu);
    let mut shapes: Vec<(String, Vec<i64>)> =
        built.vs.variables().into_iter().filter(|(n, _)| n.ends_with("weight")).map(|(n, t)| (n, t.size())).collect();
    shapes.sort();
    let expected: Vec<(String, Vec<i64>)> = [
        ("dec.bn1.weight", vec![7]),
        ("dec.in.weight", vec![245, 8]),
        ("dec.out.weight", vec![3, 1, 3, 3]),
        ("dec.up1.weight", vec![5, 7, 3, 3]),
        ("dec.up2.weight", vec![7, 3, 3, 3]),
        ("enc.bn0.weight", vec![8]),
        ("enc.bn1.weight", vec![4]),
        ("enc.bn2.weight", vec![8]),
        ("enc.conv0.weight", vec![8, 3, 3, 3]),
        ("enc.conv1.weight", vec![4, 8, 3, 3]),
        ("enc.conv2.weight", vec![8, 4, 3, 3]),
        ("enc.out.weight", vec![12, 32]),
    ]
    .into_iter()
    .map(|(n, s)| (n.to_string(), s))
    .collect();
    assert_eq!(shapes, expected);
    assert!(built.vs.variables().keys().all(|n| !n.starts_with("lik.")), "no likelihood variable for the Bernoulli");
}

#[test]
fn one_training_step_of_each_likelihood_is_finite() {
    let _serial = common::serial();
    let spec = ConditionSpec::OneHot { classes: 3, style_bit: false };
    let images = Tensor::rand([8, 1, 28, 28], (Kind::Float, Device::Cpu));
    let conditions = spec.encode(&[0, 1, 2, 0, 1, 2, 0, 1], None, Device::Cpu);
    for kind in [Likelihood::Bernoulli, Likelihood::ContinuousBernoulli, Likelihood::Gaussian] {
        for arch in [
            Architecture::MlpCvae(MlpCvaeConfig { hidden: 16, latent: 4, ..Default::default() }),
            Architecture::ConvCvae(conv_config(DecoderUpsampling::ResizeConv, 4, true)),
        ] {
            tch::manual_seed(2);
            let built = arch.build(spec.dim(), Device::Cpu).with_likelihood(kind);
            assert_eq!(built.likelihood.kind, kind);
            assert_eq!(built.vs.variables().contains_key("lik.log_scale"), kind == Likelihood::Gaussian);
            let Net::Cvae(cvae) = &built.net else { panic!("a CVAE") };
            let mut opt = Adam::for_prefix(&built.vs, "", 1e-2, (0.9, 0.999));
            let objective =
                CvaeObjective { likelihood: &built.likelihood, kl_weight: 0.5, free_bits: 0.25, mmd_weight: 10.0 };
            for _ in 0..2 {
                let (total, nll, kl) = train::cvae_step(cvae.as_ref(), &mut opt, &images, &conditions, &objective);
                assert!(total.is_finite() && nll.is_finite() && kl.is_finite(), "{kind}: {total} {nll} {kl}");
                assert!(kl >= 0.0);
            }
            // The learned scale is a trained parameter.
            if let Some(s) = built.likelihood.scale() {
                assert!(s != 1.0, "the Gaussian's scale moved after two steps: {s}");
            }
            let z = Tensor::zeros([2, cvae.latent()], (Kind::Float, Device::Cpu));
            let means = tch::no_grad(|| built.likelihood.mean(&cvae.decode(&z, &conditions.narrow(0, 0, 2), false)));
            assert!(scalar(&means.min()) >= 0.0 && scalar(&means.max()) <= 1.0, "{kind}: image means in [0, 1]");
        }
    }
}

#[test]
fn the_options_are_set_validated_and_old_configs_still_parse() {
    let _serial = common::serial();
    // The quick and default profiles take the measured remedies; the paper profile keeps the study's settings.
    let base = TrainConfig::new(Experiment::SignLetter, ModelKind::Cvae, Profile::Quick);
    assert_eq!((base.kl_warmup_epochs, base.free_bits, base.likelihood), (2, 0.0, Likelihood::Gaussian));
    let Architecture::ConvCvae(default_arch) = &base.architecture else { panic!("conv") };
    assert_eq!(default_arch.decoder_upsampling, DecoderUpsampling::Transposed4, "no checkerboard by default");
    let paper = TrainConfig::new(Experiment::SignLetter, ModelKind::Cvae, Profile::Paper);
    assert_eq!((paper.kl_warmup_epochs, paper.free_bits, paper.likelihood), (0, 0.0, Likelihood::Bernoulli));
    let k49 = TrainConfig::new(Experiment::K49, ModelKind::Cvae, Profile::Default);
    assert_eq!(k49.likelihood, Likelihood::Bernoulli, "K49 keeps the study's likelihood");
    // The sign CVAEs of the quick and default profiles train their VampPrior;
    // the studies' settings, K49's CVAEs and the remedies table's first rows keep N(0, I).
    let learned = |cfg: &TrainConfig| cfg.architecture.learned_prior_components();
    let default = TrainConfig::new(Experiment::SignLetter, ModelKind::Cvae, Profile::Default);
    assert_eq!(learned(&base), Some(train::LEARNED_PRIOR_COMPONENTS));
    assert_eq!(learned(&default), Some(train::LEARNED_PRIOR_COMPONENTS));
    assert!(base.architecture.vamp_prior() && default.architecture.vamp_prior());
    let vae = train::Recipe::Vae.config(Experiment::SignLetter, ModelKind::Cvae, Profile::Default);
    assert_eq!(learned(&vae), learned(&default), "the CVAE and the VAE compared share their prior's form");
    for study in [paper.clone(), k49.clone(), TrainConfig::improved_cvae(Experiment::K49, Profile::Default)] {
        assert_eq!(learned(&study), None, "{:?} {:?}", study.experiment, study.profile);
    }
    let rows = TrainConfig::cvae_ablation(Experiment::SignLetter, Profile::Default);
    assert_eq!(learned(&rows[0].1), None, "the study's settings");
    let (mixture, vamp) = (&rows[rows.len() - 2].1, &rows[rows.len() - 1].1);
    assert_eq!(learned(mixture), learned(&default), "the mixture row has the default's components");
    assert!(!mixture.architecture.vamp_prior(), "the next-to-last row is the mixture");
    assert_eq!(vamp.architecture, default.architecture, "the last row is the default's network");
    let set = |pairs: &[&str]| base.set(&pairs.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    let cfg = set(&[
        "likelihood=continuous-bernoulli",
        "kl_warmup_epochs=2",
        "free_bits=0.25",
        "architecture.decoder_upsampling=resize-conv",
        "architecture.condition_embedding=16",
        "architecture.condition_every_stage=true",
    ])
    .unwrap();
    assert_eq!((cfg.kl_warmup_epochs, cfg.free_bits, cfg.likelihood), (2, 0.25, Likelihood::ContinuousBernoulli));
    let Architecture::ConvCvae(arch) = &cfg.architecture else { panic!("conv") };
    assert_eq!(
        (arch.decoder_upsampling, arch.condition_embedding, arch.condition_every_stage),
        (DecoderUpsampling::ResizeConv, 16, true)
    );
    assert_eq!(
        set(&["likelihood=gaussian", "architecture.decoder_upsampling=transposed4"]).unwrap().likelihood,
        Likelihood::Gaussian
    );

    for bad in [
        &["free_bits=-0.5"][..],
        &["mmd_weight=-1"],
        &["kl_warmup_epochs=3"],
        &["likelihood=poisson"],
        &["architecture.decoder_upsampling=bilinear"],
        &["architecture.condition_embedding=-1"],
    ] {
        assert!(set(bad).is_err(), "{bad:?} must be rejected");
    }
    let gan = TrainConfig::new(Experiment::K49, ModelKind::Cgan, Profile::Quick);
    assert!(gan.set(&["likelihood=gaussian".to_string()]).is_err(), "a CGAN has no likelihood option");
    assert!(gan.set(&["mmd_weight=10".to_string()]).is_err(), "nor an MMD penalty");
    assert_eq!(set(&["mmd_weight=100"]).unwrap().mmd_weight, 100.0);
    // Off, it is left out of config.json, so the run ids of configs without it stay as they were.
    assert!(serde_json::to_value(&base).unwrap().get("mmd_weight").is_none());

    // A config.json written before the options existed reads as the studies' settings.
    let study = base.clone().without_cvae_remedies();
    let mut old = serde_json::to_value(&study).unwrap();
    for key in ["kl_warmup_epochs", "free_bits", "likelihood"] {
        old.as_object_mut().unwrap().remove(key);
    }
    for key in ["decoder_upsampling", "condition_embedding", "condition_every_stage"] {
        old["architecture"].as_object_mut().unwrap().remove(key);
    }
    let parsed: TrainConfig = serde_json::from_value(old).unwrap();
    assert_eq!(parsed, study);
}

#[test]
fn history_csv_carries_the_collapse_diagnostics() {
    let _serial = common::serial();
    let records: Vec<EpochRecord> = (1..=2)
        .map(|epoch| EpochRecord {
            epoch,
            loss: Some(100.0),
            bce: Some(95.0),
            kl: Some(5.0),
            test_loss: Some(101.0),
            test_bce: Some(96.0),
            test_kl: Some(5.0),
            test_active_units: Some(epoch + 1),
            test_kl_per_dim: Some(vec![0.0001, 3.25, 1.74999, 0.0]),
            seconds: 1.0,
            images_per_second: 10.0,
            ..Default::default()
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.csv");
    std::fs::write(&path, history::to_csv(&records).unwrap()).unwrap();
    let df = history::read_csv(&path).unwrap();
    let names: Vec<String> = df.get_column_names().iter().map(|s| s.to_string()).collect();
    assert!(
        names.contains(&"test_active_units".to_string()) && names.contains(&"test_kl_per_dim".to_string()),
        "{names:?}"
    );
    assert_eq!(history::collapse_diagnostics(&path, 2), Some((3, vec![0.0001, 3.25, 1.75, 0.0])));
    assert_eq!(history::collapse_diagnostics(&path, 3), None, "an epoch the file does not hold");
    assert_eq!(history::parse_kl_per_dim("0.5;x"), None);
    // The loss chart marks the model's epoch on the validation curve.
    let marked = condgen::figures::cvae_loss_chart_at(&records, 1, "loss").unwrap();
    let plain = condgen::figures::cvae_loss_chart(&records, "loss").unwrap();
    assert_eq!((marked.width, marked.height), (plain.width, plain.height));
    assert_ne!(marked.png, plain.png, "the marker and its legend entry are drawn");
    // A long history thinned for a table: evenly spaced, the last epoch kept.
    let long: Vec<EpochRecord> = (1..=40).map(|epoch| EpochRecord { epoch, ..Default::default() }).collect();
    let epochs = |max| history::thinned(&long, max).iter().map(|r| r.epoch).collect::<Vec<_>>();
    assert_eq!(epochs(12), vec![4, 8, 12, 16, 20, 24, 28, 32, 36, 40]);
    assert_eq!(epochs(100).len(), 40);
    assert!(history::thinned(&[], 12).is_empty());
    assert!(records[1].summary(2).contains("active units 3/4"), "{}", records[1].summary(2));
}

/// A quick sign-vowel CVAE with every remedy on trains, records its diagnostics,
/// and loads back (the Gaussian's scale with it) to sample and reconstruct.
#[test]
fn a_run_with_every_remedy_trains_records_and_reloads() {
    let _serial = common::serial();
    let dataset = DataOptions::from_env().load(DatasetKind::SignMnist).unwrap();
    let data = Experiment::SignVowel.prepare(&dataset);
    // N(0, I): the swap test below needs a prior the same for every condition.
    let cfg = TrainConfig::new(Experiment::SignVowel, ModelKind::Cvae, Profile::Quick)
        .with_standard_normal_prior()
        .set(
            &[
                "epochs=2",
                "snapshot_epochs=[2]",
                "max_train_images=256",
                "max_test_images=128",
                "kl_warmup_epochs=1",
                "free_bits=0.1",
                "likelihood=gaussian",
                "architecture.decoder_upsampling=transposed4",
                "architecture.condition_embedding=4",
                "architecture.condition_every_stage=true",
                "translate_train_images=true",
            ]
            .map(String::from),
        )
        .unwrap();
    let root = tempfile::tempdir().unwrap();
    let opts = common::cpu_train_options(root.path());
    let outcome = train::train(&cfg, &data, &opts).unwrap();
    let last = outcome.history.last().unwrap();
    let latent = match &cfg.architecture {
        Architecture::ConvCvae(c) => c.latent as usize,
        _ => unreachable!(),
    };
    assert_eq!(last.test_kl_per_dim.as_ref().map(Vec::len), Some(latent));
    assert!(last.test_active_units.unwrap() <= latent);
    let (active, dims) = history::collapse_diagnostics(&outcome.run.file("history.csv"), 2).unwrap();
    assert_eq!(active, last.test_active_units.unwrap());
    assert_eq!(dims.len(), latent);

    let model = TrainedModel::load(&outcome.run.path, Device::Cpu).unwrap();
    assert_eq!(model.built.likelihood.kind, Likelihood::Gaussian);
    let scale = model.built.likelihood.scale().unwrap();
    assert!(scale != 1.0 && scale.is_finite(), "the trained scale came back from the checkpoint: {scale}");
    let samples = model.sampler(LatentSource::TrainedPrior).unwrap().sample_all_conditions(3, 5).unwrap();
    assert_eq!(samples.images.shape(), &[6, 28, 28]);
    // Under N(0, I), z does not depend on the condition it is drawn for: a swap changes nothing.
    let sampler = model.sampler(LatentSource::TrainedPrior).unwrap();
    let (zeros, ones) = ([0u8, 0, 0], [1u8, 1, 1]);
    let plain = sampler.generate(&ones, &zeros, 9).unwrap();
    let swapped = sampler.generate_swapped((&zeros, &zeros), (&ones, &zeros), 9).unwrap();
    assert_eq!(plain.images, swapped.images);
    assert_eq!(swapped.labels, vec![1, 1, 1], "labelled with the decoded condition");
    // The swap grid: a 2 × 2 labelled picture; a CGAN or an unknown condition is refused.
    let grid = condgen::figures::swap_grid(&sampler, &data, &[0, 1], &[0, 1], 3).unwrap();
    assert!(grid.width > 2 * 28 && grid.height > 2 * 28, "{} × {}", grid.width, grid.height);
    assert!(condgen::figures::swap_grid(&sampler, &data, &[0], &[2], 3).is_err(), "vowel has conditions 0 and 1");
    let (_, recon) = condgen::sample::reconstruct(&model.built, &model.spec, &data.test, 4).unwrap();
    assert_eq!(recon.shape(), &[4, 28, 28]);
    // The held-out NLL under a density: dequantised, in bits per pixel of the 8-bit images.
    let nll =
        condgen::eval::likelihood::negative_log_likelihood(&model, &data.test, 8, 32, 1, LatentSource::TrainedPrior)
            .unwrap();
    let bits = nll.bits_per_dim.expect("a Gaussian likelihood gives bits per dimension");
    let pixels = 784.0;
    assert!((bits - (nll.nats + pixels * 256f64.ln()) / (pixels * 2f64.ln())).abs() < 1e-9, "{nll:?}");
    assert!(bits.is_finite() && bits > 0.0 && nll.standard_error.is_finite(), "{nll:?}");
    assert_eq!(
        nll,
        condgen::eval::likelihood::negative_log_likelihood(&model, &data.test, 8, 32, 1, LatentSource::TrainedPrior)
            .unwrap()
    );
    // Under the fitted prior: the same codes weighed by another density, so another (finite) bound.
    let mut model = model;
    model.ensure_latent_prior(&data).unwrap();
    let fitted =
        condgen::eval::likelihood::negative_log_likelihood(&model, &data.test, 8, 32, 1, LatentSource::FittedPrior)
            .unwrap();
    assert_eq!(fitted.prior, LatentSource::FittedPrior);
    assert!(fitted.nats.is_finite() && fitted.nats != nll.nats, "{fitted:?} vs {nll:?}");
}

#[test]
fn k49_improved_cvae_is_the_sign_conv_cvae_with_its_remedies() {
    let improved = TrainConfig::improved_cvae(Experiment::K49, Profile::Default);
    // The sign CVAE's network and remedies; its learned prior is not measured on K49.
    let sign = TrainConfig::new(Experiment::SignLetter, ModelKind::Cvae, Profile::Default).with_standard_normal_prior();
    assert_eq!(improved.architecture, sign.architecture);
    assert_eq!((improved.likelihood, improved.kl_warmup_epochs, improved.epochs), (Likelihood::Gaussian, 2, 2));
    assert_eq!(improved.experiment, Experiment::K49);
    improved.validate().unwrap();
    // The paper profile's improved CVAE gets the remedies too, and the study's epochs.
    let paper = TrainConfig::improved_cvae(Experiment::K49, Profile::Paper);
    assert!(
        matches!(&paper.architecture, Architecture::ConvCvae(c) if c.decoder_upsampling == DecoderUpsampling::Transposed4)
    );
    assert_eq!((paper.likelihood, paper.epochs), (Likelihood::Gaussian, 50));
    // The sign tasks' CVAE is already the improved one.
    assert_eq!(
        TrainConfig::improved_cvae(Experiment::SignVowel, Profile::Default),
        TrainConfig::new(Experiment::SignVowel, ModelKind::Cvae, Profile::Default)
    );
}

#[test]
fn kl_to_a_gaussian_prior_matches_the_closed_form_and_is_the_standard_kl_at_n01() {
    let mean = Tensor::from_slice(&[1.0f32, 0.0]).view([1, 2]);
    let logvar = Tensor::from_slice(&[0.0f32, 0.5]).view([1, 2]);
    let zeros = Tensor::zeros([1, 2], (Kind::Float, Device::Cpu));
    let standard = loss::kl_per_dimension(&mean, &logvar);
    let to_n01 = loss::kl_per_dimension_to(&mean, &logvar, &zeros, &zeros);
    assert!(scalar(&(&standard - &to_n01).abs().max()) < 1e-6);
    // q = N(1, 1), p = N(0.5, 4): ½ (ln 4 − 0 + (1 + 0.25) / 4 − 1).
    let prior_mean = Tensor::from_slice(&[0.5f32, 0.0]).view([1, 2]);
    let prior_logvar = Tensor::from_slice(&[4f32.ln(), 0.5]).view([1, 2]);
    let kl = loss::kl_per_dimension_to(&mean, &logvar, &prior_mean, &prior_logvar);
    let by_hand = 0.5 * (4f64.ln() + 1.25 / 4.0 - 1.0);
    assert!((scalar(&kl.get(0)) - by_hand).abs() < 1e-6, "{kl:?}");
    assert!(scalar(&kl.get(1)).abs() < 1e-7, "q equal to p: no KL");
}

/// A CVAE trained with a learned prior p(z | c), a mixture of two Gaussians per
/// condition, trains it, samples from it as trained, and reloads it; the options
/// leave default configurations' files unchanged.
#[test]
fn a_learned_conditional_prior_trains_samples_and_reloads() {
    let _serial = common::serial();
    let default = TrainConfig::new(Experiment::SignVowel, ModelKind::Cvae, Profile::Quick).with_standard_normal_prior();
    let saved = serde_json::to_string(&default).unwrap();
    assert!(!saved.contains("learned_prior") && !saved.contains("prior_components"), "old run ids stay");
    let dataset = DataOptions::from_env().load(DatasetKind::SignMnist).unwrap();
    let data = Experiment::SignVowel.prepare(&dataset);
    let cfg = default
        .set(
            &[
                "epochs=2",
                "max_train_images=256",
                "max_test_images=64",
                "architecture.learned_prior=true",
                "architecture.prior_components=2",
            ]
            .map(String::from),
        )
        .unwrap();
    assert!(serde_json::to_string(&cfg).unwrap().contains("\"learned_prior\":true"));
    let root = tempfile::tempdir().unwrap();
    let outcome = train::train(&cfg, &data, &common::cpu_train_options(root.path())).unwrap();
    let model = TrainedModel::load(&outcome.run.path, Device::Cpu).unwrap();
    assert!(model.has_learned_prior());
    let Net::Cvae(cvae) = &model.built.net else { unreachable!() };
    let cond = model.spec.encode(&[0, 1], None, Device::Cpu);
    let prior = cvae.prior(&cond).expect("a learned prior");
    assert_eq!(prior.means.size()[..2], [2, 2], "two rows, two components each");
    let moved =
        scalar(&prior.logvars.abs().sum(Kind::Float)) + scalar(&(prior.log_weights.exp() - 0.5).abs().sum(Kind::Float));
    assert!(moved > 0.0, "the variances start at 1, the weights equal, and training moves them");
    let means = &prior.means;
    assert!(scalar(&(means.get(0) - means.get(1)).abs().sum(Kind::Float)) > 0.0, "a mixture per condition");
    let sampler = model.sampler(LatentSource::TrainedPrior).unwrap();
    assert!(sampler.caption().starts_with(condgen::sample::LATENT_LEARNED), "{}", sampler.caption());
    assert!(sampler.caption().contains("mixture of 2"), "{}", sampler.caption());
    assert!(condgen::figures::pseudo_inputs_grid(&model, &data).is_err(), "a mixture has no pseudo-inputs");
    let samples = sampler.sample_all_conditions(2, 0).unwrap();
    assert_eq!(samples.images.shape(), &[4, 28, 28]);
    // Under a learned prior, z depends on its condition: the swap test's z from class 0 differs from class 1's.
    let (zeros, ones) = ([0u8; 4], [1u8; 4]);
    let plain = sampler.generate(&ones, &zeros, 9).unwrap();
    assert_eq!(sampler.generate_swapped((&ones, &zeros), (&ones, &zeros), 9).unwrap().images, plain.images);
    assert_ne!(sampler.generate_swapped((&zeros, &zeros), (&ones, &zeros), 9).unwrap().images, plain.images);
    assert!(sampler.generate_swapped((&zeros[..3], &zeros[..3]), (&ones, &zeros), 9).is_err());
    let nll =
        condgen::eval::likelihood::negative_log_likelihood(&model, &data.test, 4, 8, 1, LatentSource::TrainedPrior)
            .unwrap();
    assert!(nll.nats.is_finite(), "{nll:?}");
}

/// A conv CVAE with a conditional VampPrior trains, reloads with its pseudo-inputs,
/// and samples from it as trained; the option needs a learned prior.
#[test]
fn a_vamp_prior_trains_reloads_and_samples_as_trained() {
    let _serial = common::serial();
    let base = TrainConfig::new(Experiment::SignVowel, ModelKind::Cvae, Profile::Quick);
    let small = ["epochs=1", "kl_warmup_epochs=1", "max_train_images=256", "max_test_images=64"].map(String::from);
    let without =
        [&small[..], &["architecture.learned_prior=false".into(), "architecture.vamp_prior=true".into()]].concat();
    assert!(base.set(&without).is_err(), "a VampPrior is a learned prior");
    let cfg = base.with_vamp_prior(2).set(&small).unwrap();
    assert!(cfg.architecture.vamp_prior());
    let dataset = DataOptions::from_env().load(DatasetKind::SignMnist).unwrap();
    let data = Experiment::SignVowel.prepare(&dataset);
    let root = tempfile::tempdir().unwrap();
    let outcome = train::train(&cfg, &data, &common::cpu_train_options(root.path())).unwrap();
    let model = TrainedModel::load(&outcome.run.path, Device::Cpu).unwrap();
    let sampler = model.sampler(LatentSource::TrainedPrior).unwrap();
    assert!(sampler.caption().contains("VampPrior"), "{}", sampler.caption());
    assert!(condgen::figures::pseudo_inputs_grid(&model, &data).is_ok(), "2 pseudo-images per condition");
    let Net::Cvae(cvae) = &model.built.net else { unreachable!() };
    let cond = model.spec.encode(&[0, 1], None, Device::Cpu);
    let prior = cvae.prior(&cond).expect("a learned prior");
    assert_eq!(prior.means.size()[..2], [2, 2], "two rows, two pseudo-inputs each");
    // Seeded draws repeat; z drawn for another condition changes the image.
    let (zeros, ones) = ([0u8; 4], [1u8; 4]);
    let plain = sampler.generate(&ones, &zeros, 9).unwrap();
    assert_eq!(sampler.generate(&ones, &zeros, 9).unwrap().images, plain.images, "seeded");
    assert_ne!(sampler.generate_swapped((&zeros, &zeros), (&ones, &zeros), 9).unwrap().images, plain.images);
}
