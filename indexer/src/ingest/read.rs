//! The interface every catalog reader implements, so the pipeline reads any of
//! them the same way: rows in file order, from any starting row, plus the ids
//! alone (to rebuild the duplicate check on `--resume`).

use std::path::Path;

use super::error::{IngestError, Result};
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
    /// Size of the input in bytes (with the path and rows, it identifies the
    /// input on `--resume`).
    fn bytes(&self) -> Result<u64> {
        Ok(std::fs::metadata(self.path())
            .map_err(|e| IngestError::io(self.path(), e))?
            .len())
    }
}
