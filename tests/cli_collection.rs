//! End-to-end test of `astrovec collection …`: the README's collection commands run
//! against the real binary; and the one name, `--db`, every subcommand gives the
//! collection directory.

mod common;

use std::io::Write;
use std::process::Command;

fn astrovec(args: &[&str]) -> serde_json::Value {
    serde_json::from_slice(&common::run_ok(args).stdout).expect("JSON on stdout")
}

fn vector(seed: u64, dim: usize) -> Vec<f32> {
    // A cheap deterministic generator: different seeds give different directions.
    let mut x = seed
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    (0..dim)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((x >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        })
        .collect()
}

#[test]
fn create_insert_index_search_cone_verify_drop() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gal");
    let db = db.to_str().unwrap();
    astrovec(&[
        "collection",
        "create",
        "--db",
        db,
        "--dim",
        "16",
        "--attribute",
        "redshift:float",
        "--attribute",
        "mag_r:float:mag",
        "--attribute",
        "morph_class:category",
    ]);
    let jsonl = dir.path().join("objects.jsonl");
    let mut f = std::fs::File::create(&jsonl).unwrap();
    for id in 0..300u64 {
        let img = vector(id, 16);
        // Each spectrum embedding is its image embedding plus a little noise.
        let spec: Vec<f32> = img
            .iter()
            .zip(vector(id + 10_000, 16))
            .map(|(a, b)| a + 0.05 * b)
            .collect();
        let line = serde_json::json!({
            "id": id, "ra": 150.0 + (id % 20) as f64 * 0.01, "dec": 2.0 + (id / 20) as f64 * 0.01,
            "attributes": { "redshift": id as f64 / 1000.0, "mag_r": 17.0 + (id % 4) as f64,
                            "morph_class": if id % 2 == 0 { "spiral" } else { "elliptical" } },
            "embeddings": { "image": img, "spectrum": spec },
        });
        writeln!(f, "{line}").unwrap();
    }
    drop(f);
    let r = astrovec(&[
        "collection",
        "insert",
        "--db",
        db,
        "--jsonl",
        jsonl.to_str().unwrap(),
        "--batch",
        "64",
    ]);
    assert_eq!(r["written"], 300);
    let r = astrovec(&["collection", "build-index", "--db", db]);
    assert_eq!(r[0]["inserted"], 300);
    let hits = astrovec(&[
        "collection",
        "search",
        "--db",
        db,
        "--id",
        "42",
        "--from",
        "image",
        "--to",
        "spectrum",
        "-k",
        "5",
    ]);
    // Image→spectrum: the object's own spectrum is not returned (self excluded); its
    // results are sorted by score.
    let hits = hits.as_array().unwrap();
    assert_eq!(hits.len(), 5);
    assert!(hits.iter().all(|h| h["id"] != 42));
    let filtered = astrovec(&[
        "collection",
        "search",
        "--db",
        db,
        "--id",
        "42",
        "-k",
        "10",
        "--filter",
        "redshift < 0.1 and morph_class = 'spiral'",
        "--exact",
    ]);
    for h in filtered.as_array().unwrap() {
        let id = h["id"].as_u64().unwrap();
        assert!(id < 100 && id % 2 == 0, "filter not honoured: {id}");
    }
    let cone = astrovec(&[
        "collection",
        "cone",
        "--db",
        db,
        "--ra",
        "150.0",
        "--dec",
        "2.0",
        "--radius",
        "0.015",
    ]);
    let cone = cone.as_array().unwrap();
    assert_eq!(cone[0]["id"], 0, "the object at the centre comes first");
    assert!(cone
        .iter()
        .all(|h| h["separation_deg"].as_f64().unwrap() <= 0.015));
    let info = astrovec(&["collection", "info", "--db", db]);
    assert_eq!(info["stats"]["objects"], 300);
    assert_eq!(info["stats"]["modalities"][1]["indexed_rows"], 300);
    assert_eq!(
        astrovec(&["collection", "verify", "--db", db])["rows_checked"],
        600
    );
    astrovec(&["collection", "drop", "--db", db]);
    assert!(!std::path::Path::new(db).exists());
}

#[test]
fn bad_arguments_fail_with_a_message_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_astrovec"))
        .args(["collection", "info", "--db", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an astrovec collection"));
    let out = Command::new(env!("CARGO_BIN_EXE_astrovec"))
        .args([
            "collection",
            "create",
            "--db",
            dir.path().join("x").to_str().unwrap(),
            "--attribute",
            "z:complex",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown type `complex`"));
}

/// `serve`'s limits stay inside what the engine accepts: k up to `MAX_K`, ef up to
/// `MAX_EF`, each refused with a message naming the flag and its range.
#[test]
fn serve_refuses_limits_beyond_the_engines() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().to_str().unwrap();
    let max_k = astrovec_engine::MAX_K.to_string();
    let max_ef = astrovec_engine::MAX_EF.to_string();
    let past_k = (astrovec_engine::MAX_K + 1).to_string();
    let past_ef = (astrovec_engine::MAX_EF + 1).to_string();
    for (flag, value, range) in [
        ("--max-k", "0", &max_k),
        ("--max-k", past_k.as_str(), &max_k),
        ("--max-ef", "0", &max_ef),
        ("--max-ef", past_ef.as_str(), &max_ef),
    ] {
        let stderr = fails(&["serve", "--db", db, flag, value]);
        assert!(
            stderr.contains(&format!("{flag} must be in 1..={range}")),
            "serve {flag} {value}: {stderr}"
        );
    }
}

/// Runs `astrovec ARGS…`, expecting it to fail as a command (exit status 1), not as
/// a command line clap refuses (status 2); returns its stderr.
fn fails(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_astrovec"))
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "astrovec {args:?}: {stderr}");
    stderr
}

/// Every subcommand that takes a collection directory names it `--db DIR`, and the
/// older spellings (`ingest -c` / `--collection`, `merge -o` / `--out`) still work:
/// each run below reaches the directory it was given.
#[test]
fn every_subcommand_names_the_collection_directory_db() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let empty = path("empty");
    astrovec(&["collection", "create", "--db", &empty, "--dim", "16"]);
    for flag in ["--db", "--out", "-o"] {
        let merged = path(&format!("merged{flag}"));
        let report = astrovec(&["merge", &empty, flag, &merged]);
        assert_eq!(report["output"], merged.as_str(), "merge {flag}");
        assert_eq!(report["objects"], 0, "merge {flag}");
    }
    let catalog = path("catalog.parquet");
    common::run_ok(&["mock", "-n", "2", "--quiet", "-o", &catalog]);
    for flag in ["--db", "--collection", "-c"] {
        let args = [
            "ingest", &catalog, flag, &empty, "--preset", "tiny", "--quiet",
        ];
        let err = fails(&args);
        assert!(
            err.contains(&format!("{empty} already exists")),
            "ingest {flag}: {err}"
        );
    }
    let err = fails(&["eval", "--db", &empty, "--out", &path("eval")]);
    assert!(err.contains(&format!("{empty}: 0 objects")), "eval: {err}");
    let nothing = path("nothing");
    let err = fails(&["serve", "--db", &nothing]);
    assert!(
        err.contains(&format!("opening the collections in {nothing}")),
        "serve: {err}"
    );
}
