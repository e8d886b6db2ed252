//! A collection: a directory holding a RocksDB database (objects, attributes,
//! blobs, manifest), one memory-mapped vector file per modality and one HNSW graph
//! per modality.
//!
//! Write path (one writer at a time): validate everything first (bad input writes
//! nothing) → append normalised vectors to the vector files → fsync them → commit
//! object records and new row counts to RocksDB with a synced WAL → publish to the
//! in-memory state. A crash before the commit leaves only unreferenced bytes past
//! the committed row count; after it, the write is complete. Deleted or replaced
//! embeddings become tombstoned rows that every search path skips.
//!
//! Read path: searches hold a read lock on the in-memory state for their duration,
//! so each sees one consistent snapshot; the writer only takes the write lock for
//! the brief in-memory publish step, after its I/O is done.
//!
//! This module holds the [`Collection`] and its in-memory state; the submodules
//! each add one side of it: `types` (the values callers exchange with it),
//! `records` (what it keeps in RocksDB), `open` (create / open / drop), `write`
//! (upserts and deletes), `read` (stored objects), `filter_cache` and `search`
//! (search planning), `estimate` (k-NN estimates) and `maintenance` (index
//! builds, verification, statistics).

mod estimate;
mod filter_cache;
mod maintenance;
mod open;
mod read;
mod records;
mod search;
mod types;
mod write;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::catalog::{Catalog, NONE};
use crate::config::CollectionConfig;
use crate::distance::normalize;
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::storage::Store;
use crate::vectors::{VectorFile, VectorView};
use filter_cache::FilterCache;

pub use types::{
    CollectionStats, ConeHit, Estimate, Hit, IndexReport, ModalityStats, Object, SearchParams,
    StoredObject, Strategy,
};

/// Format version of a collection directory written by this build.
pub const FORMAT_VERSION: u32 = 1;
/// Largest `k` a search accepts.
pub const MAX_K: usize = 10_000;
/// Largest HNSW candidate list (`ef`) a search accepts.
pub const MAX_EF: usize = 10 * MAX_K;
/// Largest blob (thumbnail, spectrum preview) stored with an object, in bytes.
pub const MAX_BLOB_BYTES: usize = 4 << 20;

/// What a collection holds in memory for one modality.
struct ModalityState {
    /// The vector file's rows as searches read them.
    view: VectorView,
    /// Committed rows (live and tombstoned); rows past this are leftovers of an
    /// interrupted write.
    rows: u32,
    /// The HNSW graph, if the modality has been indexed.
    graph: Option<Arc<Graph>>,
    /// Rows `[0, indexed)` were offered to the graph; later rows are scanned exactly.
    indexed: u32,
    /// True when the graph was loaded from disk at open.
    graph_loaded: bool,
}

/// The in-memory state searches read (one consistent snapshot under the read lock).
struct State {
    catalog: Catalog,
    /// One entry per modality, in config order.
    modalities: Vec<ModalityState>,
}

impl State {
    /// The stored embedding of live object `id` in modality `m` (named `modality`
    /// in errors).
    fn embedding(&self, m: usize, id: u64, modality: &str) -> Result<&[f32]> {
        let slot = self.catalog.live_slot(id).ok_or(Error::NotFound(id))?;
        let row = self.catalog.rows[m][slot as usize];
        if row == NONE {
            return Err(Error::MissingEmbedding {
                id,
                modality: modality.into(),
            });
        }
        Ok(self.modalities[m].view.row(row))
    }
}

/// An open collection. Cheap to share across threads (`Arc<Collection>`): searches
/// run concurrently; writes are serialised internally.
pub struct Collection {
    dir: PathBuf,
    config: CollectionConfig,
    /// Objects, blobs and the manifest.
    store: Store,
    /// What searches read; the writer takes the write lock only to publish.
    state: RwLock<State>,
    /// The vector files (one per modality, config order), held by the one writer:
    /// apart from [`State`], so that searches never wait on the writer's I/O.
    writer: Mutex<Vec<VectorFile>>,
    /// Rows of recently used filters (see [`FilterCache`]).
    filter_cache: Mutex<FilterCache>,
}

impl Collection {
    /// The collection's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The configuration it was created with.
    pub fn config(&self) -> &CollectionConfig {
        &self.config
    }

    /// Number of live objects.
    pub fn len(&self) -> u64 {
        self.state.read().catalog.len()
    }

    /// True when the collection holds no objects.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks a vector for modality `m` and returns its unit-norm copy (for writes
    /// and queries alike).
    fn prepare_vector(&self, m: usize, v: &[f32]) -> Result<Vec<f32>> {
        let mc = &self.config.modalities[m];
        if v.len() != mc.dim {
            return Err(Error::DimensionMismatch {
                modality: mc.name.clone(),
                expected: mc.dim,
                got: v.len(),
            });
        }
        if let Some(index) = v.iter().position(|x| !x.is_finite()) {
            return Err(Error::NonFiniteVector {
                modality: mc.name.clone(),
                index,
            });
        }
        let mut out = v.to_vec();
        let norm = normalize(&mut out);
        if norm <= 0.0 || !norm.is_finite() {
            return Err(Error::ZeroVector {
                modality: mc.name.clone(),
            });
        }
        // Nothing non-finite is ever stored or searched with, whatever the input's scale.
        if let Some(index) = out.iter().position(|x| !x.is_finite()) {
            return Err(Error::NonFiniteVector {
                modality: mc.name.clone(),
                index,
            });
        }
        Ok(out)
    }
}
