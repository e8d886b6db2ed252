//! What the handlers share: the open collections (each with its lazily loaded
//! model and cached summaries), the limits, the keys and the metrics; and the one
//! helper through which every engine or encoder call leaves the async runtime.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use astrovec_encoders::{AnyEncoder, Encoder};
use astrovec_engine::Collection;
use parking_lot::Mutex;
use tokio::sync::Semaphore;

use crate::error::{ApiError, ApiResult};
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
    fn default() -> Self {
        ServerConfig {
            max_body_bytes: 16 << 20,
            max_k: 1000,
            max_ef: 4000,
            max_batch: 256,
            max_cone_rows: 10_000,
            request_timeout: Duration::from_secs(30),
            max_concurrency: std::thread::available_parallelism()
                .map(|n| n.get() * 2)
                .unwrap_or(4),
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

/// A served collection.
pub struct CollectionHandle {
    /// Name in URLs.
    pub name: String,
    /// The open collection.
    pub collection: Collection,
    /// The model the collection was embedded with (loaded on first upload).
    encoder: Mutex<Option<Arc<Mutex<AnyEncoder>>>>,
    /// Bumped on every write through the API, so cached summaries are recomputed.
    generation: AtomicU64,
    /// Attribute summaries (collection info).
    pub(crate) attributes: Mutex<Option<Cached<crate::api::AttributeSummaries>>>,
    /// Embedding maps by (modality, points).
    pub(crate) maps: Mutex<BTreeMap<(String, usize), Cached<crate::map::Projection>>>,
}

impl CollectionHandle {
    /// Wraps an open collection.
    pub fn new(name: impl Into<String>, collection: Collection) -> Self {
        CollectionHandle {
            name: name.into(),
            collection,
            encoder: Mutex::new(None),
            generation: AtomicU64::new(0),
            attributes: Mutex::new(None),
            maps: Mutex::new(BTreeMap::new()),
        }
    }

    /// Directory of the collection's model (`config.json` + `model.safetensors`).
    pub fn encoder_dir(&self) -> PathBuf {
        self.collection.dir().join("encoder")
    }

    /// The collection's model, loaded from [`CollectionHandle::encoder_dir`] once.
    /// Blocking: call from [`AppState::blocking`].
    pub fn encoder(&self) -> ApiResult<Arc<Mutex<AnyEncoder>>> {
        let mut slot = self.encoder.lock();
        if let Some(e) = slot.as_ref() {
            return Ok(e.clone());
        }
        let dir = self.encoder_dir();
        if !dir.join("model.safetensors").exists() {
            return Err(ApiError::Forbidden(format!(
                "collection `{}` has no model in {} (config.json + model.safetensors), so \
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
    /// and answer other requests.
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
    dir.join("db").is_dir() && dir.join("vectors").is_dir()
}
