//! Bulk ingest of survey catalogs into a collection: readers with per-row
//! validation, a column → attribute [`mapping`], the staged [`pipeline`]
//! (read → validate → batch → encode → write → index), resumable progress
//! ([`progress`]), deterministic sharding ([`shard`]) and [`merge`] of shard
//! collections.
//!
//! The readers ([`parquet`], [`hdf5`], [`desi`], [`images`], [`npy`]) share the
//! row [`plan`] and the [`read`] interface and know nothing of each other;
//! [`source`] tells the inputs apart and opens each with its reader.

pub mod desi;
pub mod error;
pub mod hdf5;
pub mod images;
pub mod mapping;
pub mod merge;
pub mod npy;
pub mod parquet;
pub mod pipeline;
pub mod plan;
pub mod progress;
pub mod read;
pub mod row;
pub mod shard;
pub mod source;
pub mod thumb;

pub use error::{IngestError, Result};
pub use mapping::{ImageLayout, Mapping, UnknownColumns};
pub use merge::{merge, MergeReport};
pub use pipeline::{ingest, Embedder, IngestOptions, IngestReport};
pub use row::{Image, ImageKind, Reject, Row, RowOutcome, SPECTRUM_LEN};
pub use shard::Shard;
