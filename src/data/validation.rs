//! The validation split: a fixed, stratified share of every dataset's train
//! split, held out when the dataset is loaded ([`super::Dataset::from_files`]) and
//! never trained on.
//!
//! The protocol: models, judges and fitted priors learn from the train split
//! (the files' train split without the validation images); every selection —
//! epochs and early stopping, the prior's size and shape, loss weights,
//! temperatures, any recipe choice — is made on the validation split; the test
//! split is read once, by the final report.
//!
//! The split is stratified per class: of each class's n images ≈ [`VALIDATION_FRACTION`]·n
//! go to validation, at least one when the class has two or more, never all.
//! Which ones is a seeded ChaCha8 shuffle within the class ([`VALIDATION_SEED`], the
//! stream numbered by the class), so the same images for every run, judge and machine.
//!
//! **Sign Language MNIST is carved by groups, not images.** Its train file holds
//! several augmented copies of each photograph, so an image-by-image draw would
//! make validation a copy of train. The copies of one photograph are found first
//! ([`near_duplicate_groups`]: images of a class whose pixels correlate by at
//! least [`SIGN_DUPLICATE_CORRELATION`], linked transitively) and a group goes to
//! one side whole. K49 is carved image by image. The measurements behind both:
//! report/DECISIONS.md, "Validation split: near-duplicate groups".

use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::{DatasetKind, Split, PIXELS};

/// The version of the data protocol every run config and judge config records
/// (`data_protocol`), so that no run folder or cached judge trained on other
/// images is reused:
/// - 0 (absent in a saved config): before the validation split; trained on the
///   whole train file, per-epoch held-out loss on the test split;
/// - 1: the validation split of this module ([`VALIDATION_FRACTION`], [`VALIDATION_SEED`],
///   Sign Language MNIST by near-duplicate groups at [`SIGN_DUPLICATE_CORRELATION`]).
///
/// Any change to which images are trained on (the fraction, the seed, the grouping) takes a new version.
pub const DATA_PROTOCOL: u32 = 1;

/// The share of every dataset's train split held out as its validation split, per class.
pub const VALIDATION_FRACTION: f64 = 0.1;
/// Seed of the validation draw.
pub const VALIDATION_SEED: u64 = 0x7A11_DA7E;
/// Two Sign Language MNIST images of one class are copies of one photograph when
/// the Pearson correlation of their pixels is at least this: a distance of 0.15
/// between the images standardised to zero mean and unit norm (1 − 0.15²/2).
/// Chosen among a few thresholds: report/DECISIONS.md, "Validation split: near-duplicate groups".
pub const SIGN_DUPLICATE_CORRELATION: f64 = 0.98875;

/// The (train, validation) split of a dataset's train file: the protocol's
/// fraction and seed; by near-duplicate groups for Sign Language MNIST, image by image for K49.
pub fn carve(kind: DatasetKind, train: &Split) -> (Split, Split) {
    match kind {
        DatasetKind::SignMnist => {
            let groups = near_duplicate_groups(train, SIGN_DUPLICATE_CORRELATION);
            split_validation_grouped(train, &groups, VALIDATION_FRACTION, VALIDATION_SEED)
        }
        DatasetKind::K49 => split_validation(train, VALIDATION_FRACTION, VALIDATION_SEED),
    }
}

/// Splits `split` into (train, validation), stratified by class label, image by
/// image: of each class's n images, round(`fraction`·n) go to validation, at
/// least 1 when the class has 2 or more and `fraction` > 0, never all of them.
/// Which ones is a seeded ChaCha8 shuffle within the class (the stream numbered by
/// the class), so a class's draw depends only on `seed` and its own images. Both
/// parts keep the images in their original order, with their styles; together
/// they are `split`, with no image in both.
pub fn split_validation(split: &Split, fraction: f64, seed: u64) -> (Split, Split) {
    let groups: Vec<usize> = (0..split.len()).collect();
    split_validation_grouped(split, &groups, fraction, seed)
}

/// As [`split_validation`], with the images of a group (within a class) kept on
/// one side: `groups[i]` names image i's group. A class's groups are shuffled and
/// taken whole until the class's share is reached (so it may pass round(`fraction`·n)
/// by less than a group), skipping any group that would leave the class no train image.
pub fn split_validation_grouped(split: &Split, groups: &[usize], fraction: f64, seed: u64) -> (Split, Split) {
    let (train, validation) = validation_rows(&split.labels, groups, fraction, seed);
    (split.select(&train), split.select(&validation))
}

/// The row indices [`split_validation_grouped`] puts in (train, validation), each ascending.
/// labels: [n], groups: [n].
pub fn validation_rows(labels: &[u8], groups: &[usize], fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    assert_eq!(labels.len(), groups.len(), "one group per image");
    let classes = labels.iter().map(|&l| l as usize + 1).max().unwrap_or(0);
    // Each class's groups in order of their first image, with their rows.
    let mut units: Vec<Vec<Vec<usize>>> = vec![Vec::new(); classes];
    let mut unit_of = std::collections::HashMap::new();
    for (i, (&label, &group)) in labels.iter().zip(groups).enumerate() {
        let class = &mut units[label as usize];
        let u = *unit_of.entry((label, group)).or_insert_with(|| {
            class.push(Vec::new());
            class.len() - 1
        });
        class[u].push(i);
    }
    let mut held = vec![false; labels.len()];
    for (class, mut units) in units.into_iter().enumerate() {
        let n: usize = units.iter().map(Vec::len).sum();
        let mut k = (fraction.clamp(0.0, 1.0) * n as f64).round() as usize;
        k = if fraction > 0.0 && n >= 2 { k.clamp(1, n - 1) } else { k.min(n.saturating_sub(1)) };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(class as u64);
        units.shuffle(&mut rng);
        let mut taken = 0;
        for unit in &units {
            if taken >= k {
                break;
            }
            if taken + unit.len() >= n {
                continue;
            }
            taken += unit.len();
            for &i in unit {
                held[i] = true;
            }
        }
    }
    (0..labels.len()).partition(|&i| !held[i])
}

/// Groups of near-duplicate images within each class: images i and j of one
/// class are linked when the Pearson correlation of their pixels is at least
/// `min_correlation`, and a group is a connected set of links. `groups[i]` is the
/// first row of image i's group. Exact: the correlations come from integer sums,
/// so every machine finds the same groups. Images of uniform colour link to none.
pub fn near_duplicate_groups(split: &Split, min_correlation: f64) -> Vec<usize> {
    let n = split.len();
    let pixels = super::row_major(&split.images);
    let classes = split.labels.iter().map(|&l| l as usize + 1).max().unwrap_or(0);
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (i, &l) in split.labels.iter().enumerate() {
        members[l as usize].push(i);
    }
    // Per image: the pixel sum and P·Σp² − (Σp)² (P = 784), exact in 64 bits.
    let stats: Vec<(i64, i64)> = pixels
        .chunks_exact(PIXELS)
        .map(|img| {
            let sum: i64 = img.iter().map(|&p| p as i64).sum();
            let sq: i64 = img.iter().map(|&p| (p as i64) * (p as i64)).sum();
            (sum, PIXELS as i64 * sq - sum * sum)
        })
        .collect();
    // A quick necessary condition first. Standardised (zero mean, unit norm), two
    // images correlate by r when their distance is √(2 − 2r); projected onto the
    // images constant on 4×4 blocks, no distance grows. So a pair whose projections
    // are farther apart than √(2 − 2·min_correlation) cannot link, and only the
    // others get the exact test (the margin covers the projections' rounding).
    let blocks: Vec<[f64; BLOCKS]> =
        pixels.chunks_exact(PIXELS).zip(&stats).map(|(img, &(sum, var))| block_projection(img, sum, var)).collect();
    let reach = (2.0 - 2.0 * min_correlation).max(0.0) + 1e-9;
    let links = |class: &[usize]| -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for (a, &i) in class.iter().enumerate() {
            let (si, vi) = stats[i];
            if vi == 0 {
                continue;
            }
            let xi = &pixels[i * PIXELS..(i + 1) * PIXELS];
            let bi = &blocks[i];
            for &j in &class[a + 1..] {
                let (sj, vj) = stats[j];
                if vj == 0 {
                    continue;
                }
                let apart: f64 = bi.iter().zip(&blocks[j]).map(|(x, y)| (x - y) * (x - y)).sum();
                if apart > reach {
                    continue;
                }
                let xj = &pixels[j * PIXELS..(j + 1) * PIXELS];
                let dot: u32 = xi.iter().zip(xj).map(|(&p, &q)| p as u32 * q as u32).sum();
                let cov = PIXELS as i64 * dot as i64 - si * sj;
                if cov > 0 && cov as f64 >= min_correlation * ((vi as f64) * (vj as f64)).sqrt() {
                    out.push((i, j));
                }
            }
        }
        out
    };
    // Classes are independent: spread them over the cores.
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get()).clamp(1, 8);
    let mut found: Vec<(usize, usize)> = Vec::new();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (members, links) = (&members, &links);
                scope.spawn(move || members.iter().skip(t).step_by(threads).flat_map(|c| links(c)).collect::<Vec<_>>())
            })
            .collect();
        for h in handles {
            found.extend(h.join().expect("a grouping thread"));
        }
    });
    // Union-find; each group is named by its smallest row.
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for (i, j) in found {
        let (ri, rj) = (root(&mut parent, i), root(&mut parent, j));
        if ri != rj {
            parent[ri.max(rj)] = ri.min(rj);
        }
    }
    (0..n).map(|i| root(&mut parent, i)).collect()
}

/// Side of the blocks of [`block_projection`], and their number in an image.
const BLOCK: usize = 4;
const BLOCKS: usize = (super::SIDE / BLOCK) * (super::SIDE / BLOCK);

/// The image standardised to zero mean and unit norm, projected onto the images
/// constant on each 4×4 block, in the orthonormal basis of those blocks (the
/// block's sum over its side, 4). Distances between projections never exceed the
/// standardised images' own. img: [784]; sum: Σp; var: 784·Σp² − (Σp)² (> 0).
fn block_projection(img: &[u8], sum: i64, var: i64) -> [f64; BLOCKS] {
    let mut out = [0.0; BLOCKS];
    if var <= 0 {
        return out;
    }
    let mean = sum as f64 / PIXELS as f64;
    // ‖p − mean‖ = √(var / 784).
    let norm = (var as f64 / PIXELS as f64).sqrt();
    let per_row = super::SIDE / BLOCK;
    for (k, &p) in img.iter().enumerate() {
        let (y, x) = (k / super::SIDE, k % super::SIDE);
        out[(y / BLOCK) * per_row + x / BLOCK] += (p as f64 - mean) / norm;
    }
    for v in &mut out {
        *v /= BLOCK as f64;
    }
    out
}
