//! The RocksDB side of a collection: objects, blobs and the manifest, and small
//! file helpers. Keeps every `rocksdb` type inside this module.

use std::path::{Path, PathBuf};

use rocksdb::{ColumnFamilyDescriptor, IteratorMode, Options, WriteBatch, WriteOptions, DB};

use crate::error::{Error, Result};

pub(crate) const CF_OBJECTS: &str = "objects";
pub(crate) const CF_BLOBS: &str = "blobs";
pub(crate) const CF_META: &str = "meta";

/// The collection's RocksDB instance.
pub(crate) struct Store {
    db: DB,
    path: PathBuf,
}

/// A group of writes committed atomically and durably.
#[derive(Default)]
pub(crate) struct Batch {
    inner: WriteBatch,
}

impl Batch {
    pub fn put(&mut self, store: &Store, cf: &str, key: &[u8], value: &[u8]) {
        self.inner.put_cf(store.cf(cf), key, value);
    }
    pub fn delete(&mut self, store: &Store, cf: &str, key: &[u8]) {
        self.inner.delete_cf(store.cf(cf), key);
    }
}

impl Store {
    /// Opens (or, with `create`, creates) the database at `path`.
    pub fn open(path: &Path, create: bool) -> Result<Self> {
        let mut opts = Options::default();
        opts.create_if_missing(create);
        opts.create_missing_column_families(create);
        // No compression: object records are small and mostly floats, blobs are PNGs
        // and half floats, and the build links no compression library.
        // Never let RocksDB spill its info logs into the collection's parent.
        opts.set_keep_log_file_num(2);
        let cfs = [CF_OBJECTS, CF_BLOBS, CF_META]
            .into_iter()
            .map(|name| ColumnFamilyDescriptor::new(name, Options::default()));
        let db = DB::open_cf_descriptors(&opts, path, cfs).map_err(|e| Error::Storage {
            path: path.to_path_buf(),
            message: explain_open_error(path, e.into_string()),
        })?;
        Ok(Store {
            db,
            path: path.to_path_buf(),
        })
    }

    fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        // The three families are created with the database; absence is a bug.
        self.db
            .cf_handle(name)
            .expect("column family opened with the database")
    }

    fn err(&self, e: rocksdb::Error) -> Error {
        Error::Storage {
            path: self.path.clone(),
            message: e.into_string(),
        }
    }

    pub fn get(&self, cf: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.db.get_cf(self.cf(cf), key).map_err(|e| self.err(e))
    }

    /// Commits a batch with the write-ahead log synced: once this returns, the
    /// writes survive a crash of the process or the machine.
    pub fn commit(&self, batch: Batch) -> Result<()> {
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db.write_opt(batch.inner, &wo).map_err(|e| self.err(e))
    }

    /// Calls `f` for every key/value in a column family, in key order.
    pub fn for_each(&self, cf: &str, mut f: impl FnMut(&[u8], &[u8]) -> Result<()>) -> Result<()> {
        for item in self.db.iterator_cf(self.cf(cf), IteratorMode::Start) {
            let (k, v) = item.map_err(|e| self.err(e))?;
            f(&k, &v)?;
        }
        Ok(())
    }

    /// Keys of a column family starting with `prefix`.
    pub fn keys_with_prefix(&self, cf: &str, prefix: &[u8]) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        let mode = IteratorMode::From(prefix, rocksdb::Direction::Forward);
        for item in self.db.iterator_cf(self.cf(cf), mode) {
            let (k, _) = item.map_err(|e| self.err(e))?;
            if !k.starts_with(prefix) {
                break;
            }
            out.push(k.to_vec());
        }
        Ok(out)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The RocksDB release this build's file formats belong to (the 7.x line: table
/// format_version 5 at most).
const ROCKSDB_LINE: &str = "7";

/// A clearer message for a database RocksDB cannot open because a newer RocksDB
/// wrote it (its `OPTIONS-*` file names the writer's version): say which, and what
/// to do, instead of RocksDB's "Corruption: unsupported format_version".
fn explain_open_error(path: &Path, message: String) -> String {
    let newer_format = message.contains("format_version");
    let written_by = std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("OPTIONS-"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .find_map(|text| {
            text.lines().find_map(|l| {
                l.trim()
                    .strip_prefix("rocksdb_version=")
                    .map(str::to_string)
            })
        });
    match written_by {
        Some(v) if newer_format && !v.starts_with(&format!("{ROCKSDB_LINE}.")) => format!(
            "the database was written by RocksDB {v}, whose file format this build \
             (RocksDB {ROCKSDB_LINE}.x) cannot read; re-ingest the catalog with this build \
             ({message})"
        ),
        _ => message,
    }
}

/// Writes `bytes` to `path` atomically: a temporary file, fsync, rename, fsync of
/// the directory. Readers see the old or the new content, never a mix.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(dir, e))?;
    }
    Ok(())
}
