//! Sampling and reconstruction from trained models, and the samples file
//! other tools read (`images` uint8 [n, 28, 28], `labels` int64 [n],
//! `styles` int64 [n] for K49).

use std::path::Path;

use ndarray::Array3;
use tch::{Device, Kind, Tensor};

use crate::capacity::{self, Footprint};
use crate::data::npz::{self, NpzArray};
use crate::data::Split;
use crate::data::{PIXELS, SIDE};
use crate::model::latent_prior::{
    Covariance, LatentPrior, PriorSelection, PriorShape, LATENT_PRIOR_FILE, PRIOR_SELECTION_FILE,
};
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
    /// An error, and no file, when the arrays do not agree (images other than
    /// [n, 28, 28] for n labels, or n styles); any memory layout is written row-major.
    pub fn write_npz(&self, path: &Path) -> Result<()> {
        self.check_shapes()?;
        let n = self.labels.len() as u64;
        let images = crate::data::row_major(&self.images);
        let mut arrays = vec![
            ("images", NpzArray::images(&images)),
            ("labels", NpzArray::I64 { shape: vec![n], data: &self.labels }),
        ];
        if let Some(styles) = &self.styles {
            arrays.push(("styles", NpzArray::I64 { shape: vec![n], data: styles }));
        }
        npz::write(path, &arrays)
    }

    /// Images [n, 28, 28] for n labels (and n styles, when there are styles).
    fn check_shapes(&self) -> Result<()> {
        let n = self.labels.len();
        if self.images.dim() != (n, SIDE, SIDE) {
            return Err(Error::InvalidInput(format!(
                "samples: images are {:?} for {n} labels; expected [{n}, {SIDE}, {SIDE}]",
                self.images.shape()
            )));
        }
        match &self.styles {
            Some(styles) if styles.len() != n => {
                Err(Error::InvalidInput(format!("samples: {} styles for {n} labels", styles.len())))
            }
            _ => Ok(()),
        }
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
    /// The epoch the weights come from: the last complete one, or the best validation
    /// epoch under early stopping ([`TrainConfig::model_epoch`]).
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
        // The model's epoch: the last, or the best validation epoch under early stopping.
        let epoch = config.model_epoch(&run.read_state(pointer.epoch)?.history);
        train::load_weights(&mut built, &run.checkpoint_dir(epoch).join(train::run::MODEL_FILE))?;
        // A prior fitted to another epoch's encoder is stale: ignore it.
        let latent_prior = match &built.net {
            Net::Cvae(cvae) if run.file(LATENT_PRIOR_FILE).exists() => {
                let prior = LatentPrior::load(&run.file(LATENT_PRIOR_FILE), &spec, cvae.latent())?;
                (prior.epoch == epoch).then_some(prior)
            }
            _ => None,
        };
        Ok(TrainedModel { config, built, spec, run, epoch, latent_prior })
    }

    /// Loads a run and, for a CVAE, makes sure its fitted latent prior exists:
    /// fits it on the run's training images of `data` and saves it in the run
    /// folder when missing or stale (seconds; once per run).
    pub fn load_with_prior(dir: &Path, data: &TaskData, device: Device) -> Result<Self> {
        let mut model = Self::load(dir, device)?;
        model.ensure_latent_prior(data)?;
        Ok(model)
    }

    /// See [`TrainedModel::load_with_prior`]. Does nothing for a CGAN. Chooses the
    /// prior's size and covariance on the codes of `data`'s validation images
    /// ([`TrainedModel::select_latent_prior`]), fitting every candidate on the training codes.
    pub fn ensure_latent_prior(&mut self, data: &TaskData) -> Result<()> {
        if self.has_latent_prior() {
            return Ok(());
        }
        if data.experiment != self.experiment() {
            return Err(Error::InvalidInput(format!(
                "a {} run cannot fit its prior on {} data",
                self.experiment(),
                data.experiment
            )));
        }
        self.select_latent_prior(data, &data.validation).map(drop)
    }

    /// Whether the CVAE was trained with a learned prior p(z | c) (its samples
    /// "as trained" come from it, not from N(0, I)).
    pub fn has_learned_prior(&self) -> bool {
        self.config.architecture.learned_prior()
    }

    /// Whether [`TrainedModel::ensure_latent_prior`] has nothing to do: a CGAN,
    /// or a CVAE whose prior chosen on held-out codes is loaded.
    pub fn has_latent_prior(&self) -> bool {
        match &self.built.net {
            Net::Cvae(_) => self.latent_prior.as_ref().is_some_and(|p| p.selected),
            Net::Gan { .. } => true,
        }
    }

    /// A latent prior with `components` Gaussians per condition, fitted to the
    /// codes of the run's training images, without saving it (None for a CGAN).
    /// Full covariances, fitted as [`LatentPrior::fit`] fits.
    pub fn fitted_prior(&self, data: &TaskData, components: usize) -> Option<LatentPrior> {
        let Net::Cvae(cvae) = &self.built.net else { return None };
        // The same training images the run saw (quick runs see a slice; held-out classes are left out).
        let train = self.config.training_data(data).train;
        Some(LatentPrior::fit(cvae.as_ref(), &self.spec, &train, self.epoch, components, self.built.vs.device()))
    }

    /// As [`TrainedModel::fitted_prior`], with the covariance shape of `shape`
    /// ([`LatentPrior::fit_shaped`]).
    pub fn fitted_prior_shaped(&self, data: &TaskData, shape: PriorShape) -> Option<LatentPrior> {
        let Net::Cvae(cvae) = &self.built.net else { return None };
        let train = self.config.training_data(data).train;
        Some(LatentPrior::fit_shaped(cvae.as_ref(), &self.spec, &train, self.epoch, shape, self.built.vs.device()))
    }

    /// Chooses the latent prior on held-out images ([`LatentPrior::select`] over
    /// [`PriorShape::selection_candidates`]): every candidate is fitted to the
    /// codes of the run's training images of `data` and scored by the mean
    /// log-density of the codes of `held_out`'s images (the run's held-out
    /// classes left out, as in training). Saves the chosen prior
    /// ([`LATENT_PRIOR_FILE`]) and the table of candidates
    /// ([`PRIOR_SELECTION_FILE`]) in the run folder, and keeps the prior.
    /// None for a CGAN (it has no prior).
    pub fn select_latent_prior(&mut self, data: &TaskData, held_out: &Split) -> Result<Option<PriorSelection>> {
        let Net::Cvae(cvae) = &self.built.net else { return Ok(None) };
        if data.experiment != self.experiment() {
            return Err(Error::InvalidInput(format!(
                "a {} run cannot choose its prior on {} data",
                self.experiment(),
                data.experiment
            )));
        }
        let train = self.config.training_data(data).train;
        let left_out = &self.config.held_out_classes;
        let held_out = if left_out.is_empty() {
            held_out.clone()
        } else {
            held_out
                .select(&(0..held_out.len()).filter(|&i| !left_out.contains(&held_out.labels[i])).collect::<Vec<_>>())
        };
        let (prior, selection) = LatentPrior::select(
            cvae.as_ref(),
            &self.spec,
            &train,
            &held_out,
            self.epoch,
            &PriorShape::selection_candidates(),
            self.built.vs.device(),
        )?;
        prior.save(&self.run.file(LATENT_PRIOR_FILE))?;
        selection.save(&self.run.file(PRIOR_SELECTION_FILE))?;
        self.latent_prior = Some(prior);
        Ok(Some(selection))
    }

    /// The table of the candidates this run's prior was chosen from
    /// ([`TrainedModel::select_latent_prior`]), when its loaded prior was chosen
    /// so (None otherwise, or when the table is of another epoch).
    pub fn prior_selection(&self) -> Result<Option<PriorSelection>> {
        if !self.latent_prior.as_ref().is_some_and(|p| p.selected) {
            return Ok(None);
        }
        let path = self.run.file(PRIOR_SELECTION_FILE);
        if !path.exists() {
            return Ok(None);
        }
        let selection = PriorSelection::load(&path)?;
        Ok((selection.epoch == self.epoch).then_some(selection))
    }

    /// This model drawing its samples from `source`. A CVAE asked for its fitted
    /// prior must have one ([`TrainedModel::load_with_prior`] or
    /// [`TrainedModel::ensure_latent_prior`]); a CGAN draws noise from N(0, I)
    /// whichever source is named.
    pub fn sampler(&self, source: LatentSource) -> Result<Sampler<'_>> {
        if matches!(self.built.net, Net::Cvae(_)) && source == LatentSource::FittedPrior && self.latent_prior.is_none()
        {
            return Err(Error::Unsupported(format!(
                "run {} has no fitted latent prior for epoch {}: load it with TrainedModel::load_with_prior \
                 (or sample from LatentSource::TrainedPrior)",
                crate::data::display_path(&self.run.path),
                self.epoch
            )));
        }
        Ok(Sampler { model: self, source })
    }

    /// How the fixed-noise snapshots saved during training were drawn (before
    /// any prior was fitted, so a CVAE's from the prior it is trained with), for captions.
    pub fn snapshot_latent_source(&self) -> &'static str {
        match &self.built.net {
            Net::Cvae(_) if self.has_learned_prior() => LATENT_LEARNED,
            Net::Cvae(_) => LATENT_STANDARD,
            Net::Gan { .. } => GAN_NOISE,
        }
    }

    pub fn experiment(&self) -> Experiment {
        self.config.experiment
    }
}

/// Where a CVAE's latent code comes from when it generates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum LatentSource {
    /// The per-condition Gaussians fitted to the training images' codes after
    /// training ([`LatentPrior`]): a second model, labelled wherever it is used.
    FittedPrior,
    /// The prior the CVAE was trained with, how a model is judged: N(0, I), what
    /// the studies sample from, or the learned p(z | c) of a CVAE trained with one
    /// ([`crate::model::prior_net`]).
    #[default]
    #[serde(alias = "StandardNormal")]
    TrainedPrior,
}

/// A trained model with the latent source its samples come from
/// ([`TrainedModel::sampler`]); every sample a figure or metric shows is drawn here.
#[derive(Clone, Copy)]
pub struct Sampler<'a> {
    pub model: &'a TrainedModel,
    pub source: LatentSource,
}

impl Sampler<'_> {
    /// The prior a CVAE's noise is moved by (none: the prior it was trained with).
    pub(crate) fn prior(&self) -> Option<&LatentPrior> {
        match self.source {
            LatentSource::FittedPrior => self.model.latent_prior.as_ref(),
            LatentSource::TrainedPrior => None,
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

    /// One image per pair: z from the latent source for condition `latent[i]`,
    /// decoded under condition `decoded[i]` ([`draw_swapped`]); (classes, styles) each.
    pub fn generate_swapped(&self, latent: (&[u8], &[u8]), decoded: (&[u8], &[u8]), seed: u64) -> Result<Samples> {
        let model = self.model;
        draw_swapped(&model.built, &model.spec, self.prior(), 1.0, latent, decoded, seed)
    }

    /// `per_condition` samples of every condition (every class, and both styles for K49), grouped by condition.
    pub fn sample_all_conditions(&self, per_condition: usize, seed: u64) -> Result<Samples> {
        self.sample_all_conditions_at(per_condition, seed, 1.0)
    }

    /// As [`Sampler::sample_all_conditions`] at a sampling temperature ([`draw`]).
    pub fn sample_all_conditions_at(&self, per_condition: usize, seed: u64, temperature: f64) -> Result<Samples> {
        footprint(&self.model.spec, per_condition, None).check()?;
        let (classes, styles) = condition_lists(&self.model.spec, per_condition);
        self.generate_at(temperature, &classes, &styles, seed)
    }

    /// How these samples are drawn, for tables and captions, e.g.
    /// "z from the fitted per-condition prior (10-Gaussian mixture)".
    pub fn caption(&self) -> String {
        let fitted = |base: &str| {
            let prior = self.model.latent_prior.as_ref();
            let k = prior.map_or(1, |p| p.components);
            let mut shape = if k == 1 { "one Gaussian".to_string() } else { format!("{k}-Gaussian mixture") };
            match prior.map_or(Covariance::Full, |p| p.covariance) {
                Covariance::Full => {}
                Covariance::Diagonal => shape.push_str(", diagonal covariance"),
                Covariance::Tied => shape.push_str(", one shared covariance"),
            }
            if prior.is_some_and(|p| p.selected) {
                shape.push_str(", chosen on held-out codes");
            }
            format!("{base} ({shape})")
        };
        match (&self.model.built.net, self.source) {
            (Net::Gan { .. }, _) => GAN_NOISE.to_string(),
            (Net::Cvae(_), LatentSource::TrainedPrior) if self.model.has_learned_prior() => {
                let arch = &self.model.config.architecture;
                // An unconditional VAE's prior is one p(z) for all images.
                let (prior, per) = match self.model.spec.is_conditional() {
                    true => (LATENT_LEARNED, " per condition"),
                    false => (LATENT_LEARNED_POOLED, ""),
                };
                match arch.learned_prior_components() {
                    Some(k) if arch.vamp_prior() => {
                        format!("{prior} (a VampPrior: the posteriors of {k} learned pseudo-inputs{per})")
                    }
                    Some(k) if k > 1 => format!("{prior} (a mixture of {k} diagonal Gaussians{per})"),
                    _ => prior.to_string(),
                }
            }
            (Net::Cvae(_), LatentSource::TrainedPrior) => LATENT_STANDARD.to_string(),
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
    let mut out = Vec::with_capacity(n * PIXELS);
    push_u8_pixels(xs, &mut out);
    Array3::from_shape_vec((n, SIDE, SIDE), out).expect("n·784 bytes")
}

/// Appends float images in [0, 1] to `out` as uint8 0..=255, row-major. xs: [n, 1, 28, 28]
fn push_u8_pixels(xs: &Tensor, out: &mut Vec<u8>) {
    let len = xs.size()[0] as usize * PIXELS;
    let bytes = (xs.clamp(0.0, 1.0) * 255.0).round().to_kind(Kind::Uint8).to_device(Device::Cpu).contiguous();
    let start = out.len();
    out.resize(start + len, 0);
    bytes.view([-1]).copy_data(&mut out[start..], len);
}

/// What drawing `per_condition` samples of every condition of `spec` needs:
/// memory for the samples (and one chunk's work), and with `out` the disk
/// its samples npz can take at most. [`Sampler::sample_all_conditions`] checks
/// the memory itself; a caller writing the samples checks this first.
pub fn footprint(spec: &ConditionSpec, per_condition: usize, out: Option<&Path>) -> Footprint {
    let need = Footprint::per_condition(per_condition, spec.conditions(), capacity::SAMPLE_BYTES);
    match out {
        Some(path) => {
            let n = per_condition as u128 * spec.conditions() as u128;
            need.writing(path, n * capacity::SAMPLE_FILE_BYTES as u128 + NPZ_OVERHEAD)
        }
        None => need,
    }
}

/// Bytes of an npz archive beside its arrays' data at most (zip and npy headers).
const NPZ_OVERHEAD: u128 = 64 << 10;

/// Caption of CVAE samples drawn from the fitted per-condition prior.
pub const LATENT_FITTED: &str = "z from the fitted per-condition prior";
/// Caption of an unconditional VAE's samples drawn from its fitted prior (one for all images).
pub const LATENT_FITTED_POOLED: &str = "z from the fitted prior";
/// Caption of CVAE samples drawn from the training prior N(0, I).
pub const LATENT_STANDARD: &str = "z from N(0, I)";
/// Caption of a CVAE's samples with z from the learned prior p(z | c) it was trained with.
pub const LATENT_LEARNED: &str = "z from the learned prior p(z | c)";
/// Caption of an unconditional VAE's samples drawn from its learned prior (one for all images).
pub const LATENT_LEARNED_POOLED: &str = "z from the learned prior p(z)";
/// Caption of a CGAN's samples.
pub const GAN_NOISE: &str = "noise N(0, I)";

/// One image per (class, style) pair, from noise seeded by `seed`: a CVAE
/// draws standard normal noise, scales it by `temperature` (below 1: samples
/// nearer each condition's mode, more precise and less diverse; above 1: the
/// reverse) and moves it by `prior` when one is given (else by the prior the
/// model was trained with: z ~ N(0, I), or its learned p(z | c));
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
    draw_swapped(built, spec, prior, temperature, (classes, styles), (classes, styles), seed)
}

/// As [`draw`], with a CVAE's z drawn for the conditions of `latent` (the prior
/// of each image's first condition) and decoded under those of `decoded`; the
/// samples are labelled with the decoded conditions. A CGAN (whose noise has no
/// condition) and a CVAE with z ~ N(0, I) draw as [`draw`] does for `decoded`.
pub fn draw_swapped(
    built: &Built,
    spec: &ConditionSpec,
    prior: Option<&LatentPrior>,
    temperature: f64,
    latent: (&[u8], &[u8]),
    decoded: (&[u8], &[u8]),
    seed: u64,
) -> Result<Samples> {
    let (classes, styles) = decoded;
    check_conditions(spec, classes, styles)?;
    check_conditions(spec, latent.0, latent.1)?;
    if latent.0.len() != classes.len() {
        return Err(Error::InvalidInput(format!(
            "{} latent conditions for {} decoded ones: one of each per image",
            latent.0.len(),
            classes.len()
        )));
    }
    Footprint::images(classes.len() as u128, capacity::SAMPLE_BYTES).check()?;
    let device = built.vs.device();
    tch::manual_seed(seed as i64);
    // Each chunk becomes uint8 pixels at once: a quarter of the memory of
    // floats, and the same bytes as converting all images at the end.
    let mut pixels = Vec::with_capacity(classes.len() * PIXELS);
    tch::no_grad(|| {
        let chunks =
            classes.chunks(1024).zip(styles.chunks(1024)).zip(latent.0.chunks(1024).zip(latent.1.chunks(1024)));
        for ((cls, sty), (z_cls, z_sty)) in chunks {
            let cond = spec.encode(cls, Some(sty), device);
            let b = cls.len() as i64;
            let noise = Tensor::randn([b, code_dim(built)], (Kind::Float, device));
            let codes = match &built.net {
                Net::Cvae(cvae) => latent_from_noise(cvae.as_ref(), spec, prior, z_cls, z_sty, &(noise * temperature)),
                Net::Gan { .. } => noise,
            };
            push_u8_pixels(&images_of_codes(built, &codes, &cond), &mut pixels);
        }
    });
    let images = Array3::from_shape_vec((classes.len(), SIDE, SIDE), pixels).expect("784 bytes per class asked for");
    Ok(Samples {
        images,
        labels: classes.iter().map(|&c| c as i64).collect(),
        styles: spec.has_style().then(|| styles.iter().map(|&s| s as i64).collect()),
    })
}

/// Length of the code a model turns into an image: a CVAE's latent, a CGAN's noise.
pub(crate) fn code_dim(built: &Built) -> i64 {
    match &built.net {
        Net::Cvae(cvae) => cvae.latent(),
        Net::Gan { .. } => built.net.sampling_generator().expect("a CGAN has a generator").noise_dim(),
    }
}

/// A CVAE's z from standard normal noise for (class, style) pairs: moved by
/// `prior` when one is given, else by the prior the model was trained with
/// (z = ε under N(0, I), μ(c) + σ(c) ⊙ ε under a learned p(z | c)).
/// eps: [b, latent], b pairs → z: [b, latent]
pub(crate) fn latent_from_noise(
    cvae: &dyn crate::model::Cvae,
    spec: &ConditionSpec,
    prior: Option<&LatentPrior>,
    classes: &[u8],
    styles: &[u8],
    eps: &Tensor,
) -> Tensor {
    match prior {
        Some(p) => p.transform(spec, classes, styles, eps),
        None => cvae.prior_sample(eps, &spec.encode(classes, Some(styles), eps.device())),
    }
}

/// The images a model makes of its codes, in eval mode: a CVAE decodes z to
/// its likelihood's mean, a CGAN's generator (its weight average when there is
/// one) maps noise to [-1, 1], rescaled here. codes: [b, code_dim], cond: [b, c]
/// → [b, 1, 28, 28] in [0, 1]
pub(crate) fn images_of_codes(built: &Built, codes: &Tensor, cond: &Tensor) -> Tensor {
    match &built.net {
        Net::Cvae(cvae) => built.likelihood.mean(&cvae.decode(codes, cond, false)),
        Net::Gan { .. } => {
            let generator = built.net.sampling_generator().expect("a CGAN has a generator");
            (generator.generate(codes, cond, false) + 1.0) / 2.0
        }
    }
}

/// One (class, style) pair per image, each a condition of `spec`.
fn check_conditions(spec: &ConditionSpec, classes: &[u8], styles: &[u8]) -> Result<()> {
    if classes.len() != styles.len() {
        let (c, s) = (classes.len(), styles.len());
        return Err(Error::InvalidInput(format!("{c} classes and {s} styles: one of each per image")));
    }
    if let Some(&c) = classes.iter().find(|&&c| c as usize >= spec.classes()) {
        return Err(Error::InvalidInput(format!("class {c} outside the task's classes 0..{}", spec.classes())));
    }
    if let Some(&s) = styles.iter().find(|&&s| spec.has_style() && s > 1) {
        return Err(Error::InvalidInput(format!("style {s}: styles are 0 (thin) or 1 (thick)")));
    }
    Ok(())
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
    footprint(spec, per_condition, None).check()?;
    let (classes, styles) = condition_lists(spec, per_condition);
    draw(built, spec, prior, 1.0, &classes, &styles, seed)
}

/// CVAE: decodes `rows` latent codes z from class `a`'s prior of training (seeded by `seed`), each under a
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
    check_conditions(&model.spec, &[a, b], &[0, 0])?;
    // Every decoded float image is kept until the end, then concatenated and converted.
    let per_image = capacity::SAMPLE_BYTES + 2 * 4 * PIXELS as u64;
    Footprint::images(rows as u128 * steps as u128, per_image).check()?;
    if rows == 0 || steps == 0 {
        return Ok(Array3::zeros((0, SIDE, SIDE)));
    }
    let device = model.built.vs.device();
    tch::manual_seed(seed as i64);
    let images = tch::no_grad(|| {
        // z from the prior of training for a (one N(0, I) for every condition, or a's learned p(z | c)).
        let noise = Tensor::randn([rows as i64, cvae.latent()], (Kind::Float, device));
        let z = cvae.prior_sample(&noise, &model.spec.encode(&vec![a; rows], None, device));
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

/// CVAE with at least 2 latent dimensions: its decoder's output for condition
/// `class` over a `steps`×`steps` grid of the first two latent dimensions in
/// [-range, range] (every other dimension 0, the prior's mean), row by row:
/// z2 falls down the rows (top = +range), z1 rises across the columns.
/// [steps², 28, 28] uint8.
pub fn decode_latent_plane(model: &TrainedModel, class: u8, steps: usize, range: f64) -> Result<Array3<u8>> {
    let cvae = two_dimensional_cvae(model, "a latent traversal")?;
    let device = model.built.vs.device();
    let n = (steps * steps) as i64;
    let images = tch::no_grad(|| {
        let axis = Tensor::linspace(-range, range, steps as i64, (Kind::Float, device));
        let z = Tensor::zeros([n, cvae.latent()], (Kind::Float, device));
        let z0 = axis.repeat([steps as i64]);
        let z1 = axis.flip([0]).repeat_interleave_self_int(steps as i64, None, None);
        z.narrow(1, 0, 1).copy_(&z0.unsqueeze(1));
        z.narrow(1, 1, 1).copy_(&z1.unsqueeze(1));
        let cond = model.spec.encode(&vec![class; n as usize], None, device);
        model.built.likelihood.mean(&cvae.decode(&z, &cond, false))
    });
    Ok(to_u8_images(&images))
}

/// CVAE with at least 2 latent dimensions: the first two dimensions of the
/// posterior means of `split`'s images, one (z1, z2) per image.
pub fn posterior_means_2d(model: &TrainedModel, split: &Split) -> Result<Vec<(f64, f64)>> {
    let cvae = two_dimensional_cvae(model, "a latent-code chart")?;
    let device = model.built.vs.device();
    let means = tch::no_grad(|| {
        let xs = TaskData::images_tensor(split, device);
        let cond = model.spec.encode(&split.labels, split.styles.as_deref(), device);
        cvae.encode(&xs, &cond, false).0.narrow(1, 0, 2).to_kind(Kind::Double).to_device(Device::Cpu)
    });
    let flat = Vec::<f64>::try_from(means.flatten(0, -1))?;
    Ok(flat.chunks(2).map(|p| (p[0], p[1])).collect())
}

/// The model's CVAE, refused with `what` when it is a CGAN or its latent has fewer than 2 dimensions.
fn two_dimensional_cvae<'a>(model: &'a TrainedModel, what: &str) -> Result<&'a dyn crate::model::Cvae> {
    let Net::Cvae(cvae) = &model.built.net else {
        return Err(Error::Unsupported(format!("{what} needs a CVAE")));
    };
    if cvae.latent() < 2 {
        return Err(Error::Unsupported(format!("{what} needs at least 2 latent dimensions")));
    }
    Ok(cvae.as_ref())
}

/// Every condition repeated `per_condition` times: (classes, styles).
pub(crate) fn condition_lists(spec: &ConditionSpec, per_condition: usize) -> (Vec<u8>, Vec<u8>) {
    let (classes, styles) = spec.all_conditions();
    let classes = classes.iter().flat_map(|&c| std::iter::repeat_n(c, per_condition)).collect();
    let styles = styles.iter().flat_map(|&s| std::iter::repeat_n(s, per_condition)).collect();
    (classes, styles)
}

/// Writes test images and their reconstructions ([`reconstruct`]) to an npz:
/// `originals` and `reconstructions`, uint8 [n, 28, 28] each.
pub fn write_reconstructions_npz(path: &Path, originals: &Array3<u8>, reconstructions: &Array3<u8>) -> Result<()> {
    if originals.dim() != reconstructions.dim() || originals.dim().1 != SIDE || originals.dim().2 != SIDE {
        return Err(Error::InvalidInput(format!(
            "reconstructions: originals {:?} and reconstructions {:?} must both be [n, {SIDE}, {SIDE}]",
            originals.shape(),
            reconstructions.shape()
        )));
    }
    let (originals, reconstructions) = (crate::data::row_major(originals), crate::data::row_major(reconstructions));
    npz::write(
        path,
        &[("originals", NpzArray::images(&originals)), ("reconstructions", NpzArray::images(&reconstructions))],
    )
}

/// Reconstructions of the first `n` images of a split by a CVAE, using the
/// posterior mean: (originals, reconstructions), each [n, 28, 28] uint8.
pub fn reconstruct(built: &Built, spec: &ConditionSpec, split: &Split, n: usize) -> Result<(Array3<u8>, Array3<u8>)> {
    let Net::Cvae(cvae) = &built.net else {
        return Err(Error::Unsupported("reconstruction needs a CVAE; a CGAN has no encoder".into()));
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
