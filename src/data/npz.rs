//! Reading and writing numpy `.npz` archives (the K49/KMNIST format), with
//! npyz for the npy headers.
//!
//! Reading is defensive: the header's claimed size is checked against what the
//! archive entry can hold before anything is allocated, so a hostile header
//! claiming 10^12 elements fails fast instead of exhausting memory.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use npyz::{DType, NpyHeader, Order, TypeChar};

use crate::{Error, Result};

/// The array name numpy's `savez(path, x)` uses for a single positional array.
pub const DEFAULT_ARRAY: &str = "arr_0";

/// No array condgen reads is larger than this (K49 train is 182 M bytes).
const MAX_ELEMENTS: u64 = 1 << 32;
/// Deflate cannot expand data by more than about 1032:1.
const MAX_DEFLATE_RATIO: u64 = 1100;

/// A uint8 array read from an npz file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct U8Array {
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

/// Reads the uint8 array `name` from the npz archive at `path`.
/// Errors name the file and the array: not a zip, missing array, wrong dtype,
/// Fortran order, sizes that don't add up, truncated data.
pub fn read_u8(path: &Path, name: &str) -> Result<U8Array> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut zip = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| Error::Format {
        path: path.to_path_buf(),
        message: format!("not a readable npz (zip) archive: {e}"),
    })?;
    let names: Vec<String> = zip.file_names().map(str::to_string).collect();
    let entry_name = format!("{name}.npy");
    let mut entry = match zip.by_name(&entry_name) {
        Ok(entry) => entry,
        Err(zip::result::ZipError::FileNotFound) => {
            return Err(Error::npz(path, name, format!("not in the archive (it holds: {})", names.join(", "))))
        }
        Err(e) => return Err(Error::npz(path, name, format!("cannot open: {e}"))),
    };
    let declared = entry.size();
    let compressed = entry.compressed_size();
    // A corrupt directory can claim more compressed bytes than the file holds;
    // the decompressor then spins on the short input (found by cargo-fuzz).
    if compressed > file_len {
        return Err(Error::npz(
            path,
            name,
            format!(
                "the archive entry claims {compressed} compressed bytes in a file of {file_len}: truncated or corrupt"
            ),
        ));
    }
    let header =
        NpyHeader::from_reader(&mut entry).map_err(|e| Error::npz(path, name, format!("bad npy header: {e}")))?;
    match header.dtype() {
        DType::Plain(t) if t.type_char() == TypeChar::Uint && t.size_field() == 1 => {}
        other => {
            return Err(Error::npz(
                path,
                name,
                format!("dtype is `{}`, expected uint8 (`|u1`)", other.descr().trim_matches('\'')),
            ))
        }
    }
    if header.order() != Order::C {
        return Err(Error::npz(path, name, "Fortran-ordered array, expected C order"));
    }
    let shape: Vec<u64> = header.shape().to_vec();
    let elements = shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
    let elements = match elements {
        Some(n) if n <= MAX_ELEMENTS => n,
        _ => return Err(Error::npz(path, name, format!("shape {shape:?} is implausibly large"))),
    };
    if elements > declared || declared > compressed.saturating_mul(MAX_DEFLATE_RATIO).saturating_add(1 << 20) {
        return Err(Error::npz(
            path,
            name,
            format!("header claims shape {shape:?} but the archive entry holds {declared} bytes ({compressed} compressed): truncated or corrupt"),
        ));
    }
    let mut data = vec![0u8; elements as usize];
    entry.read_exact(&mut data).map_err(|e| Error::npz(path, name, format!("truncated or corrupt data: {e}")))?;
    Ok(U8Array { shape: shape.iter().map(|&d| d as usize).collect(), data })
}

/// An array to write into an npz archive.
pub enum NpzArray<'a> {
    U8 { shape: Vec<u64>, data: &'a [u8] },
    I64 { shape: Vec<u64>, data: &'a [i64] },
    F32 { shape: Vec<u64>, data: &'a [f32] },
}

impl<'a> NpzArray<'a> {
    /// Row-major 28×28 uint8 images: shape [n, 28, 28], n = `data.len()` / 784.
    pub fn images(data: &'a [u8]) -> Self {
        let side = crate::data::SIDE as u64;
        NpzArray::U8 { shape: vec![(data.len() / crate::data::PIXELS) as u64, side, side], data }
    }
}

/// Writes `arrays` into a compressed npz at `path` atomically (temp file, then rename),
/// so an interrupted write never leaves a half-written file under the final name.
pub fn write(path: &Path, arrays: &[(&str, NpzArray<'_>)]) -> Result<()> {
    let io_err = |e: std::io::Error| Error::io(path, e);
    crate::files::write_with(path, |file| {
        let mut npz = npyz::npz::NpzWriter::new(std::io::BufWriter::new(file));
        for (name, array) in arrays {
            match array {
                NpzArray::U8 { shape, data } => add_array(&mut npz, name, shape, data),
                NpzArray::I64 { shape, data } => add_array(&mut npz, name, shape, data),
                NpzArray::F32 { shape, data } => add_array(&mut npz, name, shape, data),
            }
            .map_err(io_err)?;
        }
        let mut buffered = npz.zip_writer().finish().map_err(|e| Error::io(path, e.into()))?;
        std::io::Write::flush(&mut buffered).map_err(io_err)
    })
}

/// One array into an npz archive, deflated.
fn add_array<W, T>(npz: &mut npyz::npz::NpzWriter<W>, name: &str, shape: &[u64], data: &[T]) -> std::io::Result<()>
where
    W: std::io::Write + std::io::Seek,
    T: npyz::AutoSerialize + Copy,
{
    use npyz::WriterBuilder;
    let options = zip::write::FileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let mut w = npz.array::<T>(name, options)?.default_dtype().shape(shape).begin_nd()?;
    w.extend(data.iter().copied())?;
    w.finish()
}
