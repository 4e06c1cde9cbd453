//! Differentiable augmentation of everything a GAN's discriminator sees
//! (DiffAugment, Zhao et al. 2020): real and generated images get the same
//! random translation (and cutout) in every discriminator pass, the generator's
//! included, so the discriminator cannot memorise the few distinct training
//! images (Sign Language MNIST's 27,455 training images were cut from about
//! 1,700 photographs) while the generator still learns the un-augmented
//! distribution: the transform is applied to both sides and gradients flow
//! through it.
//!
//! Translation and cutout follow the paper's reference code: a shift of up to
//! 1/8 of the image in each direction, uncovered pixels set to 0 (mid grey in
//! the generator's [-1, 1]); a square of half the image's side set to 0 at a
//! random centre. Neither flips nor rotates: a rotation is a condition of the
//! rotation task.

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// Which augmentations the discriminator's inputs get in training.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum DiscriminatorAugment {
    /// None: the discriminator sees the images as they are.
    #[default]
    Off,
    /// A random translation of up to 1/8 of the image per sample.
    Translation,
    /// A random translation, then a random cutout of half the image's side.
    TranslationCutout,
}

/// xs: [b, c, h, w] (any range; 0 fills) → the same shape, each sample
/// augmented independently; differentiable in xs.
pub fn diff_augment(xs: &Tensor, policy: DiscriminatorAugment) -> Tensor {
    let size = xs.size();
    let (h, w) = (size[2], size[3]);
    match policy {
        DiscriminatorAugment::Off => xs.shallow_clone(),
        DiscriminatorAugment::Translation => {
            // Shifts of up to 1/8 of each side, either way.
            let (rows, cols) = ((h as f64 / 8.0).round() as i64, (w as f64 / 8.0).round() as i64);
            translate(xs, &per_sample_draw(xs, (-rows, rows), (-cols, cols)))
        }
        DiscriminatorAugment::TranslationCutout => {
            let moved = diff_augment(xs, DiscriminatorAugment::Translation);
            cutout(&moved, &per_sample_draw(xs, (0, h), (0, w)), (h as f64 * 0.5).round() as i64)
        }
    }
}

/// One (row, column) pair per sample of xs, each uniform over its inclusive range: [b, 2] (int64)
fn per_sample_draw(xs: &Tensor, rows: (i64, i64), cols: (i64, i64)) -> Tensor {
    let draw =
        |(low, high): (i64, i64)| Tensor::randint_low(low, high + 1, [xs.size()[0], 1], (Kind::Int64, xs.device()));
    Tensor::cat(&[draw(rows), draw(cols)], 1)
}

/// Moves sample i by offsets[i] = (down, right) pixels; pixels moved in from
/// outside are 0. xs: [b, c, h, w], offsets: [b, 2] (int64)
pub fn translate(xs: &Tensor, offsets: &Tensor) -> Tensor {
    let size = xs.size();
    let (b, c, h, w) = (size[0], size[1], size[2], size[3]);
    let device = xs.device();
    // Output pixel (r, q) of sample i reads input pixel (r − dy, q − dx) of the
    // input padded by a border of zeros, clamped onto that border when outside.
    let source = |side: i64, shift: Tensor| {
        (Tensor::arange(side, (Kind::Int64, device)).unsqueeze(0) - shift.unsqueeze(1) + 1).clamp(0, side + 1)
    };
    let rows = source(h, offsets.select(1, 0)); // [b, h]
    let cols = source(w, offsets.select(1, 1)); // [b, w]
    let index = rows.unsqueeze(2) * (w + 2) + cols.unsqueeze(1); // [b, h, w]
    let padded = xs.constant_pad_nd([1, 1, 1, 1]).view([b, c, (h + 2) * (w + 2)]);
    padded.gather(2, &index.view([b, 1, h * w]).expand([b, c, h * w], false), false).view([b, c, h, w])
}

/// Sets a `side`×`side` square centred at centres[i] = (row, column) of sample i
/// to 0 (cut off at the border). xs: [b, c, h, w], centres: [b, 2] (int64)
pub fn cutout(xs: &Tensor, centres: &Tensor, side: i64) -> Tensor {
    let size = xs.size();
    let device = xs.device();
    let inside = |extent: i64, centre: Tensor| {
        let start = centre.unsqueeze(1) - side / 2; // [b, 1]
        let at = Tensor::arange(extent, (Kind::Int64, device)).unsqueeze(0); // [1, extent]
        at.ge_tensor(&start).logical_and(&at.lt_tensor(&(start + side)))
    };
    let rows = inside(size[2], centres.select(1, 0)); // [b, h]
    let cols = inside(size[3], centres.select(1, 1)); // [b, w]
    let covered = rows.unsqueeze(2).logical_and(&cols.unsqueeze(1)); // [b, h, w]
    xs * covered.logical_not().to_kind(xs.kind()).unsqueeze(1)
}
