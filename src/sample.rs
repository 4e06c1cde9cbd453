//! Sampling and reconstruction from trained models, and the samples file
//! other tools read (`images` uint8 [n, 28, 28], `labels` int64 [n],
//! `styles` int64 [n] for K49).

use std::path::Path;

use ndarray::Array3;
use tch::{Device, Kind, Tensor};

use crate::data::npz::{self, NpzArray};
use crate::data::Split;
use crate::model::{Built, Net};
use crate::task::{ConditionSpec, Experiment};
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
            ("images", NpzArray::U8 { shape: vec![n, 28, 28], data: images }),
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
        let spec = config.experiment.condition_spec();
        let mut built = config.architecture.build(spec.dim(), device);
        train::load_weights(&mut built, &run.checkpoint_dir(pointer.epoch).join(train::run::MODEL_FILE))?;
        Ok(TrainedModel { config, built, spec, run, epoch: pointer.epoch })
    }

    pub fn experiment(&self) -> Experiment {
        self.config.experiment
    }
}

/// Float images in [0, 1] → uint8 0..=255. xs: [n, 1, 28, 28]
pub fn to_u8_images(xs: &Tensor) -> Array3<u8> {
    let n = xs.size()[0] as usize;
    let bytes = (xs.clamp(0.0, 1.0) * 255.0).round().to_kind(Kind::Uint8).to_device(Device::Cpu).contiguous();
    let mut out = vec![0u8; n * 784];
    bytes.view([-1]).copy_data(&mut out, n * 784);
    Array3::from_shape_vec((n, 28, 28), out).expect("n·784 bytes")
}

/// Generates one image per (class, style) pair, from noise seeded by `seed`.
/// Runs in eval mode (batch norm uses its running statistics).
pub fn generate(built: &Built, spec: &ConditionSpec, classes: &[u8], styles: &[u8], seed: u64) -> Result<Samples> {
    let device = built.vs.device();
    tch::manual_seed(seed as i64);
    let mut chunks = Vec::new();
    tch::no_grad(|| {
        for (cls, sty) in classes.chunks(1024).zip(styles.chunks(1024)) {
            let cond = spec.encode(cls, Some(sty), device);
            let b = cls.len() as i64;
            let xs = match &built.net {
                Net::Cvae(cvae) => {
                    let z = Tensor::randn([b, cvae.latent()], (Kind::Float, device));
                    cvae.decode(&z, &cond, false).sigmoid()
                }
                Net::Gan { generator, .. } => {
                    let noise = Tensor::randn([b, generator.noise_dim()], (Kind::Float, device));
                    (generator.generate(&noise, &cond, false) + 1.0) / 2.0
                }
            };
            chunks.push(xs);
        }
    });
    let images = if chunks.is_empty() { Array3::zeros((0, 28, 28)) } else { to_u8_images(&Tensor::cat(&chunks, 0)) };
    Ok(Samples {
        images,
        labels: classes.iter().map(|&c| c as i64).collect(),
        styles: spec.has_style().then(|| styles.iter().map(|&s| s as i64).collect()),
    })
}

/// `per_condition` samples of every condition (every class, and both styles for K49),
/// grouped by condition.
pub fn sample_all_conditions(built: &Built, spec: &ConditionSpec, per_condition: usize, seed: u64) -> Result<Samples> {
    let (classes, styles) = spec.all_conditions();
    let classes: Vec<u8> = classes.iter().flat_map(|&c| std::iter::repeat(c).take(per_condition)).collect();
    let styles: Vec<u8> = styles.iter().flat_map(|&s| std::iter::repeat(s).take(per_condition)).collect();
    generate(built, spec, &classes, &styles, seed)
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
        cvae.decode(&mean, &cond, false).sigmoid()
    });
    Ok((head.images.clone(), to_u8_images(&recon)))
}
