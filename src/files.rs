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
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(".condgen-").suffix(".tmp");
    // tempfile creates 0600 files; run files, samples and figures are for reading by anyone.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        builder.permissions(std::fs::Permissions::from_mode(0o644));
    }
    let mut tmp = builder.tempfile_in(dir).map_err(|e| Error::io(dir, e))?;
    fill(tmp.as_file_mut())?;
    tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

/// Writes `bytes` to `path` atomically (see [`write_with`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_with(path, |file| std::io::Write::write_all(file, bytes).map_err(|e| Error::io(path, e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_fill_leaves_the_old_file_and_no_temporary_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("a.txt");
        write_atomic(&path, b"old").unwrap();
        let failed = write_with(&path, |file| {
            std::io::Write::write_all(file, b"half").unwrap();
            Err(Error::Config("check failed".into()))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1, "the temporary file is gone");
    }
}
