//! A bounded mutation fuzz of the CSV and npz readers, on stable Rust, run by
//! `make test`: valid seed files are mutated (bit flips, byte edits, splices,
//! truncation, hostile numbers) and fed to the same entry points as the
//! cargo-fuzz targets in `fuzz/` (which run longer, by hand, with coverage
//! guidance). Any panic fails the test and saves the input.
//!
//! Budget: `CONDGEN_FUZZ_SECONDS` per reader (default 15).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use condgen::data::{fuzz, npz};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn budget() -> Duration {
    let secs = std::env::var("CONDGEN_FUZZ_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(15.0);
    Duration::from_secs_f64(secs)
}

/// A valid Sign MNIST CSV of `rows` rows.
fn seed_csv(rows: usize) -> Vec<u8> {
    let mut s = String::from("label");
    for i in 1..=784 {
        s.push_str(&format!(",pixel{i}"));
    }
    s.push('\n');
    for r in 0..rows {
        s.push_str(["0", "10", "24"][r % 3]);
        for p in 0..784 {
            s.push_str(&format!(",{}", (p * 31 + r * 17) % 256));
        }
        s.push('\n');
    }
    s.into_bytes()
}

/// A valid npz holding uint8 images [n, 28, 28] as `arr_0`.
fn seed_npz(n: usize) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seed.npz");
    let data: Vec<u8> = (0..n * 784).map(|i| (i % 251) as u8).collect();
    npz::write(&path, &[("arr_0", npz::NpzArray::U8 { shape: vec![n as u64, 28, 28], data: &data })]).unwrap();
    std::fs::read(path).unwrap()
}

const HOSTILE: &[&[u8]] = &[
    b"-1",
    b"256",
    b"99999999999999999999",
    b"1e308",
    b"NaN",
    b"\"",
    b",,",
    b"\r\n",
    b"\n",
    b"\0",
    b"\xff\xfe",
    b"(1000000000000,)",
    b"(1000000, 1000000, 1000000)",
    b"'descr': '<f8'",
    b"'fortran_order': True",
    b"{",
    b"}",
];

/// One random mutation of `input`, biased towards the part after `protect` bytes
/// (so most CSV mutants get past the header check).
fn mutate(rng: &mut ChaCha8Rng, input: &[u8], protect: usize) -> Vec<u8> {
    let mut out = input.to_vec();
    let edits = rng.gen_range(1..=8);
    for _ in 0..edits {
        if out.is_empty() {
            out.push(rng.gen());
            continue;
        }
        let lo = if rng.gen_bool(0.9) { protect.min(out.len() - 1) } else { 0 };
        let at = rng.gen_range(lo..out.len());
        match rng.gen_range(0..7) {
            0 => out[at] ^= 1 << rng.gen_range(0..8),
            1 => out[at] = rng.gen(),
            2 => {
                out.remove(at);
            }
            3 => {
                let h = HOSTILE[rng.gen_range(0..HOSTILE.len())];
                out.splice(at..at, h.iter().copied());
            }
            4 => out.truncate(at),
            5 => {
                // Duplicate a chunk (repeated rows, repeated zip entries).
                let end = (at + rng.gen_range(1..2000)).min(out.len());
                let chunk = out[at..end].to_vec();
                out.splice(at..at, chunk);
            }
            _ => {
                let end = (at + rng.gen_range(1..64)).min(out.len());
                out.drain(at..end);
            }
        }
    }
    out
}

/// Runs `target` on mutants of `seeds` for the budget; panics name a saved input.
fn fuzz(name: &str, seeds: &[Vec<u8>], protect: usize, target: fn(&[u8]) -> bool) {
    let mut rng = ChaCha8Rng::seed_from_u64(0xF022 ^ name.len() as u64);
    let start = Instant::now();
    let (mut runs, mut accepted) = (0u64, 0u64);
    // The seeds themselves must be accepted: the harness can tell good from bad.
    for seed in seeds {
        assert!(target(seed), "{name}: a valid seed input was rejected");
    }
    let mut slowest = Duration::ZERO;
    while start.elapsed() < budget() {
        let seed = &seeds[rng.gen_range(0..seeds.len())];
        let input = mutate(&mut rng, seed, protect);
        let t = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| target(&input)));
        slowest = slowest.max(t.elapsed());
        runs += 1;
        match outcome {
            Ok(ok) => accepted += ok as u64,
            Err(_) => {
                let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-crashes");
                std::fs::create_dir_all(&dir).unwrap();
                let path = dir.join(format!("{name}-{runs}.bin"));
                std::fs::write(&path, &input).unwrap();
                panic!("{name}: the reader panicked on input saved to {}", path.display());
            }
        }
        assert!(t.elapsed() < Duration::from_secs(10), "{name}: one input took {:?} (a hang?)", t.elapsed());
    }
    eprintln!(
        "{name}: {runs} inputs in {:.0} s, {accepted} accepted, 0 crashes, slowest {:.0} ms",
        start.elapsed().as_secs_f64(),
        slowest.as_secs_f64() * 1000.0
    );
    assert!(runs > 50, "{name}: the fuzzer ran ({runs} inputs)");
}

#[test]
fn fuzz_sign_csv_reader() {
    let header_len = seed_csv(0).len();
    fuzz("sign_csv", &[seed_csv(1), seed_csv(3)], header_len, fuzz::sign_csv);
}

#[test]
fn fuzz_k49_npz_reader() {
    fuzz("k49_npz", &[seed_npz(1), seed_npz(4)], 0, fuzz::k49_npz);
}
