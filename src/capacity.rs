//! Refusing, before any work starts, a request sized by a caller's count that
//! this machine cannot hold: `condgen sample --per-condition 100000000` would
//! otherwise start drawing 2.4 billion images (1.9 TB of pixels) and fail
//! much later. A [`Footprint`] is what a request needs in memory (and on disk,
//! for the file it writes); [`Footprint::check`] compares it with what is
//! available now and names both sizes when it does not fit.
//!
//! The estimates are of the large allocations only (the images and what grows
//! with their count, plus an allowance for one chunk of float work), so a
//! request refused here could never have succeeded, while one accepted may
//! still meet other programs' use of memory meanwhile.

use std::path::{Path, PathBuf};

use crate::data::PIXELS;
use crate::{Error, Result};

/// Bytes one generated sample holds: its uint8 image, its i64 label and
/// style in [`crate::sample::Samples`], and the u8 class and style it was asked for.
pub const SAMPLE_BYTES: u64 = PIXELS as u64 + 8 + 8 + 1 + 1;

/// Working memory of one chunk of images being decoded or judged (1,024 at a
/// time: float activations and the chunk's conversion to uint8). An allowance
/// that covers every model condgen builds, not a measurement.
pub const CHUNK_BYTES: u64 = 128 << 20;

/// Bytes measuring one sample takes beyond the sample itself
/// ([`crate::eval::evaluate_samples`]): the judge's copy of its pixels, its
/// float pixels in the memorization check, its judge features and class
/// probabilities (f32), and its column of the precision/recall distance
/// matrix (a chunk of 2,048 rows × every sample, f32).
pub const MEASURE_BYTES: u64 = PIXELS as u64 + 4 * PIXELS as u64 + 4 * (128 + 49) + 4 * 2048;

/// Bytes a samples npz holds per sample at most (deflate never shrinks it
/// below nothing, and stores incompressible data as it is): the image, label and style.
pub const SAMPLE_FILE_BYTES: u64 = PIXELS as u64 + 8 + 8;

/// What a request needs, to be checked against what the machine has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Footprint {
    /// The request in words, e.g. "100000000 per condition × 24 conditions = 2.4 billion images".
    pub request: String,
    /// Bytes of memory at its peak.
    pub memory: u128,
    /// The file it writes and the most bytes that file can take.
    pub file: Option<(PathBuf, u128)>,
}

impl Footprint {
    /// Drawing `per_condition` samples of each of `conditions` conditions, at
    /// `bytes_per_sample` each (e.g. [`SAMPLE_BYTES`]) plus one chunk's work.
    pub fn per_condition(per_condition: usize, conditions: usize, bytes_per_sample: u64) -> Footprint {
        let n = per_condition as u128 * conditions as u128;
        Footprint {
            request: format!("{per_condition} per condition × {conditions} conditions = {}", images(n)),
            memory: n * bytes_per_sample as u128 + CHUNK_BYTES as u128,
            file: None,
        }
    }

    /// Drawing (or measuring) `n` images at `bytes_per_image` each plus one chunk's work.
    pub fn images(n: u128, bytes_per_image: u64) -> Footprint {
        Footprint { request: images(n), memory: n * bytes_per_image as u128 + CHUNK_BYTES as u128, file: None }
    }

    /// The same request, also writing a file of at most `bytes` at `path`.
    pub fn writing(self, path: &Path, bytes: u128) -> Footprint {
        Footprint { file: Some((path.to_path_buf(), bytes)), ..self }
    }

    /// Ok when the request fits in the memory available now and its file on
    /// its disk; else [`Error::TooLarge`] naming the size needed and available.
    /// Where a size cannot be read (not Linux, say), that side is not checked.
    pub fn check(&self) -> Result<()> {
        let disk = self.file.as_ref().and_then(|(path, _)| available_disk(path));
        self.check_against(available_memory(), disk)
    }

    /// As [`Footprint::check`], against given free sizes in bytes (None: unknown, not checked).
    pub fn check_against(&self, memory: Option<u64>, disk: Option<u64>) -> Result<()> {
        let too_large = |place: String, needed: u128, available: u64| Error::TooLarge {
            request: self.request.clone(),
            place,
            needed: u64::try_from(needed).unwrap_or(u64::MAX),
            available,
        };
        if let Some(available) = memory.filter(|&a| self.memory > a as u128) {
            return Err(too_large("in memory".into(), self.memory, available));
        }
        if let (Some((path, needed)), Some(available)) = (&self.file, disk) {
            if *needed > available as u128 {
                let place = format!("on disk for {}", crate::data::display_path(path));
                return Err(too_large(place, *needed, available));
            }
        }
        Ok(())
    }
}

/// Memory available to a new allocation without swapping, in bytes: Linux's
/// `MemAvailable` (free memory plus what the kernel can reclaim). None where
/// /proc/meminfo cannot be read. A container's own memory limit is not consulted.
pub fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find_map(|line| line.strip_prefix("MemAvailable:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// Free space an unprivileged process can write on the disk that `path` will
/// be written to (the nearest existing folder above it), in bytes. None off
/// Unix or when the file system cannot say.
pub fn available_disk(path: &Path) -> Option<u64> {
    let absolute = std::path::absolute(path).ok()?;
    let dir = absolute.ancestors().skip(1).find(|dir| dir.is_dir())?;
    free_space(dir)
}

#[cfg(unix)]
fn free_space(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stats = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: c_path is a NUL-terminated path and stats is a buffer of the
    // struct statvfs fills; it is read only when the call succeeds (returns 0).
    let stats = unsafe {
        if libc::statvfs(c_path.as_ptr(), stats.as_mut_ptr()) != 0 {
            return None;
        }
        stats.assume_init()
    };
    #[allow(clippy::unnecessary_cast)] // the fields' types differ between platforms
    let free = (stats.f_bavail as u64).saturating_mul(stats.f_frsize as u64);
    Some(free)
}

#[cfg(not(unix))]
fn free_space(_dir: &Path) -> Option<u64> {
    None
}

/// A byte count in decimal units, e.g. "1.9 TB", "22.8 GB", "512 B".
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["kB", "MB", "GB", "TB", "PB", "EB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1000.0;
    let mut unit = 0;
    while value >= 999.95 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// An image count in words, e.g. "480 images", "2.4 billion images".
fn images(n: u128) -> String {
    const SCALES: [(f64, &str); 4] =
        [(1e18, "quintillion"), (1e15, "quadrillion"), (1e12, "trillion"), (1e9, "billion")];
    let words = if n < 1_000_000 {
        n.to_string()
    } else if n < 1_000_000_000 {
        format!("{:.1} million", n as f64 / 1e6)
    } else {
        let value = n as f64;
        let (scale, name) = SCALES.iter().copied().find(|&(scale, _)| value >= scale).unwrap_or((1e9, "billion"));
        format!("{:.1} {name}", value / scale)
    };
    format!("{words} image{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1_881_600_000_000), "1.9 TB");
        assert_eq!(bytes(22_800_000_000), "22.8 GB");
        assert_eq!(bytes(999_990_000), "1.0 GB");
        assert_eq!(bytes(u64::MAX), "18.4 EB");
        assert_eq!(images(1), "1 image");
        assert_eq!(images(2400), "2400 images");
        assert_eq!(images(2_400_000_000), "2.4 billion images");
        assert_eq!(images(u128::from(u64::MAX) * 2), "36.9 quintillion images");
    }

    #[test]
    fn a_request_is_refused_naming_what_it_needs_and_what_there_is() {
        let need = Footprint::per_condition(100_000_000, 24, SAMPLE_BYTES);
        let err = need.check_against(Some(22_800_000_000), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "100000000 per condition × 24 conditions = 2.4 billion images need 1.9 TB in memory; 22.8 GB available"
        );
        // Unknown sizes are not checked; what fits passes.
        assert!(need.check_against(None, None).is_ok());
        let small = Footprint::per_condition(10, 24, SAMPLE_BYTES)
            .writing(Path::new("out.npz"), 240 * SAMPLE_FILE_BYTES as u128);
        assert!(small.check_against(Some(1 << 30), Some(1 << 30)).is_ok());
        let err = small.check_against(Some(1 << 30), Some(1000)).unwrap_err().to_string();
        assert!(err.ends_with("need 192.0 kB on disk for out.npz; 1.0 kB available"), "{err}");
        // Counts whose product overflows a usize are still refused, not wrapped.
        let huge = Footprint::per_condition(usize::MAX, 98, SAMPLE_BYTES);
        assert!(matches!(huge.check_against(Some(u64::MAX), None), Err(Error::TooLarge { needed: u64::MAX, .. })));
    }

    #[test]
    fn this_machine_reports_its_sizes() {
        if cfg!(target_os = "linux") {
            assert!(available_memory().is_some_and(|m| m > 0));
            assert!(available_disk(&std::env::temp_dir().join("a").join("b.npz")).is_some());
        }
    }
}
