//! The library's error type: every failure names the file and, where it
//! applies, the line, array or key that was wrong.

use std::path::PathBuf;

/// Everything that can go wrong in condgen's library code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: file not found")]
    MissingFile { path: PathBuf },

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A CSV problem; `line` is the 1-based line of the file (line 1 is the header).
    #[error("{path}, line {line}: {message}")]
    Csv { path: PathBuf, line: usize, message: String },

    /// An npz/npy problem; `array` names the array inside the archive.
    #[error("{path}, array `{array}`: {message}")]
    Npz { path: PathBuf, array: String, message: String },

    /// A file whose format is wrong as a whole (not a zip, unreadable CSV, ...).
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },

    /// Two files (or two arrays) that must agree do not.
    #[error("{message}")]
    Mismatch { message: String },

    #[error("{path}: checksum mismatch (md5 {actual}, expected {expected})")]
    Checksum { path: PathBuf, expected: String, actual: String },

    #[error("download of {url} failed: {message}")]
    Download { url: String, message: String },

    /// A training configuration that cannot be used (a config file, a `key=value`
    /// override, a profile named in the environment); other bad arguments are
    /// [`Error::InvalidInput`], operations the model cannot do [`Error::Unsupported`].
    #[error("invalid configuration: {0}")]
    Config(String),

    /// An operation the model, run or data at hand cannot do (a CVAE-only figure asked of a CGAN, ...).
    #[error("unsupported: {0}")]
    Unsupported(String),

    /// An argument a caller passed that cannot be used (an empty sample set, a count out of range, ...).
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// A request larger than this machine can hold, refused before any work
    /// starts ([`crate::capacity`]): `needed` and `available` bytes of memory, or
    /// of disk for the file it writes (`place` says which).
    #[error("{request} need {} {place}; {} available", crate::capacity::bytes(*.needed), crate::capacity::bytes(*.available))]
    TooLarge { request: String, place: String, needed: u64, available: u64 },

    #[error("{path}: {message}")]
    Checkpoint { path: PathBuf, message: String },

    #[error("training diverged: {0}")]
    Diverged(String),

    #[error("interrupted")]
    Interrupted,

    #[error("torch: {0}")]
    Torch(#[from] tch::TchError),

    #[error("polars: {0}")]
    Polars(#[from] polars::error::PolarsError),

    #[error("{path}: cannot write image: {message}")]
    Image { path: PathBuf, message: String },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        if source.kind() == std::io::ErrorKind::NotFound {
            Error::MissingFile { path }
        } else {
            Error::Io { path, source }
        }
    }

    pub(crate) fn csv(path: impl Into<PathBuf>, line: usize, message: impl Into<String>) -> Self {
        Error::Csv { path: path.into(), line, message: message.into() }
    }

    pub(crate) fn npz(path: impl Into<PathBuf>, array: &str, message: impl Into<String>) -> Self {
        Error::Npz { path: path.into(), array: array.to_string(), message: message.into() }
    }
}
