//! Inputs of an ingest behind one trait, so the pipeline reads any of them the same
//! way: rows in file order, from any starting row, plus the ids alone (to rebuild
//! the duplicate check on `--resume`).

use std::path::Path;

use super::error::{IngestError, Result};
use super::mapping::Mapping;
use super::parquet::{ParquetSource, Plan};
use super::row::RowOutcome;

/// Batches of row outcomes.
pub type Batches<'a> = Box<dyn Iterator<Item = Result<Vec<RowOutcome>>> + 'a>;

/// A catalog input.
pub trait Source: Send {
    /// The file (or directory) read.
    fn path(&self) -> &Path;
    /// Number of rows.
    fn len(&self) -> u64;
    /// True when there are no rows.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Rows from `start` on, in batches of about `batch` rows.
    fn read_from(&self, start: u64, batch: usize) -> Result<Batches<'_>>;
    /// The ids of rows `0..end` (`None` where a row has no valid id).
    fn ids(&self, end: u64) -> Result<Vec<Option<u64>>>;
}

impl Source for ParquetSource {
    fn path(&self) -> &Path {
        ParquetSource::path(self)
    }
    fn len(&self) -> u64 {
        ParquetSource::len(self)
    }
    fn read_from(&self, start: u64, batch: usize) -> Result<Batches<'_>> {
        Ok(Box::new(ParquetSource::read_from(self, start, batch)?))
    }
    fn ids(&self, end: u64) -> Result<Vec<Option<u64>>> {
        ParquetSource::ids(self, end)
    }
}

/// Opens every input (Parquet files) under one plan made from the first.
pub fn open_sources(
    inputs: &[std::path::PathBuf],
    mapping: &Mapping,
    min_image_size: usize,
) -> Result<(Vec<Box<dyn Source>>, Plan)> {
    let first = inputs
        .first()
        .ok_or_else(|| IngestError::invalid("inputs", "no input files given"))?;
    for p in inputs {
        if !p.exists() {
            return Err(IngestError::io(
                p,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            ));
        }
        let ext = p
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        if ext != "parquet" && ext != "pq" {
            return Err(IngestError::invalid(
                "input",
                format!("{}: unsupported input (expected .parquet)", p.display()),
            ));
        }
    }
    let plan = Plan::new(first, mapping, min_image_size)?;
    let sources = inputs
        .iter()
        .map(|p| Ok(Box::new(ParquetSource::open(p, &plan)?) as Box<dyn Source>))
        .collect::<Result<Vec<_>>>()?;
    Ok((sources, plan))
}
