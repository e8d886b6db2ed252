//! Durability: a child process upserting in a loop is killed with SIGKILL at random
//! moments; every upsert it acknowledged must be present after reopening.
//!
//! The child is this same test binary re-run with `durability_child` selected and
//! the collection directory in an environment variable.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use astrovec_engine::{AttrValue, Collection, Object};
use rand::{Rng, SeedableRng};

const DIM: usize = 32;
const ENV_DIR: &str = "ASTROVEC_DURABILITY_DIR";
const ENV_START: &str = "ASTROVEC_DURABILITY_START";

fn object(id: u64) -> Object {
    Object::new(id, (id % 360) as f64, 1.0)
        .attribute("redshift", AttrValue::Float(id as f64 * 1e-4))
        .embedding("image", common::vector(id, DIM))
        .blob("thumb", id.to_le_bytes().to_vec())
}

/// The child's body; a no-op unless started by `sigkill_never_loses_acknowledged_writes`.
#[test]
fn durability_child() {
    let Ok(dir) = std::env::var(ENV_DIR) else {
        return;
    };
    let start: u64 = std::env::var(ENV_START).unwrap().parse().unwrap();
    let coll = Collection::open(&dir).unwrap();
    let mut out = std::io::stdout().lock();
    use std::io::Write;
    for i in 0.. {
        let id = start + i;
        if i % 5 == 4 {
            // Batches and graph builds are killed mid-way too.
            let batch: Vec<Object> = (0..3).map(|j| object(id * 1000 + j)).collect();
            coll.upsert_batch(&batch).unwrap();
            for o in &batch {
                writeln!(out, "ACK {}", o.id).unwrap();
            }
        } else {
            coll.upsert(object(id)).unwrap();
            writeln!(out, "ACK {id}").unwrap();
        }
        out.flush().unwrap();
        if i % 40 == 39 {
            coll.build_index().unwrap();
        }
    }
}

#[test]
fn sigkill_never_loses_acknowledged_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    let mut cfg = common::config(DIM);
    cfg.modalities.truncate(1);
    drop(Collection::create(&path, cfg).unwrap());
    let exe = std::env::current_exe().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let mut acked: Vec<u64> = Vec::new();
    for round in 0..12u64 {
        let mut child = Command::new(&exe)
            .args([
                "durability_child",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ENV_DIR, &path)
            .env(ENV_START, (round * 100_000).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(id) = line.strip_prefix("ACK ") {
                    tx.send(id.parse::<u64>().unwrap()).unwrap();
                }
            }
        });
        // Wait for the first acknowledgement so the kill lands inside the write loop.
        let first = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("child made no progress");
        acked.push(first);
        std::thread::sleep(Duration::from_millis(rng.random_range(20..400)));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        reader.join().unwrap();
        acked.extend(rx.try_iter());

        let coll =
            Collection::open(&path).unwrap_or_else(|e| panic!("round {round}: reopen failed: {e}"));
        for &id in &acked {
            let o = coll
                .get(id)
                .unwrap_or_else(|e| panic!("round {round}: acknowledged {id} lost: {e}"));
            assert_eq!(o.attributes["redshift"], AttrValue::Float(id as f64 * 1e-4));
            let v = coll.get_embedding(id, "image").unwrap();
            let want = common::unit(&common::vector(id, DIM));
            assert!(
                v.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-6),
                "vector of {id} differs"
            );
            assert_eq!(
                coll.get_blob(id, "thumb").unwrap().unwrap(),
                id.to_le_bytes()
            );
        }
        coll.verify().unwrap();
        assert!(coll.len() as usize >= acked.len());
    }
    assert!(
        acked.len() > 12,
        "the children acknowledged too few writes to test anything"
    );
}
