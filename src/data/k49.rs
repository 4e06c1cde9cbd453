//! Kuzushiji-49 (and KMNIST, same format): `k49-{train,test}-{imgs,labels}.npz`
//! holding uint8 arrays under `arr_0`, plus `k49_classmap.csv`.
//!
//! Style: each image is binarized at 128 (a pixel ≥ 128 is foreground); an image
//! is *thick* (1) when its foreground count is above the median count of its class
//! on the train split, else *thin* (0). The train medians are reused for the validation
//! and test splits (the train split here is the one left after the validation split is
//! carved out of the files' train images, see [`super::Dataset::from_files`]).

use std::path::Path;

use md5::{Digest, Md5};
use ndarray::Array3;

use super::{
    files_present, npz, standin, warn_standin, DataOptions, DataSource, Dataset, DatasetKind, Split, PIXELS, SIDE,
};
use crate::{Error, Result};

/// K49's file names are `k49-{train,test}-{imgs,labels}.npz`.
pub const FILE_PREFIX: &str = "k49";
pub const TRAIN_IMAGES: &str = "k49-train-imgs.npz";
pub const TRAIN_LABELS: &str = "k49-train-labels.npz";
pub const TEST_IMAGES: &str = "k49-test-imgs.npz";
pub const TEST_LABELS: &str = "k49-test-labels.npz";
pub const CLASS_MAP: &str = "k49_classmap.csv";
pub const NUM_CLASSES: usize = 49;

/// Pixel value from which a pixel counts as foreground (ink).
pub const FOREGROUND_THRESHOLD: u8 = 128;

/// The official files and their md5 sums (from the KMNIST release's `md5sums`).
pub const OFFICIAL_MD5: [(&str, &str); 5] = [
    (TRAIN_IMAGES, "7ac088b20481cf51dcd01ceaab89d821"),
    (TRAIN_LABELS, "44a8e1b893f81e63ff38d73cad420f7a"),
    (TEST_IMAGES, "d352e201d846ce6b94f42c990966f374"),
    (TEST_LABELS, "4da6f7a62e67a832d5eb1bd85c5ee448"),
    (CLASS_MAP, "f7d0d0391f68bdf0fe4cf160ceb85753"),
];

/// The K49 class characters, in class order (as in `k49_classmap.csv`).
pub const CHARACTERS: [&str; NUM_CLASSES] = [
    "あ", "い", "う", "え", "お", "か", "き", "く", "け", "こ", "さ", "し", "す", "せ", "そ", "た", "ち", "つ", "て",
    "と", "な", "に", "ぬ", "ね", "の", "は", "ひ", "ふ", "へ", "ほ", "ま", "み", "む", "め", "も", "や", "ゆ", "よ",
    "ら", "り", "る", "れ", "ろ", "わ", "ゐ", "ゑ", "を", "ん", "ゝ",
];

/// Latin transliterations, for figures drawn with a Latin-only font.
pub const ROMAJI: [&str; NUM_CLASSES] = [
    "a", "i", "u", "e", "o", "ka", "ki", "ku", "ke", "ko", "sa", "shi", "su", "se", "so", "ta", "chi", "tsu", "te",
    "to", "na", "ni", "nu", "ne", "no", "ha", "hi", "fu", "he", "ho", "ma", "mi", "mu", "me", "mo", "ya", "yu", "yo",
    "ra", "ri", "ru", "re", "ro", "wa", "wi", "we", "wo", "n", "(iter)",
];

const ARRAY_FILES: [&str; 4] = [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS];

/// Loads the K49-format folder chosen by `opts`. A folder named explicitly must
/// hold all four arrays; the default `<root>/kuzushiji-49` falls back to the
/// embedded stand-in (loudly) when its arrays are absent.
pub fn load(opts: &DataOptions) -> Result<Dataset> {
    let dir = opts.k49_dir();
    let explicit = opts.k49_folder.is_some();
    let present = files_present(&dir, &ARRAY_FILES)?;
    if !present {
        if explicit || !opts.allow_standin {
            return Err(Error::MissingFile { path: dir.join(TRAIN_IMAGES) });
        }
        warn_standin("Kuzushiji-49", &dir, &ARRAY_FILES);
        return Ok(standin::k49(opts.standin_seed));
    }
    let source = identify(&dir)?;
    let class_names = read_class_map(&dir)?;
    let (train, test) = read_npz_folder(&dir, FILE_PREFIX, class_names.len())?;
    let mut ds = Dataset::from_files(DatasetKind::K49, source, class_names, train, test);
    assign_dataset_styles(&mut ds);
    Ok(ds)
}

/// Real K49 when the (small) label files match the official md5 sums; otherwise
/// a K49-format folder named after its directory.
fn identify(dir: &Path) -> Result<DataSource> {
    let official = [TRAIN_LABELS, TEST_LABELS].iter().all(|f| {
        let expected = OFFICIAL_MD5.iter().find(|(name, _)| name == f).map(|(_, m)| *m);
        md5_file(&dir.join(f)).ok().as_deref() == expected
    });
    if official {
        return Ok(DataSource::Real { dir: dir.to_path_buf() });
    }
    let canonical = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let name = canonical.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "?".into());
    Ok(DataSource::Folder { name, dir: dir.to_path_buf() })
}

/// md5 of a file, as lowercase hex.
pub fn md5_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Md5::new();
    std::io::copy(&mut file, &mut hasher).map_err(|e| Error::io(path, e))?;
    Ok(format!("{:x}", hasher.finalize()))
}

/// Class names from `k49_classmap.csv` (`index,codepoint,char`), or the built-in
/// list when the folder has no class map.
pub fn read_class_map(dir: &Path) -> Result<Vec<String>> {
    let path = dir.join(CLASS_MAP);
    if !path.is_file() {
        return Ok(CHARACTERS.iter().map(|s| s.to_string()).collect());
    }
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut names = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let cells: Vec<&str> = line.split(',').collect();
        if cells.len() != 3 || cells[0].trim().parse::<usize>() != Ok(names.len()) {
            return Err(Error::csv(
                &path,
                i + 1,
                format!("expected `{},<codepoint>,<char>`, got `{line}`", names.len()),
            ));
        }
        names.push(cells[2].trim().to_string());
    }
    if names.is_empty() {
        return Err(Error::csv(&path, 1, "class map has no classes"));
    }
    Ok(names)
}

/// Reads a folder in the KMNIST/K49 npz layout with another file prefix, e.g.
/// `kmnist` (10 classes): `<prefix>-{train,test}-{imgs,labels}.npz`.
/// Returns (train, test) without style labels.
pub fn read_npz_folder(dir: &Path, prefix: &str, num_classes: usize) -> Result<(Split, Split)> {
    let file = |split: &str, what: &str| dir.join(format!("{prefix}-{split}-{what}.npz"));
    Ok((
        read_split(&file("train", "imgs"), &file("train", "labels"), num_classes)?,
        read_split(&file("test", "imgs"), &file("test", "labels"), num_classes)?,
    ))
}

/// Reads one split: images `[n, 28, 28]` and labels `[n]`, both uint8.
pub fn read_split(images_path: &Path, labels_path: &Path, num_classes: usize) -> Result<Split> {
    let images = npz::read_u8(images_path, npz::DEFAULT_ARRAY)?;
    if images.shape.len() != 3 || images.shape[1] != SIDE || images.shape[2] != SIDE {
        return Err(Error::npz(
            images_path,
            npz::DEFAULT_ARRAY,
            format!("shape {:?}, expected [n, 28, 28]", images.shape),
        ));
    }
    let labels = npz::read_u8(labels_path, npz::DEFAULT_ARRAY)?;
    if labels.shape.len() != 1 {
        return Err(Error::npz(labels_path, npz::DEFAULT_ARRAY, format!("shape {:?}, expected [n]", labels.shape)));
    }
    let n = images.shape[0];
    if labels.shape[0] != n {
        return Err(Error::Mismatch {
            message: format!(
                "{} holds {n} images but {} holds {} labels",
                images_path.display(),
                labels_path.display(),
                labels.shape[0]
            ),
        });
    }
    if let Some((i, &l)) = labels.data.iter().enumerate().find(|(_, &l)| l as usize >= num_classes) {
        return Err(Error::npz(
            labels_path,
            npz::DEFAULT_ARRAY,
            format!("element {i}: label {l} outside the class map (0..{num_classes})"),
        ));
    }
    Ok(Split {
        images: Array3::from_shape_vec((n, SIDE, SIDE), images.data).expect("shape checked"),
        labels: labels.data,
        styles: None,
    })
}

/// Foreground pixel count (pixels ≥ 128) of every image. images: [n, 28, 28].
pub fn foreground_counts(images: &Array3<u8>) -> Vec<u32> {
    crate::data::row_major(images)
        .chunks_exact(PIXELS)
        .map(|img| img.iter().filter(|&&p| p >= FOREGROUND_THRESHOLD).count() as u32)
        .collect()
}

/// Median foreground count of each class (mean of the two middle values for an
/// even count; 0 for an empty class).
pub fn class_medians(counts: &[u32], labels: &[u8], num_classes: usize) -> Vec<f64> {
    let mut per_class: Vec<Vec<u32>> = vec![Vec::new(); num_classes];
    for (&c, &l) in counts.iter().zip(labels) {
        per_class[l as usize].push(c);
    }
    per_class
        .into_iter()
        .map(|mut v| {
            if v.is_empty() {
                return 0.0;
            }
            v.sort_unstable();
            let m = v.len() / 2;
            if v.len() % 2 == 1 {
                v[m] as f64
            } else {
                (v[m - 1] as f64 + v[m] as f64) / 2.0
            }
        })
        .collect()
}

/// 1 (thick) where the count is above its class median, else 0 (thin).
pub fn style_labels(counts: &[u32], labels: &[u8], medians: &[f64]) -> Vec<u8> {
    counts.iter().zip(labels).map(|(&c, &l)| (c as f64 > medians[l as usize]) as u8).collect()
}

/// Computes the train medians and sets the style of both splits; returns the medians.
pub fn assign_styles(train: &mut Split, test: &mut Split, num_classes: usize) -> Vec<f64> {
    let train_counts = foreground_counts(&train.images);
    let medians = class_medians(&train_counts, &train.labels, num_classes);
    train.styles = Some(style_labels(&train_counts, &train.labels, &medians));
    apply_styles(test, &medians);
    medians
}

/// Sets the style of every image of `split` from given class medians.
pub fn apply_styles(split: &mut Split, medians: &[f64]) {
    let counts = foreground_counts(&split.images);
    split.styles = Some(style_labels(&counts, &split.labels, medians));
}

/// Sets the styles of a dataset's three splits from the medians of its train
/// split (the validation images are not in them) and records the medians.
pub fn assign_dataset_styles(ds: &mut Dataset) {
    let medians = assign_styles(&mut ds.train, &mut ds.test, ds.class_names.len());
    apply_styles(&mut ds.validation, &medians);
    ds.style_medians = Some(medians);
}
