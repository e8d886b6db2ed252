//! What a collection keeps in RocksDB: the manifest, one record per object, and
//! the keys they are stored under (objects by id, blobs by id and name, the
//! committed row count per modality).

use serde::{Deserialize, Serialize};

use crate::catalog::AttrValue;
use crate::config::CollectionConfig;

/// Key of the manifest in the `meta` column family. Written last in the batch that
/// creates a collection: its presence marks a completely created collection.
pub(super) const MANIFEST_KEY: &[u8] = b"manifest";

/// The collection's format version and configuration.
#[derive(Serialize, Deserialize)]
pub(super) struct Manifest {
    pub format_version: u32,
    pub config: CollectionConfig,
}

/// One object, keyed by [`id_key`] in the `objects` column family.
#[derive(Serialize, Deserialize)]
pub(super) struct ObjectRecord {
    pub ra: f64,
    pub dec: f64,
    pub attrs: Vec<(String, AttrValue)>,
    /// Per modality (config order): (row, CRC-32 of the row's bytes).
    pub vectors: Vec<Option<(u32, u32)>>,
}

/// Key of an object's record; big-endian, so objects iterate in id order and an
/// object's blobs share its prefix.
pub(super) fn id_key(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

/// Key of a modality's committed row count in the `meta` column family.
pub(super) fn rows_key(modality: &str) -> Vec<u8> {
    format!("rows/{modality}").into_bytes()
}

/// Key of an object's blob in the `blobs` column family.
pub(super) fn blob_key(id: u64, name: &str) -> Vec<u8> {
    let mut k = id_key(id).to_vec();
    k.extend_from_slice(name.as_bytes());
    k
}

/// The blob name in a key made by [`blob_key`] (what follows the object's [`id_key`]).
pub(super) fn blob_name(key: &[u8]) -> String {
    String::from_utf8_lossy(&key[id_key(0).len()..]).into_owned()
}
