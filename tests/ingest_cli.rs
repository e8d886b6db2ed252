//! End-to-end tests of `astrovec ingest` / `astrovec merge` with the real binary:
//! a 2,000-object mock catalog ingested with the tiny preset and searched in all
//! four modes, and an ingest killed (SIGKILL) at random points and resumed, which
//! must end equal to a clean run.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use astrovec_engine::{Collection, SearchParams};

fn astrovec(args: &[&str]) -> serde_json::Value {
    let out = common::run_ok(args);
    let last = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or("")
        .to_string();
    serde_json::from_str(&last).unwrap_or(serde_json::Value::Null)
}

fn mock(path: &Path, count: usize, seed: u64) {
    astrovec(&[
        "mock",
        "-n",
        &count.to_string(),
        "--seed",
        &seed.to_string(),
        "-o",
        path.to_str().unwrap(),
        "--quiet",
    ]);
}

#[test]
fn two_thousand_mock_objects_ingest_and_search_in_all_four_modes() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("mock.parquet");
    let t = Instant::now();
    mock(&input, 2000, 5);
    eprintln!("mock: {:.1} s", t.elapsed().as_secs_f64());
    let coll = tmp.path().join("coll");
    let t = Instant::now();
    let report = astrovec(&[
        "ingest",
        input.to_str().unwrap(),
        "-c",
        coll.to_str().unwrap(),
        "--preset",
        "tiny",
        "--quiet",
    ]);
    eprintln!(
        "ingest: {:.1} s, {} objects/s, stages {}",
        t.elapsed().as_secs_f64(),
        report["objects_per_second"],
        report["seconds"]
    );
    assert_eq!(report["rows_total"], 2000);
    assert_eq!(report["rows_read"], 2000);
    assert_eq!(report["rows_written"], 2000);
    assert_eq!(report["rows_rejected"], 0);
    assert_eq!(report["collection_objects"], 2000);
    let on_disk: serde_json::Value =
        serde_json::from_slice(&std::fs::read(coll.join("ingest-report.json")).unwrap()).unwrap();
    assert_eq!(on_disk["rows_written"], 2000);

    let c = Collection::open(&coll).unwrap();
    assert_eq!(c.len(), 2000);
    let stats = c.stats();
    assert!(stats
        .modalities
        .iter()
        .all(|m| m.vectors == 2000 && m.indexed_rows == 2000));
    let p = SearchParams::new(10);
    let mut self_misses = 0;
    for id in c.ids() {
        let o = c.get(id).unwrap();
        assert_eq!(
            o.modalities,
            vec!["image".to_string(), "spectrum".to_string()]
        );
        assert!(o.blobs.contains(&"thumb.png".to_string()));
        assert!(o.attributes.contains_key("redshift"));
        for m in ["image", "spectrum"] {
            // Each object is found by its own embedding (HNSW path)…
            let hits = c.search(&c.get_embedding(id, m).unwrap(), m, &p).unwrap();
            if !hits.iter().any(|h| h.id == id) {
                self_misses += 1;
            }
        }
        // …and can query every modality from every modality.
        for (from, to) in [
            ("image", "image"),
            ("image", "spectrum"),
            ("spectrum", "image"),
            ("spectrum", "spectrum"),
        ] {
            assert_eq!(c.search_by_id(id, from, to, &p).unwrap().len(), 10);
        }
    }
    assert_eq!(self_misses, 0, "objects not found by their own embedding");
}

fn vectors(dir: &Path) -> Vec<(u64, Vec<f32>, Vec<f32>)> {
    let c = Collection::open(dir).unwrap();
    let mut ids = c.ids();
    ids.sort_unstable();
    ids.into_iter()
        .map(|id| {
            (
                id,
                c.get_embedding(id, "image").unwrap(),
                c.get_embedding(id, "spectrum").unwrap(),
            )
        })
        .collect()
}

#[test]
fn ingest_killed_at_random_points_resumes_to_the_clean_result() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("mock.parquet");
    mock(&input, 300, 9);
    // One tiny random model for both runs (a fresh random one would differ).
    let model = tmp.path().join("model");
    common::save_random_model(&model);
    let args = |dir: &Path| -> Vec<String> {
        [
            "ingest",
            input.to_str().unwrap(),
            "-c",
            dir.to_str().unwrap(),
            "--preset",
            "tiny",
            "--weights",
            model.to_str().unwrap(),
            "--batch-size",
            "16",
            "--quiet",
            "--resume",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let clean = tmp.path().join("clean");
    let t = Instant::now();
    let a: Vec<String> = args(&clean);
    astrovec(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let clean_secs = t.elapsed().as_secs_f64();

    let killed = tmp.path().join("killed");
    let a = args(&killed);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("clean run {clean_secs:.2} s; kill seed {seed}");
    let mut x = seed | 1;
    let mut kills = 0;
    for _ in 0..20 {
        if kills >= 6 {
            break;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let frac = 0.05 + 0.6 * (x % 1000) as f64 / 1000.0;
        let mut child = Command::new(env!("CARGO_BIN_EXE_astrovec"))
            .args(&a)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_secs_f64(clean_secs * frac));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            kills += 1;
            eprintln!("killed after {:.2} s", clean_secs * frac);
        } else {
            // Finished before the kill: start over so every kill lands mid-run.
            std::fs::remove_dir_all(&killed).unwrap();
        }
    }
    assert!(kills >= 5, "only {kills} kills landed");
    let report = astrovec(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(report["rows_written"], 300);
    assert_eq!(report["rows_rejected"], 0);
    assert_eq!(report["rows_read"], 300);

    let (x, y) = (vectors(&clean), vectors(&killed));
    assert_eq!(
        x.iter().map(|v| v.0).collect::<Vec<_>>(),
        y.iter().map(|v| v.0).collect::<Vec<_>>(),
        "same ids"
    );
    for (u, v) in x.iter().zip(&y) {
        assert_eq!(u.1, v.1, "image vector of {}", u.0);
        assert_eq!(u.2, v.2, "spectrum vector of {}", u.0);
    }
    Collection::open(&killed).unwrap().verify().unwrap();
}

#[test]
fn shards_then_merge_on_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("mock.parquet");
    mock(&input, 90, 4);
    let mut shards = Vec::new();
    let mut written = 0;
    for k in 0..3 {
        let dir = tmp.path().join(format!("s{k}"));
        let r = astrovec(&[
            "ingest",
            input.to_str().unwrap(),
            "-c",
            dir.to_str().unwrap(),
            "--preset",
            "tiny",
            "--shard",
            &format!("{k}/3"),
            "--quiet",
        ]);
        written += r["rows_written"].as_u64().unwrap();
        shards.push(dir.to_str().unwrap().to_string());
    }
    assert_eq!(written, 90);
    let out = tmp.path().join("merged");
    let mut args = vec!["merge", "-o", out.to_str().unwrap()];
    args.extend(shards.iter().map(String::as_str));
    let m = astrovec(&args);
    assert_eq!(m["objects"], 90);
    assert_eq!(Collection::open(&out).unwrap().len(), 90);
}
