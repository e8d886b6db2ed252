//! Flat per-modality vector files, memory-mapped for reading.
//!
//! Layout: a 4096-byte header (magic, file kind, format version, dimension,
//! precision, byte order, CRC-32 of the header fields) followed by rows of `dim`
//! little-endian f32. Rows are addressed by a dense row number; the file is
//! pre-extended in chunks so appends rarely remap. Which rows are *committed* is
//! recorded in RocksDB, not here: bytes past the committed count are leftovers of
//! an interrupted write and are overwritten by the next one. Each row's CRC-32 is
//! kept in its object's record, so `verify` can check every row.
//!
//! The header is a whole page so every row starts 4096-aligned in the mapping.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;

use crate::error::{Error, Result};

const HEADER_LEN: u64 = 4096;
const MAGIC: &[u8; 8] = b"ASTROVEC";
const KIND_VECTORS: u32 = 1;
/// Format version of vector files written by this build.
const VECTOR_FORMAT_VERSION: u32 = 1;
const LITTLE_ENDIAN_TAG: u8 = 1;

/// A read-only view of a vector file's rows, shared by searches (a snapshot).
#[derive(Clone)]
pub(crate) struct VectorView {
    map: Arc<Mmap>,
    dim: usize,
}

impl VectorView {
    /// Row `r` (the caller guarantees `r` is committed and inside the mapping).
    #[inline]
    pub fn row(&self, r: u32) -> &[f32] {
        let start = HEADER_LEN as usize + r as usize * self.dim * 4;
        let bytes = &self.map[start..start + self.dim * 4];
        // SAFETY: the mapping is page-aligned and the header is 4096 bytes, so every
        // row starts 4-byte aligned; any bit pattern is a valid f32; the file is only
        // ever appended to past the committed rows while mapped, never shrunk.
        unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<f32>(), self.dim) }
    }

    /// Components per row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of rows the mapping covers (committed or not).
    pub fn mapped_rows(&self) -> usize {
        (self.map.len().saturating_sub(HEADER_LEN as usize)) / (self.dim * 4)
    }
}

/// The writable side of a vector file.
pub(crate) struct VectorFile {
    path: PathBuf,
    file: File,
    dim: usize,
    capacity: usize,
    view: VectorView,
}

fn header_bytes(dim: usize) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER_LEN as usize);
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&KIND_VECTORS.to_le_bytes());
    h.extend_from_slice(&VECTOR_FORMAT_VERSION.to_le_bytes());
    h.extend_from_slice(&(dim as u32).to_le_bytes());
    h.push(0); // precision: 0 = f32
    h.push(LITTLE_ENDIAN_TAG);
    h.extend_from_slice(&[0, 0]);
    let crc = crc32fast::hash(&h);
    h.extend_from_slice(&crc.to_le_bytes());
    h.resize(HEADER_LEN as usize, 0);
    h
}

impl VectorFile {
    /// Creates a new, empty vector file.
    pub fn create(path: &Path, dim: usize) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        file.write_all_at(&header_bytes(dim), 0)
            .and_then(|_| file.sync_all())
            .map_err(|e| Error::io(path, e))?;
        Self::map_file(path.to_path_buf(), file, dim)
    }

    /// Opens an existing vector file, checking its header against the expected
    /// dimension and that it holds at least `committed_rows` rows.
    pub fn open(path: &Path, dim: usize, committed_rows: usize) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if len < HEADER_LEN {
            return Err(Error::corrupt(
                path,
                format!("file is {len} bytes, shorter than its header"),
            ));
        }
        let mut head = [0u8; 28];
        file.read_exact_at(&mut head, 0)
            .map_err(|e| Error::io(path, e))?;
        if &head[0..8] != MAGIC
            || u32::from_le_bytes(head[8..12].try_into().unwrap()) != KIND_VECTORS
        {
            return Err(Error::corrupt(
                path,
                "not an astrovec vector file (bad magic)",
            ));
        }
        let crc = u32::from_le_bytes(head[24..28].try_into().unwrap());
        if crc32fast::hash(&head[0..24]) != crc {
            return Err(Error::corrupt(path, "header checksum mismatch"));
        }
        let version = u32::from_le_bytes(head[12..16].try_into().unwrap());
        if version != VECTOR_FORMAT_VERSION {
            return Err(Error::corrupt(
                path,
                format!(
                    "vector format version {version}, this build reads {VECTOR_FORMAT_VERSION}"
                ),
            ));
        }
        let file_dim = u32::from_le_bytes(head[16..20].try_into().unwrap()) as usize;
        if file_dim != dim {
            return Err(Error::corrupt(
                path,
                format!("file holds {file_dim}-d vectors, the collection expects {dim}"),
            ));
        }
        if head[20] != 0 || head[21] != LITTLE_ENDIAN_TAG {
            return Err(Error::corrupt(path, "unsupported precision or byte order"));
        }
        let rows_in_file = ((len - HEADER_LEN) / (dim as u64 * 4)) as usize;
        if rows_in_file < committed_rows {
            return Err(Error::corrupt(
                path,
                format!(
                    "truncated: {committed_rows} rows are committed, the file holds {rows_in_file}"
                ),
            ));
        }
        Self::map_file(path.to_path_buf(), file, dim)
    }

    fn map_file(path: PathBuf, file: File, dim: usize) -> Result<Self> {
        // SAFETY: the file is private to the collection directory (RocksDB's LOCK
        // keeps other processes out) and is never truncated while mapped.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(&path, e))?;
        let view = VectorView {
            map: Arc::new(map),
            dim,
        };
        let capacity = view.mapped_rows();
        Ok(VectorFile {
            path,
            file,
            dim,
            capacity,
            view,
        })
    }

    /// The current read-only view.
    pub fn view(&self) -> VectorView {
        self.view.clone()
    }

    /// Writes `values` (already normalised) at row `r`, growing the file as needed.
    /// Returns true when the mapping changed (callers refresh their views).
    pub fn write_row(&mut self, r: u32, values: &[f32]) -> Result<bool> {
        debug_assert_eq!(values.len(), self.dim);
        let mut remapped = false;
        if r as usize >= self.capacity {
            let grow = (self.capacity / 2).max(256);
            let new_cap = (r as usize + 1).max(self.capacity + grow);
            let new_len = HEADER_LEN + (new_cap * self.dim * 4) as u64;
            self.file
                .set_len(new_len)
                .map_err(|e| Error::io(&self.path, e))?;
            // SAFETY: as in `map_file`.
            let map = unsafe { Mmap::map(&self.file) }.map_err(|e| Error::io(&self.path, e))?;
            self.view = VectorView {
                map: Arc::new(map),
                dim: self.dim,
            };
            self.capacity = self.view.mapped_rows();
            remapped = true;
        }
        let mut bytes = Vec::with_capacity(values.len() * 4);
        for v in values {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        let offset = HEADER_LEN + r as u64 * self.dim as u64 * 4;
        self.file
            .write_all_at(&bytes, offset)
            .map_err(|e| Error::io(&self.path, e))?;
        Ok(remapped)
    }

    /// Flushes written rows to stable storage (called before the RocksDB commit
    /// that makes them visible, so an acknowledged row is on disk).
    pub fn sync(&self) -> Result<()> {
        self.file.sync_data().map_err(|e| Error::io(&self.path, e))
    }
}

/// CRC-32 of a row's little-endian bytes (stored in the object record).
pub(crate) fn row_crc(values: &[f32]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for v in values {
        h.update(&v.to_le_bytes());
    }
    h.finalize()
}
