//! Precomputed embeddings from `.npy` files (e.g. written by `astrovec embed` or by
//! PyTorch/numpy): in the mapping, `[embeddings] image = "image_emb.npy"` names a
//! file instead of a column (paths relative to the working directory).
//!
//! The array is `[n, d]` float32 or float64, C order; row `i` belongs to row `i`
//! of the inputs taken in order (row 0 of the second input follows the last row
//! of the first), so `n` must equal the total number of input rows. Rows are read
//! with positioned reads per batch, never the whole array. Only the header is
//! parsed here (NPY format 1.0–3.0); `ndarray-npy` writes such files in the tests.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use astrovec_encoders::input::npy;

use super::error::{IngestError, Result};
use super::read::{Batches, Source};
use super::row::check_finite;

/// True when a mapping's `[embeddings]` value names an `.npy` file.
pub fn is_npy(value: &str) -> bool {
    value.to_ascii_lowercase().ends_with(".npy")
}

/// One `[n, d]` embedding file.
#[derive(Debug, Clone)]
pub struct NpyEmbeddings {
    /// The modality the rows are embeddings of.
    pub modality: String,
    /// The file.
    pub path: PathBuf,
    /// Rows.
    pub rows: u64,
    /// Embedding dimension.
    pub dim: usize,
    data_start: u64,
    /// Bytes per value (4 = float32, 8 = float64).
    width: usize,
}

fn bad(path: &Path, reason: impl Into<String>) -> IngestError {
    IngestError::malformed(path, None, None, reason)
}

impl NpyEmbeddings {
    /// Reads and checks the header of `path` (the encoders' `.npy` header parser, the
    /// one uploads use).
    pub fn open(modality: &str, path: &Path) -> Result<Self> {
        let mut f = File::open(path).map_err(|e| IngestError::io(path, e))?;
        let what = path.display().to_string();
        let mut preamble = Vec::with_capacity(npy::PREAMBLE);
        (&mut f)
            .take(npy::PREAMBLE as u64)
            .read_to_end(&mut preamble)
            .map_err(|e| IngestError::io(path, e))?;
        let length = npy::Header::length(&what, &preamble).map_err(|e| bad(path, e.got))?;
        let mut head = vec![0u8; length];
        f.seek(SeekFrom::Start(0))
            .and_then(|_| f.read_exact(&mut head))
            .map_err(|_| bad(path, "truncated .npy header"))?;
        let header = npy::Header::parse(&what, &head).map_err(|e| bad(path, e.got))?;
        if header.dtype.big_endian || !matches!(header.dtype.code, "f4" | "f8") {
            return Err(bad(
                path,
                format!(
                    "dtype {}{}: expected little-endian float32 or float64",
                    if header.dtype.big_endian { ">" } else { "<" },
                    header.dtype.code
                ),
            ));
        }
        let [rows, dim] = header.shape[..] else {
            return Err(bad(
                path,
                format!("shape {:?}: expected [rows, dimension]", header.shape),
            ));
        };
        let data_start = header.data_offset as u64;
        let size = f.metadata().map_err(|e| IngestError::io(path, e))?.len();
        let need = data_start + header.data_bytes as u64;
        if size < need {
            return Err(bad(
                path,
                format!("truncated: {size} bytes, the header promises {need}"),
            ));
        }
        Ok(NpyEmbeddings {
            modality: modality.to_string(),
            path: path.to_path_buf(),
            rows: rows as u64,
            dim,
            data_start,
            width: header.dtype.width,
        })
    }

    /// Rows `a..b` as f32, `dim` values each.
    pub fn read_rows(&self, a: u64, b: u64) -> Result<Vec<f32>> {
        let per = self.dim * self.width;
        let mut f = File::open(&self.path).map_err(|e| IngestError::io(&self.path, e))?;
        let mut buf = vec![0u8; (b - a) as usize * per];
        f.seek(SeekFrom::Start(self.data_start + a * per as u64))
            .and_then(|_| f.read_exact(&mut buf))
            .map_err(|e| IngestError::io(&self.path, e))?;
        Ok(match self.width {
            4 => buf
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            _ => buf
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
                .collect(),
        })
    }
}

/// A source whose rows get embeddings from `.npy` files (rows offset by the rows
/// of the inputs before it).
pub struct WithNpy {
    inner: Box<dyn Source>,
    first_row: u64,
    files: Arc<Vec<NpyEmbeddings>>,
}

impl WithNpy {
    /// Wraps every source, checking that each file has one row per input row.
    pub fn wrap(
        sources: Vec<Box<dyn Source>>,
        files: Vec<NpyEmbeddings>,
    ) -> Result<Vec<Box<dyn Source>>> {
        let total: u64 = sources.iter().map(|s| s.len()).sum();
        for f in &files {
            if f.rows != total {
                return Err(bad(
                    &f.path,
                    format!(
                        "{} rows of {} embeddings, the inputs have {total} rows (row i of the file belongs to input row i)",
                        f.rows, f.modality
                    ),
                ));
            }
        }
        let files = Arc::new(files);
        let mut first_row = 0;
        Ok(sources
            .into_iter()
            .map(|inner| {
                let n = inner.len();
                let w = WithNpy {
                    inner,
                    first_row,
                    files: files.clone(),
                };
                first_row += n;
                Box::new(w) as Box<dyn Source>
            })
            .collect())
    }
}

impl Source for WithNpy {
    fn path(&self) -> &Path {
        self.inner.path()
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn bytes(&self) -> Result<u64> {
        self.inner.bytes()
    }
    fn ids(&self, end: u64) -> Result<Vec<Option<u64>>> {
        self.inner.ids(end)
    }
    fn read_from(&self, start: u64, batch: usize) -> Result<Batches<'_>> {
        let inner = self.inner.read_from(start, batch)?;
        Ok(Box::new(inner.map(move |outcomes| {
            let mut outcomes = outcomes?;
            let (Some(lo), Some(hi)) = (
                outcomes.iter().map(|o| o.row).min(),
                outcomes.iter().map(|o| o.row).max(),
            ) else {
                return Ok(outcomes);
            };
            let mut values: BTreeMap<&str, Vec<f32>> = BTreeMap::new();
            for f in self.files.iter() {
                let v = f.read_rows(self.first_row + lo, self.first_row + hi + 1)?;
                values.insert(f.modality.as_str(), v);
            }
            for o in &mut outcomes {
                if o.result.is_err() {
                    continue;
                }
                let k = (o.row - lo) as usize;
                let mut add = Vec::with_capacity(self.files.len());
                let mut failed = None;
                for f in self.files.iter() {
                    let v = values[f.modality.as_str()][k * f.dim..(k + 1) * f.dim].to_vec();
                    let name = f.path.display().to_string();
                    let check = check_finite(&name, &v).and_then(|()| {
                        if v.iter().all(|x| *x == 0.0) {
                            Err(format!("{name}: embedding is all zeros"))
                        } else {
                            Ok(())
                        }
                    });
                    if let Err(reason) = check {
                        failed = Some(reason);
                        break;
                    }
                    add.push((f.modality.clone(), v));
                }
                match (failed, &mut o.result) {
                    (Some(reason), _) => o.result = Err(reason),
                    (None, Ok(row)) => row.embeddings.extend(add),
                    (None, Err(_)) => {}
                }
            }
            Ok(outcomes)
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_names_are_recognised() {
        assert!(is_npy("emb/Image.NPY") && !is_npy("image_embedding"));
    }
}
