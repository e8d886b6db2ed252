//! Writes: validating objects (bad input writes nothing), upserting them
//! (vectors first, then one synced RocksDB batch, then the in-memory publish)
//! and deleting them.

use super::records::{blob_key, id_key, rows_key, ObjectRecord};
use super::types::Object;
use super::{Collection, MAX_BLOB_BYTES};
use crate::catalog::{AttrValue, NONE};
use crate::codec;
use crate::config::AttributeKind;
use crate::error::{Error, Result};
use crate::sky;
use crate::storage::{Batch, CF_BLOBS, CF_META, CF_OBJECTS};
use crate::vectors::row_crc;

/// Longest blob name, in bytes.
const MAX_BLOB_NAME_BYTES: usize = 64;

/// An object checked against the config: attributes by config index, embeddings
/// unit-norm by modality index.
struct Prepared {
    id: u64,
    ra: f64,
    dec: f64,
    attrs: Vec<Option<AttrValue>>,
    vectors: Vec<Option<Vec<f32>>>,
    blobs: Vec<(String, Vec<u8>)>,
}

impl Collection {
    /// Checks an object against the config before anything is written.
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
            if name.is_empty() || name.len() > MAX_BLOB_NAME_BYTES {
                return Err(Error::invalid(
                    "blob name",
                    format!("`{name}` must be 1–{MAX_BLOB_NAME_BYTES} bytes"),
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
        let mut next: Vec<u32> = self
            .state
            .read()
            .modalities
            .iter()
            .map(|ms| ms.rows)
            .collect();
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
        let mut guard = self.state.write();
        let st = &mut *guard;
        for (m, t) in touched.iter().enumerate() {
            if *t {
                let ms = &mut st.modalities[m];
                ms.rows = next[m];
                ms.view = files[m].view();
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
}
