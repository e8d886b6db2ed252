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

/// A running `astrovec serve`, killed when dropped (whether the test passed or not).
#[allow(dead_code)] // only the tests that serve a collection start one
pub struct Server(pub std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `astrovec serve --db DB` on a free port and returns it with the JSON
/// line it prints once listening (`listening`: the bound address, `collections`).
#[allow(dead_code)] // only the tests that serve a collection use it
pub fn serve(db: &std::path::Path) -> (Server, serde_json::Value) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_astrovec"))
        .args([
            "serve",
            "--db",
            db.to_str().unwrap(),
            "--addr",
            "127.0.0.1:0",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("astrovec serve starts");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    (Server(child), v)
}

/// Saves a tiny random model as a model directory at `dir`. Tests that ingest with it
/// and then embed uploads (or re-run an ingest) need the very same weights, which a
/// second random model would not have.
#[allow(dead_code)] // only the tests that embed use it
pub fn save_random_model(dir: &std::path::Path) {
    astrovec_encoders::Encoder::<astrovec_encoders::CpuBackend>::random(
        &astrovec_encoders::AstroClipConfig::tiny(),
        &Default::default(),
    )
    .expect("a random tiny model")
    .save_dir(dir)
    .expect("the random model is saved");
}
