//! `condgen data fetch k49`: downloads the official Kuzushiji-49 files and
//! checks each against its official md5 before it takes its final name.
//!
//! Each file streams into a temporary file beside its destination and is
//! renamed only once its md5 matches, so a failed or interrupted download
//! never leaves a half-written file behind.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};

use super::k49::OFFICIAL_MD5;
use crate::{Error, Result};

/// Where CODH publishes K49.
pub const K49_BASE_URL: &str = "http://codh.rois.ac.jp/kmnist/dataset/k49";
/// Environment variable overriding the base URL (a mirror).
pub const ENV_K49_URL: &str = "CONDGEN_K49_URL";

/// Downloads every K49 file missing from `dest` (or not matching its md5).
/// Returns the paths now present and verified.
pub fn fetch_k49(dest: &Path, base_url: &str, mut on_progress: impl FnMut(&str)) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dest).map_err(|e| Error::io(dest, e))?;
    let mut done = Vec::new();
    for (file, md5) in OFFICIAL_MD5 {
        let path = dest.join(file);
        if path.is_file() && super::k49::md5_file(&path)? == md5 {
            on_progress(&format!("{file}: present, md5 ok"));
            done.push(path);
            continue;
        }
        let url = format!("{}/{file}", base_url.trim_end_matches('/'));
        on_progress(&format!("{file}: downloading {url}"));
        download_verified(&url, &path, md5)?;
        on_progress(&format!("{file}: md5 ok"));
        done.push(path);
    }
    Ok(done)
}

/// Downloads `url` to `path` only if its md5 is `expected`.
pub fn download_verified(url: &str, path: &Path, expected: &str) -> Result<()> {
    let response = ureq::get(url)
        .timeout(std::time::Duration::from_secs(60))
        .call()
        .map_err(|e| Error::Download { url: url.to_string(), message: describe(&e) })?;
    crate::files::write_with(path, |file| {
        let mut reader = response.into_reader();
        let mut hasher = Md5::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = reader
                .read(&mut buf)
                .map_err(|e| Error::Download { url: url.to_string(), message: format!("connection lost: {e}") })?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n]).map_err(|e| Error::io(path, e))?;
        }
        let actual = format!("{:x}", hasher.finalize());
        if actual != expected {
            // The temporary file is deleted on this error.
            return Err(Error::Checksum { path: path.to_path_buf(), expected: expected.to_string(), actual });
        }
        Ok(())
    })
}

fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Status(code, _) => format!("server answered HTTP {code}"),
        ureq::Error::Transport(t) => format!("{t} (no network access? nothing was written)"),
    }
}
