//! One HNSW graph per modality (`hnsw_rs`), persisted beside the vector files and
//! loaded — not rebuilt — on open.
//!
//! Graph node ids are vector-file row numbers. Saving is crash-safe by
//! generations: a build dumps `<modality>.g<N>.hnsw.{graph,data}`, then atomically
//! replaces `<modality>.graph.meta`, which names the generation, the rows it covers
//! and CRC-32s of both files; only then are older generations deleted. An
//! interrupted save therefore leaves the previous generation in force. The meta
//! file is ours (magic, format version, checksum), so a damaged or foreign graph is
//! reported with its path before the library ever reads it.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use hnsw_rs::prelude::{AnnT, FilterT, Hnsw, HnswIo};
use serde::{Deserialize, Serialize};

use crate::config::HnswConfig;
use crate::distance::CosineDistance;
use crate::error::{Error, Result};

const META_MAGIC: &[u8; 8] = b"ASTROGPH";
/// Format version of graph meta files written by this build.
pub const GRAPH_FORMAT_VERSION: u32 = 1;
/// Upper bound on HNSW layers (the library's own maximum is 16).
const MAX_LAYERS: usize = 16;

/// What `<modality>.graph.meta` records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct GraphMeta {
    /// Generation number of the files in force.
    pub generation: u64,
    /// Basename the library used for the dump (files are `<basename>.hnsw.{graph,data}`).
    pub basename: String,
    /// Rows `[0, indexed_rows)` of the vector file were offered to the graph
    /// (dead rows may have been left out).
    pub indexed_rows: u64,
    /// Number of nodes in the graph.
    pub points: u64,
    /// CRC-32 of the `.hnsw.graph` file.
    pub graph_crc: u32,
    /// CRC-32 of the `.hnsw.data` file.
    pub data_crc: u32,
}

/// An HNSW graph over one modality's rows.
pub(crate) struct Graph {
    hnsw: Hnsw<'static, f32, CosineDistance>,
    /// Nodes inserted by this process (0 right after a load: nothing was rebuilt).
    inserted: AtomicU64,
}

impl Graph {
    /// A new, empty graph.
    pub fn new(cfg: &HnswConfig, expected_points: usize) -> Self {
        Graph {
            hnsw: Hnsw::new(
                cfg.m,
                expected_points.max(1024),
                MAX_LAYERS,
                cfg.ef_construction,
                CosineDistance,
            ),
            inserted: AtomicU64::new(0),
        }
    }

    /// Inserts rows in parallel (rayon). Safe while other threads search.
    pub fn insert(&self, rows: &[(&[f32], usize)]) {
        let batch: Vec<(&[f32], usize)> = rows.to_vec();
        self.hnsw.parallel_insert_slice(&batch);
        self.inserted
            .fetch_add(rows.len() as u64, Ordering::Relaxed);
    }

    /// Nodes inserted by this process since the graph was created or loaded.
    pub fn inserted_here(&self) -> u64 {
        self.inserted.load(Ordering::Relaxed)
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.hnsw.get_nb_point()
    }

    /// The `k` nearest rows to `query` (unit vector) with cosine distances. With a
    /// filter, only admitted rows are returned (the library applies it during the
    /// traversal, which then cannot stop early: use it only when needed).
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        filter: Option<&dyn FilterT>,
    ) -> Vec<(u32, f32)> {
        if self.len() == 0 {
            return Vec::new();
        }
        self.hnsw
            // ef >= 2 guarantees the library never empties its result heap under a
            // filter that rejects the entry point (it would then panic).
            .search_filter(query, k, ef.max(k).max(2), filter)
            .into_iter()
            .map(|n| (n.d_id as u32, n.distance))
            .collect()
    }

    /// Saves a new generation into `dir` and makes it current.
    pub fn save(&self, dir: &Path, modality: &str, indexed_rows: u64) -> Result<GraphMeta> {
        let meta_path = meta_path(dir, modality);
        let previous = read_meta(&meta_path)?;
        let generation = previous.as_ref().map_or(1, |m| m.generation + 1);
        let wanted = format!("{modality}.g{generation}");
        let basename = self
            .hnsw
            .file_dump(dir, &wanted)
            .map_err(|e| Error::Graph {
                path: dir.join(&wanted),
                message: e.to_string(),
            })?;
        let graph_file = dir.join(format!("{basename}.hnsw.graph"));
        let data_file = dir.join(format!("{basename}.hnsw.data"));
        for f in [&graph_file, &data_file] {
            fs::File::open(f)
                .and_then(|f| f.sync_all())
                .map_err(|e| Error::io(f, e))?;
        }
        let meta = GraphMeta {
            generation,
            basename,
            indexed_rows,
            points: self.len() as u64,
            graph_crc: file_crc(&graph_file)?,
            data_crc: file_crc(&data_file)?,
        };
        write_meta(&meta_path, &meta)?;
        if let Some(old) = previous {
            for ext in ["hnsw.graph", "hnsw.data"] {
                // Best effort: a leftover old generation is harmless, just disk space.
                let _ = fs::remove_file(dir.join(format!("{}.{ext}", old.basename)));
            }
        }
        Ok(meta)
    }

    /// Loads the current generation, verifying checksums first. `Ok(None)` when
    /// the modality has never been indexed.
    pub fn load(dir: &Path, modality: &str) -> Result<Option<(Graph, GraphMeta)>> {
        let meta_path = meta_path(dir, modality);
        let Some(meta) = read_meta(&meta_path)? else {
            return Ok(None);
        };
        let graph_file = dir.join(format!("{}.hnsw.graph", meta.basename));
        let data_file = dir.join(format!("{}.hnsw.data", meta.basename));
        for (file, want) in [(&graph_file, meta.graph_crc), (&data_file, meta.data_crc)] {
            if !file.exists() {
                return Err(Error::corrupt(
                    file,
                    "graph file named by the meta file is missing",
                ));
            }
            if file_crc(file)? != want {
                return Err(Error::corrupt(file, "checksum mismatch"));
            }
        }
        // The library keeps a borrow of its loader for the graph's lifetime (it may
        // serve vectors from a mapping it owns). Leaking the small loader gives the
        // graph a 'static lifetime; it costs a few hundred bytes per open.
        let loader: &'static mut HnswIo = Box::leak(Box::new(HnswIo::new(dir, &meta.basename)));
        // The library asserts on malformed input; checksums make that unlikely, but
        // a panic must still become an error rather than take the process down.
        let mut slot = Some(loader);
        let loaded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // Taking the 'static borrow out of the Option (rather than reborrowing a
            // captured variable) lets the loaded graph keep it.
            slot.take()
                .expect("loader is used once")
                .load_hnsw::<f32, CosineDistance>()
        }));
        let hnsw = match loaded {
            Ok(Ok(h)) => h,
            Ok(Err(e)) => {
                return Err(Error::Graph {
                    path: graph_file,
                    message: e.to_string(),
                })
            }
            Err(_) => {
                return Err(Error::corrupt(
                    &graph_file,
                    "the HNSW library rejected the file",
                ))
            }
        };
        if hnsw.get_nb_point() as u64 != meta.points {
            return Err(Error::corrupt(
                &graph_file,
                format!(
                    "holds {} nodes, meta says {}",
                    hnsw.get_nb_point(),
                    meta.points
                ),
            ));
        }
        Ok(Some((
            Graph {
                hnsw,
                inserted: AtomicU64::new(0),
            },
            meta,
        )))
    }
}

/// Removes a modality's graph (meta file first, so an interruption leaves no
/// meta pointing at missing files).
pub(crate) fn remove(dir: &Path, modality: &str) -> Result<()> {
    let meta_path = meta_path(dir, modality);
    let Some(meta) = read_meta(&meta_path)? else {
        return Ok(());
    };
    fs::remove_file(&meta_path).map_err(|e| Error::io(&meta_path, e))?;
    for ext in ["hnsw.graph", "hnsw.data"] {
        // Best effort: leftovers are only disk space.
        let _ = fs::remove_file(dir.join(format!("{}.{ext}", meta.basename)));
    }
    Ok(())
}

/// Path of a modality's graph meta file.
pub(crate) fn meta_path(dir: &Path, modality: &str) -> PathBuf {
    dir.join(format!("{modality}.graph.meta"))
}

fn file_crc(path: &Path) -> Result<u32> {
    let mut f = fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize())
}

fn read_meta(path: &Path) -> Result<Option<GraphMeta>> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    if bytes.len() < 16 || &bytes[0..8] != META_MAGIC {
        return Err(Error::corrupt(
            path,
            "not an astrovec graph meta file (bad magic)",
        ));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().unwrap()) {
        return Err(Error::corrupt(path, "checksum mismatch"));
    }
    let version = u32::from_le_bytes(body[8..12].try_into().unwrap());
    if version != GRAPH_FORMAT_VERSION {
        return Err(Error::corrupt(
            path,
            format!("graph format version {version}, this build reads {GRAPH_FORMAT_VERSION}"),
        ));
    }
    crate::codec::decode(&body[12..])
        .map(Some)
        .map_err(|e| Error::corrupt(path, e))
}

fn write_meta(path: &Path, meta: &GraphMeta) -> Result<()> {
    let mut bytes = META_MAGIC.to_vec();
    bytes.extend_from_slice(&GRAPH_FORMAT_VERSION.to_le_bytes());
    bytes.extend_from_slice(&crate::codec::encode(meta));
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    crate::storage::write_atomic(path, &bytes)
}
