//! The report of an ingest: rows read, written and rejected (by kind), where each
//! modality's embeddings came from, and the seconds and throughput of every stage;
//! printed as a summary and written as JSON beside the collection.

use std::collections::BTreeMap;

use astrovec_engine::IndexReport;
use serde::{Deserialize, Serialize};

use crate::ingest::progress::InputId;

/// Where each modality's embeddings come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModalitySource {
    /// Modality name.
    pub name: String,
    /// Embedding dimension.
    pub dim: usize,
    /// `encoder <preset>` or `column <name>`.
    pub source: String,
}

/// Seconds per stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageSeconds {
    /// Reading and validating.
    pub read: f64,
    /// Encoding and thumbnails.
    pub encode: f64,
    /// Writing to the collection.
    pub write: f64,
    /// Building the indexes.
    pub index: f64,
    /// Wall-clock time of this run.
    pub wall: f64,
}

/// Objects per second of each stage's own time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageRates {
    /// Reading and validating.
    pub read: f64,
    /// Encoding (or taking precomputed embeddings) and making the picture blobs.
    pub encode: f64,
    /// Writing to the collection.
    pub write: f64,
}

/// `n` per second of `seconds` (0 when no time was spent).
pub(super) fn rate(n: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        n as f64 / seconds
    } else {
        0.0
    }
}

/// The final report (printed and written as JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestReport {
    /// The inputs.
    pub inputs: Vec<InputId>,
    /// The collection directory.
    pub collection: String,
    /// `k/n` when sharded.
    pub shard: Option<String>,
    /// Rows in the inputs.
    pub rows_total: u64,
    /// Rows looked at (all shards).
    pub rows_read: u64,
    /// Objects written.
    pub rows_written: u64,
    /// Rows rejected (see `rejects_file`).
    pub rows_rejected: u64,
    /// Rows left to other shards.
    pub rows_other_shards: u64,
    /// Rejections by kind.
    pub rejected_by_kind: BTreeMap<String, u64>,
    /// Where the rejected rows and their reasons are.
    pub rejects_file: String,
    /// Live objects in the collection afterwards.
    pub collection_objects: u64,
    /// Modalities and where their embeddings came from.
    pub modalities: Vec<ModalitySource>,
    /// Attributes read, as `column → attribute`.
    pub attributes: Vec<(String, String)>,
    /// Columns not read, with the reason.
    pub ignored_columns: Vec<(String, String)>,
    /// Seconds per stage (read/encode/write cumulative over resumed runs).
    pub seconds: StageSeconds,
    /// Objects written per second of wall time in this run.
    pub objects_per_second: f64,
    /// Throughput of each stage on its own: rows per second of that stage's busy
    /// time (read: rows read; encode and write: objects written), cumulative over
    /// resumed runs. The slowest stage bounds the pipeline.
    pub stage_objects_per_second: StageRates,
    /// True when this run continued an interrupted one.
    pub resumed: bool,
    /// What each index build did.
    pub index: Vec<IndexReport>,
}

impl IngestReport {
    /// A short human-readable summary.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "ingest into {}{}: {} rows read, {} written, {} rejected, {} in other shards; {} objects in the collection\n",
            self.collection,
            self.shard.as_deref().map(|k| format!(" (shard {k})")).unwrap_or_default(),
            self.rows_read,
            self.rows_written,
            self.rows_rejected,
            self.rows_other_shards,
            self.collection_objects
        );
        for (k, n) in &self.rejected_by_kind {
            s += &format!("  rejected, {k}: {n}\n");
        }
        if self.rows_rejected > 0 {
            s += &format!("  reasons per row: {}\n", self.rejects_file);
        }
        s += &format!(
            "  objects/s per stage: read {:.1}, encode {:.1}, write {:.1}\n",
            self.stage_objects_per_second.read,
            self.stage_objects_per_second.encode,
            self.stage_objects_per_second.write
        );
        s += &format!(
            "  seconds: read {:.2}, encode {:.2}, write {:.2}, index {:.2}, wall {:.2}; {:.1} objects/s\n",
            self.seconds.read,
            self.seconds.encode,
            self.seconds.write,
            self.seconds.index,
            self.seconds.wall,
            self.objects_per_second
        );
        s
    }
}

/// Sorts a rejection reason into a kind for the report.
pub fn reject_kind(reason: &str) -> &'static str {
    if reason.contains("duplicate id") {
        "duplicate id"
    } else if reason.contains("non-finite") {
        "non-finite value"
    } else if reason.contains("null") {
        "missing value"
    } else if reason.contains("outside") || reason.contains("negative") {
        "value out of range"
    } else if reason.contains("all zeros") {
        "zero embedding"
    } else {
        "wrong shape"
    }
}
