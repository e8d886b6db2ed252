//! Collections written by other builds of the engine.
//!
//! `fixtures/collection-rocksdb11/` is a three-object collection written by the
//! build that compiled RocksDB 11.8 from source (table format_version 7). The engine
//! now links RocksDB 7.x, which cannot read that format: opening it must fail with
//! a storage error that says so and what to do, must not touch the files, and must
//! not be mistaken for damage.

use std::path::{Path, PathBuf};

use astrovec_engine::{Collection, Error};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Copies a fixture collection into a temporary directory (opening takes a lock
/// and may write, and the committed copy must stay as it is).
fn copy_of(name: &str) -> (tempfile::TempDir, PathBuf) {
    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy_dir(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), &target).unwrap();
            }
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(name);
    copy_dir(&fixture(name), &dir);
    (tmp, dir)
}

fn listing(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let bytes = std::fs::read(&p).unwrap();
            (p.file_name().unwrap().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_collection_written_by_rocksdb_11_is_refused_with_a_clear_error() {
    let (_tmp, dir) = copy_of("collection-rocksdb11");
    let before = listing(&dir.join("db"));
    let err = match Collection::open(&dir) {
        Ok(_) => panic!("a RocksDB 11 database opened with RocksDB 7"),
        Err(e) => e,
    };
    match &err {
        Error::Storage { path, message } => {
            assert_eq!(path, &dir.join("db"));
            assert!(
                message.contains("written by RocksDB 11.8.1")
                    && message.contains("cannot read")
                    && message.contains("re-ingest"),
                "unclear message: {message}"
            );
        }
        other => panic!("expected a storage error, got {other:?}"),
    }
    // Nothing the collection holds was rewritten (RocksDB may add its LOCK and LOG).
    let after: Vec<_> = listing(&dir.join("db"))
        .into_iter()
        .filter(|(name, _)| name != "LOCK" && !name.starts_with("LOG"))
        .collect();
    assert_eq!(before, after);
}
