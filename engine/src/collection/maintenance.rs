//! Index maintenance and introspection: building and rebuilding the HNSW graphs,
//! verifying every row's checksum, memory figures and statistics.

use std::sync::Arc;
use std::time::Instant;

use super::records::ObjectRecord;
use super::types::{CollectionStats, IndexReport, ModalityStats};
use super::Collection;
use crate::codec;
use crate::error::{Error, Result};
use crate::graph::{self, Graph};
use crate::layout;
use crate::storage::CF_OBJECTS;
use crate::vectors::row_crc;

impl Collection {
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

    /// Indexes modality `m`: extends its graph with the rows written since the last
    /// build, or with `rebuild` builds it afresh from the live rows.
    fn index_modality(&self, m: usize, rebuild: bool) -> Result<IndexReport> {
        let start = Instant::now();
        let name = self.config.modalities[m].name.clone();
        let (view, n, dead, indexed, existing) = {
            let st = self.state.read();
            let ms = &st.modalities[m];
            (
                ms.view.clone(),
                ms.rows,
                st.catalog.dead_rows[m].clone(),
                ms.indexed,
                ms.graph.clone(),
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
            graph::remove(&self.dir.join(layout::GRAPHS_DIR), &name)?;
            let mut st = self.state.write();
            let ms = &mut st.modalities[m];
            ms.graph = None;
            ms.indexed = 0;
            return Ok(IndexReport {
                modality: name,
                inserted: 0,
                graph_points: 0,
                seconds: start.elapsed().as_secs_f64(),
            });
        }
        graph.save(&self.dir.join(layout::GRAPHS_DIR), &name, n as u64)?;
        let mut st = self.state.write();
        let ms = &mut st.modalities[m];
        ms.graph = Some(graph.clone());
        ms.indexed = n;
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
                    let ms = &st.modalities[m];
                    if row < ms.rows && ms.view.row(row).iter().any(|x| !x.is_finite()) {
                        failure.get_or_insert_with(|| {
                            Error::corrupt(
                                layout::vector_file(&self.dir, &self.config.modalities[m].name),
                                format!("row {row} (object {id}) holds a non-finite value"),
                            )
                        });
                    } else if row >= ms.rows || row_crc(ms.view.row(row)) != crc {
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
        Ok(st.modalities[m]
            .graph
            .as_ref()
            .map_or(0, |g| g.memory_bytes() as u64))
    }

    /// Bytes of the half-float copy of a modality's indexed vectors that the HNSW
    /// traversal reads (`dim × 2` per indexed row; candidates are then rescored
    /// from the f32 vector file). 0 when the modality has no graph or the CPU
    /// lacks F16C (the traversal then reads the f32 rows).
    pub fn traversal_copy_bytes(&self, modality: &str) -> Result<u64> {
        let m = self.config.modality_index(modality)?;
        let st = self.state.read();
        Ok(st.modalities[m]
            .graph
            .as_ref()
            .map_or(0, |g| g.half_bytes() as u64))
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
                    let ms = &st.modalities[m];
                    ModalityStats {
                        name: mc.name.clone(),
                        dim: mc.dim,
                        vectors: ms.rows as u64 - dead,
                        rows: ms.rows as u64,
                        dead_rows: dead,
                        indexed_rows: ms.indexed as u64,
                        graph_points: ms.graph.as_ref().map_or(0, |g| g.len() as u64),
                        graph_loaded: ms.graph_loaded,
                        graph_inserts: ms.graph.as_ref().map_or(0, |g| g.inserted_here()),
                    }
                })
                .collect(),
        }
    }
}
