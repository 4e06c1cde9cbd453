//! The validation split (issue 34, item 1): carved from every train split,
//! stratified per class, seeded, disjoint from what is trained on; derived by
//! every task; measured by training and evaluation; named in every run id.

use crate::common;

use std::collections::HashMap;

use condgen::data::{self, rot90, sign, DataOptions, DataSource, Dataset, DatasetKind, Split};
use condgen::eval::judge::JudgeConfig;
use condgen::eval::{self, EvalOptions, HeldOut, Judge, JudgeKind};
use condgen::model::{ModelKind, Net};
use condgen::sample::TrainedModel;
use condgen::train::{self, Profile, TrainConfig};
use condgen::Experiment;
use ndarray::Array3;
use tch::Device;

/// A pseudo-random byte of (a, b, c): images made of them correlate by about 0.
fn noise(a: usize, b: usize, c: usize) -> u8 {
    let mut h = (a as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (b as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h ^= (c as u64).wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^= h >> 31;
    (h.wrapping_mul(0xD6E8_FEB8_6659_FD93) >> 56) as u8
}

/// `per_class[c]` images of class c, interleaved by class; image i carries its
/// index in its first two pixels (i % 256, i / 256), so every image is unique;
/// styles i % 2. The rest is noise seeded by `salt`: no two images are near-duplicates.
fn numbered_split(per_class: &[usize], salt: usize) -> Split {
    let mut labels = Vec::new();
    let most = per_class.iter().copied().max().unwrap_or(0);
    for round in 0..most {
        for (c, &n) in per_class.iter().enumerate() {
            if round < n {
                labels.push(c as u8);
            }
        }
    }
    let n = labels.len();
    let images = Array3::from_shape_fn((n, 28, 28), |(i, y, x)| match (y, x) {
        (0, 0) => (i % 256) as u8,
        (0, 1) => (i / 256) as u8,
        _ => noise(salt, i, y * 28 + x),
    });
    Split { images, labels, styles: Some((0..n).map(|i| (i % 2) as u8).collect()) }
}

/// The index a [`numbered_split`] image carries.
fn id(split: &Split, row: usize) -> usize {
    let image = split.image(row);
    image[0] as usize + 256 * image[1] as usize
}

/// A small sign-letter-shaped dataset: `train` images of each of the 24 letters
/// in the files' train split (10 % of them carved out as validation), `test` of each in test.
fn tiny_sign_dataset(train: usize, test: usize) -> Dataset {
    Dataset::from_files(
        DatasetKind::SignMnist,
        DataSource::Embedded { seed: 0, looked_in: "tiny".into() },
        sign::LETTERS.iter().map(|s| s.to_string()).collect(),
        numbered_split(&[train; 24], 3),
        numbered_split(&[test; 24], 11),
    )
}

#[test]
fn the_split_is_stratified_deterministic_and_disjoint_from_train() {
    let counts = [1, 2, 4, 10, 37, 200, 1001];
    let files = numbered_split(&counts, 5);
    let (train, validation) = data::split_validation(&files, 0.1, 42);
    let singletons: Vec<usize> = (0..files.len()).collect();

    // Stratified: round(10 %) of each class, at least one of a class of two or more, never a whole class.
    let held = validation.class_counts(counts.len());
    assert_eq!(held, vec![0, 1, 1, 1, 4, 20, 100]);
    let kept = train.class_counts(counts.len());
    assert_eq!(kept.iter().zip(&held).map(|(k, h)| k + h).collect::<Vec<_>>(), counts.to_vec());

    // Disjoint, and together the original split: every image once, with its label and style.
    let train_ids: Vec<usize> = (0..train.len()).map(|r| id(&train, r)).collect();
    let validation_ids: Vec<usize> = (0..validation.len()).map(|r| id(&validation, r)).collect();
    let mut all: Vec<usize> = train_ids.iter().chain(&validation_ids).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..files.len()).collect::<Vec<_>>(), "train + validation = the original, no image in both");
    for (part, ids) in [(&train, &train_ids), (&validation, &validation_ids)] {
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "each part keeps the original order");
        for (row, &i) in ids.iter().enumerate() {
            assert_eq!(part.image(row), files.image(i), "image {i}");
            assert_eq!(part.labels[row], files.labels[i]);
            assert_eq!(part.styles.as_ref().unwrap()[row], files.styles.as_ref().unwrap()[i]);
        }
    }
    assert_eq!(data::validation_rows(&files.labels, &singletons, 0.1, 42), (train_ids.clone(), validation_ids.clone()));

    // Deterministic: the same seed, the same images; another seed, others (in a large class).
    let (again_train, again_validation) = data::split_validation(&files, 0.1, 42);
    assert_eq!((again_train.images, again_validation.images), (train.images, validation.images.clone()));
    let (_, other) = data::validation_rows(&files.labels, &singletons, 0.1, 43);
    assert_ne!(other, validation_ids, "another seed draws other images");

    // The protocol's constants.
    assert_eq!(data::VALIDATION_FRACTION, 0.1);
    let (_, none) = data::split_validation(&files, 0.0, 42);
    assert!(none.is_empty(), "fraction 0 holds nothing out");
}

/// Near-duplicates: `photos` noise images, each in `copies` copies perturbed by
/// noise of growing amplitude (so some copies correlate just above the threshold,
/// some just below), of classes photo % `classes`, in a shuffled order.
fn photographs(photos: usize, copies: usize, classes: usize) -> (Split, Vec<usize>) {
    let mut rows: Vec<(usize, usize)> = (0..photos).flat_map(|p| (0..copies).map(move |c| (p, c))).collect();
    rows.sort_by_key(|&(p, c)| noise(99, p, c));
    let n = rows.len();
    let images = Array3::from_shape_fn((n, 28, 28), |(i, y, x)| {
        let (p, c) = rows[i];
        let base = 40 + noise(p, 1, y * 28 + x) as i32 * 3 / 4;
        let jitter = (noise(p, c + 2, y * 28 + x) as i32 - 128) * c as i32 / 24;
        (base + jitter).clamp(0, 255) as u8
    });
    let labels = rows.iter().map(|&(p, _)| (p % classes) as u8).collect();
    (Split { images, labels, styles: None }, rows.iter().map(|&(p, _)| p).collect())
}

/// Pearson correlation of two images' pixels, in floating point.
fn correlation(a: &[u8], b: &[u8]) -> f64 {
    let mean = |x: &[u8]| x.iter().map(|&v| v as f64).sum::<f64>() / x.len() as f64;
    let (ma, mb) = (mean(a), mean(b));
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (x as f64 - ma, y as f64 - mb);
        (ab, aa, bb) = (ab + x * y, aa + x * x, bb + y * y);
    }
    ab / (aa * bb).sqrt()
}

#[test]
fn near_duplicate_copies_form_groups_that_go_to_one_side() {
    let (split, photo) = photographs(60, 6, 3);
    let groups = data::near_duplicate_groups(&split, data::SIGN_DUPLICATE_CORRELATION);

    // The same groups as linking every pair of a class by its correlation, the slow way.
    let n = split.len();
    let mut naive: Vec<usize> = (0..n).collect();
    let mut linked = 0;
    for i in 0..n {
        for j in i + 1..n {
            let r = correlation(&split.image(i), &split.image(j));
            if split.labels[i] == split.labels[j] && r >= data::SIGN_DUPLICATE_CORRELATION {
                linked += 1;
                let (a, b) = (naive[i], naive[j]);
                for g in naive.iter_mut().filter(|g| **g == a || **g == b) {
                    *g = a.min(b);
                }
            }
            if photo[i] != photo[j] {
                assert!(r < 0.5, "different photographs do not correlate: {r}");
            }
        }
    }
    assert_eq!(groups, naive);
    // The copies straddle the threshold: some link, not every one.
    let distinct = |g: &[usize]| g.iter().collect::<std::collections::HashSet<_>>().len();
    assert!(
        linked > 0 && distinct(&groups) > 60 && distinct(&groups) < n,
        "{linked} links, {} groups",
        distinct(&groups)
    );

    // Grouped: a group is on one side whole; each class ≈ 10 %, passing round(10 %) by less than a group.
    let (train_rows, validation_rows) = data::validation_rows(&split.labels, &groups, 0.1, 7);
    let side: HashMap<usize, bool> = validation_rows.iter().map(|&i| (groups[i], true)).collect();
    assert!(train_rows.iter().all(|i| !side.contains_key(&groups[*i])), "no group on both sides");
    let largest = (0..n).map(|i| groups.iter().filter(|&&g| g == groups[i]).count()).max().unwrap();
    let (_, validation) = data::split_validation_grouped(&split, &groups, 0.1, 7);
    for (c, &held) in validation.class_counts(3).iter().enumerate() {
        assert!((12..12 + largest).contains(&held), "class {c}: {held} of 120");
    }
    assert_eq!(data::validation_rows(&split.labels, &groups, 0.1, 7), (train_rows, validation_rows));
}

#[test]
fn datasets_carve_validation_from_their_train_files_only() {
    // A Sign MNIST folder: 24 letters × 5 "photographs" × 3 identical copies in the
    // train file, 24 × 3 test rows; every photograph distinct.
    let dir = tempfile::tempdir().unwrap();
    let sign_dir = dir.path().join(data::SIGN_DIR);
    std::fs::create_dir_all(&sign_dir).unwrap();
    let file_label = |class: usize| if class < 9 { class as i64 } else { class as i64 + 1 };
    let train_rows: Vec<(i64, u8)> = (0..360).map(|i| (file_label(i % 24), (i / 72 * 37) as u8)).collect();
    let test_rows: Vec<(i64, u8)> = (0..72).map(|i| (file_label(i % 24), (200 + i / 24 * 7) as u8)).collect();
    common::write(&sign_dir, sign::TRAIN_FILE, common::sign_csv(&train_rows).as_bytes());
    common::write(&sign_dir, sign::TEST_FILE, common::sign_csv(&test_rows).as_bytes());
    let opts = DataOptions { allow_standin: false, ..DataOptions::default().with_root(dir.path()) };
    let ds = opts.load(DatasetKind::SignMnist).unwrap();
    let files_train = sign::read_csv(&sign_dir.join(sign::TRAIN_FILE)).unwrap();
    let files_test = sign::read_csv(&sign_dir.join(sign::TEST_FILE)).unwrap();

    // Round(1.5) = 2 of each letter's 15 train rows, taken as one whole photograph
    // (its 3 copies); the test split untouched.
    assert_eq!(ds.validation.class_counts(24), vec![3; 24]);
    assert_eq!(ds.train.class_counts(24), vec![12; 24]);
    assert_eq!((ds.test.labels.clone(), ds.test.images.clone()), (files_test.labels, files_test.images));

    // train + validation = the file's train rows as multisets, no row in both.
    let rows = |split: &Split| -> HashMap<(u8, Vec<u8>), usize> {
        let mut m = HashMap::new();
        for i in 0..split.len() {
            *m.entry((split.labels[i], split.image(i).to_vec())).or_default() += 1;
        }
        m
    };
    let (train, validation, files) = (rows(&ds.train), rows(&ds.validation), rows(&files_train));
    assert!(validation.keys().all(|k| !train.contains_key(k)), "no image, nor a copy of one, in both");
    let mut union = train.clone();
    for (k, n) in &validation {
        *union.entry(k.clone()).or_default() += n;
    }
    assert_eq!(union, files);
    // Validation comes from the train file only.
    let test = rows(&ds.test);
    assert!(validation.keys().all(|k| !test.contains_key(k)));

    // The same for every run and judge: loading again draws the same images.
    let again = opts.load(DatasetKind::SignMnist).unwrap();
    assert_eq!((again.validation.images, again.train.images), (ds.validation.images, ds.train.images));
}

#[test]
fn every_task_derives_its_validation_from_the_datasets() {
    let ds = tiny_sign_dataset(20, 5);
    assert_eq!((ds.train.len(), ds.validation.len(), ds.test.len()), (24 * 18, 24 * 2, 24 * 5));

    // Letters: the dataset's validation as it is.
    let letters = Experiment::SignLetter.prepare(&ds);
    assert_eq!(
        (&letters.validation.images, &letters.validation.labels),
        (&ds.validation.images, &ds.validation.labels)
    );
    // Vowels: the same images, relabelled.
    let vowels = Experiment::SignVowel.prepare(&ds);
    assert_eq!(vowels.validation.images, ds.validation.images);
    let expected: Vec<u8> = ds.validation.labels.iter().map(|&l| sign::is_vowel(l)).collect();
    assert_eq!(vowels.validation.labels, expected);
    // Rotation: the four rotations of each validation image, so stratified by letter and by angle.
    let rotation = Experiment::SignRotation.prepare(&ds);
    assert_eq!(rotation.validation.len(), 4 * ds.validation.len());
    assert_eq!(rotation.validation.class_counts(4), vec![ds.validation.len(); 4]);
    for i in 0..ds.validation.len() {
        for k in 0..4 {
            assert_eq!(rotation.validation.labels[4 * i + k], k as u8);
            assert_eq!(rotation.validation.image(4 * i + k), &rot90(&ds.validation.image(i), k)[..]);
        }
    }
    let train_ids: std::collections::HashSet<usize> = (0..ds.train.len()).map(|r| id(&ds.train, r)).collect();
    assert!((0..ds.validation.len()).all(|r| !train_ids.contains(&id(&ds.validation, r))));

    // Quick runs cap validation as they cap test; held-out classes leave it too.
    let mut capped = letters.clone();
    capped.truncate(100, 10);
    assert_eq!((capped.train.len(), capped.validation.len(), capped.test.len()), (100, 10, 10));
    let without = letters.without_classes(&[0, 5]);
    assert!(without.validation.labels.iter().all(|&l| l != 0 && l != 5));
    assert_eq!(without.validation.len(), letters.validation.len() - 4);
    let cfg = TrainConfig::new(Experiment::SignLetter, ModelKind::Cvae, Profile::Quick);
    assert_eq!(cfg.training_data(&letters).validation.len(), letters.validation.len().min(256));

    // K49 (a K49-format folder of 10 train images a class): the validation images
    // carry their style, from the train split's medians.
    let dir = tempfile::tempdir().unwrap();
    common::k49_folder(dir.path(), 490, 49);
    let k49 = DataOptions { k49_folder: Some(dir.path().to_path_buf()), ..DataOptions::default() }
        .load(DatasetKind::K49)
        .unwrap();
    assert_eq!((k49.train.class_counts(49), k49.validation.class_counts(49)), (vec![9; 49], vec![1; 49]));
    let styles = k49.validation.styles.as_ref().expect("validation styles");
    let counts = condgen::data::k49::foreground_counts(&k49.validation.images);
    let medians = k49.style_medians.as_ref().unwrap();
    assert_eq!(styles, &condgen::data::k49::style_labels(&counts, &k49.validation.labels, medians));
    let task = Experiment::K49.prepare(&k49);
    assert_eq!(task.validation.styles, k49.validation.styles);
}

#[test]
fn training_measures_its_held_out_loss_on_validation() {
    let _serial = common::serial();
    let data = Experiment::SignLetter.prepare(&tiny_sign_dataset(40, 10));
    let cfg = TrainConfig::new(Experiment::SignLetter, ModelKind::Cvae, Profile::Quick);
    let root = tempfile::tempdir().unwrap();
    let outcome = train::train(&cfg, &data, &common::cpu_train_options(root.path())).unwrap();
    let meta = outcome.run.read_meta().unwrap();
    assert_eq!((meta.train_images, meta.validation_images), (24 * 36, Some(24 * 4)));
    let last = outcome.history.last().unwrap();
    let recorded_kl = last.test_kl.expect("a held-out KL every epoch");

    // The recorded KL (deterministic given the weights: posterior means and variances)
    // is the validation split's, not the test split's.
    let model = TrainedModel::load(&outcome.run.path, Device::Cpu).unwrap();
    let Net::Cvae(cvae) = &model.built.net else { panic!("a CVAE") };
    let measure = |split: &Split| {
        train::cvae_test_loss(cvae.as_ref(), &model.built.likelihood, split, model.spec, cfg.kl_weight, Device::Cpu)
    };
    let (validation, test) = (measure(&data.validation), measure(&data.test));
    assert!((recorded_kl - validation.kl).abs() < 1e-6 * validation.kl.max(1.0), "{recorded_kl} vs {}", validation.kl);
    assert!((recorded_kl - test.kl).abs() > 1e-4, "not the test split's: {recorded_kl} vs {}", test.kl);
    assert_eq!(last.test_active_units, Some(validation.active_units));
    let history = train::history::read_csv(&outcome.run.file(train::run::HISTORY_FILE)).unwrap();
    assert!(history.column("test_loss").is_ok(), "the column keeps its name: older history files read the same");
}

#[test]
fn run_ids_and_cached_judges_change_with_the_protocol() {
    let cfg = TrainConfig::new(Experiment::SignLetter, ModelKind::Cvae, Profile::Default);
    assert_eq!(cfg.data_protocol, data::DATA_PROTOCOL);
    let json = serde_json::to_value(&cfg).unwrap();
    assert_eq!(json["data_protocol"], 1);

    // A config saved before the validation split: the same without the field.
    let mut old_json = json.clone();
    old_json.as_object_mut().unwrap().remove("data_protocol");
    let old: TrainConfig = serde_json::from_value(old_json.clone()).unwrap();
    assert_eq!(old.data_protocol, 0);
    // Its folder keeps its name (it serialises as it was saved), and no new run reuses it.
    assert_eq!(serde_json::to_value(&old).unwrap(), old_json);
    assert_ne!(old.digest(), cfg.digest());
    let root = std::path::Path::new("runs");
    assert_ne!(train::RunDir::for_config(root, &old).path, train::RunDir::for_config(root, &cfg).path);
    eprintln!(
        "run id before: {:?}, after: {:?}",
        train::RunDir::for_config(root, &old).path,
        train::RunDir::for_config(root, &cfg).path
    );
    // Such a config is not trained any further, and the protocol is the data's, not a knob.
    let err = old.validate().unwrap_err().to_string();
    assert!(err.contains("before the validation split"), "{err}");
    let err = cfg.set(&["data_protocol=2".into()]).unwrap_err().to_string();
    assert!(err.contains("data_protocol 2 is not this version's data"), "{err}");
    // Every profile and recipe carries it.
    for exp in Experiment::ALL {
        for model in [ModelKind::Cvae, ModelKind::Cgan] {
            for profile in [Profile::Quick, Profile::Default, Profile::Paper] {
                assert_eq!(TrainConfig::new(exp, model, profile).data_protocol, 1);
            }
        }
    }
    let opts = condgen::report::ReportOptions::new(Profile::Quick);
    assert!(condgen::report::plan(&opts).unwrap().iter().all(|r| r.config.data_protocol == 1));

    // A judge cached before the validation split learned the whole train split: it is retrained.
    let judge = JudgeConfig::for_kind(JudgeKind::SignLetter);
    assert_eq!(judge.data_protocol, 1);
    let mut old_judge = serde_json::to_value(&judge).unwrap();
    old_judge.as_object_mut().unwrap().remove("data_protocol");
    let old_judge: JudgeConfig = serde_json::from_value(old_judge).unwrap();
    assert_ne!(old_judge, judge);

    // Evaluation options: test unless asked (metrics of older runs read as test).
    assert_eq!(EvalOptions::default().split, HeldOut::Test);
    let mut old_opts = serde_json::to_value(EvalOptions::default()).unwrap();
    old_opts.as_object_mut().unwrap().remove("split");
    assert_eq!(serde_json::from_value::<EvalOptions>(old_opts).unwrap().split, HeldOut::Test);
    assert_eq!(
        (eval::metrics_file(HeldOut::Test), eval::metrics_file(HeldOut::Validation)),
        ("metrics.json", "metrics-validation.json")
    );
}

#[test]
fn evaluation_measures_against_the_split_it_is_asked_for() {
    let _serial = common::serial();
    let data = Experiment::SignLetter.prepare(&tiny_sign_dataset(40, 10));
    let cfg = JudgeConfig { epochs: 1, augment: false, ..JudgeConfig::for_kind(JudgeKind::SignLetter) };
    let judge =
        Judge::train(JudgeKind::SignLetter, &data, &cfg, Device::Cpu, condgen::progress::ProgressMode::Quiet).unwrap();
    assert_eq!((judge.meta.train_images, judge.meta.validation_images), (24 * 36, Some(24 * 4)));
    assert!(judge.meta.validation_accuracy.is_some());

    // 200 "samples" (real train images): the reference is as many real images of the split, at most the split.
    let samples = condgen::sample::Samples {
        images: data.train.images.slice(ndarray::s![..200, .., ..]).to_owned(),
        labels: data.train.labels[..200].iter().map(|&l| l as i64).collect(),
        styles: None,
    };
    let measure = |split: HeldOut| {
        let opts = EvalOptions { memorization_reference: 100, split, ..EvalOptions::default() };
        eval::evaluate_samples(&samples, &data, &judge, &opts).unwrap()
    };
    assert_eq!(measure(HeldOut::Validation).real_reference_images, data.validation.len());
    assert_eq!(measure(HeldOut::Test).real_reference_images, 200);

    let opts = EvalOptions { memorization_reference: 100, split: HeldOut::Validation, ..EvalOptions::default() };
    let rows = eval::reference_rows(&data, &judge, 1000, &opts).unwrap();
    assert_eq!(rows[0].name, "real validation, half vs half");
    assert_eq!(rows[1].name, "real train vs validation");
    assert_eq!(rows[0].metrics.real_reference_images, data.validation.len() / 2);
}

#[test]
fn real_sign_validation_holds_no_copy_of_a_train_photograph() {
    let Some(root) = common::shared_data("real_sign_validation_holds_no_copy_of_a_train_photograph") else { return };
    if !root.join(data::SIGN_DIR).join(sign::TRAIN_FILE).is_file() {
        eprintln!("SKIP: no Sign MNIST CSVs in {}", root.display());
        return;
    }
    let ds = DataOptions { allow_standin: false, ..DataOptions::default().with_root(&root) }
        .load(DatasetKind::SignMnist)
        .unwrap();
    // Each letter keeps ≈ 10 % (whole groups: a little more).
    for (c, (&v, &t)) in ds.validation.class_counts(24).iter().zip(&ds.train.class_counts(24)).enumerate() {
        let share = v as f64 / (v + t) as f64;
        assert!((0.095..0.13).contains(&share), "letter {c}: {share:.3}");
    }
    // Nearest train image (L2, pixels in [0, 1]) of 500 validation and 500 test images:
    // validation stands to train as test does (image by image, 89 % were within 1).
    let as_rows = |s: &Split| {
        let n = s.len() as i64;
        data::pixels_to_tensor(&data::row_major(&s.images), Device::Cpu).view([n, 784])
    };
    let train = as_rows(&ds.train);
    let train_sq = train.square().sum_dim_intlist(1, false, tch::Kind::Float).view([1, -1]);
    let within_1 = |split: &Split| {
        let rows: Vec<usize> = (0..split.len()).step_by(split.len() / 500).take(500).collect();
        let x = as_rows(&split.select(&rows));
        let d2 = x.square().sum_dim_intlist(1, true, tch::Kind::Float) + &train_sq - x.matmul(&train.tr()) * 2.0;
        let nearest = Vec::<f32>::try_from(d2.min_dim(1, false).0).unwrap();
        nearest.iter().filter(|&&d| d < 1.0).count() as f64 / nearest.len() as f64
    };
    let (validation, test) = (within_1(&ds.validation), within_1(&ds.test));
    eprintln!("share within L2 1 of a train image: validation {validation:.3}, test {test:.3}");
    assert!(validation < 0.1 && test < 0.1, "validation {validation}, test {test}");
}
