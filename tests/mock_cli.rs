//! `astrovec mock` through the real binary: output files, determinism, bad arguments.

use std::process::Command;

fn mock(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_astrovec"))
        .arg("mock")
        .args(args)
        .output()
        .expect("the astrovec binary runs")
}

#[test]
fn same_seed_gives_identical_parquet_and_a_preview_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.parquet");
    let b = dir.path().join("b.parquet");
    let png = dir.path().join("sheet.png");
    for (out, preview) in [(&a, Some(&png)), (&b, None)] {
        let mut args = vec![
            "--count",
            "12",
            "--seed",
            "5",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ];
        if let Some(p) = preview {
            args.extend(["--preview", p.to_str().unwrap()]);
        }
        let o = mock(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let (a, b) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert!(
        a.len() > 12 * 3 * 152 * 152,
        "the file is too small to hold 12 cutouts"
    );
    assert_eq!(a, b, "same seed must give byte-identical output");
    assert_eq!(&std::fs::read(&png).unwrap()[..8], b"\x89PNG\r\n\x1a\n");
}

#[test]
fn invalid_arguments_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.parquet");
    let o = mock(&["--count", "0", "--out", out.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--count"));
    let o = mock(&[
        "--count",
        "3",
        "--out",
        dir.path().join("no/such/dir/x.parquet").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(!String::from_utf8_lossy(&o.stderr).is_empty());
}
