//! Sampling and reconstruction from trained models, and the samples file
//! other tools read (`images` uint8 [n, 28, 28], `labels` int64 [n],
//! `styles` int64 [n] for K49).

use std::path::Path;

use ndarray::Array3;
use tch::{Device, Kind, Tensor};

use crate::data::npz::{self, NpzArray};
use crate::data::Split;
use crate::data::{PIXELS, SIDE};
use crate::model::latent_prior::{LatentPrior, LATENT_PRIOR_FILE, PRIOR_COMPONENTS};
use crate::model::{Built, Net};
use crate::task::{ConditionSpec, Experiment, TaskData};
use crate::train::{self, RunDir, TrainConfig};
use crate::{Error, Result};

/// Generated images with the conditions they were asked for.
#[derive(Clone, Debug)]
pub struct Samples {
    /// images: [n, 28, 28] uint8, same polarity and scale as the real data.
    pub images: Array3<u8>,
    /// labels: [n] the requested class (letter 0..23, vowel 0/1, rotation 0..3, K49 class 0..48).
    pub labels: Vec<i64>,
    /// styles: [n] 0 thin / 1 thick, for K49.
    pub styles: Option<Vec<i64>>,
}

impl Samples {
    /// Writes the samples contract (`images`, `labels`, `styles`) as a compressed npz.
    pub fn write_npz(&self, path: &Path) -> Result<()> {
        let n = self.labels.len() as u64;
        let images = self.images.as_slice().expect("contiguous");
        let mut arrays = vec![
            ("images", NpzArray::U8 { shape: vec![n, SIDE as u64, SIDE as u64], data: images }),
            ("labels", NpzArray::I64 { shape: vec![n], data: &self.labels }),
        ];
        if let Some(styles) = &self.styles {
            arrays.push(("styles", NpzArray::I64 { shape: vec![n], data: styles }));
        }
        npz::write(path, &arrays)
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// A trained model loaded from its run folder.
pub struct TrainedModel {
    pub config: TrainConfig,
    pub built: Built,
    pub spec: ConditionSpec,
    pub run: RunDir,
    /// The last complete epoch the weights come from.
    pub epoch: usize,
    /// CVAE only: per-condition Gaussians fitted to the codes of the training
    /// images, used instead of N(0, I) when sampling (see [`LatentPrior`]).
    pub latent_prior: Option<LatentPrior>,
}

impl TrainedModel {
    /// Loads the config and the last complete checkpoint of a run folder.
    pub fn load(dir: &Path, device: Device) -> Result<Self> {
        let run = RunDir::open(dir);
        let config = run.read_config()?;
        let pointer = run.pointer()?.ok_or_else(|| Error::Checkpoint {
            path: dir.to_path_buf(),
            message: "no completed epoch in this run folder yet".into(),
        })?;
        let spec = config.condition_spec();
        let mut built = config.build(spec.dim(), device);
        train::load_weights(&mut built, &run.checkpoint_dir(pointer.epoch).join(train::run::MODEL_FILE))?;
        // A prior fitted to another epoch's encoder is stale: ignore it.
        let latent_prior = match &built.net {
            Net::Cvae(cvae) if run.file(LATENT_PRIOR_FILE).exists() => {
                let prior = LatentPrior::load(&run.file(LATENT_PRIOR_FILE), &spec, cvae.latent())?;
                (prior.epoch == pointer.epoch).then_some(prior)
            }
            _ => None,
        };
        Ok(TrainedModel { config, built, spec, run, epoch: pointer.epoch, latent_prior })
    }

    /// Loads a run and, for a CVAE, makes sure its fitted latent prior exists:
    /// fits it on the run's training images of `data` and saves it in the run
    /// folder when missing or stale (seconds; once per run).
    pub fn load_with_prior(dir: &Path, data: &TaskData, device: Device) -> Result<Self> {
        let mut model = Self::load(dir, device)?;
        model.ensure_latent_prior(data)?;
        Ok(model)
    }

    /// See [`TrainedModel::load_with_prior`]. Does nothing for a CGAN.
    pub fn ensure_latent_prior(&mut self, data: &TaskData) -> Result<()> {
        if self.has_latent_prior() {
            return Ok(());
        }
        if data.experiment != self.experiment() {
            return Err(Error::Config(format!(
                "a {} run cannot fit its prior on {} data",
                self.experiment(),
                data.experiment
            )));
        }
        self.fit_latent_prior(data, PRIOR_COMPONENTS)
    }

    /// Whether [`TrainedModel::ensure_latent_prior`] has nothing to do: a CGAN,
    /// or a CVAE whose fitted prior of [`PRIOR_COMPONENTS`] Gaussians is loaded.
    pub fn has_latent_prior(&self) -> bool {
        match &self.built.net {
            Net::Cvae(_) => self.latent_prior.as_ref().is_some_and(|p| p.components == PRIOR_COMPONENTS),
            Net::Gan { .. } => true,
        }
    }

    /// Fits the latent prior anew with `components` Gaussians per condition
    /// (see [`LatentPrior`]) and saves it in the run folder. A CGAN has none.
    pub fn fit_latent_prior(&mut self, data: &TaskData, components: usize) -> Result<()> {
        let prior = self.fitted_prior(data, components);
        if let Some(prior) = &prior {
            prior.save(&self.run.file(LATENT_PRIOR_FILE))?;
        }
        self.latent_prior = prior;
        Ok(())
    }

    /// A latent prior with `components` Gaussians per condition, fitted to the
    /// codes of the run's training images, without saving it (None for a CGAN).
    pub fn fitted_prior(&self, data: &TaskData, components: usize) -> Option<LatentPrior> {
        let Net::Cvae(cvae) = &self.built.net else { return None };
        // The same training images the run saw (quick runs see a slice; held-out classes are left out).
        let train = self.config.training_data(data).train;
        Some(LatentPrior::fit(cvae.as_ref(), &self.spec, &train, self.epoch, components, self.built.vs.device()))
    }

    /// This model drawing its samples from `source`. A CVAE asked for its fitted
    /// prior must have one ([`TrainedModel::load_with_prior`] or
    /// [`TrainedModel::ensure_latent_prior`]); a CGAN draws noise from N(0, I)
    /// whichever source is named.
    pub fn sampler(&self, source: LatentSource) -> Result<Sampler<'_>> {
        if matches!(self.built.net, Net::Cvae(_)) && source == LatentSource::FittedPrior && self.latent_prior.is_none()
        {
            return Err(Error::Config(format!(
                "run {} has no fitted latent prior for epoch {}: load it with TrainedModel::load_with_prior \
                 (or sample from LatentSource::StandardNormal)",
                crate::data::display_path(&self.run.path),
                self.epoch
            )));
        }
        Ok(Sampler { model: self, source })
    }

    /// How the fixed-noise snapshots saved during training were drawn (before
    /// any prior was fitted, so a CVAE's from N(0, I)), for captions.
    pub fn snapshot_latent_source(&self) -> &'static str {
        match &self.built.net {
            Net::Cvae(_) => LATENT_STANDARD,
            Net::Gan { .. } => GAN_NOISE,
        }
    }

    pub fn experiment(&self) -> Experiment {
        self.config.experiment
    }
}

/// Where a CVAE's latent code comes from when it generates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LatentSource {
    /// The per-condition Gaussians fitted to the training images' codes after
    /// training ([`LatentPrior`]); condgen's figures and metrics use it unless
    /// they name N(0, I).
    #[default]
    FittedPrior,
    /// N(0, I): the prior the CVAE was trained towards, and what the studies sample from.
    StandardNormal,
}

/// A trained model with the latent source its samples come from
/// ([`TrainedModel::sampler`]); every sample a figure or metric shows is drawn here.
#[derive(Clone, Copy)]
pub struct Sampler<'a> {
    pub model: &'a TrainedModel,
    pub source: LatentSource,
}

impl Sampler<'_> {
    /// The prior a CVAE's noise is moved by (none: N(0, I)).
    fn prior(&self) -> Option<&LatentPrior> {
        match self.source {
            LatentSource::FittedPrior => self.model.latent_prior.as_ref(),
            LatentSource::StandardNormal => None,
        }
    }

    /// One image per (class, style) pair.
    pub fn generate(&self, classes: &[u8], styles: &[u8], seed: u64) -> Result<Samples> {
        self.generate_at(1.0, classes, styles, seed)
    }

    /// As [`Sampler::generate`], with a CVAE's standard normal noise scaled by `temperature` ([`draw`]).
    pub fn generate_at(&self, temperature: f64, classes: &[u8], styles: &[u8], seed: u64) -> Result<Samples> {
        let model = self.model;
        draw(&model.built, &model.spec, self.prior(), temperature, classes, styles, seed)
    }

    /// `per_condition` samples of every condition (every class, and both styles for K49), grouped by condition.
    pub fn sample_all_conditions(&self, per_condition: usize, seed: u64) -> Result<Samples> {
        self.sample_all_conditions_at(per_condition, seed, 1.0)
    }

    /// As [`Sampler::sample_all_conditions`] at a sampling temperature ([`draw`]).
    pub fn sample_all_conditions_at(&self, per_condition: usize, seed: u64, temperature: f64) -> Result<Samples> {
        let (classes, styles) = condition_lists(&self.model.spec, per_condition);
        self.generate_at(temperature, &classes, &styles, seed)
    }

    /// How these samples are drawn, for tables and captions, e.g.
    /// "z from the fitted per-condition prior (10-Gaussian mixture)".
    pub fn caption(&self) -> String {
        let fitted = |base: &str| {
            let k = self.model.latent_prior.as_ref().map_or(1, |p| p.components);
            let shape = if k == 1 { "one Gaussian".to_string() } else { format!("{k}-Gaussian mixture") };
            format!("{base} ({shape})")
        };
        match (&self.model.built.net, self.source) {
            (Net::Gan { .. }, _) => GAN_NOISE.to_string(),
            (Net::Cvae(_), LatentSource::StandardNormal) => LATENT_STANDARD.to_string(),
            (Net::Cvae(_), LatentSource::FittedPrior) if !self.model.spec.is_conditional() => {
                fitted(LATENT_FITTED_POOLED)
            }
            (Net::Cvae(_), LatentSource::FittedPrior) => fitted(LATENT_FITTED),
        }
    }
}

/// Float images in [0, 1] → uint8 0..=255. xs: [n, 1, 28, 28]
pub fn to_u8_images(xs: &Tensor) -> Array3<u8> {
    let n = xs.size()[0] as usize;
    let bytes = (xs.clamp(0.0, 1.0) * 255.0).round().to_kind(Kind::Uint8).to_device(Device::Cpu).contiguous();
    let mut out = vec![0u8; n * PIXELS];
    bytes.view([-1]).copy_data(&mut out, n * PIXELS);
    Array3::from_shape_vec((n, SIDE, SIDE), out).expect("n·784 bytes")
}

/// Caption of CVAE samples drawn from the fitted per-condition prior.
pub const LATENT_FITTED: &str = "z from the fitted per-condition prior";
/// Caption of an unconditional VAE's samples drawn from its fitted prior (one for all images).
pub const LATENT_FITTED_POOLED: &str = "z from the fitted prior";
/// Caption of CVAE samples drawn from the training prior N(0, I).
pub const LATENT_STANDARD: &str = "z from N(0, I)";
/// Caption of a CGAN's samples.
pub const GAN_NOISE: &str = "noise N(0, I)";

/// One image per (class, style) pair, from noise seeded by `seed`: a CVAE
/// draws standard normal noise, scales it by `temperature` (below 1: samples
/// nearer each condition's mode, more precise and less diverse; above 1: the
/// reverse) and moves it by `prior` when one is given (else z ~ N(0, I));
/// a CGAN's noise is N(0, I), unscaled. Runs in eval mode (batch norm uses
/// its running statistics). [`Sampler`] is the usual way in.
pub fn draw(
    built: &Built,
    spec: &ConditionSpec,
    prior: Option<&LatentPrior>,
    temperature: f64,
    classes: &[u8],
    styles: &[u8],
    seed: u64,
) -> Result<Samples> {
    let device = built.vs.device();
    tch::manual_seed(seed as i64);
    let mut chunks = Vec::new();
    tch::no_grad(|| {
        for (cls, sty) in classes.chunks(1024).zip(styles.chunks(1024)) {
            let cond = spec.encode(cls, Some(sty), device);
            let b = cls.len() as i64;
            let xs = match &built.net {
                Net::Cvae(cvae) => {
                    let eps = Tensor::randn([b, cvae.latent()], (Kind::Float, device)) * temperature;
                    let z = match prior {
                        Some(p) => p.transform(spec, cls, sty, &eps),
                        None => eps,
                    };
                    built.likelihood.mean(&cvae.decode(&z, &cond, false))
                }
                Net::Gan { .. } => {
                    let generator = built.net.sampling_generator().expect("a CGAN has a generator");
                    let noise = Tensor::randn([b, generator.noise_dim()], (Kind::Float, device));
                    (generator.generate(&noise, &cond, false) + 1.0) / 2.0
                }
            };
            chunks.push(xs);
        }
    });
    let images =
        if chunks.is_empty() { Array3::zeros((0, SIDE, SIDE)) } else { to_u8_images(&Tensor::cat(&chunks, 0)) };
    Ok(Samples {
        images,
        labels: classes.iter().map(|&c| c as i64).collect(),
        styles: spec.has_style().then(|| styles.iter().map(|&s| s as i64).collect()),
    })
}

/// `per_condition` samples of every condition (every class, and both styles for K49),
/// grouped by condition, drawn as [`draw`] does at temperature 1.
pub fn draw_all_conditions(
    built: &Built,
    spec: &ConditionSpec,
    prior: Option<&LatentPrior>,
    per_condition: usize,
    seed: u64,
) -> Result<Samples> {
    let (classes, styles) = condition_lists(spec, per_condition);
    draw(built, spec, prior, 1.0, &classes, &styles, seed)
}

/// CVAE: decodes `rows` latent codes z ~ N(0, I) (seeded by `seed`), each under a
/// condition that moves linearly from class `a` to class `b` in `steps` steps:
/// [rows·steps, 28, 28] uint8, row by row.
pub fn interpolate_condition(
    model: &TrainedModel,
    a: u8,
    b: u8,
    steps: usize,
    rows: usize,
    seed: u64,
) -> Result<Array3<u8>> {
    let Net::Cvae(cvae) = &model.built.net else {
        return Err(Error::Unsupported("latent interpolation needs a CVAE".into()));
    };
    let device = model.built.vs.device();
    tch::manual_seed(seed as i64);
    let images = tch::no_grad(|| {
        let z = Tensor::randn([rows as i64, cvae.latent()], (Kind::Float, device));
        let ca = model.spec.encode(&[a], None, device);
        let cb = model.spec.encode(&[b], None, device);
        let mut all = Vec::new();
        for r in 0..rows as i64 {
            for s in 0..steps {
                let t = s as f64 / (steps.max(2) - 1) as f64;
                let c = &ca * (1.0 - t) + &cb * t;
                all.push(model.built.likelihood.mean(&cvae.decode(&z.narrow(0, r, 1), &c, false)));
            }
        }
        Tensor::cat(&all, 0)
    });
    Ok(to_u8_images(&images))
}

/// Every condition repeated `per_condition` times: (classes, styles).
pub(crate) fn condition_lists(spec: &ConditionSpec, per_condition: usize) -> (Vec<u8>, Vec<u8>) {
    let (classes, styles) = spec.all_conditions();
    let classes = classes.iter().flat_map(|&c| std::iter::repeat_n(c, per_condition)).collect();
    let styles = styles.iter().flat_map(|&s| std::iter::repeat_n(s, per_condition)).collect();
    (classes, styles)
}

/// Reconstructions of the first `n` images of a split by a CVAE, using the
/// posterior mean: (originals, reconstructions), each [n, 28, 28] uint8.
pub fn reconstruct(built: &Built, spec: &ConditionSpec, split: &Split, n: usize) -> Result<(Array3<u8>, Array3<u8>)> {
    let Net::Cvae(cvae) = &built.net else {
        return Err(Error::Config("reconstruction needs a CVAE; a CGAN has no encoder".into()));
    };
    let head = split.head(n);
    let device = built.vs.device();
    let recon = tch::no_grad(|| {
        let xs = crate::task::TaskData::images_tensor(&head, device);
        let cond = spec.encode(&head.labels, head.styles.as_deref(), device);
        let (mean, _) = cvae.encode(&xs, &cond, false);
        built.likelihood.mean(&cvae.decode(&mean, &cond, false))
    });
    Ok((head.images.clone(), to_u8_images(&recon)))
}
