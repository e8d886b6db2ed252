//! The architecture invariants of docs/ARCHITECTURE.md, checked against the
//! resolved dependency graph (Cargo.lock) and the engine's public source.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Package name → names of its direct dependencies, from Cargo.lock.
fn lock_graph() -> BTreeMap<String, Vec<String>> {
    let text = std::fs::read_to_string(root().join("Cargo.lock")).expect("Cargo.lock");
    let lock: toml::Value = text.parse().expect("Cargo.lock parses");
    let mut graph: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pkg in lock["package"].as_array().unwrap() {
        let name = pkg["name"].as_str().unwrap().to_string();
        let deps = pkg
            .get("dependencies")
            .and_then(|d| d.as_array())
            .map(|d| {
                d.iter()
                    .map(|s| s.as_str().unwrap().split(' ').next().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default();
        graph.entry(name).or_default().extend(deps);
    }
    graph
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

/// Everything `krate` depends on through its normal dependencies.
fn closure(graph: &BTreeMap<String, Vec<String>>, dir: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<String> = manifest_deps(dir).into_iter().collect();
    while let Some(p) = stack.pop() {
        if seen.insert(p.clone()) {
            stack.extend(graph.get(&p).cloned().unwrap_or_default());
        }
    }
    seen
}

fn forbidden(found: &BTreeSet<String>, banned: &[&str]) -> Vec<String> {
    found
        .iter()
        .filter(|p| banned.iter().any(|b| p.as_str() == *b || p.starts_with(&format!("{b}-"))))
        .cloned()
        .collect()
}

#[test]
fn engine_knows_nothing_of_burn_axum_or_tokio() {
    let graph = lock_graph();
    let deps = closure(&graph, "engine");
    assert!(deps.contains("rocksdb") && deps.contains("hnsw_rs"), "closure walk is broken: {deps:?}");
    let bad = forbidden(&deps, &["burn", "axum", "tokio", "hyper", "astrovec"]);
    assert!(bad.is_empty(), "the engine depends on {bad:?}");
}

#[test]
fn engine_public_api_exposes_no_rocksdb_or_hnsw_types() {
    let src = root().join("engine/src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    assert!(!lib.contains("pub mod"), "engine modules must stay private; re-export items instead");
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, line) in text.lines().enumerate() {
            let l = line.trim_start();
            if l.starts_with("pub ") && (l.contains("rocksdb::") || l.contains("hnsw_rs::")) {
                panic!("{}:{}: public item mentions a storage/index type: {l}", path.display(), i + 1);
            }
        }
    }
}

#[test]
fn encoders_know_nothing_of_ids_storage_or_http() {
    let graph = lock_graph();
    let deps = closure(&graph, "encoders");
    let bad = forbidden(&deps, &["rocksdb", "hnsw_rs", "axum", "hyper", "astrovec"]);
    assert!(bad.is_empty(), "the encoders depend on {bad:?}");
}

#[test]
fn server_never_touches_rocksdb_nor_the_indexer() {
    if !root().join("server/Cargo.toml").exists() {
        // The rule is checked as soon as the server crate exists.
        return;
    }
    let direct = manifest_deps("server");
    for banned in ["rocksdb", "librocksdb-sys", "astrovec-indexer"] {
        assert!(!direct.contains(banned), "the server depends directly on {banned}");
    }
    let graph = lock_graph();
    assert!(!closure(&graph, "server").contains("astrovec-indexer"));
}

#[test]
fn anyhow_only_in_the_binary() {
    for dir in ["engine", "encoders", "indexer", "server"] {
        if root().join(dir).join("Cargo.toml").exists() {
            let deps = manifest_deps(dir);
            assert!(!deps.contains("anyhow"), "{dir} depends on anyhow; libraries use thiserror");
            assert!(deps.contains("thiserror"), "{dir} should define its errors with thiserror");
        }
    }
}
