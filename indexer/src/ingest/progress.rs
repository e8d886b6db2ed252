//! The durable progress marker behind `--resume`: a small JSON file in the
//! collection directory, replaced atomically (write, fsync, rename, fsync the
//! directory) after every committed batch. It records how far each input has been
//! read and the running counts, so a killed ingest continues at the first batch
//! not yet committed; re-doing a batch whose marker was not written is harmless
//! because an upsert of the same id replaces it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::{IngestError, Result};

/// File name of the marker inside the collection directory.
pub const MARKER_FILE: &str = "ingest-progress.json";

/// One input as recorded in the marker (a changed file refuses to resume).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputId {
    /// Path as given.
    pub path: String,
    /// Rows in it.
    pub rows: u64,
    /// Size in bytes.
    pub bytes: u64,
}

/// Running counts, cumulative over resumed runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// Source rows looked at (all shards).
    pub read: u64,
    /// Objects written to the collection.
    pub written: u64,
    /// Rows rejected (reasons in the rejects file).
    pub rejected: u64,
    /// Rows belonging to other shards.
    pub other_shards: u64,
    /// Rejections by kind.
    pub rejected_by_kind: BTreeMap<String, u64>,
    /// Seconds busy reading and validating.
    pub read_seconds: f64,
    /// Seconds busy encoding (and making thumbnails).
    pub encode_seconds: f64,
    /// Seconds busy writing to the collection.
    pub write_seconds: f64,
}

/// The marker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Marker format version.
    pub version: u32,
    /// The inputs, in order.
    pub inputs: Vec<InputId>,
    /// `k/n`, or `None` for the whole catalog.
    pub shard: Option<(u32, u32)>,
    /// Rows per batch (batches are aligned on it, so a resumed run embeds exactly
    /// the same batches as a clean one).
    pub batch_size: usize,
    /// What makes the embeddings (e.g. `encoder tiny`, `precomputed`).
    pub embedder: String,
    /// Index of the input being read.
    pub file: usize,
    /// Rows of that input already committed (or rejected).
    pub row: u64,
    /// Running counts.
    pub counts: Counts,
    /// Every row is committed.
    pub rows_done: bool,
    /// The indexes are built too: nothing left to do.
    pub complete: bool,
}

impl Progress {
    /// The marker path in a collection directory.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(MARKER_FILE)
    }

    /// Reads the marker, if there is one.
    pub fn load(dir: &Path) -> Result<Option<Progress>> {
        let p = Self::path(dir);
        match std::fs::read(&p) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| IngestError::malformed(&p, None, None, e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(IngestError::io(&p, e)),
        }
    }

    /// Replaces the marker atomically and durably.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).expect("progress serialises");
        write_atomic(&Self::path(dir), &bytes)
    }
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, fsync, rename,
/// fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp).map_err(|e| IngestError::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| IngestError::io(&tmp, e))?;
        f.sync_all().map_err(|e| IngestError::io(&tmp, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| IngestError::io(path, e))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = std::fs::File::open(dir) {
            d.sync_all().map_err(|e| IngestError::io(dir, e))?;
        }
    }
    Ok(())
}
