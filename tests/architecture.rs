//! The architecture invariants of docs/ARCHITECTURE.md, checked against the
//! resolved dependency graph (`cargo tree`, offline and locked), the crates'
//! manifests and the engine's public source.

use std::collections::BTreeSet;
use std::path::Path;

#[path = "architecture/scan.rs"]
mod scan;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Normal (non-dev) dependencies of a workspace crate, from its manifest.
fn manifest_deps(dir: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(root().join(dir).join("Cargo.toml")).unwrap();
    let m: toml::Value = text.parse().unwrap();
    m.get("dependencies")
        .and_then(|d| d.as_table())
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default()
}

/// Every package a workspace crate is built with through its normal dependencies,
/// with its default features, as cargo resolves it (`cargo tree`, offline, locked).
fn closure(package: &str) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .current_dir(root())
        .args([
            "tree",
            "--offline",
            "--locked",
            "-p",
            package,
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .args(["--format", "{p}"])
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != package)
        .map(str::to_string)
        .collect()
}

fn forbidden(found: &BTreeSet<String>, banned: &[&str]) -> Vec<String> {
    found
        .iter()
        .filter(|p| {
            banned
                .iter()
                .any(|b| p.as_str() == *b || p.starts_with(&format!("{b}-")))
        })
        .cloned()
        .collect()
}

#[test]
fn engine_knows_nothing_of_burn_axum_or_tokio() {
    let deps = closure("astrovec-engine");
    assert!(
        deps.contains("rocksdb") && deps.contains("roaring"),
        "closure walk is broken: {deps:?}"
    );
    let bad = forbidden(&deps, &["burn", "axum", "tokio", "hyper", "astrovec"]);
    assert!(bad.is_empty(), "the engine depends on {bad:?}");
}

#[test]
fn engine_public_api_exposes_no_rocksdb_types() {
    let src = root().join("engine/src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    // Modules stay private (items are re-exported), except `blobs` and `layout`: plain
    // names (and byte codecs) shared with the ingest and the server. Every file is
    // scanned below anyway.
    let public: Vec<&str> = lib
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("pub mod") && !["pub mod blobs;", "pub mod layout;"].contains(l))
        .collect();
    assert!(
        public.is_empty(),
        "engine modules must stay private; re-export items instead: {public:?}"
    );
    let files = scan::rust_files(&src);
    assert!(
        files.iter().any(|f| f.ends_with("storage.rs")),
        "the scan missed the engine's storage module"
    );
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        if let Some((line, sig)) = scan::public_items_naming(&text, "rocksdb").first() {
            panic!(
                "{}:{line}: a public item names a RocksDB type: {sig}",
                path.display()
            );
        }
    }
}

/// The scanner behind the check above sees signatures over several lines, names
/// imported with `use rocksdb::…`, and public enum variants; and it ignores
/// comments, strings and crate-private items.
#[test]
fn public_api_scan_sees_multi_line_signatures_and_imports() {
    let leaks = |text: &str| scan::public_items_naming(text, "rocksdb").len();
    assert_eq!(
        leaks("pub fn open(\n    path: &Path,\n    db: rocksdb::DB,\n) {}"),
        1
    );
    assert_eq!(
        leaks("use rocksdb::{DB, Options as Opts};\npub fn f(o: Opts) {}"),
        1
    );
    assert_eq!(
        leaks("use rocksdb::DB;\npub struct S {\n    pub db: DB,\n}"),
        1
    );
    assert_eq!(leaks("pub enum E {\n    Storage(rocksdb::Error),\n}"), 1);
    assert_eq!(leaks("pub use rocksdb::DB;"), 1);
    assert_eq!(
        leaks("use rocksdb::DB;\npub(crate) fn f(d: DB) {}\nfn g(d: DB) {}"),
        0
    );
    assert_eq!(
        leaks("// pub fn f(d: rocksdb::DB)\npub fn g() -> &'static str { \"rocksdb::DB\" }"),
        0
    );
    assert_eq!(
        leaks("use rocksdb::DB;\npub struct S {\n    db: DB,\n    pub n: u64,\n}"),
        0
    );
}

/// No two modules of a crate import each other, directly or through others: each
/// crate's modules form layers a reader can take one at a time.
#[test]
fn no_import_circles_inside_a_crate() {
    let mut found = Vec::new();
    for (krate, src) in [
        ("astrovec-engine", "engine/src"),
        ("astrovec-encoders", "encoders/src"),
        ("astrovec-indexer", "indexer/src"),
        ("astrovec-server", "server/src"),
        ("astrovec", "src"),
    ] {
        let graph = scan::module_graph(&root().join(src));
        assert!(
            graph.values().any(|edges| !edges.is_empty()),
            "{krate}: the module scan found no imports at all"
        );
        for circle in scan::circles(&graph) {
            found.push(format!("{krate}: {}", circle.join(" ↔ ")));
        }
    }
    assert!(found.is_empty(), "import circles: {found:#?}");
}

/// The circle finder itself: a planted circle through a `super::` path and a
/// `crate::` path is found; a child naming its parent is not a circle.
#[test]
fn circle_scan_finds_a_planted_circle() {
    let dir = tempfile::tempdir().unwrap();
    let write = |rel: &str, text: &str| {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write("lib.rs", "mod a;\nmod b;\npub use a::Thing;\n");
    write(
        "a/mod.rs",
        "mod c;\npub use c::Thing;\nuse crate::b::helper;\n",
    );
    write(
        "a/c.rs",
        "use super::Other; // parent: containment\npub struct Thing;\n",
    );
    write(
        "b.rs",
        "pub fn helper() {}\nfn f() { let _ = crate::a::Thing; }\n#[cfg(test)]\nmod tests { use super::*; }\n",
    );
    let graph = scan::module_graph(dir.path());
    assert_eq!(
        scan::circles(&graph),
        vec![vec!["a".to_string(), "b".to_string()]]
    );
    write("b.rs", "pub fn helper() {}\n");
    assert!(scan::circles(&scan::module_graph(dir.path())).is_empty());
}

#[test]
fn encoders_know_nothing_of_ids_storage_or_http() {
    let deps = closure("astrovec-encoders");
    let bad = forbidden(&deps, &["rocksdb", "axum", "hyper", "astrovec"]);
    assert!(bad.is_empty(), "the encoders depend on {bad:?}");
}

#[test]
fn server_never_touches_rocksdb_nor_the_indexer() {
    assert!(
        root().join("server/Cargo.toml").exists(),
        "the server crate (server/) is missing"
    );
    let direct = manifest_deps("server");
    for banned in ["rocksdb", "librocksdb-sys", "astrovec-indexer"] {
        assert!(
            !direct.contains(banned),
            "the server depends directly on {banned}"
        );
    }
    assert!(!closure("astrovec-server").contains("astrovec-indexer"));
}

#[test]
fn anyhow_only_in_the_binary() {
    for dir in ["engine", "encoders", "indexer", "server"] {
        if root().join(dir).join("Cargo.toml").exists() {
            let deps = manifest_deps(dir);
            assert!(
                !deps.contains("anyhow"),
                "{dir} depends on anyhow; libraries use thiserror"
            );
            assert!(
                deps.contains("thiserror"),
                "{dir} should define its errors with thiserror"
            );
        }
    }
}

/// The engine cannot import the encoders, so the spectrum grid is named in both: the
/// engine's blob wavelengths and the encoders' input grid must be the same grid.
#[test]
fn engine_and_encoders_name_one_spectrum_grid() {
    use astrovec_encoders::input::desi;
    use astrovec_engine::blobs;
    assert_eq!(blobs::SPECTRUM_START_A, desi::GRID_START_A);
    assert_eq!(blobs::SPECTRUM_STEP_A, desi::GRID_STEP_A);
    assert_eq!(
        astrovec_indexer::ingest::SPECTRUM_LEN,
        desi::GRID_LEN,
        "the ingest's spectrum length"
    );
}
