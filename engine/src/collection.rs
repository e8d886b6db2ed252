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

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Mutex, RwLock};
use rayon::prelude::*;
use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};

use crate::catalog::{AttrValue, Catalog, NONE};
use crate::codec;
use crate::config::{AttributeKind, CollectionConfig};
use crate::distance::normalize;
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::graph::Graph;
use crate::layout;
use crate::search::{exact_top_k, RowFilter};
use crate::sky;
use crate::storage::{Batch, Store, CF_BLOBS, CF_META, CF_OBJECTS};
use crate::vectors::{row_crc, VectorFile, VectorView};

/// Format version of a collection directory written by this build.
pub const FORMAT_VERSION: u32 = 1;
/// Largest `k` a search accepts.
pub const MAX_K: usize = 10_000;
/// Largest blob (thumbnail, spectrum preview) stored with an object, in bytes.
pub const MAX_BLOB_BYTES: usize = 4 << 20;
/// Below this many candidate rows the automatic strategy scans exactly.
const EXACT_ROWS: u64 = 4096;
/// With a catalog filter, the automatic strategy scans up to this many candidate
/// rows exactly (recall 1, and about as fast as the filtered graph search there).
const FILTER_EXACT_ROWS: u64 = 8192;
/// Filters keeping less than 1 / this of the indexed rows are scanned exactly: the
/// filtered traversal steps two hops over rejected rows, and below ~5% the
/// admitted rows are too sparse for that to stay connected.
const FILTER_GRAPH_MIN_FRACTION_INV: u64 = 20;

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
    /// Number of results (1..=[`MAX_K`]).
    pub k: usize,
    /// HNSW candidate list size; `None` uses the collection's default.
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

#[derive(Serialize, Deserialize)]
struct Manifest {
    format_version: u32,
    config: CollectionConfig,
}

#[derive(Serialize, Deserialize)]
struct ObjectRecord {
    ra: f64,
    dec: f64,
    attrs: Vec<(String, AttrValue)>,
    /// Per modality (config order): (row, CRC-32 of the row's bytes).
    vectors: Vec<Option<(u32, u32)>>,
}

struct Prepared {
    id: u64,
    ra: f64,
    dec: f64,
    attrs: Vec<Option<AttrValue>>,
    vectors: Vec<Option<Vec<f32>>>,
    blobs: Vec<(String, Vec<u8>)>,
}

struct State {
    catalog: Catalog,
    views: Vec<VectorView>,
    n_rows: Vec<u32>,
    graphs: Vec<Option<Arc<Graph>>>,
    indexed: Vec<u32>,
    graph_loaded: Vec<bool>,
}

/// Filters whose admitted rows are kept between searches (per modality).
const FILTER_CACHE_ENTRIES: usize = 64;

/// Rows admitted by recently used filters, valid for one catalog generation.
///
/// Why: evaluating a filter walks an attribute column over every object (about a
/// millisecond per 100,000 objects), more than a filtered HNSW search or the exact
/// scan of a 1% selection costs. A portal or a survey script sends the same cut with
/// many queries, so the evaluated rows are kept until the catalog changes.
#[derive(Default)]
struct FilterCache {
    generation: u64,
    /// `(modality, filter in Debug form)` → admitted rows, with the use it was last hit at.
    entries: HashMap<(usize, String), (u64, Arc<RoaringBitmap>)>,
    uses: u64,
}

impl FilterCache {
    fn get(&mut self, generation: u64, key: &(usize, String)) -> Option<Arc<RoaringBitmap>> {
        if self.generation != generation {
            self.entries.clear();
            self.generation = generation;
            return None;
        }
        self.uses += 1;
        let uses = self.uses;
        self.entries.get_mut(key).map(|(used, rows)| {
            *used = uses;
            Arc::clone(rows)
        })
    }

    fn put(&mut self, generation: u64, key: (usize, String), rows: Arc<RoaringBitmap>) {
        if self.generation != generation {
            self.entries.clear();
            self.generation = generation;
        }
        if self.entries.len() >= FILTER_CACHE_ENTRIES {
            // Least recently used goes.
            if let Some(old) = self
                .entries
                .iter()
                .min_by_key(|(_, (used, _))| *used)
                .map(|(k, _)| k.clone())
            {
                self.entries.remove(&old);
            }
        }
        self.uses += 1;
        self.entries.insert(key, (self.uses, rows));
    }
}

/// An open collection. Cheap to share across threads (`Arc<Collection>`): searches
/// run concurrently; writes are serialised internally.
pub struct Collection {
    dir: PathBuf,
    config: CollectionConfig,
    store: Store,
    state: RwLock<State>,
    writer: Mutex<Vec<VectorFile>>,
    filter_cache: Mutex<FilterCache>,
}

fn id_key(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

fn rows_key(modality: &str) -> Vec<u8> {
    format!("rows/{modality}").into_bytes()
}

impl Collection {
    /// Creates a collection in `dir` (which must not exist or be empty) and opens it.
    pub fn create(dir: impl AsRef<Path>, config: CollectionConfig) -> Result<Self> {
        let dir = dir.as_ref();
        config.validate()?;
        if dir.exists() {
            let mut entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
            if entries.next().is_some() {
                return Err(Error::AlreadyExists(dir.to_path_buf()));
            }
        }
        for sub in [layout::VECTORS_DIR, layout::GRAPHS_DIR] {
            let p = dir.join(sub);
            std::fs::create_dir_all(&p).map_err(|e| Error::io(&p, e))?;
        }
        for m in &config.modalities {
            VectorFile::create(&layout::vector_file(dir, &m.name), m.dim)?;
        }
        let store = Store::open(&dir.join(layout::DB_DIR), true)?;
        let mut batch = Batch::default();
        let manifest = Manifest {
            format_version: FORMAT_VERSION,
            config: config.clone(),
        };
        for m in &config.modalities {
            batch.put(&store, CF_META, &rows_key(&m.name), &0u64.to_le_bytes());
        }
        // The manifest goes last in the same atomic batch: its presence marks a
        // completely created collection.
        batch.put(&store, CF_META, b"manifest", &codec::encode(&manifest));
        store.commit(batch)?;
        drop(store);
        Self::open(dir)
    }

    /// Opens an existing collection, loading (not rebuilding) its HNSW graphs.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        if !dir.is_dir() {
            return Err(Error::NotACollection {
                path: dir,
                reason: "no such directory".into(),
            });
        }
        let db_path = dir.join(layout::DB_DIR);
        if !db_path.join("CURRENT").exists() {
            return Err(Error::NotACollection {
                path: dir,
                reason: "it has no db/ database".into(),
            });
        }
        let store = Store::open(&db_path, false)?;
        let manifest: Manifest = match store.get(CF_META, b"manifest")? {
            None => {
                return Err(Error::NotACollection {
                    path: dir,
                    reason: "the database has no manifest".into(),
                })
            }
            Some(bytes) => codec::decode(&bytes)
                .map_err(|e| Error::corrupt(&db_path, format!("manifest: {e}")))?,
        };
        if manifest.format_version != FORMAT_VERSION {
            return Err(Error::corrupt(
                &db_path,
                format!(
                    "collection format version {}, this build reads {FORMAT_VERSION}",
                    manifest.format_version
                ),
            ));
        }
        let config = manifest.config;
        config.validate()?;
        let mut files = Vec::new();
        let mut n_rows = Vec::new();
        let mut graphs = Vec::new();
        let mut indexed = Vec::new();
        let mut graph_loaded = Vec::new();
        let graph_dir = dir.join(layout::GRAPHS_DIR);
        for m in &config.modalities {
            let n = match store.get(CF_META, &rows_key(&m.name))? {
                Some(b) if b.len() == 8 => u64::from_le_bytes(b.try_into().unwrap()),
                _ => {
                    return Err(Error::corrupt(
                        &db_path,
                        format!("row count of `{}` missing", m.name),
                    ))
                }
            };
            let n = u32::try_from(n).map_err(|_| Error::corrupt(&db_path, "row count overflow"))?;
            let file = VectorFile::open(&layout::vector_file(&dir, &m.name), m.dim, n as usize)?;
            let loaded = Graph::load(&graph_dir, &m.name, &file.view())?;
            files.push(file);
            n_rows.push(n);
            match loaded {
                Some((g, meta)) => {
                    if meta.indexed_rows > n as u64 {
                        return Err(Error::corrupt(
                            crate::graph::meta_path(&graph_dir, &m.name),
                            format!(
                                "graph covers {} rows, only {n} are committed",
                                meta.indexed_rows
                            ),
                        ));
                    }
                    indexed.push(meta.indexed_rows as u32);
                    graphs.push(Some(Arc::new(g)));
                    graph_loaded.push(true);
                }
                None => {
                    indexed.push(0);
                    graphs.push(None);
                    graph_loaded.push(false);
                }
            }
        }
        let views: Vec<VectorView> = files.iter().map(|f| f.view()).collect();
        let mut catalog = Catalog::new(&config);
        let mut owned = vec![RoaringBitmap::new(); config.modalities.len()];
        for (m, n) in n_rows.iter().enumerate() {
            catalog.row_slot[m] = vec![NONE; *n as usize];
        }
        store.for_each(CF_OBJECTS, |k, v| {
            let id = u64::from_be_bytes(
                k.try_into()
                    .map_err(|_| Error::corrupt(&db_path, "object key is not 8 bytes"))?,
            );
            let rec: ObjectRecord = codec::decode(v)
                .map_err(|e| Error::corrupt(&db_path, format!("object {id}: {e}")))?;
            let mut attrs = vec![None; config.attributes.len()];
            for (name, value) in rec.attrs {
                let a = config.attribute_index(&name).map_err(|_| {
                    Error::corrupt(
                        &db_path,
                        format!("object {id}: undeclared attribute `{name}`"),
                    )
                })?;
                attrs[a] = Some(value);
            }
            if rec.vectors.len() != config.modalities.len() {
                return Err(Error::corrupt(
                    &db_path,
                    format!("object {id}: wrong number of modalities"),
                ));
            }
            let mut rows = vec![NONE; config.modalities.len()];
            for (m, entry) in rec.vectors.iter().enumerate() {
                if let Some((row, crc)) = *entry {
                    let path = layout::vector_file(&dir, &config.modalities[m].name);
                    if row >= n_rows[m] {
                        return Err(Error::corrupt(
                            path,
                            format!("object {id} points at uncommitted row {row}"),
                        ));
                    }
                    // Rows added since the last graph build are the ones a crash could
                    // have touched most recently; check them on every open.
                    if row >= indexed[m] && row_crc(views[m].row(row)) != crc {
                        return Err(Error::corrupt(
                            path,
                            format!("row {row} (object {id}) checksum mismatch"),
                        ));
                    }
                    owned[m].insert(row);
                    rows[m] = row;
                }
            }
            catalog.apply_upsert(id, rec.ra, rec.dec, &attrs, &rows);
            Ok(())
        })?;
        for (m, n) in n_rows.iter().enumerate() {
            let mut dead = RoaringBitmap::new();
            dead.insert_range(0..*n);
            dead -= &owned[m];
            catalog.dead_rows[m] = dead;
        }
        Ok(Collection {
            dir,
            config,
            store,
            state: RwLock::new(State {
                catalog,
                views,
                n_rows,
                graphs,
                indexed,
                graph_loaded,
            }),
            writer: Mutex::new(files),
            filter_cache: Mutex::new(FilterCache::default()),
        })
    }

    /// Deletes a collection directory after checking it is one.
    pub fn drop_collection(dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        let db = dir.join(layout::DB_DIR);
        if !db.join("CURRENT").exists() || !dir.join(layout::VECTORS_DIR).is_dir() {
            return Err(Error::NotACollection {
                path: dir.to_path_buf(),
                reason: "refusing to delete a directory that is not a collection".into(),
            });
        }
        std::fs::remove_dir_all(dir).map_err(|e| Error::io(dir, e))
    }

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

    fn prepare(&self, o: &Object) -> Result<Prepared> {
        sky::check_position(o.ra, o.dec)?;
        let mut attrs = vec![None; self.config.attributes.len()];
        for (name, value) in &o.attributes {
            let a = self.config.attribute_index(name)?;
            let def = &self.config.attributes[a];
            let value = match (def.kind, value) {
                (AttributeKind::Float, AttrValue::Float(v)) => AttrValue::Float(*v),
                (AttributeKind::Float, AttrValue::Int(v)) => AttrValue::Float(*v as f64),
                (AttributeKind::Int, AttrValue::Int(v)) => AttrValue::Int(*v),
                (AttributeKind::Category, AttrValue::Category(s)) => AttrValue::Category(s.clone()),
                (kind, v) => {
                    return Err(Error::AttributeType {
                        name: name.clone(),
                        expected: format!("a {} attribute", kind.name()),
                        got: v.type_name().into(),
                    })
                }
            };
            if let AttrValue::Float(v) = value {
                if !v.is_finite() {
                    return Err(Error::invalid(
                        format!("attribute `{name}` of object {}", o.id),
                        "value must be finite (omit the attribute for a missing value)",
                    ));
                }
            }
            attrs[a] = Some(value);
        }
        let mut vectors = vec![None; self.config.modalities.len()];
        for (name, v) in &o.embeddings {
            let m = self.config.modality_index(name)?;
            vectors[m] = Some(self.prepare_vector(m, v)?);
        }
        for (name, bytes) in &o.blobs {
            if name.is_empty() || name.len() > 64 {
                return Err(Error::invalid(
                    "blob name",
                    format!("`{name}` must be 1–64 bytes"),
                ));
            }
            if bytes.len() > MAX_BLOB_BYTES {
                return Err(Error::invalid(
                    format!("blob `{name}` of object {}", o.id),
                    format!(
                        "{} bytes exceeds the {MAX_BLOB_BYTES}-byte limit",
                        bytes.len()
                    ),
                ));
            }
        }
        Ok(Prepared {
            id: o.id,
            ra: o.ra,
            dec: o.dec,
            attrs,
            vectors,
            blobs: o
                .blobs
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
    }

    /// Checks a vector for modality `m` and returns its unit-norm copy.
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
        Ok(out)
    }

    /// Inserts or replaces one object. Durable when it returns.
    pub fn upsert(&self, object: Object) -> Result<()> {
        self.upsert_batch(std::slice::from_ref(&object))
    }

    /// Inserts or replaces objects atomically (all or none). An object replaces any
    /// stored object with the same id: attributes and embeddings are replaced
    /// wholesale; blobs given here are replaced, other blobs are kept. Within one
    /// batch a later duplicate id wins. Durable when it returns.
    pub fn upsert_batch(&self, objects: &[Object]) -> Result<()> {
        let prepared = objects
            .iter()
            .map(|o| self.prepare(o))
            .collect::<Result<Vec<_>>>()?;
        if prepared.is_empty() {
            return Ok(());
        }
        let mut files = self.writer.lock();
        let mut next = self.state.read().n_rows.clone();
        let mut assigned: Vec<Vec<(u32, u32)>> = Vec::with_capacity(prepared.len());
        let mut touched = vec![false; next.len()];
        for p in &prepared {
            let mut rows = Vec::new();
            for (m, v) in p.vectors.iter().enumerate() {
                match v {
                    Some(v) => {
                        let row = next[m];
                        next[m] = row.checked_add(1).ok_or_else(|| {
                            Error::invalid("rows", "vector file is full (2^32 rows)")
                        })?;
                        files[m].write_row(row, v)?;
                        touched[m] = true;
                        rows.push((row, row_crc(v)));
                    }
                    None => rows.push((NONE, 0)),
                }
            }
            assigned.push(rows);
        }
        for (m, t) in touched.iter().enumerate() {
            if *t {
                files[m].sync()?;
            }
        }
        let mut batch = Batch::default();
        for (p, rows) in prepared.iter().zip(&assigned) {
            let rec = ObjectRecord {
                ra: p.ra,
                dec: p.dec,
                attrs: p
                    .attrs
                    .iter()
                    .enumerate()
                    .filter_map(|(a, v)| {
                        v.clone()
                            .map(|v| (self.config.attributes[a].name.clone(), v))
                    })
                    .collect(),
                vectors: rows
                    .iter()
                    .map(|&(r, c)| (r != NONE).then_some((r, c)))
                    .collect(),
            };
            batch.put(&self.store, CF_OBJECTS, &id_key(p.id), &codec::encode(&rec));
            for (name, bytes) in &p.blobs {
                batch.put(&self.store, CF_BLOBS, &blob_key(p.id, name), bytes);
            }
        }
        for (m, t) in touched.iter().enumerate() {
            if *t {
                let name = &self.config.modalities[m].name;
                batch.put(
                    &self.store,
                    CF_META,
                    &rows_key(name),
                    &(next[m] as u64).to_le_bytes(),
                );
            }
        }
        self.store.commit(batch)?;
        let mut st = self.state.write();
        for (m, t) in touched.iter().enumerate() {
            if *t {
                st.n_rows[m] = next[m];
                st.views[m] = files[m].view();
                st.catalog.row_slot[m].resize(next[m] as usize, NONE);
            }
        }
        for (p, rows) in prepared.iter().zip(&assigned) {
            let rows: Vec<u32> = rows.iter().map(|r| r.0).collect();
            st.catalog.apply_upsert(p.id, p.ra, p.dec, &p.attrs, &rows);
        }
        Ok(())
    }

    /// Deletes objects (tombstones their embeddings). Returns how many existed.
    /// Durable when it returns.
    pub fn delete(&self, ids: &[u64]) -> Result<usize> {
        let _files = self.writer.lock();
        let live: Vec<u64> = {
            let st = self.state.read();
            ids.iter()
                .copied()
                .filter(|id| st.catalog.live_slot(*id).is_some())
                .collect()
        };
        if live.is_empty() {
            return Ok(0);
        }
        let mut batch = Batch::default();
        for id in &live {
            batch.delete(&self.store, CF_OBJECTS, &id_key(*id));
            for key in self.store.keys_with_prefix(CF_BLOBS, &id_key(*id))? {
                batch.delete(&self.store, CF_BLOBS, &key);
            }
        }
        self.store.commit(batch)?;
        let mut st = self.state.write();
        for id in &live {
            st.catalog.remove(*id);
        }
        Ok(live.len())
    }

    /// The stored object.
    pub fn get(&self, id: u64) -> Result<StoredObject> {
        let bytes = self
            .store
            .get(CF_OBJECTS, &id_key(id))?
            .ok_or(Error::NotFound(id))?;
        let rec: ObjectRecord = codec::decode(&bytes)
            .map_err(|e| Error::corrupt(self.store.path(), format!("object {id}: {e}")))?;
        let blobs = self
            .store
            .keys_with_prefix(CF_BLOBS, &id_key(id))?
            .into_iter()
            .map(|k| String::from_utf8_lossy(&k[8..]).into_owned())
            .collect();
        Ok(StoredObject {
            id,
            ra: rec.ra,
            dec: rec.dec,
            attributes: rec.attrs.into_iter().collect(),
            modalities: rec
                .vectors
                .iter()
                .zip(&self.config.modalities)
                .filter(|(v, _)| v.is_some())
                .map(|(_, m)| m.name.clone())
                .collect(),
            blobs,
        })
    }

    /// A blob of an object, if present.
    pub fn get_blob(&self, id: u64, name: &str) -> Result<Option<Vec<u8>>> {
        self.store.get(CF_BLOBS, &blob_key(id, name))
    }

    /// The stored (unit-norm) embedding of an object.
    pub fn get_embedding(&self, id: u64, modality: &str) -> Result<Vec<f32>> {
        let m = self.config.modality_index(modality)?;
        let st = self.state.read();
        embedding_in(&st, m, id, modality).map(|v| v.to_vec())
    }

    /// Ids of live objects (in no particular order).
    pub fn ids(&self) -> Vec<u64> {
        let st = self.state.read();
        st.catalog
            .alive
            .iter()
            .map(|s| st.catalog.ids[s as usize])
            .collect()
    }

    /// Ids of live objects matching a filter.
    pub fn filter_ids(&self, filter: &Filter) -> Result<Vec<u64>> {
        let st = self.state.read();
        let slots = st.catalog.evaluate(filter, &self.config)?;
        Ok(slots.iter().map(|s| st.catalog.ids[s as usize]).collect())
    }

    /// Nearest neighbours of `query` among the `modality` embeddings, by cosine
    /// similarity, best first.
    pub fn search(&self, query: &[f32], modality: &str, params: &SearchParams) -> Result<Vec<Hit>> {
        let m = self.config.modality_index(modality)?;
        self.check_params(params)?;
        let q = self.prepare_vector(m, query)?;
        let st = self.state.read();
        self.search_in(&st, m, &q, params)
    }

    /// Many searches at once (parallel over queries), all on one snapshot.
    pub fn search_batch(
        &self,
        queries: &[Vec<f32>],
        modality: &str,
        params: &SearchParams,
    ) -> Result<Vec<Vec<Hit>>> {
        let m = self.config.modality_index(modality)?;
        self.check_params(params)?;
        let qs = queries
            .iter()
            .map(|q| self.prepare_vector(m, q))
            .collect::<Result<Vec<_>>>()?;
        let guard = self.state.read();
        let st: &State = &guard;
        qs.par_iter()
            .map(|q| self.search_in(st, m, q, params))
            .collect()
    }

    /// Neighbours of a stored object: its `from` embedding searched among the `to`
    /// embeddings (image→spectrum etc.). The object itself is excluded unless
    /// `params.include_self`.
    pub fn search_by_id(
        &self,
        id: u64,
        from: &str,
        to: &str,
        params: &SearchParams,
    ) -> Result<Vec<Hit>> {
        let mf = self.config.modality_index(from)?;
        let mt = self.config.modality_index(to)?;
        self.check_params(params)?;
        let st = self.state.read();
        let q = embedding_in(&st, mf, id, from)?.to_vec();
        let mut p = Cow::Borrowed(params);
        if !params.include_self {
            p.to_mut().exclude_ids.push(id);
        }
        self.search_in(&st, mt, &q, &p)
    }

    fn check_params(&self, p: &SearchParams) -> Result<()> {
        if p.k == 0 || p.k > MAX_K {
            return Err(Error::invalid(
                "k",
                format!("{} is outside 1..={MAX_K}", p.k),
            ));
        }
        if let Some(ef) = p.ef {
            if ef == 0 || ef > 10 * MAX_K {
                return Err(Error::invalid(
                    "ef",
                    format!("{ef} is outside 1..={}", 10 * MAX_K),
                ));
            }
        }
        Ok(())
    }

    /// Rows of modality `m` whose objects pass `filter`, from the cache when the
    /// catalog has not changed since they were evaluated.
    fn filter_rows(&self, cat: &Catalog, m: usize, filter: &Filter) -> Result<Arc<RoaringBitmap>> {
        let key = (m, format!("{filter:?}"));
        let generation = cat.generation();
        if let Some(rows) = self.filter_cache.lock().get(generation, &key) {
            return Ok(rows);
        }
        // Evaluated outside the cache lock so concurrent searches with other
        // filters are not serialised behind it.
        let rows = Arc::new(cat.rows_of(m, &cat.evaluate(filter, &self.config)?));
        self.filter_cache
            .lock()
            .put(generation, key, Arc::clone(&rows));
        Ok(rows)
    }

    fn search_in(
        &self,
        st: &State,
        m: usize,
        q: &[f32],
        params: &SearchParams,
    ) -> Result<Vec<Hit>> {
        let cat = &st.catalog;
        let allowed_rows = match &params.filter {
            Some(f) => Some(self.filter_rows(cat, m, f)?),
            None => None,
        };
        let deny: Cow<RoaringBitmap> = if params.exclude_ids.is_empty() {
            Cow::Borrowed(&cat.dead_rows[m])
        } else {
            let mut d = cat.dead_rows[m].clone();
            for id in &params.exclude_ids {
                if let Some(s) = cat.live_slot(*id) {
                    let r = cat.rows[m][s as usize];
                    if r != NONE {
                        d.insert(r);
                    }
                }
            }
            Cow::Owned(d)
        };
        let n = st.n_rows[m];
        let graph = st.graphs[m].as_ref().filter(|_| st.indexed[m] > 0);
        let candidates = allowed_rows.as_ref().map_or(n as u64, |a| a.len());
        let use_graph = match params.strategy {
            Strategy::Exact => false,
            Strategy::Hnsw => graph.is_some(),
            // Narrow filters (few candidate rows, or under 5% of the indexed rows)
            // are answered by scanning just those rows exactly; broader ones by the
            // filtered graph traversal.
            Strategy::Auto => {
                graph.is_some()
                    && candidates > EXACT_ROWS
                    && (allowed_rows.is_none()
                        || (candidates > FILTER_EXACT_ROWS
                            && candidates * FILTER_GRAPH_MIN_FRACTION_INV >= st.indexed[m] as u64))
            }
        };
        let k = params.k;
        let view = &st.views[m];
        let mut found: Vec<(u32, f32)> = if let (true, Some(g)) = (use_graph, graph) {
            let indexed = st.indexed[m];
            let graph_filter = RowFilter {
                allowed: allowed_rows.as_deref(),
                deny: &deny,
                limit: indexed,
            };
            let ef = params.ef.unwrap_or(self.config.hnsw.ef_search);
            let admitted = |raw: Vec<(u32, f32)>| -> Vec<(u32, f32)> {
                raw.into_iter()
                    // Nodes past `indexed` may appear while a build is running; the
                    // exact tail scan below covers them.
                    .filter(|(r, _)| graph_filter.admits(*r))
                    .map(|(r, d)| (r, 1.0 - d))
                    .collect()
            };
            // Without a catalog filter (or, in Auto mode, with one keeping at least
            // 30% of the rows) an unfiltered traversal asks for enough extra results
            // to absorb the rows the filter rejects (and tombstones), falling back
            // to the filtered traversal if they were not enough.
            let oversample = match (&allowed_rows, params.strategy) {
                (None, _) => Some(1.0),
                (Some(a), Strategy::Auto) if a.len() * 10 >= st.indexed[m] as u64 * 3 => {
                    Some((2.0 * st.indexed[m] as f64 / a.len().max(1) as f64).min(8.0))
                }
                (Some(_), _) => None,
            };
            let mut hits = match oversample {
                Some(factor) => {
                    let want =
                        (k as f64 * factor).ceil() as usize + (deny.len() as usize).min(k.max(16));
                    let raw = g.search(view, q, want, ef, None);
                    let full = raw.len() == want;
                    let kept = admitted(raw);
                    if kept.len() < k && full {
                        admitted(g.search(view, q, k, ef, Some(&graph_filter)))
                    } else {
                        kept
                    }
                }
                None => admitted(g.search(view, q, k, ef, Some(&graph_filter))),
            };
            let tail = RowFilter {
                allowed: allowed_rows.as_deref(),
                deny: &deny,
                limit: n,
            };
            let tail_rows = tail.rows_from(indexed);
            if !tail_rows.is_empty() {
                hits.extend(exact_top_k(view, q, &tail_rows, k));
            }
            hits
        } else {
            let all = RowFilter {
                allowed: allowed_rows.as_deref(),
                deny: &deny,
                limit: n,
            };
            exact_top_k(view, q, &all.rows_from(0), k)
        };
        // Scores from the graph are 1 - clamped distance; recompute exactly so both
        // paths report identical similarities for the same object.
        for h in &mut found {
            h.1 = crate::distance::dot(q, view.row(h.0));
        }
        let mut hits: Vec<Hit> = found
            .into_iter()
            .map(|(r, score)| Hit {
                id: cat.ids[cat.row_slot[m][r as usize] as usize],
                score,
            })
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
        hits.dedup_by_key(|h| h.id);
        hits.truncate(k);
        Ok(hits)
    }

    /// k-NN estimate of a numeric attribute for a query vector: the distance-weighted
    /// mean over the `k` nearest `modality` neighbours that have the attribute.
    pub fn predict(
        &self,
        query: &[f32],
        modality: &str,
        attribute: &str,
        params: &SearchParams,
    ) -> Result<Estimate> {
        let m = self.config.modality_index(modality)?;
        self.check_params(params)?;
        let q = self.prepare_vector(m, query)?;
        let st = self.state.read();
        self.predict_in(&st, m, &q, attribute, params)
    }

    /// k-NN estimate for a stored object (excluded from its own neighbours).
    pub fn predict_by_id(
        &self,
        id: u64,
        from: &str,
        to: &str,
        attribute: &str,
        params: &SearchParams,
    ) -> Result<Estimate> {
        let mf = self.config.modality_index(from)?;
        let mt = self.config.modality_index(to)?;
        self.check_params(params)?;
        let st = self.state.read();
        let q = embedding_in(&st, mf, id, from)?.to_vec();
        let mut p = params.clone();
        p.exclude_ids.push(id);
        self.predict_in(&st, mt, &q, attribute, &p)
    }

    fn predict_in(
        &self,
        st: &State,
        m: usize,
        q: &[f32],
        attribute: &str,
        params: &SearchParams,
    ) -> Result<Estimate> {
        let a = self.config.attribute_index(attribute)?;
        if self.config.attributes[a].kind == AttributeKind::Category {
            return Err(Error::AttributeType {
                name: attribute.into(),
                expected: "a numeric attribute for k-NN estimation".into(),
                got: "a category".into(),
            });
        }
        let has = Filter::Has(attribute.into());
        let mut p = params.clone();
        p.filter = Some(match p.filter.take() {
            Some(f) => f.and(has),
            None => has,
        });
        let hits = self.search_in(st, m, q, &p)?;
        let cat = &st.catalog;
        let neighbours: Vec<(Hit, f64)> = hits
            .into_iter()
            .filter_map(|h| {
                let slot = cat.live_slot(h.id)?;
                cat.number(a, slot).map(|v| (h, v))
            })
            .collect();
        if neighbours.is_empty() {
            return Err(Error::invalid(
                "attribute",
                format!("no neighbour has a value for `{}`", cat.attr_name(a)),
            ));
        }
        Ok(weighted_estimate(neighbours))
    }

    /// Objects within `radius_deg` of (`ra`, `dec`) (ICRS degrees), nearest first,
    /// at most `limit`.
    pub fn cone_search(
        &self,
        ra: f64,
        dec: f64,
        radius_deg: f64,
        limit: usize,
    ) -> Result<Vec<ConeHit>> {
        let st = self.state.read();
        let slots = st.catalog.evaluate(
            &Filter::Cone {
                ra_deg: ra,
                dec_deg: dec,
                radius_deg,
            },
            &self.config,
        )?;
        let mut hits: Vec<ConeHit> = slots
            .iter()
            .map(|s| ConeHit {
                id: st.catalog.ids[s as usize],
                separation_deg: sky::separation_deg(
                    ra,
                    dec,
                    st.catalog.ra[s as usize],
                    st.catalog.dec[s as usize],
                ),
            })
            .collect();
        hits.sort_by(|a, b| {
            a.separation_deg
                .total_cmp(&b.separation_deg)
                .then(a.id.cmp(&b.id))
        });
        hits.truncate(limit);
        Ok(hits)
    }

    /// Folds rows added since the last build into each modality's HNSW graph and
    /// saves the graphs. Searches continue meanwhile; writes wait.
    pub fn build_index(&self) -> Result<Vec<IndexReport>> {
        self.index_all(false)
    }

    /// Rebuilds every graph from the live rows only, dropping tombstoned nodes.
    pub fn optimize(&self) -> Result<Vec<IndexReport>> {
        self.index_all(true)
    }

    fn index_all(&self, rebuild: bool) -> Result<Vec<IndexReport>> {
        let _files = self.writer.lock();
        (0..self.config.modalities.len())
            .map(|m| self.index_modality(m, rebuild))
            .collect()
    }

    fn index_modality(&self, m: usize, rebuild: bool) -> Result<IndexReport> {
        let start = Instant::now();
        let name = self.config.modalities[m].name.clone();
        let (view, n, dead, indexed, existing) = {
            let st = self.state.read();
            (
                st.views[m].clone(),
                st.n_rows[m],
                st.catalog.dead_rows[m].clone(),
                st.indexed[m],
                st.graphs[m].clone(),
            )
        };
        let (base, from) = match existing {
            Some(g) if !rebuild => (Some(g), indexed),
            _ => (None, 0),
        };
        if from == n && base.as_ref().is_some_and(|g| g.len() > 0) {
            return Ok(IndexReport {
                modality: name,
                inserted: 0,
                graph_points: base.map_or(0, |g| g.len() as u64),
                seconds: start.elapsed().as_secs_f64(),
            });
        }
        let rows: Vec<u32> = (from..n).filter(|r| !dead.contains(*r)).collect();
        let graph = Arc::new(Graph::build(
            &self.config.hnsw,
            base.as_deref(),
            &view,
            n,
            &rows,
        ));
        if graph.len() == 0 {
            // Nothing live to index: drop any previous graph so every search of
            // this modality scans exactly.
            crate::graph::remove(&self.dir.join(layout::GRAPHS_DIR), &name)?;
            let mut st = self.state.write();
            st.graphs[m] = None;
            st.indexed[m] = 0;
            return Ok(IndexReport {
                modality: name,
                inserted: 0,
                graph_points: 0,
                seconds: start.elapsed().as_secs_f64(),
            });
        }
        graph.save(&self.dir.join(layout::GRAPHS_DIR), &name, n as u64)?;
        let mut st = self.state.write();
        st.graphs[m] = Some(graph.clone());
        st.indexed[m] = n;
        Ok(IndexReport {
            modality: name,
            inserted: rows.len() as u64,
            graph_points: graph.len() as u64,
            seconds: start.elapsed().as_secs_f64(),
        })
    }

    /// Checks every live row against its stored checksum. Returns the number of rows checked.
    pub fn verify(&self) -> Result<u64> {
        let st = self.state.read();
        let mut checked = 0;
        let mut failure = None;
        self.store.for_each(CF_OBJECTS, |k, v| {
            let id = u64::from_be_bytes(k.try_into().unwrap_or([0; 8]));
            let rec: ObjectRecord =
                codec::decode(v).map_err(|e| Error::corrupt(self.store.path(), e))?;
            for (m, entry) in rec.vectors.iter().enumerate() {
                if let Some((row, crc)) = *entry {
                    checked += 1;
                    if row >= st.n_rows[m] || row_crc(st.views[m].row(row)) != crc {
                        failure.get_or_insert_with(|| {
                            Error::corrupt(
                                layout::vector_file(&self.dir, &self.config.modalities[m].name),
                                format!("row {row} (object {id}) checksum mismatch"),
                            )
                        });
                    }
                }
            }
            Ok(())
        })?;
        match failure {
            Some(e) => Err(e),
            None => Ok(checked),
        }
    }

    /// Bytes of HNSW graph structure a modality holds in memory (neighbour lists,
    /// levels, offsets, locks; the vectors themselves stay in the memory-mapped
    /// vector file, `dim × 4` bytes per row). 0 when the modality has no graph.
    pub fn graph_memory_bytes(&self, modality: &str) -> Result<u64> {
        let m = self.config.modality_index(modality)?;
        let st = self.state.read();
        Ok(st.graphs[m].as_ref().map_or(0, |g| g.memory_bytes() as u64))
    }

    /// Bytes of the half-float copy of a modality's indexed vectors that the HNSW
    /// traversal reads (`dim × 2` per indexed row; candidates are then rescored
    /// from the f32 vector file). 0 when the modality has no graph or the CPU
    /// lacks F16C (the traversal then reads the f32 rows).
    pub fn traversal_copy_bytes(&self, modality: &str) -> Result<u64> {
        let m = self.config.modality_index(modality)?;
        let st = self.state.read();
        Ok(st.graphs[m].as_ref().map_or(0, |g| g.half_bytes() as u64))
    }

    /// Sizes and index state.
    pub fn stats(&self) -> CollectionStats {
        let st = self.state.read();
        CollectionStats {
            objects: st.catalog.len(),
            modalities: self
                .config
                .modalities
                .iter()
                .enumerate()
                .map(|(m, mc)| {
                    let dead = st.catalog.dead_rows[m].len();
                    ModalityStats {
                        name: mc.name.clone(),
                        dim: mc.dim,
                        vectors: st.n_rows[m] as u64 - dead,
                        rows: st.n_rows[m] as u64,
                        dead_rows: dead,
                        indexed_rows: st.indexed[m] as u64,
                        graph_points: st.graphs[m].as_ref().map_or(0, |g| g.len() as u64),
                        graph_loaded: st.graph_loaded[m],
                        graph_inserts: st.graphs[m].as_ref().map_or(0, |g| g.inserted_here()),
                    }
                })
                .collect(),
        }
    }
}

fn embedding_in<'a>(st: &'a State, m: usize, id: u64, modality: &str) -> Result<&'a [f32]> {
    let slot = st.catalog.live_slot(id).ok_or(Error::NotFound(id))?;
    let row = st.catalog.rows[m][slot as usize];
    if row == NONE {
        return Err(Error::MissingEmbedding {
            id,
            modality: modality.into(),
        });
    }
    Ok(st.views[m].row(row))
}

fn blob_key(id: u64, name: &str) -> Vec<u8> {
    let mut k = id_key(id).to_vec();
    k.extend_from_slice(name.as_bytes());
    k
}

/// Distance-weighted k-NN estimate. Weights are 1/d with d the Euclidean distance
/// between unit vectors (`sqrt(2 - 2 cos)`); exact matches (d = 0), if any, take all
/// the weight, as scikit-learn's `weights="distance"` does.
fn weighted_estimate(neighbours: Vec<(Hit, f64)>) -> Estimate {
    let dist: Vec<f64> = neighbours
        .iter()
        .map(|(h, _)| (2.0f64 - 2.0 * h.score as f64).max(0.0).sqrt())
        .collect();
    let exact = dist.iter().any(|d| *d < 1e-9);
    let w: Vec<f64> = dist
        .iter()
        .map(|d| {
            if exact {
                if *d < 1e-9 {
                    1.0
                } else {
                    0.0
                }
            } else {
                1.0 / d
            }
        })
        .collect();
    let wsum: f64 = w.iter().sum();
    let mean = neighbours
        .iter()
        .zip(&w)
        .map(|((_, v), w)| v * w)
        .sum::<f64>()
        / wsum;
    let var = neighbours
        .iter()
        .zip(&w)
        .map(|((_, v), w)| w * (v - mean).powi(2))
        .sum::<f64>()
        / wsum;
    let mut values: Vec<f64> = neighbours.iter().map(|(_, v)| *v).collect();
    values.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        let pos = p * (values.len() - 1) as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        values[lo] + (values[hi] - values[lo]) * (pos - lo as f64)
    };
    Estimate {
        value: mean,
        spread: var.sqrt(),
        p16: pct(0.16),
        p84: pct(0.84),
        neighbours,
    }
}
