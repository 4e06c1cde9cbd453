//! Entry points shared by the cargo-fuzz targets (`fuzz/`) and the bounded
//! fuzz test (`tests/it/fuzz_readers.rs`): arbitrary bytes given to a reader as
//! a file. A reader must answer with data or a clean error: no panic, no hang,
//! no allocation sized by a hostile header.

use std::io::Write as _;

use super::{k49, npz, sign};

/// Feeds `bytes` to the Sign Language MNIST CSV reader. Returns whether it
/// accepted them (either outcome is fine; panicking is not).
pub fn sign_csv(bytes: &[u8]) -> bool {
    let Some(file) = temp_file(bytes, ".csv") else { return false };
    sign::read_csv(file.path()).is_ok()
}

/// Feeds `bytes` to the npz reader as a K49 images file (`arr_0`, uint8
/// [N, 28, 28]), and as a labels file with the K49 class count.
pub fn k49_npz(bytes: &[u8]) -> bool {
    let Some(file) = temp_file(bytes, ".npz") else { return false };
    let images = npz::read_u8(file.path(), "arr_0").is_ok();
    let labels = k49::read_split(file.path(), file.path(), 49).is_ok();
    images || labels
}

fn temp_file(bytes: &[u8], suffix: &str) -> Option<tempfile::NamedTempFile> {
    let mut file = tempfile::Builder::new().prefix("condgen-fuzz-").suffix(suffix).tempfile().ok()?;
    file.write_all(bytes).ok()?;
    file.flush().ok()?;
    Some(file)
}
