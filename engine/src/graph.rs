//! One HNSW graph per modality (the engine's own, [`crate::hnsw`]), persisted beside
//! the vector files and loaded — not rebuilt — on open.
//!
//! Graph node ids are vector-file row numbers. Saving is crash-safe by
//! generations: a build writes `<modality>.g<N>.hnsw.graph`, then atomically
//! replaces `<modality>.graph.meta`, which names the generation, the rows it covers
//! and the graph file's CRC-32; only then are older generations deleted. An
//! interrupted save therefore leaves the previous generation in force. A damaged
//! file is reported with its path (checksum first, then a structural check of every
//! neighbour id) before any search could read it.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::config::HnswConfig;
use crate::error::{Error, Result};
use crate::hnsw::{Bits, Hnsw};
use crate::search::RowFilter;
use crate::vectors::VectorView;

const META_MAGIC: &[u8; 8] = b"ASTROGPH";
/// Format version of graph meta files written (and the only one read) by this
/// build. Version 1 was never released; a meta file of any other version is
/// refused with an error naming the file and the version.
const GRAPH_FORMAT_VERSION: u32 = 2;

/// What `<modality>.graph.meta` records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct GraphMeta {
    /// Generation number of the file in force.
    pub generation: u64,
    /// Basename of the graph file (`<basename>.hnsw.graph`).
    pub basename: String,
    /// Rows `[0, indexed_rows)` of the vector file were offered to the graph
    /// (dead rows may have been left out).
    pub indexed_rows: u64,
    /// Number of nodes in the graph.
    pub points: u64,
    /// CRC-32 of the `.hnsw.graph` file.
    pub graph_crc: u32,
}

/// An HNSW graph over one modality's rows.
pub(crate) struct Graph {
    hnsw: Hnsw,
    /// Nodes inserted by this process (0 right after a load: nothing was rebuilt).
    inserted: AtomicU64,
}

impl Graph {
    /// A graph over rows `[0, rows)`: `base` (if any) extended with `new_rows`
    /// (live rows at or past `base`'s span), inserted in parallel (rayon). The base
    /// is copied, not modified, so searches on it continue meanwhile.
    pub fn build(
        cfg: &HnswConfig,
        base: Option<&Graph>,
        view: &VectorView,
        rows: u32,
        new_rows: &[u32],
    ) -> Self {
        let mut hnsw = Hnsw::extend(
            base.map(|g| &g.hnsw),
            cfg.m,
            cfg.ef_construction,
            view.dim(),
            rows as usize,
            new_rows,
        );
        hnsw.insert(view, new_rows);
        hnsw.attach_half(view);
        Graph {
            hnsw,
            inserted: AtomicU64::new(base.map_or(0, |g| g.inserted_here()) + new_rows.len() as u64),
        }
    }

    /// Nodes inserted by this process since the graph was created or loaded.
    pub fn inserted_here(&self) -> u64 {
        self.inserted.load(Ordering::Relaxed)
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.hnsw.len()
    }

    /// Bytes of graph structure in memory (vectors excluded: they stay in the file).
    pub fn memory_bytes(&self) -> usize {
        self.hnsw.memory_bytes()
    }

    /// Bytes of the half-float copy of the vectors the traversal reads.
    pub fn half_bytes(&self) -> usize {
        self.hnsw.half_bytes()
    }

    /// The `k` nearest rows to `query` (unit vector) with cosine distances. With a
    /// filter, only admitted rows are scored and returned (the traversal steps over
    /// rejected rows to their neighbours).
    pub fn search(
        &self,
        view: &VectorView,
        query: &[f32],
        k: usize,
        ef: usize,
        filter: Option<&RowFilter>,
    ) -> Vec<(u32, f32)> {
        match filter {
            Some(f) => {
                let bits = Bits::new(f.limit.min(self.hnsw.rows() as u32), f.allowed, f.deny);
                self.hnsw.search(view, query, k, ef, Some(&bits))
            }
            None => self.hnsw.search(view, query, k, ef, None),
        }
    }

    /// Saves a new generation into `dir` and makes it current.
    pub fn save(&self, dir: &Path, modality: &str, indexed_rows: u64) -> Result<GraphMeta> {
        let meta_path = meta_path(dir, modality);
        let previous = read_meta(&meta_path)?;
        let generation = previous.as_ref().map_or(1, |m| m.generation + 1);
        let basename = format!("{modality}.g{generation}");
        let graph_file = graph_path(dir, &basename);
        let bytes = self.hnsw.to_bytes();
        fs::write(&graph_file, &bytes)
            .and_then(|_| fs::File::open(&graph_file)?.sync_all())
            .map_err(|e| Error::io(&graph_file, e))?;
        let meta = GraphMeta {
            generation,
            basename,
            indexed_rows,
            points: self.len() as u64,
            graph_crc: crc32fast::hash(&bytes),
        };
        write_meta(&meta_path, &meta)?;
        if let Some(old) = previous {
            // Best effort: a leftover old generation is only disk space.
            let _ = fs::remove_file(graph_path(dir, &old.basename));
        }
        Ok(meta)
    }

    /// Loads the current generation, verifying its checksum and structure first.
    /// `Ok(None)` when the modality has never been indexed. `view` is the
    /// modality's vector file (it must hold the rows the graph covers).
    pub fn load(
        dir: &Path,
        modality: &str,
        view: &VectorView,
    ) -> Result<Option<(Graph, GraphMeta)>> {
        let meta_path = meta_path(dir, modality);
        let Some(meta) = read_meta(&meta_path)? else {
            return Ok(None);
        };
        let graph_file = graph_path(dir, &meta.basename);
        if !graph_file.exists() {
            return Err(Error::corrupt(
                &graph_file,
                "graph file named by the meta file is missing",
            ));
        }
        let bytes = fs::read(&graph_file).map_err(|e| Error::io(&graph_file, e))?;
        if crc32fast::hash(&bytes) != meta.graph_crc {
            return Err(Error::corrupt(&graph_file, "checksum mismatch"));
        }
        let mut hnsw =
            Hnsw::from_bytes(&bytes, view.dim()).map_err(|e| Error::corrupt(&graph_file, e))?;
        if hnsw.len() as u64 != meta.points
            || (hnsw.rows() as u64) > meta.indexed_rows
            || hnsw.rows() > view.mapped_rows()
        {
            return Err(Error::corrupt(
                &graph_file,
                format!(
                    "holds {} nodes over {} rows, meta says {} nodes over {} rows",
                    hnsw.len(),
                    hnsw.rows(),
                    meta.points,
                    meta.indexed_rows
                ),
            ));
        }
        hnsw.attach_half(view);
        Ok(Some((
            Graph {
                hnsw,
                inserted: AtomicU64::new(0),
            },
            meta,
        )))
    }
}

/// Path of a generation's graph file.
fn graph_path(dir: &Path, basename: &str) -> PathBuf {
    dir.join(format!("{basename}.hnsw.graph"))
}

/// Removes a modality's graph (meta file first, so an interruption leaves no
/// meta pointing at missing files).
pub(crate) fn remove(dir: &Path, modality: &str) -> Result<()> {
    let meta_path = meta_path(dir, modality);
    let Some(meta) = read_meta(&meta_path)? else {
        return Ok(());
    };
    fs::remove_file(&meta_path).map_err(|e| Error::io(&meta_path, e))?;
    // Best effort, as in `Graph::save`.
    let _ = fs::remove_file(graph_path(dir, &meta.basename));
    Ok(())
}

/// Path of a modality's graph meta file.
pub(crate) fn meta_path(dir: &Path, modality: &str) -> PathBuf {
    dir.join(format!("{modality}.graph.meta"))
}

/// The meta file at `path`; `Ok(None)` when there is none.
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

/// Writes a meta file atomically (magic, version, body, CRC-32 of what precedes).
fn write_meta(path: &Path, meta: &GraphMeta) -> Result<()> {
    let mut bytes = META_MAGIC.to_vec();
    bytes.extend_from_slice(&GRAPH_FORMAT_VERSION.to_le_bytes());
    bytes.extend_from_slice(&crate::codec::encode(meta));
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    crate::storage::write_atomic(path, &bytes)
}
