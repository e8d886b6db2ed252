//! `astrovec demo --no-serve` end to end at a small size: mock catalog → default model →
//! collection with indexes, a cross-modal search check, and a second run that reuses it.

mod common;

use common::run_ok;

#[test]
fn demo_builds_a_searchable_collection_and_reuses_it() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("demo");
    let work = work.to_str().unwrap();
    let out = run_ok(&["demo", "--no-serve", "-n", "120", "--dir", work]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // "cross-modal check: F of N galaxies find their own spectrum among the 10 nearest …"
    let line = stdout
        .lines()
        .find(|l| l.starts_with("cross-modal check:"))
        .unwrap_or_else(|| panic!("no cross-modal check in {stdout}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let found: usize = words[2].parse().unwrap();
    let total: usize = words[4].parse().unwrap();
    assert_eq!(total, 120);
    // Chance is 10 of 120 per query (≈ 10 galaxies); the trained default model must do
    // far better.
    assert!(found >= 40, "{line}");

    let info = run_ok(&["collection", "info", "--db", &format!("{work}/db/galaxies")]);
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(info["stats"]["objects"], 120, "{info}");

    // A second run reuses everything.
    let again = run_ok(&["demo", "--no-serve", "-n", "120", "--dir", work]);
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("reusing the collection"), "{err}");
}
