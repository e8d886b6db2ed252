//! The IVOA cone search read by a real VO client: `tests/scs_pyvo.py` queries
//! `astrovec serve`'s `/scs/{c}` with `pyvo.dal.SCSService` and checks the rows
//! against the ids computed here. CI installs pyvo (`.ci/setup`); without it
//! this test fails, saying so.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use serde_json::{json, Value};

#[test]
fn pyvo_reads_the_cone_search() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("cat");
    let d = db.to_str().unwrap();
    common::run_ok(&[
        "collection",
        "create",
        "--db",
        d,
        "--dim",
        "4",
        "--modalities",
        "image",
        "--attribute",
        "redshift:float",
    ]);
    // A 10 × 10 grid, 0.01° apart, around (180°, 30°).
    let jsonl = tmp.path().join("objects.jsonl");
    let mut f = std::fs::File::create(&jsonl).unwrap();
    let mut objects = Vec::new();
    for i in 0..100u64 {
        let (ra, dec) = (
            180.0 + (i % 10) as f64 * 0.01,
            30.0 + (i / 10) as f64 * 0.01,
        );
        let v = [1.0, i as f64, 0.5, -(i as f64)];
        writeln!(
            f,
            "{}",
            json!({"id": 1000 + i, "ra": ra, "dec": dec, "attributes": {"redshift": 0.001 * i as f64},
                   "embeddings": {"image": v}})
        )
        .unwrap();
        objects.push((1000 + i, ra, dec));
    }
    drop(f);
    common::run_ok(&[
        "collection",
        "insert",
        "--db",
        d,
        "--jsonl",
        jsonl.to_str().unwrap(),
    ]);

    let mut child = Command::new(env!("CARGO_BIN_EXE_astrovec"))
        .args(["serve", "--db", d, "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = serde_json::from_str::<Value>(&line).unwrap()["listening"]
        .as_str()
        .unwrap()
        .to_string();

    let (ra, dec, sr) = (180.045, 30.045, 0.021);
    let want: Vec<String> = objects
        .iter()
        .filter(|(_, r, d)| astrovec_engine::separation_deg(ra, dec, *r, *d) <= sr)
        .map(|(id, _, _)| id.to_string())
        .collect();
    assert!(
        want.len() >= 8,
        "the cone should hold several objects: {want:?}"
    );
    let out = Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scs_pyvo.py"))
        .arg(format!("http://{addr}/scs/cat"))
        .args([
            ra.to_string(),
            dec.to_string(),
            sr.to_string(),
            want.join(","),
        ])
        .output();
    let _ = child.kill();
    let _ = child.wait();
    let out = out.expect("python3 runs (install it, and pyvo: `source .ci/setup`)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'pyvo'"),
        "pyvo is not installed: run `source .ci/setup` (installs pyvo==1.9.1)"
    );
    assert!(out.status.success(), "pyvo check failed:\n{stderr}");
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
}
