//! Reading stored objects: records, blobs, embeddings, and the ids of live
//! objects (all, or those a filter matches).

use super::records::{blob_key, blob_name, id_key, ObjectRecord};
use super::types::StoredObject;
use super::Collection;
use crate::codec;
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::storage::{CF_BLOBS, CF_OBJECTS};

impl Collection {
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
            .map(|k| blob_name(&k))
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
        st.embedding(m, id, modality).map(|v| v.to_vec())
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
}
