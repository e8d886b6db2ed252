//! Helpers shared by the binary's end-to-end tests.

use std::process::{Command, Output};

/// Runs `astrovec ARGS…` and returns its output, failing the test (with the
/// program's stderr) when it exits non-zero.
pub fn run_ok(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_astrovec"))
        .args(args)
        .output()
        .expect("the astrovec binary runs");
    assert!(
        out.status.success(),
        "astrovec {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
