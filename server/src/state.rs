//! What the handlers share: the open collections (each with its lazily loaded
//! model and cached summaries), the limits, the keys and the metrics; and the one
//! helper through which every engine or encoder call leaves the async runtime.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use astrovec_encoders::model::astroclip::{CONFIG_FILE, WEIGHTS_FILE};
use astrovec_encoders::{AnyEncoder, Encoder};
use astrovec_engine::layout::{encoder_dir, DB_DIR, VECTORS_DIR};
use astrovec_engine::{Collection, CollectionConfig};
use parking_lot::Mutex;
use tokio::sync::Semaphore;

use crate::attributes::{attribute_summaries, AttributeSummaries};
use crate::error::{ApiError, ApiResult};
use crate::limits;
use crate::map::pca::Projection;
use crate::metrics::Metrics;

/// Limits and switches of a server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest request body, bytes.
    pub max_body_bytes: usize,
    /// Largest `k` (results per query) a request may ask for.
    pub max_k: usize,
    /// Largest `ef` (HNSW candidate list) a request may ask for.
    pub max_ef: usize,
    /// Most queries in one batch request.
    pub max_batch: usize,
    /// Most rows a cone search (SCS or export) returns.
    pub max_cone_rows: usize,
    /// Per-request time limit.
    pub request_timeout: Duration,
    /// Engine / encoder calls running at once (more wait their turn, within the timeout).
    pub max_concurrency: usize,
    /// Bearer key for writes (PUT / DELETE); `None` disables writes.
    pub api_key: Option<String>,
    /// Bearer key for reads; `None` leaves reads open. The write key also reads.
    pub read_key: Option<String>,
}

impl Default for ServerConfig {
    /// The defaults of [`limits`], no keys (writes disabled, reads open).
    fn default() -> Self {
        ServerConfig {
            max_body_bytes: limits::DEFAULT_MAX_BODY_MIB << 20,
            max_k: limits::DEFAULT_MAX_K,
            max_ef: limits::DEFAULT_MAX_EF,
            max_batch: limits::DEFAULT_MAX_BATCH,
            max_cone_rows: limits::DEFAULT_MAX_CONE_ROWS,
            request_timeout: limits::default_request_timeout(),
            max_concurrency: limits::default_max_concurrency(),
            api_key: None,
            read_key: None,
        }
    }
}

/// Attribute ranges and other per-collection summaries that need a full scan,
/// cached until the next write.
#[derive(Debug, Clone)]
pub struct Cached<T> {
    /// Write generation the value was computed at.
    pub generation: u64,
    /// The value.
    pub value: Arc<T>,
}

/// Values computed by a full scan of a collection, by key, each kept until the
/// collection's next write.
pub(crate) struct ScanCache<K, V> {
    slots: Mutex<BTreeMap<K, Cached<V>>>,
}

impl<K: Ord, V> ScanCache<K, V> {
    fn new() -> Self {
        ScanCache {
            slots: Mutex::new(BTreeMap::new()),
        }
    }

    /// The value of `key` computed at `generation`, computing it (outside the lock,
    /// so other keys stay readable meanwhile) when missing or stale.
    pub(crate) fn get_or_compute(
        &self,
        key: K,
        generation: u64,
        compute: impl FnOnce() -> ApiResult<V>,
    ) -> ApiResult<Arc<V>> {
        if let Some(c) = self.slots.lock().get(&key) {
            if c.generation == generation {
                return Ok(c.value.clone());
            }
        }
        let value = Arc::new(compute()?);
        self.slots.lock().insert(
            key,
            Cached {
                generation,
                value: value.clone(),
            },
        );
        Ok(value)
    }
}

thread_local! {
    /// Set while [`AppState::blocking`] runs a closure on this thread.
    static ON_POOL: Cell<bool> = const { Cell::new(false) };
}

/// Marks the current thread as running pool work until dropped; the drop also
/// runs when the work panics, because pool threads are reused.
struct OnPool {
    previous: bool,
}

impl OnPool {
    fn enter() -> Self {
        OnPool {
            previous: ON_POOL.replace(true),
        }
    }
}

impl Drop for OnPool {
    fn drop(&mut self) {
        ON_POOL.set(self.previous);
    }
}

/// Whether the current thread is running work handed to [`AppState::blocking`].
pub fn on_blocking_pool() -> bool {
    ON_POOL.get()
}

/// Refuses `what` off the blocking pool: an engine or encoder call made from an
/// async handler would stall a runtime worker and escape the concurrency limit.
fn require_pool(what: &str) -> ApiResult<()> {
    if on_blocking_pool() {
        return Ok(());
    }
    debug_assert!(false, "{what} used outside AppState::blocking");
    Err(ApiError::Internal(format!(
        "{what} used outside the blocking pool"
    )))
}

/// A served collection.
pub struct CollectionHandle {
    /// Name in URLs.
    pub name: String,
    /// The open collection; handed out only on the blocking pool
    /// ([`CollectionHandle::collection`]).
    collection: Collection,
    /// The model the collection was embedded with (loaded on first upload).
    encoder: Mutex<Option<Arc<Mutex<AnyEncoder>>>>,
    /// Bumped on every write through the API, so cached summaries are recomputed.
    generation: AtomicU64,
    /// Attribute summaries (collection info).
    attributes: ScanCache<(), AttributeSummaries>,
    /// Embedding maps by (modality, points).
    pub(crate) maps: ScanCache<(String, usize), Projection>,
}

impl CollectionHandle {
    /// Wraps an open collection.
    pub fn new(name: impl Into<String>, collection: Collection) -> Self {
        CollectionHandle {
            name: name.into(),
            collection,
            encoder: Mutex::new(None),
            generation: AtomicU64::new(0),
            attributes: ScanCache::new(),
            maps: ScanCache::new(),
        }
    }

    /// The open collection. Only inside [`AppState::blocking`]: anywhere else this is
    /// an internal error (and a panic in debug builds), so an engine call that
    /// bypasses the pool fails the tests that exercise it.
    pub fn collection(&self) -> ApiResult<&Collection> {
        require_pool("the collection")?;
        Ok(&self.collection)
    }

    /// The collection's configuration: fixed at creation and held in memory, so
    /// readable anywhere (no storage access, no lock).
    pub fn config(&self) -> &CollectionConfig {
        self.collection.config()
    }

    /// `requested`, or else `preferred` when the collection has that modality,
    /// or else its first modality.
    pub fn modality_or(&self, requested: Option<&str>, preferred: &str) -> String {
        if let Some(m) = requested {
            return m.to_string();
        }
        let known = &self.config().modalities;
        if known.iter().any(|k| k.name == preferred) {
            preferred.to_string()
        } else {
            known.first().map(|k| k.name.clone()).unwrap_or_default()
        }
    }

    /// Directory of the collection's model ([`CONFIG_FILE`] + [`WEIGHTS_FILE`]).
    pub fn encoder_dir(&self) -> PathBuf {
        encoder_dir(self.collection.dir())
    }

    /// Whether the collection stores a model, so uploads can be embedded (a file
    /// check: call from [`AppState::blocking`]).
    pub fn has_encoder(&self) -> bool {
        self.encoder_dir().join(WEIGHTS_FILE).exists()
    }

    /// The collection's model, loaded from [`CollectionHandle::encoder_dir`] once.
    /// Only inside [`AppState::blocking`], like [`CollectionHandle::collection`].
    pub fn encoder(&self) -> ApiResult<Arc<Mutex<AnyEncoder>>> {
        require_pool("the encoder")?;
        let mut slot = self.encoder.lock();
        if let Some(e) = slot.as_ref() {
            return Ok(e.clone());
        }
        let dir = self.encoder_dir();
        if !self.has_encoder() {
            return Err(ApiError::Forbidden(format!(
                "collection `{}` has no model in {} ({CONFIG_FILE} + {WEIGHTS_FILE}), so \
                 uploads cannot be embedded; query by id, position or vector instead",
                self.name,
                dir.display()
            )));
        }
        let enc = Encoder::load_dir(&dir, &Default::default())
            .map_err(|e| ApiError::Encoder(format!("loading {}: {e}", dir.display())))?;
        let any = Arc::new(Mutex::new(AnyEncoder::Cpu(Box::new(enc))));
        *slot = Some(any.clone());
        Ok(any)
    }

    /// Attribute summaries, computed by a full scan on first use and after each
    /// write (blocking: call from [`AppState::blocking`]).
    pub fn attribute_summaries(&self) -> ApiResult<Arc<AttributeSummaries>> {
        self.attributes.get_or_compute((), self.generation(), || {
            attribute_summaries(self.collection()?)
        })
    }

    /// The current write generation.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Marks cached summaries stale (after a write).
    pub fn touch(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

/// Shared state of the server.
#[derive(Clone)]
pub struct AppState {
    /// Served collections by name.
    pub collections: Arc<BTreeMap<String, Arc<CollectionHandle>>>,
    /// Limits and keys.
    pub config: Arc<ServerConfig>,
    /// Request counters and latencies.
    pub metrics: Arc<Metrics>,
    /// Bounds the engine / encoder calls running at once.
    permits: Arc<Semaphore>,
}

impl AppState {
    /// State over already open collections.
    pub fn new(collections: Vec<CollectionHandle>, config: ServerConfig) -> Self {
        Self::shared(collections.into_iter().map(Arc::new).collect(), config)
    }

    /// State over collections that other states may share (e.g. one collection
    /// served with different limits in tests).
    pub fn shared(collections: Vec<Arc<CollectionHandle>>, config: ServerConfig) -> Self {
        let permits = Arc::new(Semaphore::new(config.max_concurrency.max(1)));
        AppState {
            collections: Arc::new(
                collections
                    .into_iter()
                    .map(|c| (c.name.clone(), c))
                    .collect(),
            ),
            config: Arc::new(config),
            metrics: Arc::new(Metrics::default()),
            permits,
        }
    }

    /// The named collection, or a 404 naming the served ones.
    pub fn collection(&self, name: &str) -> ApiResult<Arc<CollectionHandle>> {
        self.collections
            .get(name)
            .cloned()
            .ok_or_else(|| ApiError::UnknownCollection {
                name: name.into(),
                known: self
                    .collections
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Runs blocking work (engine, encoder, file formats) on tokio's blocking pool,
    /// at most `max_concurrency` at a time, so the async workers stay free to accept
    /// and answer other requests. The only place [`CollectionHandle::collection`] and
    /// [`CollectionHandle::encoder`] answer.
    pub async fn blocking<T, F>(&self, f: F) -> ApiResult<T>
    where
        F: FnOnce() -> ApiResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ApiError::Internal("the work queue is closed".into()))?;
        let out = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let _on_pool = OnPool::enter();
            f()
        })
        .await;
        match out {
            Ok(r) => r,
            Err(e) => Err(ApiError::Internal(format!("blocking task failed: {e}"))),
        }
    }
}

/// Opens the collections under `dir`: `dir` itself when it is a collection (served
/// under its directory name), otherwise every immediate subdirectory that is one
/// (served under the subdirectory's name; other entries are skipped with a log line).
pub fn open_collections(dir: &Path) -> Result<Vec<CollectionHandle>, astrovec_engine::Error> {
    let name_of = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "default".into())
    };
    if is_collection(dir) {
        let c = Collection::open(dir)?;
        let canonical = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        return Ok(vec![CollectionHandle::new(name_of(&canonical), c)]);
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| astrovec_engine::Error::Io {
            path: dir.to_path_buf(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    entries.sort();
    let mut out = Vec::new();
    for p in entries {
        if !is_collection(&p) {
            tracing::info!(path = %p.display(), "skipped: not a collection");
            continue;
        }
        out.push(CollectionHandle::new(name_of(&p), Collection::open(&p)?));
    }
    Ok(out)
}

/// A collection directory has a RocksDB `db/` and a `vectors/` directory.
fn is_collection(dir: &Path) -> bool {
    dir.join(DB_DIR).is_dir() && dir.join(VECTORS_DIR).is_dir()
}
