//! Loader tests: good and bad fixtures written here, the real shared files when present.

use crate::common::*;
use condgen::data::{self, k49, npz, rot90, sign, standin, DataOptions, DataSource, DatasetKind};
use condgen::{Error, Experiment};

// ---------- Sign Language MNIST CSV ----------

#[test]
fn sign_csv_reads_labels_and_pixels() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "s.csv", sign_csv(&[(0, 0), (10, 5), (24, 9)]).as_bytes());
    let split = sign::read_csv(&path).unwrap();
    assert_eq!(split.len(), 3);
    // 0 → A (0), 10 → K (9: J is skipped), 24 → Y (23)
    assert_eq!(split.labels, vec![0, 9, 23]);
    assert_eq!(split.image(1)[0], 5);
    assert_eq!(split.image(1)[783], ((5 + 783) % 256) as u8);
    assert_eq!(split.images.shape(), &[3, 28, 28]);
}

#[test]
fn sign_csv_accepts_bom_and_crlf() {
    let dir = tempfile::tempdir().unwrap();
    let text = sign_csv(&[(3, 1), (4, 2)]).replace('\n', "\r\n");
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice(text.as_bytes());
    let path = write(dir.path(), "s.csv", &bytes);
    let split = sign::read_csv(&path).unwrap();
    assert_eq!(split.labels, vec![3, 4]);
    assert_eq!(split.image(0)[783], ((1 + 783) % 256) as u8);
}

/// Writes `text`, expects a CSV error at `line` whose message contains `needle`,
/// and checks the file was left untouched.
fn expect_csv_error(text: &str, line: usize, needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "bad.csv", text.as_bytes());
    let err = sign::read_csv(&path).unwrap_err();
    match &err {
        Error::Csv { path: p, line: l, message } => {
            assert_eq!(p, &path);
            assert_eq!(*l, line, "wrong line for {needle}: {err}");
            assert!(message.contains(needle), "`{message}` should mention `{needle}`");
        }
        other => panic!("expected a CSV error mentioning `{needle}`, got {other:?}"),
    }
    assert!(err.to_string().contains("bad.csv"), "message names the file: {err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "the input file is untouched");
}

fn with_row(row: &str) -> String {
    let mut s = sign_csv(&[(1, 1), (2, 2)]);
    s.push_str(row);
    s.push('\n');
    s
}

fn row(label: &str, cells: Vec<String>) -> String {
    std::iter::once(label.to_string()).chain(cells).collect::<Vec<_>>().join(",")
}

#[test]
fn sign_csv_bad_inputs_name_file_and_line() {
    let ok_cells = || (0..784).map(|_| "7".to_string()).collect::<Vec<_>>();
    expect_csv_error("", 1, "empty file");
    expect_csv_error(&sign_csv(&[]), 2, "no data rows");
    expect_csv_error(&sign_csv(&[(1, 1)]).replacen("label", "lbl", 1), 1, "`lbl`");
    let headerless = sign_csv(&[(1, 1), (2, 2)]).lines().skip(1).collect::<Vec<_>>().join("\n");
    expect_csv_error(&headerless, 1, "expected `label`");
    expect_csv_error(&with_row(&row("3", ok_cells()[..700].to_vec())), 4, "short row");
    let mut long = ok_cells();
    long.push("1".into());
    expect_csv_error(&with_row(&row("3", long)), 4, "long row");
    let mut nan = ok_cells();
    nan[10] = "abc".into();
    expect_csv_error(&with_row(&row("3", nan)), 4, "`pixel11`: `abc` is not an integer");
    let mut big = ok_cells();
    big[0] = "256".into();
    expect_csv_error(&with_row(&row("3", big)), 4, "pixel 256 outside");
    let mut neg = ok_cells();
    neg[5] = "-1".into();
    expect_csv_error(&with_row(&row("3", neg)), 4, "pixel -1 outside");
    expect_csv_error(&with_row(&row("9", ok_cells())), 4, "label 9");
    expect_csv_error(&with_row(&row("25", ok_cells())), 4, "label 25");
    expect_csv_error(&with_row(&row("-2", ok_cells())), 4, "label -2");
}

#[test]
fn sign_missing_file_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = sign::read_csv(&dir.path().join("nope.csv")).unwrap_err();
    assert!(matches!(err, Error::MissingFile { .. }), "{err:?}");
    // Only one of the two CSVs present: an error naming the missing one, no stand-in.
    let sign_dir = dir.path().join(data::SIGN_DIR);
    std::fs::create_dir(&sign_dir).unwrap();
    write(&sign_dir, sign::TRAIN_FILE, sign_csv(&[(1, 1)]).as_bytes());
    let err = DataOptions::default().with_root(dir.path()).load(DatasetKind::SignMnist).unwrap_err();
    match err {
        Error::MissingFile { path } => assert!(path.ends_with(sign::TEST_FILE)),
        other => panic!("{other:?}"),
    }
}

// ---------- Kuzushiji-49 npz ----------

#[test]
fn k49_folder_reads_and_is_not_called_real() {
    let dir = tempfile::tempdir().unwrap();
    k49_folder(dir.path(), 98, 49);
    let opts = DataOptions { k49_folder: Some(dir.path().to_path_buf()), ..DataOptions::default() };
    let ds = opts.load(DatasetKind::K49).unwrap();
    // Two images a class: one of each goes to validation.
    assert_eq!((ds.train.len(), ds.validation.len()), (49, 49));
    assert_eq!(ds.test.len(), 49);
    assert_eq!(ds.train.class_counts(49), vec![1; 49]);
    // The file's rows c and c + 49 are class c: one in train, the other in validation.
    let (files_train, _) = k49::read_npz_folder(dir.path(), k49::FILE_PREFIX, 49).unwrap();
    for c in 0..49u8 {
        let row = |split: &data::Split| split.image(split.labels.iter().position(|&l| l == c).unwrap()).to_vec();
        let mut got = [row(&ds.train), row(&ds.validation)];
        got.sort();
        let mut expected = [files_train.image(c as usize).to_vec(), files_train.image(c as usize + 49).to_vec()];
        expected.sort();
        assert_eq!(got, expected, "class {c}");
    }
    assert!(matches!(ds.source, DataSource::Folder { .. }), "md5 differs from the official files");
    assert_eq!(ds.class_names[0], "あ");
    assert!(ds.train.styles.is_some() && ds.validation.styles.is_some() && ds.test.styles.is_some());
}

#[test]
fn the_same_loader_reads_kmnist() {
    let dir = tempfile::tempdir().unwrap();
    k49_folder(dir.path(), 20, 10);
    for split in ["train", "test"] {
        for what in ["imgs", "labels"] {
            let from = dir.path().join(format!("k49-{split}-{what}.npz"));
            std::fs::rename(from, dir.path().join(format!("kmnist-{split}-{what}.npz"))).unwrap();
        }
    }
    // The fixture's labels run 0..48, so reading it as 10-class KMNIST must fail on label 10...
    let err = k49::read_npz_folder(dir.path(), "kmnist", 10).unwrap_err();
    assert!(err.to_string().contains("element 10: label 10 outside the class map (0..10)"), "{err}");
    // ...and succeed with enough classes.
    let (train, test) = k49::read_npz_folder(dir.path(), "kmnist", 49).unwrap();
    assert_eq!((train.len(), test.len()), (20, 10));
}

fn expect_npz_error(setup: impl FnOnce(&std::path::Path), needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    k49_folder(dir.path(), 10, 10);
    setup(dir.path());
    let before: Vec<Vec<u8>> = list(dir.path()).iter().map(|p| std::fs::read(p).unwrap()).collect();
    let opts = DataOptions { k49_folder: Some(dir.path().to_path_buf()), ..DataOptions::default() };
    let err = opts.load(DatasetKind::K49).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(needle), "`{msg}` should mention `{needle}`");
    let after: Vec<Vec<u8>> = list(dir.path()).iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert_eq!(before, after, "nothing on disk changed");
}

fn list(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

fn overwrite_train_images(dir: &std::path::Path, array: npz::NpzArray) {
    npz::write(&dir.join(k49::TRAIN_IMAGES), &[("arr_0", array)]).unwrap();
}

#[test]
fn k49_bad_inputs_name_file_and_array() {
    expect_npz_error(|d| drop(write(d, k49::TRAIN_IMAGES, b"this is not a zip")), "not a readable npz");
    expect_npz_error(
        |d| {
            let p = d.join(k49::TRAIN_IMAGES);
            let bytes = std::fs::read(&p).unwrap();
            std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        },
        "k49-train-imgs.npz",
    );
    expect_npz_error(
        |d| {
            npz::write(
                &d.join(k49::TRAIN_IMAGES),
                &[("images", npz::NpzArray::U8 { shape: vec![10, 28, 28], data: &[0; 7840] })],
            )
            .unwrap()
        },
        "`arr_0`: not in the archive (it holds: images.npy)",
    );
    expect_npz_error(
        |d| overwrite_train_images(d, npz::NpzArray::F32 { shape: vec![10, 28, 28], data: &[0.0; 7840] }),
        "dtype is `<f4`, expected uint8",
    );
    expect_npz_error(
        |d| overwrite_train_images(d, npz::NpzArray::I64 { shape: vec![10, 28, 28], data: &[0; 7840] }),
        "dtype is `<i8`, expected uint8",
    );
    expect_npz_error(
        |d| overwrite_train_images(d, npz::NpzArray::U8 { shape: vec![10, 784], data: &[0; 7840] }),
        "shape [10, 784], expected [n, 28, 28]",
    );
    expect_npz_error(
        |d| overwrite_train_images(d, npz::NpzArray::U8 { shape: vec![10, 28, 27], data: &[0; 7560] }),
        "shape [10, 28, 27]",
    );
    expect_npz_error(
        |d| overwrite_train_images(d, npz::NpzArray::U8 { shape: vec![9, 28, 28], data: &[0; 9 * 784] }),
        "holds 9 images but",
    );
    expect_npz_error(
        |d| {
            npz::write(
                &d.join(k49::TRAIN_LABELS),
                &[("arr_0", npz::NpzArray::U8 { shape: vec![10], data: &[0, 1, 2, 3, 49, 0, 0, 0, 0, 0] })],
            )
            .unwrap()
        },
        "element 4: label 49 outside the class map",
    );
    expect_npz_error(
        |d| std::fs::remove_file(d.join(k49::TEST_LABELS)).unwrap(),
        "k49-test-labels.npz: file not found",
    );
}

#[test]
fn npz_hostile_header_does_not_allocate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hostile.npz");
    raw_npz(&path, "{'descr': '|u1', 'fortran_order': False, 'shape': (1000000000000,), }", &[0u8; 100]);
    let err = npz::read_u8(&path, "arr_0").unwrap_err();
    assert!(err.to_string().contains("implausibly large"), "{err}");
    raw_npz(&path, "{'descr': '|u1', 'fortran_order': False, 'shape': (1000000,), }", &[0u8; 100]);
    let err = npz::read_u8(&path, "arr_0").unwrap_err();
    assert!(err.to_string().contains("truncated or corrupt"), "{err}");
    raw_npz(&path, "{'descr': '|u1', 'fortran_order': True, 'shape': (10, 10), }", &[0u8; 100]);
    let err = npz::read_u8(&path, "arr_0").unwrap_err();
    assert!(err.to_string().contains("Fortran"), "{err}");
}

// ---------- Derived conditions ----------

#[test]
fn rot90_matches_numpy_counter_clockwise() {
    // An asymmetric image: one bright pixel at the top-right corner, a dimmer one below it.
    let mut img = [0u8; 784];
    img[27] = 255; // (row 0, col 27)
    img[28 + 27] = 100; // (row 1, col 27)
                        // np.rot90(img, 1): the top-right corner goes to the top-left.
    let r1 = rot90(&img, 1);
    assert_eq!((r1[0], r1[1]), (255, 100));
    // k = 2: bottom-left; k = 3: bottom-right, the dim pixel to its left... above it.
    let r2 = rot90(&img, 2);
    assert_eq!((r2[27 * 28], r2[26 * 28]), (255, 100));
    let r3 = rot90(&img, 3);
    assert_eq!((r3[27 * 28 + 27], r3[27 * 28 + 26]), (255, 100));
    assert_eq!(rot90(&r3, 1), img);
    assert_eq!(rot90(&img, 4), img);
}

#[test]
fn rotation_task_holds_four_rotated_copies() {
    let ds = standin::sign_mnist(7);
    let mut task = Experiment::SignRotation.prepare(&ds);
    assert_eq!(task.train.len(), ds.train.len() * 4);
    task.truncate(40, 8);
    for i in 0..10 {
        for k in 0..4 {
            assert_eq!(task.train.labels[i * 4 + k], k as u8);
            assert_eq!(task.train.image(i * 4 + k), &rot90(&ds.train.image(i), k)[..]);
        }
    }
}

#[test]
fn vowel_task_marks_a_e_i_o_u() {
    let ds = standin::sign_mnist(7);
    let task = Experiment::SignVowel.prepare(&ds);
    for (letter, vowel) in ds.train.labels.iter().zip(&task.train.labels).take(500) {
        let name = sign::LETTERS[*letter as usize];
        assert_eq!(*vowel == 1, ["A", "E", "I", "O", "U"].contains(&name), "{name}");
    }
}

#[test]
fn style_medians_hand_computed() {
    // class 0 counts 1, 5, 3 → median 3; class 1 counts 2, 8, 4, 6 → median (4 + 6) / 2 = 5
    let counts = [1, 5, 3, 2, 8, 4, 6];
    let labels = [0, 0, 0, 1, 1, 1, 1];
    let medians = k49::class_medians(&counts, &labels, 2);
    assert_eq!(medians, vec![3.0, 5.0]);
    assert_eq!(k49::style_labels(&counts, &labels, &medians), vec![0, 1, 0, 0, 1, 0, 1]);
    // Binarize at 128: 127 is background, 128 is foreground.
    let mut images = ndarray::Array3::<u8>::zeros((1, 28, 28));
    images[[0, 0, 0]] = 127;
    images[[0, 0, 1]] = 128;
    images[[0, 5, 5]] = 255;
    assert_eq!(k49::foreground_counts(&images), vec![2]);
}

#[test]
fn test_split_styles_use_train_medians() {
    let dir = tempfile::tempdir().unwrap();
    k49_folder(dir.path(), 98, 49);
    let opts = DataOptions { k49_folder: Some(dir.path().to_path_buf()), ..DataOptions::default() };
    let ds = opts.load(DatasetKind::K49).unwrap();
    let medians = ds.style_medians.as_ref().unwrap();
    for split in [&ds.validation, &ds.test] {
        let counts = k49::foreground_counts(&split.images);
        assert_eq!(split.styles.as_ref().unwrap(), &k49::style_labels(&counts, &split.labels, medians));
    }
    // The medians are the train split's: the validation images are not in them.
    let train_counts = k49::foreground_counts(&ds.train.images);
    assert_eq!(medians, &k49::class_medians(&train_counts, &ds.train.labels, 49));
}

// ---------- Embedded stand-ins ----------

#[test]
fn standin_is_deterministic_and_sized_like_sign_mnist() {
    let a = standin::sign_mnist(11);
    let b = standin::sign_mnist(11);
    let c = standin::sign_mnist(12);
    assert_eq!(a.train.images, b.train.images);
    assert_eq!(a.test.labels, b.test.labels);
    assert_eq!(a.validation.images, b.validation.images);
    assert_ne!(a.train.images, c.train.images);
    assert_eq!((a.train.len() + a.validation.len(), a.test.len()), (27_455, 7_172));
    let files_train: Vec<usize> =
        a.train.class_counts(24).iter().zip(a.validation.class_counts(24)).map(|(t, v)| t + v).collect();
    assert_eq!(files_train, standin::SIGN_TRAIN_COUNTS.to_vec());
    assert_eq!(a.test.class_counts(24), standin::SIGN_TEST_COUNTS.to_vec());
    assert!(matches!(a.source, DataSource::Embedded { seed: 11, .. }));
}

/// Nearest-centroid accuracy on the test split (centroids from train).
fn nearest_centroid_accuracy(ds: &data::Dataset, n_train: usize, n_test: usize) -> f64 {
    let k = ds.num_classes();
    let mut sums = vec![vec![0f64; 784]; k];
    let mut counts = vec![0usize; k];
    for i in 0..n_train.min(ds.train.len()) {
        let l = ds.train.labels[i] as usize;
        counts[l] += 1;
        for (s, &p) in sums[l].iter_mut().zip(ds.train.image(i).iter()) {
            *s += p as f64;
        }
    }
    let centroids: Vec<Vec<f64>> =
        sums.iter().zip(&counts).map(|(s, &n)| s.iter().map(|v| v / n.max(1) as f64).collect()).collect();
    let n_test = n_test.min(ds.test.len());
    let correct = (0..n_test)
        .filter(|&i| {
            let img = ds.test.image(i);
            let best = (0..k)
                .min_by(|&a, &b| {
                    let da: f64 = centroids[a].iter().zip(img.iter()).map(|(c, &p)| (c - p as f64).powi(2)).sum();
                    let db: f64 = centroids[b].iter().zip(img.iter()).map(|(c, &p)| (c - p as f64).powi(2)).sum();
                    da.partial_cmp(&db).unwrap()
                })
                .unwrap();
            best == ds.test.labels[i] as usize
        })
        .count();
    correct as f64 / n_test as f64
}

#[test]
fn standins_have_learnable_class_structure() {
    let sign = standin::sign_mnist(standin::DEFAULT_SEED);
    let acc = nearest_centroid_accuracy(&sign, 10_000, 1_000);
    eprintln!("sign stand-in nearest-centroid accuracy: {acc:.3} (chance 0.042)");
    assert!(acc > 0.3, "a trivial classifier should beat chance clearly: {acc}");
}

#[test]
fn k49_standin_has_k49_sizes_imbalance_and_style_variation() {
    let ds = standin::k49(standin::DEFAULT_SEED);
    assert_eq!((ds.train.len() + ds.validation.len(), ds.test.len()), (232_365, 38_547));
    assert_eq!(ds.test.class_counts(49), standin::K49_TEST_COUNTS.to_vec());
    let train_counts = ds.train.class_counts(49);
    assert!(train_counts.iter().max().unwrap() / train_counts.iter().min().unwrap() > 10, "K49 is imbalanced");
    let acc = nearest_centroid_accuracy(&ds, 20_000, 1_000);
    eprintln!("k49 stand-in nearest-centroid accuracy: {acc:.3} (chance 0.020)");
    assert!(acc > 0.3, "{acc}");
    // Thickness varies for real: within class 0, thick images have clearly more ink.
    let counts = k49::foreground_counts(&ds.train.images);
    let styles = ds.train.styles.as_ref().unwrap();
    let mean = |s: u8| {
        let v: Vec<f64> = (0..ds.train.len())
            .filter(|&i| ds.train.labels[i] == 0 && styles[i] == s)
            .map(|i| counts[i] as f64)
            .collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    let (thin, thick) = (mean(0), mean(1));
    eprintln!("class 0 mean foreground: thin {thin:.1}, thick {thick:.1}");
    assert!(thick > thin * 1.3, "thin {thin} thick {thick}");
    let share = styles.iter().map(|&s| s as f64).sum::<f64>() / styles.len() as f64;
    assert!((0.4..=0.5).contains(&share), "about half the images are above their class median: {share}");
}

#[test]
fn absent_files_fall_back_to_standin_unless_forbidden() {
    let dir = tempfile::tempdir().unwrap();
    let opts = DataOptions::default().with_root(dir.path());
    let ds = opts.load(DatasetKind::SignMnist).unwrap();
    assert!(matches!(ds.source, DataSource::Embedded { .. }));
    let strict = DataOptions { allow_standin: false, ..opts };
    assert!(matches!(strict.load(DatasetKind::SignMnist).unwrap_err(), Error::MissingFile { .. }));
}

// ---------- The real shared files ----------

#[test]
fn real_sign_mnist_when_present() {
    let Some(root) = shared_data("real_sign_mnist_when_present") else { return };
    if !root.join(data::SIGN_DIR).join(sign::TRAIN_FILE).is_file() {
        eprintln!("SKIP real_sign_mnist_when_present: no Sign MNIST CSVs in {}", root.display());
        return;
    }
    let ds = DataOptions { allow_standin: false, ..DataOptions::default().with_root(&root) }
        .load(DatasetKind::SignMnist)
        .unwrap();
    assert!(ds.source.is_real());
    assert_eq!((ds.train.len() + ds.validation.len(), ds.test.len()), (27_455, 7_172));
    // Published class counts (PROVENANCE.md) and first rows, of the file's train split
    // (its train and validation images) and its test split.
    let files_train: Vec<usize> =
        ds.train.class_counts(24).iter().zip(ds.validation.class_counts(24)).map(|(t, v)| t + v).collect();
    assert_eq!(files_train, standin::SIGN_TRAIN_COUNTS.to_vec());
    assert_eq!(ds.test.class_counts(24), standin::SIGN_TEST_COUNTS.to_vec());
    let first = [(ds.train.labels[0], ds.train.image(0)), (ds.validation.labels[0], ds.validation.image(0))];
    assert!(first.iter().any(|(l, img)| (*l, &img[..4]) == (3, &[107u8, 118, 127, 134][..])), "the file's first row");
    assert_eq!((ds.test.labels[0], &ds.test.image(0)[..3]), (6, &[149u8, 149, 150][..]));
    let (mut n, mut sum, mut sq) = (0f64, 0f64, 0f64);
    for &p in ds.train.images.iter().chain(ds.validation.images.iter()) {
        (n, sum, sq) = (n + 1.0, sum + p as f64, sq + (p as f64) * (p as f64));
    }
    let (mean, std) = (sum / n, (sq / n - (sum / n).powi(2)).sqrt());
    assert!((mean - 159.291).abs() < 0.01 && (std - 48.770).abs() < 0.01, "{mean} {std}");
}

#[test]
fn k49_format_folder_when_present() {
    let Some(dir) = k49_folder_env("k49_format_folder_when_present") else { return };
    let opts = DataOptions { k49_folder: Some(dir.clone()), ..DataOptions::from_env() };
    let ds = opts.load(DatasetKind::K49).unwrap();
    eprintln!("K49-format folder: {}", ds.source);
    assert_eq!(ds.test.len(), 38_547);
    assert_eq!(ds.test.class_counts(49), standin::K49_TEST_COUNTS.to_vec(), "real K49 test counts");
    assert_eq!(ds.class_names.len(), 49);
    if dir.ends_with("hiragana49-rendered") {
        assert!(matches!(ds.source, DataSource::Folder { ref name, .. } if name == "hiragana49-rendered"));
    }
}

#[test]
fn shared_k49_class_map_and_md5s_match_ours() {
    let Some(root) = shared_data("shared_k49_class_map_and_md5s_match_ours") else { return };
    let dir = root.join(data::K49_DIR);
    let Ok(sums) = std::fs::read_to_string(dir.join("reference-md5sums-original-files.txt")) else {
        eprintln!("SKIP shared_k49_class_map_and_md5s_match_ours: no reference md5 list");
        return;
    };
    for (file, md5) in k49::OFFICIAL_MD5 {
        assert!(sums.lines().any(|l| l.starts_with(md5) && l.ends_with(file)), "{file} {md5}");
    }
    assert_eq!(k49::read_class_map(&dir).unwrap(), k49::CHARACTERS.to_vec());
    assert_eq!(k49::md5_file(&dir.join(k49::CLASS_MAP)).unwrap(), "f7d0d0391f68bdf0fe4cf160ceb85753");
}

/// Found by cargo-fuzz (k49_npz): a zip directory claiming 256 MB of compressed data in a
/// 203-byte file made the reader spin for minutes. It must fail fast with a clear error.
#[test]
fn npz_with_an_impossible_compressed_size_fails_fast() {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode("UEsDBBQAAAAIAGKSdl16pTpeVwAAAJADAAAJAAAAYXJyXzAubnB5m+wX6hsQychQxlCtnpJanFykbqWgXlNqqK6joJ6WX1RSlJgXn1+UkgoSd0vMKU4FihdnJBakAvkahjoKRhYgrKmjUD1AEOBiYOcTlVHWGqVGqVEKSAEAUEsBAhQDFAAAAAgAYpIZAAAAAAAAAAAQkAMAAAkAAAAAAAAAAAAAAIABAAAAAGFycl8wLm5weVBLBQYAAAAAAQABADcAAAB+AAAAAAA=")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k49-train-imgs.npz");
    std::fs::write(&path, &bytes).unwrap();
    let start = std::time::Instant::now();
    let err = condgen::data::npz::read_u8(&path, "arr_0").unwrap_err().to_string();
    assert!(start.elapsed() < std::time::Duration::from_secs(2), "took {:?}", start.elapsed());
    assert!(err.contains("k49-train-imgs.npz") && err.contains("compressed bytes"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "the input is left untouched");
}
