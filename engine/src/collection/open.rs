//! Creating, opening (with recovery of the in-memory state from RocksDB, the
//! vector files and the saved graphs) and deleting a collection directory.

use std::path::Path;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use roaring::RoaringBitmap;

use super::filter_cache::FilterCache;
use super::records::{rows_key, Manifest, ObjectRecord, MANIFEST_KEY};
use super::{Collection, ModalityState, State, FORMAT_VERSION};
use crate::catalog::{Catalog, NONE};
use crate::codec;
use crate::config::CollectionConfig;
use crate::error::{Error, Result};
use crate::graph::{self, Graph};
use crate::layout;
use crate::storage::{Batch, Store, CF_META, CF_OBJECTS};
use crate::vectors::{row_crc, VectorFile};

/// True when `dir` holds the collection's RocksDB database (its `CURRENT` file).
fn holds_database(dir: &Path) -> bool {
    dir.join(layout::DB_DIR).join("CURRENT").exists()
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
        batch.put(&store, CF_META, MANIFEST_KEY, &codec::encode(&manifest));
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
        if !holds_database(&dir) {
            return Err(Error::NotACollection {
                path: dir,
                reason: format!("it has no {}/ database", layout::DB_DIR),
            });
        }
        let db_path = dir.join(layout::DB_DIR);
        let store = Store::open(&db_path, false)?;
        let manifest: Manifest = match store.get(CF_META, MANIFEST_KEY)? {
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
        let mut modalities = Vec::new();
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
            let view = file.view();
            let (graph, indexed) = match Graph::load(&graph_dir, &m.name, &view)? {
                Some((g, meta)) => {
                    if meta.indexed_rows > n as u64 {
                        return Err(Error::corrupt(
                            graph::meta_path(&graph_dir, &m.name),
                            format!(
                                "graph covers {} rows, only {n} are committed",
                                meta.indexed_rows
                            ),
                        ));
                    }
                    (Some(Arc::new(g)), meta.indexed_rows as u32)
                }
                None => (None, 0),
            };
            files.push(file);
            modalities.push(ModalityState {
                view,
                rows: n,
                graph_loaded: graph.is_some(),
                graph,
                indexed,
            });
        }
        let mut catalog = Catalog::new(&config);
        let mut owned = vec![RoaringBitmap::new(); config.modalities.len()];
        for (m, ms) in modalities.iter().enumerate() {
            catalog.row_slot[m] = vec![NONE; ms.rows as usize];
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
                    let ms = &modalities[m];
                    if row >= ms.rows {
                        return Err(Error::corrupt(
                            path,
                            format!("object {id} points at uncommitted row {row}"),
                        ));
                    }
                    // Rows added since the last graph build are the ones a crash could
                    // have touched most recently; check them on every open.
                    if row >= ms.indexed && row_crc(ms.view.row(row)) != crc {
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
        for (m, ms) in modalities.iter().enumerate() {
            let mut dead = RoaringBitmap::new();
            dead.insert_range(0..ms.rows);
            dead -= &owned[m];
            catalog.dead_rows[m] = dead;
        }
        Ok(Collection {
            dir,
            config,
            store,
            state: RwLock::new(State {
                catalog,
                modalities,
            }),
            writer: Mutex::new(files),
            filter_cache: Mutex::new(FilterCache::default()),
        })
    }

    /// Deletes a collection directory after checking it is one.
    pub fn drop_collection(dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        if !holds_database(dir) || !dir.join(layout::VECTORS_DIR).is_dir() {
            return Err(Error::NotACollection {
                path: dir.to_path_buf(),
                reason: "refusing to delete a directory that is not a collection".into(),
            });
        }
        std::fs::remove_dir_all(dir).map_err(|e| Error::io(dir, e))
    }
}
