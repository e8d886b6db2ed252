//! The storage and search core of astrovec.
//!
//! A [`Collection`] is a directory: RocksDB holds objects (id → position,
//! attributes), small blobs and the manifest; each modality (e.g. `image`,
//! `spectrum`) has a flat, memory-mapped vector file of unit-norm embeddings and an
//! HNSW graph saved beside it and loaded — not rebuilt — on open. Vectors written
//! after the last [`Collection::build_index`] are searchable at once through an
//! exact scan of the unindexed tail. Deletes are tombstones honoured by every search
//! path. Filters ([`Filter`], parsed from text such as `redshift < 0.3 and mag_r <
//! 19`) compile to roaring bitmaps applied inside the HNSW traversal; very selective
//! filters switch to an exact scan automatically.
//!
//! The API is synchronous and knows nothing of models or HTTP: vectors in,
//! `(id, cosine similarity)` out. Positions are ICRS degrees.

pub mod blobs;
mod catalog;
mod codec;
mod collection;
mod config;
mod distance;
mod error;
mod filter;
mod graph;
mod hnsw;
pub mod layout;
mod search;
mod sky;
mod storage;
mod vectors;

pub use catalog::AttrValue;
pub use collection::{
    Collection, CollectionStats, ConeHit, Estimate, Hit, IndexReport, ModalityStats, Object,
    SearchParams, StoredObject, Strategy, FORMAT_VERSION, MAX_BLOB_BYTES, MAX_EF, MAX_K,
};
pub use config::{
    AttributeDef, AttributeKind, CollectionConfig, Distance, HnswConfig, ModalityConfig, Precision,
};
pub use distance::{dot, dot_f16, normalize, to_f16};
pub use error::{Error, Result};
pub use filter::{CmpOp, Filter, Literal, MAX_FILTER_BYTES, MAX_FILTER_DEPTH};
pub use sky::separation_deg;
