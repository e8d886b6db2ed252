//! The web page in a real browser: a 300-object mock catalog is ingested with the
//! tiny preset (a random model saved as a model directory), `astrovec serve`
//! serves it on a free port, and
//! `tests/web/browser.mjs` drives headless Chromium (Debian's `chromium`, through
//! `playwright-core` from npm) over the page: search by id, all four modes, a
//! redshift filter, a spectrum with its lines, CSV / VOTable export, the copied
//! link, a sexagesimal position, a click on the embedding map, a CSV spectrum
//! upload, the upload of a real Galaxy Zoo JPEG that was also ingested (a second
//! collection) and the keyboard path. The script asserts on what the page shows and
//! saves screenshots under `$CARGO_TARGET_TMPDIR/web_browser/`.
//!
//! Needs `node` (≥ 20) and `/usr/bin/chromium` (both installed by `.ci/setup`);
//! `playwright-core` is installed into `tests/web/node_modules` with `npm ci` when
//! missing.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/web")
}

/// Runs a tool and fails the test with its output when it cannot run or fails.
fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run ({e}); .ci/setup installs it"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn web_page_searches_plots_exports_and_maps_in_headless_chromium() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: install Debian's `chromium` (listed in .ci/apt-packages-tests.txt)"
    );
    let web = web_dir();
    if !web
        .join("node_modules/playwright-core/package.json")
        .exists()
    {
        run(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&web),
            "npm ci in tests/web",
        );
    }

    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("mock.parquet");
    let t = Instant::now();
    common::run_ok(&[
        "mock",
        "-n",
        "300",
        "--seed",
        "11",
        "-o",
        input.to_str().unwrap(),
        "--quiet",
    ]);
    // A tiny random model saved as a model directory: ingest and the server's
    // upload path then embed with exactly the same weights (the CSV-upload check
    // expects the object's own spectrum to come back first).
    let model = tmp.path().join("model");
    common::save_random_model(&model);
    let db = tmp.path().join("db");
    common::run_ok(&[
        "ingest",
        input.to_str().unwrap(),
        "-c",
        db.join("gal").to_str().unwrap(),
        "--preset",
        "tiny",
        "--weights",
        model.to_str().unwrap(),
        "--quiet",
    ]);
    eprintln!("mock + ingest of 300: {:.1} s", t.elapsed().as_secs_f64());
    // Ten real Galaxy Zoo JPEGs as a second collection (`zoo`): the page uploads one of
    // them and must find its ingested copy first.
    let gz = common::data_dir().join("images/gz2_spirals/train/spirals");
    let mut jpegs: Vec<PathBuf> = std::fs::read_dir(&gz)
        .unwrap_or_else(|e| panic!("{}: {e} (set ASTROVEC_DATA)", gz.display()))
        .map(|e| e.unwrap().path())
        .collect();
    jpegs.sort();
    jpegs.truncate(10);
    let zoo_in = tmp.path().join("zoo-jpegs");
    std::fs::create_dir_all(&zoo_in).unwrap();
    for j in &jpegs {
        std::fs::copy(j, zoo_in.join(j.file_name().unwrap())).unwrap();
    }
    common::run_ok(&[
        "ingest",
        zoo_in.to_str().unwrap(),
        "--db",
        db.join("zoo").to_str().unwrap(),
        "--weights",
        model.to_str().unwrap(),
        "--quiet",
    ]);
    let upload = &jpegs[3];
    let upload_id = upload.file_stem().unwrap().to_str().unwrap().to_string();

    let (_server, started) = common::serve(&db);
    let addr = started["listening"]
        .as_str()
        .unwrap_or_else(|| panic!("no `listening` address in {started}"));
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web_browser");
    let t = Instant::now();
    let url = format!("http://{addr}");
    let status = Command::new("node")
        .arg(web.join("browser.mjs"))
        .args(["--url", url.as_str(), "--out"])
        .arg(&out)
        .arg("--jpeg")
        .arg(upload)
        .args(["--jpeg-id", upload_id.as_str()])
        .env("CHROMIUM", &chromium)
        .status()
        .expect("node runs (install Node.js ≥ 20)");
    eprintln!(
        "browser checks: {:.1} s; screenshots in {}",
        t.elapsed().as_secs_f64(),
        out.display()
    );
    assert!(
        status.success(),
        "the browser checks failed (see [web] lines above; {}/failure.png)",
        out.display()
    );
    for shot in ["web_search.png", "web_spectrum.png"] {
        let len = std::fs::metadata(out.join(shot))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(len > 10_000, "{shot} was not saved ({len} bytes)");
    }
}
