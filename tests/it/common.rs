//! Fixtures shared by the integration tests: small CSV and npz files the tests
//! write themselves, and the shared data directory when it is present.

use std::io::Write;
use std::path::{Path, PathBuf};

use condgen::data::npz::{self, NpzArray};

/// A Sign-MNIST CSV with the given (file label, fill pixel) rows.
pub fn sign_csv(rows: &[(i64, u8)]) -> String {
    let mut s = String::from("label");
    for i in 1..=784 {
        s.push_str(&format!(",pixel{i}"));
    }
    s.push('\n');
    for (label, fill) in rows {
        s.push_str(&label.to_string());
        for j in 0..784 {
            // A gradient so every pixel position is distinguishable.
            s.push_str(&format!(",{}", (*fill as usize + j) % 256));
        }
        s.push('\n');
    }
    s
}

pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::File::create(&path).unwrap().write_all(bytes).unwrap();
    path
}

/// Writes a K49-format folder with `n_train`/`n_test` images of the given classes.
pub fn k49_folder(dir: &Path, n_train: usize, n_test: usize) {
    for (split, n) in [("train", n_train), ("test", n_test)] {
        let images: Vec<u8> = (0..n * 784).map(|i| ((i / 784) * 7 + i % 784) as u8).collect();
        let labels: Vec<u8> = (0..n).map(|i| (i % 49) as u8).collect();
        npz::write(
            &dir.join(format!("k49-{split}-imgs.npz")),
            &[("arr_0", NpzArray::U8 { shape: vec![n as u64, 28, 28], data: &images })],
        )
        .unwrap();
        npz::write(
            &dir.join(format!("k49-{split}-labels.npz")),
            &[("arr_0", NpzArray::U8 { shape: vec![n as u64], data: &labels })],
        )
        .unwrap();
    }
}

/// A zip holding `arr_0.npy` with a hand-written npy header and `data` bytes.
pub fn raw_npz(path: &Path, header_dict: &str, data: &[u8]) {
    let mut header = header_dict.to_string();
    // magic(6) + version(2) + len(2) + header, padded with spaces to 64 bytes, ending in \n
    let total = 10 + header.len() + 1;
    let pad = (64 - total % 64) % 64;
    header.push_str(&" ".repeat(pad));
    header.push('\n');
    let mut npy = b"\x93NUMPY\x01\x00".to_vec();
    npy.extend_from_slice(&(header.len() as u16).to_le_bytes());
    npy.extend_from_slice(header.as_bytes());
    npy.extend_from_slice(data);
    let file = std::fs::File::create(path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    zip.start_file("arr_0.npy", zip::write::FileOptions::default()).unwrap();
    zip.write_all(&npy).unwrap();
    zip.finish().unwrap();
}

/// `CONDGEN_DATA` when it is set and exists; otherwise prints a skip line.
pub fn shared_data(test: &str) -> Option<PathBuf> {
    match std::env::var_os("CONDGEN_DATA").map(PathBuf::from) {
        Some(p) if p.is_dir() => Some(p),
        _ => {
            eprintln!("SKIP {test}: CONDGEN_DATA not set or absent (real data not available)");
            None
        }
    }
}

/// `CONDGEN_K49` when it is set and exists; otherwise prints a skip line.
pub fn k49_folder_env(test: &str) -> Option<PathBuf> {
    match std::env::var_os("CONDGEN_K49").map(PathBuf::from) {
        Some(p) if p.is_dir() => Some(p),
        _ => {
            eprintln!("SKIP {test}: CONDGEN_K49 not set or absent");
            None
        }
    }
}

/// torch's random generator is global to the process, and every module's tests
/// share the process: tests that seed it or draw from it (building a model draws
/// its initial weights) take turns, so each one sees only its own random stream.
/// The one test that changes environment variables takes its turn too.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Training options of a test: runs under `runs_root`, on the CPU, progress as plain lines.
pub fn cpu_train_options(runs_root: &Path) -> condgen::train::TrainOptions {
    condgen::train::TrainOptions {
        runs_root: runs_root.to_path_buf(),
        device: tch::Device::Cpu,
        progress: condgen::progress::ProgressMode::Lines,
        ..Default::default()
    }
}
