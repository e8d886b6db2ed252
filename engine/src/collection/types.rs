//! The collection's value types: what callers put in (objects, search
//! parameters) and get back (stored objects, hits, estimates, cone hits,
//! statistics, index reports).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::catalog::AttrValue;
use crate::filter::Filter;

/// An object to insert or replace.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Object {
    /// 64-bit identifier (e.g. DESI TARGETID).
    pub id: u64,
    /// Right ascension, ICRS, degrees in [0, 360].
    pub ra: f64,
    /// Declination, ICRS, degrees in [-90, 90].
    pub dec: f64,
    /// Catalog attributes by name (must be declared in the collection config).
    pub attributes: BTreeMap<String, AttrValue>,
    /// One embedding per modality; a modality may be missing.
    pub embeddings: BTreeMap<String, Vec<f32>>,
    /// Small named blobs for the UI (e.g. `thumb.png`, `spectrum_preview`).
    pub blobs: BTreeMap<String, Vec<u8>>,
}

impl Object {
    /// An object at a position with nothing else yet.
    pub fn new(id: u64, ra: f64, dec: f64) -> Self {
        Object {
            id,
            ra,
            dec,
            ..Default::default()
        }
    }
    /// Adds an attribute (builder style).
    pub fn attribute(mut self, name: &str, value: AttrValue) -> Self {
        self.attributes.insert(name.into(), value);
        self
    }
    /// Adds an embedding (builder style).
    pub fn embedding(mut self, modality: &str, vector: Vec<f32>) -> Self {
        self.embeddings.insert(modality.into(), vector);
        self
    }
    /// Adds a blob (builder style).
    pub fn blob(mut self, name: &str, bytes: Vec<u8>) -> Self {
        self.blobs.insert(name.into(), bytes);
        self
    }
}

/// An object as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredObject {
    /// Identifier.
    pub id: u64,
    /// Right ascension, ICRS, degrees.
    pub ra: f64,
    /// Declination, ICRS, degrees.
    pub dec: f64,
    /// Attributes by name.
    pub attributes: BTreeMap<String, AttrValue>,
    /// Modalities for which the object has an embedding.
    pub modalities: Vec<String>,
    /// Names of the object's blobs.
    pub blobs: Vec<String>,
}

/// How a search finds its neighbours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Strategy {
    /// HNSW for large candidate sets, exact scan for small ones or unindexed modalities.
    #[default]
    Auto,
    /// Exact scan of every candidate (the oracle).
    Exact,
    /// HNSW over the indexed rows plus an exact scan of rows added since the last build.
    Hnsw,
}

/// Parameters of a search.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchParams {
    /// Number of results (1..=[`MAX_K`](super::MAX_K)).
    pub k: usize,
    /// HNSW candidate list size (1..=[`MAX_EF`](super::MAX_EF)); `None` uses the
    /// collection's default.
    pub ef: Option<usize>,
    /// Catalog filter.
    pub filter: Option<Filter>,
    /// Search strategy.
    pub strategy: Strategy,
    /// Objects never returned.
    pub exclude_ids: Vec<u64>,
    /// For searches from a stored object: also return the object itself.
    pub include_self: bool,
}

impl SearchParams {
    /// `k` results with every other setting at its default.
    pub fn new(k: usize) -> Self {
        SearchParams {
            k,
            ef: None,
            filter: None,
            strategy: Strategy::Auto,
            exclude_ids: Vec::new(),
            include_self: false,
        }
    }
    /// Sets the filter (builder style).
    pub fn with_filter(mut self, filter: Filter) -> Self {
        self.filter = Some(filter);
        self
    }
    /// Sets `ef` (builder style).
    pub fn with_ef(mut self, ef: usize) -> Self {
        self.ef = Some(ef);
        self
    }
    /// Sets the strategy (builder style).
    pub fn with_strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }
}

/// One search result.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    /// Object id.
    pub id: u64,
    /// Cosine similarity with the query, in [-1, 1].
    pub score: f32,
}

/// A k-NN estimate of a numeric attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// Distance-weighted mean of the neighbours' values (weights 1/d, d the
    /// Euclidean distance between unit vectors, as in the AstroCLIP zero-shot protocol).
    pub value: f64,
    /// Weighted standard deviation of the neighbours' values (same weights).
    pub spread: f64,
    /// 16th percentile of the neighbours' values.
    pub p16: f64,
    /// 84th percentile of the neighbours' values.
    pub p84: f64,
    /// The neighbours used, best first, with their values.
    pub neighbours: Vec<(Hit, f64)>,
}

/// An object found by a cone search.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ConeHit {
    /// Object id.
    pub id: u64,
    /// Angular separation from the cone centre, degrees.
    pub separation_deg: f64,
}

/// Per-modality statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModalityStats {
    /// Modality name.
    pub name: String,
    /// Embedding dimension.
    pub dim: usize,
    /// Live embeddings.
    pub vectors: u64,
    /// Rows in the vector file (live + tombstoned).
    pub rows: u64,
    /// Tombstoned rows.
    pub dead_rows: u64,
    /// Rows covered by the HNSW graph; rows past this are scanned exactly.
    pub indexed_rows: u64,
    /// Nodes in the HNSW graph.
    pub graph_points: u64,
    /// True when the graph was loaded from disk at open.
    pub graph_loaded: bool,
    /// Nodes inserted into the graph by this process (0 after open: nothing rebuilt).
    pub graph_inserts: u64,
}

/// Collection statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectionStats {
    /// Live objects.
    pub objects: u64,
    /// One entry per modality.
    pub modalities: Vec<ModalityStats>,
}

/// What an index build did for one modality.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexReport {
    /// Modality name.
    pub modality: String,
    /// Rows inserted into the graph.
    pub inserted: u64,
    /// Nodes in the graph afterwards.
    pub graph_points: u64,
    /// Wall time, seconds.
    pub seconds: f64,
}
