//! Writing files so that a crash or a failed check never leaves half of one
//! under its final name: the bytes go to a temporary file beside it, which is
//! synced and then renamed over the destination.

use std::fs::File;
use std::path::Path;

use crate::{Error, Result};

/// Writes `path` through `fill`, which gets a temporary file beside it; the
/// file takes its final name only when `fill` succeeds (missing folders are
/// created). On an error the temporary file is deleted and `path` untouched.
/// The file is readable by everyone (0644), like a file written directly.
pub fn write_with(path: &Path, fill: impl FnOnce(&mut File) -> Result<()>) -> Result<()> {
    let mut tmp = temporary_beside(path)?;
    fill(tmp.as_file_mut())?;
    tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

/// As [`write_with`] for libraries that write to a path themselves (safetensors):
/// `fill` writes the file at the temporary path it is given.
pub fn write_via_path(path: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let tmp = temporary_beside(path)?.into_temp_path();
    fill(&tmp)?;
    File::open(&tmp).and_then(|f| f.sync_all()).map_err(|e| Error::io(path, e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

/// An empty temporary file in `path`'s folder (created if missing), readable by everyone.
fn temporary_beside(path: &Path) -> Result<tempfile::NamedTempFile> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    // The destination's extension last: libraries choose the format by it (tch's VarStore::save does).
    let suffix = match path.extension() {
        Some(ext) => format!(".tmp.{}", ext.to_string_lossy()),
        None => ".tmp".to_string(),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".condgen-").suffix(&suffix);
    // tempfile creates 0600 files; run files, samples and figures are for reading by anyone.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        builder.permissions(std::fs::Permissions::from_mode(0o644));
    }
    builder.tempfile_in(dir).map_err(|e| Error::io(dir, e))
}

/// Writes `bytes` to `path` atomically (see [`write_with`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_with(path, |file| std::io::Write::write_all(file, bytes).map_err(|e| Error::io(path, e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_written_by_path_takes_its_name_only_when_complete() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.bin");
        write_via_path(&path, |tmp| {
            assert!(tmp.to_string_lossy().ends_with(".bin"), "{} keeps the extension", tmp.display());
            std::fs::write(tmp, b"old").map_err(|e| Error::io(tmp, e))
        })
        .unwrap();
        write_via_path(&path, |tmp| std::fs::write(tmp, b"new").map_err(|e| Error::io(tmp, e))).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let failed = write_via_path(&path, |_| Err(Error::InvalidInput("no".into())));
        assert!(failed.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "the temporary file is gone");
    }

    #[test]
    fn a_failed_fill_leaves_the_old_file_and_no_temporary_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("a.txt");
        write_atomic(&path, b"old").unwrap();
        let failed = write_with(&path, |file| {
            std::io::Write::write_all(file, b"half").unwrap();
            Err(Error::InvalidInput("check failed".into()))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1, "the temporary file is gone");
    }
}
