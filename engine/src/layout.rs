//! Names of the folders and files inside a collection directory, in one place.
//!
//! The engine owns `db/`, `vectors/` and `graphs/`; [`ENCODER_DIR`] is written by the
//! ingest (the model that embedded the collection) and read by the server (to embed
//! uploads with the same model), so both take its name from here.

use std::path::{Path, PathBuf};

/// RocksDB database: objects, blobs and the manifest.
pub const DB_DIR: &str = "db";
/// One memory-mapped vector file per modality (see [`vector_file`]).
pub const VECTORS_DIR: &str = "vectors";
/// HNSW graph generations and their meta files, per modality.
pub const GRAPHS_DIR: &str = "graphs";
/// The model directory that embedded the collection (the encoders' `config.json` +
/// `model.safetensors`), plus `source.json` saying where it came from.
pub const ENCODER_DIR: &str = "encoder";
/// Inside [`ENCODER_DIR`]: where the model was loaded from (JSON).
pub const ENCODER_SOURCE_FILE: &str = "source.json";

/// The vector file of `modality` in collection directory `dir`.
pub fn vector_file(dir: &Path, modality: &str) -> PathBuf {
    dir.join(VECTORS_DIR).join(format!("{modality}.vec"))
}

/// The model directory of collection directory `dir`.
pub fn encoder_dir(dir: &Path) -> PathBuf {
    dir.join(ENCODER_DIR)
}
