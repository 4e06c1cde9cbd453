//! Sign Language MNIST: the Kaggle CSVs (`label,pixel1..pixel784`), read with polars.
//!
//! Labels in the files are 0..=24 without 9 (J) — Z (25) never occurs, as both
//! need motion. They are mapped to 24 letter classes A..Y without J.

use std::io::Cursor;
use std::path::Path;

use ndarray::Array3;
use polars::prelude::*;

use super::{files_present, standin, warn_standin, DataOptions, DataSource, Dataset, DatasetKind, Split, PIXELS};
use crate::{Error, Result};

pub const TRAIN_FILE: &str = "sign_mnist_train.csv";
pub const TEST_FILE: &str = "sign_mnist_test.csv";

/// The 24 letter classes, in class-index order.
pub const LETTERS: [&str; 24] = [
    "A", "B", "C", "D", "E", "F", "G", "H", "I", "K", "L", "M", "N", "O", "P", "Q", "R", "S", "T", "U", "V", "W", "X",
    "Y",
];

/// Letter classes that are vowels (A, E, I, O, U).
pub const VOWELS: [&str; 5] = ["A", "E", "I", "O", "U"];

/// Maps a file label (0..=24, not 9) to a letter class (0..=23).
pub fn letter_class(file_label: i64) -> Option<u8> {
    match file_label {
        0..=8 => Some(file_label as u8),
        10..=24 => Some(file_label as u8 - 1),
        _ => None,
    }
}

/// 1 for a vowel letter class, 0 for a consonant.
pub fn is_vowel(letter_class: u8) -> u8 {
    VOWELS.contains(&LETTERS[letter_class as usize]) as u8
}

/// Loads Sign Language MNIST from `<root>/sign-language-mnist/`, or generates
/// the embedded stand-in (loudly) when both CSVs are absent.
pub fn load(opts: &DataOptions) -> Result<Dataset> {
    let dir = opts.sign_dir();
    let files = [TRAIN_FILE, TEST_FILE];
    if !files_present(&dir, &files)? {
        if !opts.allow_standin {
            return Err(Error::MissingFile { path: dir.join(TRAIN_FILE) });
        }
        warn_standin("Sign Language MNIST", &dir, &files);
        return Ok(standin::sign_mnist(opts.standin_seed));
    }
    Ok(Dataset::from_files(
        DatasetKind::SignMnist,
        DataSource::Real { dir: dir.clone() },
        LETTERS.iter().map(|s| s.to_string()).collect(),
        read_csv(&dir.join(TRAIN_FILE))?,
        read_csv(&dir.join(TEST_FILE))?,
    ))
}

/// Reads one Sign Language MNIST CSV. Accepts a UTF-8 BOM and CRLF line ends.
/// Every problem is reported with the file and its 1-based line number.
pub fn read_csv(path: &Path) -> Result<Split> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    check_header(path, body)?;
    let has_rows = body.split(|&b| b == b'\n').skip(1).any(|l| !l.iter().all(|b| b.is_ascii_whitespace()));
    if !has_rows {
        return Err(Error::csv(path, 2, "no data rows after the header"));
    }

    let schema: Schema = std::iter::once(Field::new("label".into(), DataType::Int64))
        .chain((1..=PIXELS).map(|i| Field::new(format!("pixel{i}").into(), DataType::Int64)))
        .collect();
    let parsed = CsvReadOptions::default()
        .with_has_header(true)
        .with_schema(Some(Arc::new(schema)))
        .into_reader_with_file_handle(Cursor::new(body))
        .finish();
    let df = match parsed {
        Ok(df) => df,
        // polars says what failed but not always where: find the line ourselves.
        Err(e) => {
            return Err(locate_problem(path, body).unwrap_or_else(|| Error::Format {
                path: path.to_path_buf(),
                message: format!("cannot parse as CSV: {e}"),
            }))
        }
    };
    match split_from_frame(&df) {
        Some(split) => Ok(split),
        None => Err(locate_problem(path, body).unwrap_or_else(|| Error::Format {
            path: path.to_path_buf(),
            message: "invalid values (nulls or out-of-range cells)".into(),
        })),
    }
}

/// The header must be exactly `label,pixel1,...,pixel784`.
fn check_header(path: &Path, body: &[u8]) -> Result<()> {
    let first = body.split(|&b| b == b'\n').next().unwrap_or_default();
    let first = first.strip_suffix(b"\r").unwrap_or(first);
    if first.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(Error::csv(path, 1, "empty file: expected the header `label,pixel1,...,pixel784`"));
    }
    let header = String::from_utf8_lossy(first);
    let names: Vec<&str> = header.split(',').map(str::trim).collect();
    if names.len() != PIXELS + 1 {
        return Err(Error::csv(
            path,
            1,
            format!("header has {} columns, expected 785 (`label,pixel1,...,pixel784`)", names.len()),
        ));
    }
    for (i, name) in names.iter().enumerate() {
        let expected = if i == 0 { "label".to_string() } else { format!("pixel{i}") };
        if *name != expected {
            return Err(Error::csv(path, 1, format!("header column {} is `{name}`, expected `{expected}`", i + 1)));
        }
    }
    Ok(())
}

/// Converts a validated frame; `None` when any cell is null or out of range.
fn split_from_frame(df: &DataFrame) -> Option<Split> {
    let n = df.height();
    let labels = df.column("label").ok()?.i64().ok()?;
    if labels.null_count() > 0 {
        return None;
    }
    let labels: Vec<u8> = labels.into_no_null_iter().map(letter_class).collect::<Option<_>>()?;
    let mut pixels = vec![0u8; n * PIXELS];
    for j in 0..PIXELS {
        let col = df.column(&format!("pixel{}", j + 1)).ok()?.i64().ok()?;
        if col.null_count() > 0 {
            return None;
        }
        for (i, v) in col.into_no_null_iter().enumerate() {
            pixels[i * PIXELS + j] = u8::try_from(v).ok()?;
        }
    }
    Some(Split { images: Array3::from_shape_vec((n, super::SIDE, super::SIDE), pixels).ok()?, labels, styles: None })
}

/// Scans the file line by line for the first malformed row.
fn locate_problem(path: &Path, body: &[u8]) -> Option<Error> {
    for (idx, raw) in body.split(|&b| b == b'\n').enumerate().skip(1) {
        let line_no = idx + 1;
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let text = String::from_utf8_lossy(line);
        let cells: Vec<&str> = text.split(',').collect();
        if cells.len() != PIXELS + 1 {
            let kind = if cells.len() < PIXELS + 1 { "short" } else { "long" };
            return Some(Error::csv(path, line_no, format!("{kind} row: {} fields, expected 785", cells.len())));
        }
        for (c, cell) in cells.iter().enumerate() {
            let column = if c == 0 { "label".to_string() } else { format!("pixel{c}") };
            let value: i64 = match cell.trim().parse() {
                Ok(v) => v,
                Err(_) => {
                    return Some(Error::csv(path, line_no, format!("column `{column}`: `{cell}` is not an integer")))
                }
            };
            if c == 0 && letter_class(value).is_none() {
                return Some(Error::csv(
                    path,
                    line_no,
                    format!("label {value} is not a letter class (expected 0..=24 without 9)"),
                ));
            }
            if c > 0 && !(0..=255).contains(&value) {
                return Some(Error::csv(path, line_no, format!("column `{column}`: pixel {value} outside 0..=255")));
            }
        }
    }
    None
}
