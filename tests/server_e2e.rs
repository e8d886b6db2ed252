//! `astrovec serve` over a real socket: a 300-object mock catalog is ingested with a
//! tiny random model (saved as a model directory, so the collection's `encoder/`
//! holds exactly the weights that embedded it), the binary serves it on a free
//! port, and image→spectrum searches run by id and by upload of the object's own
//! raw cutout / spectrum. Ends with SIGTERM, which must stop the server cleanly.

mod common;

use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use astrovec_encoders::model::astroclip::{CONFIG_FILE, WEIGHTS_FILE};
use astrovec_engine::layout::encoder_dir;
use astrovec_indexer::mock::{MockConfig, MockSurvey};
use serde_json::{json, Value};

const COUNT: usize = 300;
const SEED: u64 = 11;

/// Starts `astrovec serve` on the test's collections and returns its address.
fn start(db: &Path) -> (common::Server, String) {
    let (server, v) = common::serve(db);
    assert_eq!(v["collections"], json!(["gal"]));
    let addr = v["listening"].as_str().unwrap().to_string();
    (server, addr)
}

#[test]
fn serve_answers_image_to_spectrum_by_id_and_by_upload_then_stops_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("mock.parquet");
    let (n, seed) = (COUNT.to_string(), SEED.to_string());
    common::run_ok(&[
        "mock",
        "-n",
        &n,
        "--seed",
        &seed,
        "-o",
        input.to_str().unwrap(),
        "--quiet",
    ]);
    let model = tmp.path().join("model");
    common::save_random_model(&model);
    let db = tmp.path().join("db");
    let coll = db.join("gal");
    let t = Instant::now();
    common::run_ok(&[
        "ingest",
        input.to_str().unwrap(),
        "-c",
        coll.to_str().unwrap(),
        "--weights",
        model.to_str().unwrap(),
        "--quiet",
    ]);
    eprintln!("ingest of {COUNT}: {:.1} s", t.elapsed().as_secs_f64());
    // Collections ingested by builds that did not yet keep the model beside the data
    // get the one they were embedded with.
    let enc_dir = encoder_dir(&coll);
    if !enc_dir.join(WEIGHTS_FILE).exists() {
        std::fs::create_dir_all(&enc_dir).unwrap();
        for f in [CONFIG_FILE, WEIGHTS_FILE] {
            std::fs::copy(model.join(f), enc_dir.join(f)).unwrap();
        }
    }

    let (mut server, addr) = start(&db);
    let (status, body) = common::http(&addr, "GET", "/health", None);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let info: Value =
        serde_json::from_slice(&common::http(&addr, "GET", "/v1/collections/gal", None).1).unwrap();
    assert_eq!(info["objects"], COUNT);
    assert_eq!(info["has_encoder"], true);

    let survey = MockSurvey::new(MockConfig {
        count: COUNT,
        seed: SEED,
        ..MockConfig::default()
    })
    .unwrap();
    let probes = [0usize, 57, 123, 201, 299];
    let mut cross_in_top10 = 0;
    for &i in &probes {
        let row = survey.row(i);
        let id = row.targetid as u64;
        // By id: image → spectrum, the object's own spectrum included.
        let by_id = common::post(
            &addr,
            "/v1/collections/gal/search",
            json!({"id": id, "from": "image", "to": "spectrum", "k": 10, "exclude_self": false}),
        );
        assert_eq!(by_id["results"].as_array().unwrap().len(), 10);
        assert!((by_id["query"]["ra"].as_f64().unwrap() - row.ra).abs() < 1e-9);
        // By upload of the raw g, r, z cutout: the same model reproduces the stored
        // image embedding, so image → image finds the object itself first…
        let image = json!({"values": row.image, "shape": [3, 152, 152]});
        let self_match = common::post(
            &addr,
            "/v1/collections/gal/search",
            json!({"image": image, "to": "image", "k": 1}),
        );
        assert_eq!(common::ids(&self_match), vec![id]);
        assert!(self_match["results"][0]["score"].as_f64().unwrap() > 0.9999);
        // …and image → spectrum by upload returns what the search by id returns.
        let by_upload = common::post(
            &addr,
            "/v1/collections/gal/search",
            json!({"image": image, "to": "spectrum", "k": 10}),
        );
        assert_eq!(common::ids(&by_upload), common::ids(&by_id), "object {id}");
        if common::ids(&by_upload).contains(&id) {
            cross_in_top10 += 1;
        }
        // The uploaded object's own spectrum ranks first among the spectra.
        let spec = common::post(
            &addr,
            "/v1/collections/gal/search",
            json!({"spectrum": {"values": row.spectrum}, "to": "spectrum", "k": 10}),
        );
        assert_eq!(common::ids(&spec)[0], id, "object {id}");
        assert!(spec["results"][0]["score"].as_f64().unwrap() > 0.9999);
    }
    // A random model does not align the two modalities, so the cross-modal rank
    // of the object's own spectrum is reported, not asserted.
    eprintln!(
        "own spectrum in the image→spectrum top 10 for {cross_in_top10} of {} uploads (random tiny model)",
        probes.len()
    );

    // SIGTERM: the server stops accepting, finishes, and exits 0.
    let pid = server.0.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let t = Instant::now();
    let status = loop {
        if let Some(s) = server.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "server did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
    assert!(TcpStream::connect(&addr).is_err(), "the port is closed");
}
