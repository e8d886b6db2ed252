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

/// The real test data (Galaxy Zoo JPEGs, DESI coadds): `$ASTROVEC_DATA`, else
/// `../shared/data` beside the clone; fails the test when they are missing.
#[allow(dead_code)] // only the tests on real files use it
pub fn data_dir() -> std::path::PathBuf {
    use std::path::{Path, PathBuf};
    let dir = std::env::var_os("ASTROVEC_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    assert!(
        dir.join("images/gz2_spirals").is_dir() && dir.join("spectra/desi").is_dir(),
        "the real test data are expected in {} (set ASTROVEC_DATA)",
        dir.display()
    );
    dir
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

#[allow(dead_code)] // only the tests that serve a collection use it
/// One HTTP/1.1 request (connection closed after the response).
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("server accepts connections");
    s.set_read_timeout(Some(std::time::Duration::from_secs(120)))
        .unwrap();
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if body.is_some() {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            payload.len()
        ));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(payload.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, body)
}

#[allow(dead_code)]
fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&b[..line_end]).trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[line_end + 2..line_end + 2 + size]);
        b = &b[line_end + 2 + size + 2..];
    }
}

#[allow(dead_code)]
pub fn post(addr: &str, path: &str, body: serde_json::Value) -> serde_json::Value {
    let (status, bytes) = http(addr, "POST", path, Some(&body));
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(status, 200, "POST {path}: {v}");
    v
}

#[allow(dead_code)]
pub fn ids(r: &serde_json::Value) -> Vec<u64> {
    r["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_u64().unwrap())
        .collect()
}
