//! Turns a uint8 split into shuffled f32 batches on the chosen device.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Tensor};

use super::{Split, PIXELS};
use crate::task::ConditionSpec;

/// One batch of images with their conditions.
#[derive(Debug)]
pub struct Batch {
    /// images: [b, 1, 28, 28] f32 in [0, 1]
    pub images: Tensor,
    /// conditions: [b, condition dim] f32
    pub conditions: Tensor,
    /// labels: [b] int64 class index
    pub labels: Tensor,
}

/// Iterates a split in batches, shuffled by `(seed, epoch)`.
///
/// Pixels are gathered into one host buffer per batch and copied to the
/// device once, as uint8, then converted there (4× less copying than f32).
pub struct Batcher<'a> {
    split: &'a Split,
    spec: ConditionSpec,
    order: Vec<usize>,
    batch_size: usize,
    position: usize,
    drop_last: bool,
    device: Device,
    pixels: Vec<u8>,
    conditions: Vec<f32>,
    labels: Vec<i64>,
}

/// The seed of one epoch of a run seeded with `seed`: its shuffle and its
/// torch draws (dropout, noise) start from here, so a resumed run repeats them.
pub fn epoch_seed(seed: u64, epoch: u64) -> u64 {
    seed.wrapping_mul(1_000_003).wrapping_add(epoch)
}

impl<'a> Batcher<'a> {
    /// `shuffle_seed`: Some((seed, epoch)) shuffles; None keeps file order.
    pub fn new(
        split: &'a Split,
        spec: ConditionSpec,
        batch_size: usize,
        shuffle_seed: Option<(u64, u64)>,
        device: Device,
    ) -> Self {
        let mut order: Vec<usize> = (0..split.len()).collect();
        if let Some((seed, epoch)) = shuffle_seed {
            let mut rng = ChaCha8Rng::seed_from_u64(epoch_seed(seed, epoch));
            rand::seq::SliceRandom::shuffle(order.as_mut_slice(), &mut rng);
        }
        let batch_size = batch_size.max(1);
        // No batch is larger than the split, whatever size is asked for.
        let capacity = batch_size.min(split.len());
        Batcher {
            split,
            spec,
            order,
            batch_size,
            position: 0,
            drop_last: false,
            device,
            pixels: Vec::with_capacity(capacity * PIXELS),
            conditions: Vec::with_capacity(capacity * spec.dim()),
            labels: Vec::with_capacity(capacity),
        }
    }

    /// Skip a final batch smaller than the batch size (GAN training wants equal batches).
    pub fn drop_last(mut self, drop: bool) -> Self {
        self.drop_last = drop;
        self
    }

    /// Number of batches this iterator yields.
    pub fn num_batches(&self) -> usize {
        let n = self.order.len();
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }
}

impl Iterator for Batcher<'_> {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        let remaining = self.order.len() - self.position;
        let b = remaining.min(self.batch_size);
        if b == 0 || (self.drop_last && b < self.batch_size) {
            return None;
        }
        let dim = self.spec.dim();
        self.pixels.clear();
        self.labels.clear();
        self.conditions.resize(b * dim, 0.0);
        for (k, &i) in self.order[self.position..self.position + b].iter().enumerate() {
            self.pixels.extend_from_slice(&self.split.image(i));
            let class = self.split.labels[i];
            let style = self.split.styles.as_ref().map_or(0, |s| s[i]);
            self.spec.write(class, style, &mut self.conditions[k * dim..(k + 1) * dim]);
            self.labels.push(class as i64);
        }
        self.position += b;
        let b = b as i64;
        let images = super::pixels_to_tensor(&self.pixels, self.device);
        let conditions = Tensor::from_slice(&self.conditions).view([b, dim as i64]).to_device(self.device);
        let labels = Tensor::from_slice(&self.labels).to_device(self.device);
        Some(Batch { images, conditions, labels })
    }
}
