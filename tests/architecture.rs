//! The architecture invariants of docs/ARCHITECTURE.md, checked against the
//! resolved dependency graph (`cargo tree`, offline and locked), the crates'
//! manifests and the engine's public source.

use std::collections::BTreeSet;
use std::path::Path;

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
fn engine_public_api_exposes_no_rocksdb_or_hnsw_types() {
    let src = root().join("engine/src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    // Modules stay private (items are re-exported), except `blobs`: plain names and byte
    // codecs shared with the ingest and the server. Every file is scanned below anyway.
    let public: Vec<&str> = lib
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("pub mod") && *l != "pub mod blobs;")
        .collect();
    assert!(
        public.is_empty(),
        "engine modules must stay private; re-export items instead: {public:?}"
    );
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, line) in text.lines().enumerate() {
            let l = line.trim_start();
            if l.starts_with("pub ") && (l.contains("rocksdb::") || l.contains("hnsw_rs::")) {
                panic!(
                    "{}:{}: public item mentions a storage/index type: {l}",
                    path.display(),
                    i + 1
                );
            }
        }
    }
}

#[test]
fn encoders_know_nothing_of_ids_storage_or_http() {
    let deps = closure("astrovec-encoders");
    let bad = forbidden(&deps, &["rocksdb", "hnsw_rs", "axum", "hyper", "astrovec"]);
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
