//! Every endpoint through the router in-process (`oneshot`), including the error
//! paths: bad JSON, wrong vector length, NaN, unknown id / collection, bad filter,
//! oversize body, missing or wrong key, unknown fields, limits.

mod common;

use std::time::Duration;

use astrovec_server::ServerConfig;
use axum::http::{Method, StatusCode};
use base64::Engine as _;
use common::*;
use serde_json::{json, Value};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A little-endian float32 `.npy` file.
fn npy_f32(shape: &[usize], values: &[f32]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_text}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// A FITS file with a float32 primary array (axes given slowest first).
fn fits_f32(shape: &[usize], values: &[f32]) -> Vec<u8> {
    let mut cards = vec![
        "SIMPLE  =                    T".to_string(),
        "BITPIX  =                  -32".to_string(),
        format!("NAXIS   = {:>20}", shape.len()),
    ];
    for (i, d) in shape.iter().rev().enumerate() {
        cards.push(format!("NAXIS{:<3}= {:>20}", i + 1, d));
    }
    cards.push("END".into());
    let mut out: Vec<u8> = cards
        .iter()
        .flat_map(|c| format!("{c:<80}").into_bytes())
        .collect();
    out.resize(out.len().div_ceil(2880) * 2880, b' ');
    for v in values {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.resize(out.len().div_ceil(2880) * 2880, 0);
    out
}

fn ids(r: &Value) -> Vec<u64> {
    r["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn health_openapi_metrics_collections_and_web_page() {
    let f = build();
    let app = f.app();
    let h = get(&app, "/health").await;
    assert_eq!(h.status, StatusCode::OK);
    assert_eq!(h.json()["status"], "ok");
    assert_eq!(h.json()["collections"], json!(["gal"]));

    let doc = get(&app, "/openapi.json").await;
    assert_eq!(doc.status, StatusCode::OK);
    assert!(doc.json()["openapi"].as_str().unwrap().starts_with("3."));

    let list = get(&app, "/v1/collections").await.json();
    let first = &list["collections"][0];
    assert_eq!(first["name"], "gal");
    assert_eq!(first["objects"], N);
    assert_eq!(first["index_state"], "indexed");
    assert_eq!(first["has_encoder"], true);

    let info = get(&app, "/v1/collections/gal").await;
    assert_eq!(info.status, StatusCode::OK);
    let info = info.json();
    assert_eq!(info["modalities"][0]["dim"], 64);
    assert_eq!(info["modalities"][1]["vectors"], N);
    let attrs = info["attributes"].as_array().unwrap();
    let z = attrs.iter().find(|a| a["name"] == "redshift").unwrap();
    assert_eq!(z["count"], N);
    assert!((z["min"].as_f64().unwrap() - 0.01).abs() < 1e-12);
    assert!((z["max"].as_f64().unwrap() - 0.30).abs() < 1e-12);
    let mag = attrs.iter().find(|a| a["name"] == "mag_r").unwrap();
    assert_eq!(mag["unit"], "mag");
    let morph = attrs.iter().find(|a| a["name"] == "morph").unwrap();
    assert_eq!(morph["values"], json!([["elliptical", 15], ["spiral", 15]]));

    let page = get(&app, "/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(page.text().contains("/openapi.json"));
    let css = get(&app, "/assets/style.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(
        get(&app, "/assets/nope.js").await.status,
        StatusCode::NOT_FOUND
    );

    // Metrics count the requests above by route template.
    let m = get(&app, "/metrics").await;
    assert_eq!(m.status, StatusCode::OK);
    let text = m.text();
    assert!(
        text.contains(
            "astrovec_http_requests_total{route=\"/v1/collections/{c}\",method=\"GET\",status=\"200\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains(
        "astrovec_http_request_duration_seconds_bucket{route=\"/health\",le=\"+Inf\"} 1"
    ));
    assert!(text.contains("astrovec_collection_objects{collection=\"gal\"} 30"));
    assert!(
        text.contains("astrovec_collection_vectors{collection=\"gal\",modality=\"spectrum\"} 30")
    );
    let unknown = get(&app, "/v2/nothing").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.json()["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("no route"));
}

#[tokio::test(flavor = "multi_thread")]
async fn search_by_id_position_and_vector() {
    let f = build();
    let app = f.app();
    let r = post(
        &app,
        "/v1/collections/gal/search",
        json!({"id": 5, "from": "image", "to": "spectrum", "k": 5, "attributes": ["redshift"]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = r.json();
    assert_eq!(r["to"], "spectrum");
    assert_eq!(r["query"]["kind"], "id");
    let results = r["results"].as_array().unwrap();
    assert_eq!(results.len(), 5);
    assert!(!ids(&r).contains(&5), "exclude_self defaults to true");
    let scores: Vec<f64> = results
        .iter()
        .map(|x| x["score"].as_f64().unwrap())
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    let first = &results[0];
    assert_eq!(first["rank"], 1);
    let id = first["id"].as_u64().unwrap();
    assert!((first["ra"].as_f64().unwrap() - (150.0 + id as f64 * 0.01)).abs() < 1e-9);
    let expected_sep = astrovec_engine::separation_deg(
        150.05,
        2.025,
        150.0 + id as f64 * 0.01,
        2.0 + id as f64 * 0.005,
    ) * 3600.0;
    assert!((first["separation_arcsec"].as_f64().unwrap() - expected_sep).abs() < 1e-6);
    assert_eq!(first["attributes"].as_object().unwrap().len(), 1);
    assert!((first["attributes"]["redshift"].as_f64().unwrap() - 0.01 * id as f64).abs() < 1e-12);
    assert!(r["timing_ms"]["total"].as_f64().unwrap() >= 0.0);

    // With exclude_self false the object is its own best image→image match.
    let own = post(
        &app,
        "/v1/collections/gal/search",
        json!({"id": 5, "to": "image", "k": 3, "exclude_self": false}),
    )
    .await
    .json();
    assert_eq!(ids(&own)[0], 5);
    assert!(own["results"][0]["separation_arcsec"].as_f64().unwrap() < 1e-6);

    // A position 1″ from object 7 starts from object 7.
    let p = post(
        &app,
        "/v1/collections/gal/search",
        json!({"position": {"ra": 150.07, "dec": 2.035 + 1.0 / 3600.0}, "to": "image", "k": 3}),
    )
    .await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.text());
    let p = p.json();
    assert_eq!(p["query"]["kind"], "position");
    assert_eq!(p["query"]["id"], 7);
    assert!(!ids(&p).contains(&7));
    let far = post(
        &app,
        "/v1/collections/gal/search",
        json!({"position": {"ra": 10.0, "dec": -40.0}}),
    )
    .await;
    assert_eq!(far.status, StatusCode::NOT_FOUND);

    // A raw vector equal to object 9's stored spectrum embedding finds object 9 first.
    let v = f.engine(|c| c.get_embedding(9, "spectrum")).await.unwrap();
    let r = post(
        &app,
        "/v1/collections/gal/search",
        json!({"vector": v, "to": "spectrum", "k": 2, "attributes": []}),
    )
    .await
    .json();
    assert_eq!(ids(&r)[0], 9);
    assert!((r["results"][0]["score"].as_f64().unwrap() - 1.0).abs() < 1e-5);
    assert!(r["results"][0]["separation_arcsec"].is_null());
    assert_eq!(r["results"][0]["attributes"], json!({}));

    // A filter restricts the results.
    let filtered = post(
        &app,
        "/v1/collections/gal/search",
        json!({"id": 5, "k": 30, "filter": "morph = 'spiral' and redshift < 0.2"}),
    )
    .await
    .json();
    let got = ids(&filtered);
    assert!(!got.is_empty());
    assert!(got.iter().all(|id| id % 2 == 0 && *id < 20), "{got:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn near_duplicates_are_dropped() {
    let f = build();
    let app = f.app();
    // Neighbouring objects are 0.01° × 0.005° ≈ 40″ apart: a 100″ radius keeps
    // only results farther than that from the query and from each other.
    let r = post(
        &app,
        "/v1/collections/gal/search",
        json!({"id": 15, "to": "image", "k": 5, "near_duplicate_arcsec": 100.0}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = r.json();
    let rows = r["results"].as_array().unwrap();
    assert!(!rows.is_empty());
    for (i, a) in rows.iter().enumerate() {
        assert!(a["separation_arcsec"].as_f64().unwrap() > 100.0);
        for b in &rows[..i] {
            let sep = astrovec_engine::separation_deg(
                a["ra"].as_f64().unwrap(),
                a["dec"].as_f64().unwrap(),
                b["ra"].as_f64().unwrap(),
                b["dec"].as_f64().unwrap(),
            ) * 3600.0;
            assert!(sep > 100.0, "{sep}");
        }
    }
    assert!(
        ids(&r).iter().all(|id| id.abs_diff(15) >= 3),
        "{:?}",
        ids(&r)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_in_every_encoding_reproduce_the_stored_embeddings() {
    let f = build();
    let app = f.app();
    let id = 12u64;
    let img = cutout(id);
    let spec = spectrum(id);
    let image_queries = [
        json!({"values": img, "shape": [3, SIDE, SIDE]}),
        json!({"npy": b64(&npy_f32(&[3, SIDE, SIDE], &img))}),
        json!({"fits": b64(&fits_f32(&[3, SIDE, SIDE], &img))}),
    ];
    for q in image_queries {
        // Compared with the stored embedding alone: the upload reproduces it.
        let own = post(
            &app,
            "/v1/collections/gal/search",
            json!({"image": q.clone(), "to": "image", "k": 1, "filter": format!("id in ({id})")}),
        )
        .await;
        assert_eq!(own.status, StatusCode::OK, "{}", own.text());
        let s = own.json()["results"][0]["score"].as_f64().unwrap();
        assert!(s > 0.9999, "upload reproduces the embedding: score {s}");
        let r = post(
            &app,
            "/v1/collections/gal/search",
            json!({"image": q, "to": "image", "k": 3}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let r = r.json();
        assert_eq!(r["query"]["kind"], "image");
        assert_eq!(ids(&r)[0], id, "{}", r["results"]);
        assert!(r["timing_ms"]["encode"].as_f64().unwrap() > 0.0);
    }
    let spectrum_queries = [
        json!({"values": spec}),
        json!({"npy": b64(&npy_f32(&[PIXELS], &spec))}),
        json!({"fits": b64(&fits_f32(&[PIXELS], &spec))}),
    ];
    for q in spectrum_queries {
        let r = post(
            &app,
            "/v1/collections/gal/search",
            json!({"spectrum": q, "to": "spectrum", "k": 3}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let r = r.json();
        assert_eq!(ids(&r)[0], id);
        assert!(r["results"][0]["score"].as_f64().unwrap() > 0.9999);
    }
    // Display images (PNG) are accepted and embedded (no stored twin to match).
    let mut png_bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut png_bytes, 160, 160);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().unwrap();
        let px: Vec<u8> = (0..160 * 160 * 3).map(|i| (i % 251) as u8).collect();
        w.write_image_data(&px).unwrap();
    }
    let r = post(
        &app,
        "/v1/collections/gal/search",
        json!({"image": {"png": b64(&png_bytes)}, "to": "spectrum", "k": 4}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["results"].as_array().unwrap().len(), 4);
    // Too small for the model's 144-px input.
    let r = post(
        &app,
        "/v1/collections/gal/search",
        json!({"image": {"png": b64(&tiny_png())}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"]["field"], "image");
    // Undecodable base64 / not a JPEG.
    let r = post(
        &app,
        "/v1/collections/gal/search",
        json!({"image": {"jpeg": b64(b"not a jpeg")}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"]["field"], "image.jpeg");
    // Two encodings at once.
    let r = post(
        &app,
        "/v1/collections/gal/search",
        json!({"spectrum": {"values": [1.0], "npy": "AAAA"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"]["got"], "values and npy");
}

#[tokio::test(flavor = "multi_thread")]
async fn csv_votable_and_parquet_exports() {
    let f = build();
    let app = f.app();
    let q = json!({"id": 3, "to": "spectrum", "k": 4});
    let csv = post(&app, "/v1/collections/gal/search?format=csv", q.clone()).await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let text = csv.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "rank,id,score,ra,dec,separation_arcsec,redshift,mag_r,n_obs,morph"
    );
    assert_eq!(lines.len(), 5);
    let json_ids = ids(&post(&app, "/v1/collections/gal/search", q.clone())
        .await
        .json());
    let csv_ids: Vec<u64> = lines[1..]
        .iter()
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(csv_ids, json_ids);

    let mut body = q.clone();
    body["format"] = json!("votable");
    let vot = post(&app, "/v1/collections/gal/search", body).await;
    assert_eq!(vot.status, StatusCode::OK);
    let text = vot.text();
    assert!(text.contains("<VOTABLE"));
    assert_eq!(text.matches("<TR>").count(), 4);
    assert!(text.contains("name=\"mag_r\" datatype=\"double\" unit=\"mag\""));

    let pq = post(&app, "/v1/collections/gal/search?format=parquet", q.clone()).await;
    assert_eq!(pq.status, StatusCode::OK);
    assert_eq!(&pq.body[..4], b"PAR1");
    let reader = parquet::file::reader::SerializedFileReader::new(bytes_of(&pq.body)).unwrap();
    use parquet::file::reader::FileReader;
    assert_eq!(reader.metadata().file_metadata().num_rows(), 4);

    let bad = post(&app, "/v1/collections/gal/search?format=xls", q).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.json()["error"]["field"], "format");
}

fn bytes_of(b: &[u8]) -> bytes::Bytes {
    bytes::Bytes::copy_from_slice(b)
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_search_answers_each_query_in_order() {
    let f = build();
    let app = f.app();
    let r = post(
        &app,
        "/v1/collections/gal/search/batch",
        json!({"queries": [{"id": 1}, {"id": 2, "from": "spectrum"}, {"spectrum": {"values": spectrum(4)}}],
               "to": "spectrum", "k": 3}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = r.json();
    let responses = r["responses"].as_array().unwrap();
    assert_eq!(responses.len(), 3);
    assert_eq!(responses[0]["query"]["id"], 1);
    assert_eq!(responses[1]["query"]["from"], "spectrum");
    assert_eq!(ids(&responses[2])[0], 4);
    for resp in responses {
        assert_eq!(resp["results"].as_array().unwrap().len(), 3);
    }
    // A bad query names its index.
    let bad = post(
        &app,
        "/v1/collections/gal/search/batch",
        json!({"queries": [{"id": 1}, {"vector": [1.0, 2.0]}]}),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let typo = post(
        &app,
        "/v1/collections/gal/search/batch",
        json!({"queries": [{"idd": 1}]}),
    )
    .await;
    assert_eq!(typo.status, StatusCode::BAD_REQUEST);
    assert_eq!(typo.json()["error"]["field"], "queries[0].idd");
    let app = f.app_with(ServerConfig {
        max_batch: 2,
        ..ServerConfig::default()
    });
    let many = post(
        &app,
        "/v1/collections/gal/search/batch",
        json!({"queries": [{"id": 1}, {"id": 2}, {"id": 3}]}),
    )
    .await;
    assert_eq!(many.status, StatusCode::BAD_REQUEST);
    assert_eq!(many.json()["error"]["field"], "queries");
}

#[tokio::test(flavor = "multi_thread")]
async fn predict_estimates_with_spread() {
    let f = build();
    let app = f.app();
    let r = post(
        &app,
        "/v1/collections/gal/predict",
        json!({"id": 10, "attributes": ["redshift", "mag_r"], "k": 5}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = r.json();
    let z = &r["estimates"]["redshift"];
    let (v, p16, p84) = (
        z["value"].as_f64().unwrap(),
        z["p16"].as_f64().unwrap(),
        z["p84"].as_f64().unwrap(),
    );
    assert!((0.01..=0.30).contains(&v));
    assert!(p16 <= p84);
    assert!(z["spread"].as_f64().unwrap() >= 0.0);
    assert!((z["actual"].as_f64().unwrap() - 0.10).abs() < 1e-12);
    let nb = z["neighbours"].as_array().unwrap();
    assert_eq!(nb.len(), 5);
    assert!(
        nb.iter().all(|n| n["id"] != 10),
        "the query is not its own neighbour"
    );
    // The neighbours' values are their stored redshifts.
    for n in nb {
        let id = n["id"].as_f64().unwrap();
        assert!((n["value"].as_f64().unwrap() - 0.01 * id).abs() < 1e-12);
    }
    assert_eq!(r["estimates"]["mag_r"]["unit"], "mag");
    // Default: every numeric attribute; categories cannot be estimated.
    let all = post(&app, "/v1/collections/gal/predict", json!({"id": 10}))
        .await
        .json();
    let names: Vec<&String> = all["estimates"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["mag_r", "n_obs", "redshift"]);
    let cat = post(
        &app,
        "/v1/collections/gal/predict",
        json!({"id": 10, "attributes": ["morph"]}),
    )
    .await;
    assert_eq!(cat.status, StatusCode::BAD_REQUEST);
    let unknown = post(
        &app,
        "/v1/collections/gal/predict",
        json!({"id": 10, "attributes": ["colour"]}),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(unknown.json()["error"]["field"], "attribute");
    // From an upload.
    let up = post(
        &app,
        "/v1/collections/gal/predict",
        json!({"spectrum": {"values": spectrum(10)}, "attributes": ["redshift"], "k": 3}),
    )
    .await;
    assert_eq!(up.status, StatusCode::OK, "{}", up.text());
    assert!(up.json()["estimates"]["redshift"]["actual"].is_null());
}

#[tokio::test(flavor = "multi_thread")]
async fn objects_images_and_spectra() {
    let f = build();
    let app = f.app();
    let o = get(&app, "/v1/collections/gal/objects/4").await;
    assert_eq!(o.status, StatusCode::OK);
    let o = o.json();
    assert_eq!(o["id"], 4);
    assert!((o["ra"].as_f64().unwrap() - 150.04).abs() < 1e-9);
    assert_eq!(o["attributes"]["morph"], "spiral");
    assert_eq!(o["attributes"]["n_obs"], 0);
    assert_eq!(o["modalities"], json!(["image", "spectrum"]));
    assert_eq!(
        o["links"]["spectrum"],
        "/v1/collections/gal/objects/4/spectrum"
    );

    let img = get(&app, "/v1/collections/gal/objects/4/image.png").await;
    assert_eq!(img.status, StatusCode::OK);
    assert_eq!(img.headers["content-type"], "image/png");
    assert_eq!(img.body, tiny_png());
    let thumb = get(&app, "/v1/collections/gal/objects/30/image.png?size=thumb").await;
    assert_eq!(thumb.status, StatusCode::OK);
    // Object 30 has only a thumbnail: the full image falls back to it.
    assert_eq!(
        get(&app, "/v1/collections/gal/objects/30/image.png")
            .await
            .status,
        StatusCode::OK
    );
    let bad_size = get(&app, "/v1/collections/gal/objects/4/image.png?size=huge").await;
    assert_eq!(bad_size.status, StatusCode::BAD_REQUEST);

    let s = get(&app, "/v1/collections/gal/objects/4/spectrum").await;
    assert_eq!(s.status, StatusCode::OK);
    let s = s.json();
    let wave = s["wavelength"].as_array().unwrap();
    let flux = s["flux"].as_array().unwrap();
    assert_eq!(wave.len(), PIXELS);
    assert_eq!(flux.len(), PIXELS);
    assert!((wave[0].as_f64().unwrap() - 3600.0).abs() < 1e-9);
    assert!((wave[PIXELS - 1].as_f64().unwrap() - 9824.0).abs() < 1e-6);
    let truth = spectrum(4);
    for i in [0, 1000, 1160, 7780] {
        let got = flux[i].as_f64().unwrap() as f32;
        assert!(
            (got - truth[i]).abs() < 0.01 * truth[i].abs().max(1.0),
            "{i}: {got} vs {}",
            truth[i]
        );
    }
    let small = get(
        &app,
        "/v1/collections/gal/objects/4/spectrum?smooth=5&max_points=500",
    )
    .await;
    assert_eq!(small.status, StatusCode::OK);
    let small = small.json();
    let n = small["flux"].as_array().unwrap().len();
    assert!((400..=500).contains(&n), "{n}");
    assert_eq!(small["smooth_pixels"], 5);
    assert_eq!(small["bin_pixels"], 16);
    assert_eq!(
        get(&app, "/v1/collections/gal/objects/4/spectrum?smooth=4")
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    let none = get(&app, "/v1/collections/gal/objects/30/spectrum").await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
    assert!(none.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("spectrum.f16"));
    assert_eq!(
        get(&app, "/v1/collections/gal/objects/999").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&app, "/v1/collections/gal/objects/999/image.png")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let bad_id = get(&app, "/v1/collections/gal/objects/abc").await;
    assert_eq!(bad_id.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_id.json()["error"]["field"], "path");
}

#[tokio::test(flavor = "multi_thread")]
async fn embedding_map_projects_and_colours() {
    let f = build();
    let app = f.app();
    let m = get(
        &app,
        "/v1/collections/gal/map?modality=spectrum&color=redshift&points=20",
    )
    .await;
    assert_eq!(m.status, StatusCode::OK, "{}", m.text());
    let m = m.json();
    assert_eq!(m["points"], 20);
    assert_eq!(m["total_vectors"], N);
    let ids: Vec<u64> = m["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    let values = m["values"].as_array().unwrap();
    for (id, v) in ids.iter().zip(values) {
        assert!((v.as_f64().unwrap() - 0.01 * *id as f64).abs() < 1e-12);
    }
    let ev = m["explained_variance"].as_array().unwrap();
    let (a, b) = (ev[0].as_f64().unwrap(), ev[1].as_f64().unwrap());
    assert!(a >= b && a > 0.0 && a + b <= 1.0 + 1e-9, "{a} {b}");
    let x: Vec<f64> = m["x"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(x.len(), 20);
    assert!(x.iter().any(|v| v.abs() > 1e-6));
    let again = get(&app, "/v1/collections/gal/map?modality=spectrum&points=20")
        .await
        .json();
    assert_eq!(again["x"], m["x"], "cached projection");
    assert!(again["values"].is_null());
    assert_eq!(
        get(&app, "/v1/collections/gal/map?modality=radio")
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get(&app, "/v1/collections/gal/map?points=0").await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cone_search_returns_votables_and_errors_as_votables() {
    let f = build();
    let app = f.app();
    // Objects 1..=30 lie along ra = 150 + 0.01 i, dec = 2 + 0.005 i.
    let r = get(&app, "/scs/gal?RA=150.1&DEC=2.05&SR=0.03").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/xml"));
    let text = r.text();
    assert!(text.contains("ucd=\"ID_MAIN\""));
    assert!(text.contains("ucd=\"POS_EQ_RA_MAIN\""));
    assert!(text.contains("ucd=\"POS_EQ_DEC_MAIN\""));
    assert!(text.contains("<INFO name=\"QUERY_STATUS\" value=\"OK\">"));
    let mut got: Vec<u64> = text
        .split("<TR><TD>")
        .skip(1)
        .map(|row| row.split("</TD>").next().unwrap().parse().unwrap())
        .collect();
    got.sort();
    // Within 0.03° of object 10: objects whose offset (0.01 d, 0.005 d) is < 0.03°.
    let want: Vec<u64> = (1..=N)
        .filter(|i| {
            astrovec_engine::separation_deg(
                150.1,
                2.05,
                150.0 + *i as f64 * 0.01,
                2.0 + *i as f64 * 0.005,
            ) <= 0.03
        })
        .collect();
    assert_eq!(got, want);
    assert!(want.len() >= 3);
    // VERB=1: only id, ra, dec.
    let v1 = get(&app, "/scs/gal?ra=150.1&dec=2.05&sr=0.03&VERB=1")
        .await
        .text();
    assert_eq!(v1.matches("<FIELD").count(), 3);
    // SR=0: metadata only.
    let meta = get(&app, "/scs/gal?RA=150.1&DEC=2.05&SR=0").await.text();
    assert!(meta.contains("<FIELD"));
    assert_eq!(meta.matches("<TR>").count(), 0);
    for bad in [
        "/scs/gal?RA=150.1&DEC=2.05",
        "/scs/gal?RA=abc&DEC=2&SR=1",
        "/scs/gal?RA=1&DEC=95&SR=1",
        "/scs/nope?RA=1&DEC=2&SR=1",
    ] {
        let e = get(&app, bad).await;
        assert_eq!(e.status, StatusCode::OK, "SCS errors are VOTables");
        let t = e.text();
        assert!(
            t.contains("<INFO ID=\"Error\" name=\"Error\""),
            "{bad}: {t}"
        );
        assert!(t.contains("value=\"ERROR\""));
    }
    // Overflow is flagged.
    let app = f.app_with(ServerConfig {
        max_cone_rows: 2,
        ..ServerConfig::default()
    });
    let o = get(&app, "/scs/gal?RA=150.1&DEC=2.05&SR=0.03").await.text();
    assert_eq!(o.matches("<TR>").count(), 2);
    assert!(o.contains("value=\"OVERFLOW\""));
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_need_the_key_and_show_up_in_searches() {
    let f = build();
    let app = f.app();
    let dim = 64;
    let mut v = vec![0.0f32; dim];
    v[3] = 1.0;
    let body = json!({
        "ra": 200.0, "dec": -10.0,
        "attributes": {"redshift": 0.5, "morph": "merger", "n_obs": 2},
        "embeddings": {"image": v},
        "spectrum": {"values": spectrum(40)},
    })
    .to_string()
    .into_bytes();
    let uri = "/v1/collections/gal/objects/1000";
    let missing = send(&app, Method::PUT, uri, Some(body.clone()), None).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(missing.code(), "unauthorized");
    assert_eq!(missing.headers["www-authenticate"], "Bearer");
    let wrong = send(
        &app,
        Method::PUT,
        uri,
        Some(body.clone()),
        Some("nope-nope-nope-nope"),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let read_only = f.app_with(ServerConfig::default());
    let off = send(&read_only, Method::PUT, uri, Some(body.clone()), Some(KEY)).await;
    assert_eq!(off.status, StatusCode::FORBIDDEN);
    assert_eq!(
        get(&app, uri).await.status,
        StatusCode::NOT_FOUND,
        "nothing written"
    );

    let created = send(&app, Method::PUT, uri, Some(body.clone()), Some(KEY)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    assert_eq!(created.json()["created"], true);
    let o = get(&app, uri).await.json();
    assert_eq!(o["attributes"]["morph"], "merger");
    assert_eq!(o["modalities"], json!(["image", "spectrum"]));
    // The raw spectrum was embedded and stored.
    let s = get(&app, &format!("{uri}/spectrum")).await;
    assert_eq!(s.status, StatusCode::OK);
    let found = post(
        &app,
        "/v1/collections/gal/search",
        json!({"vector": v, "to": "image", "k": 1}),
    )
    .await
    .json();
    assert_eq!(ids(&found), vec![1000]);
    let found = post(
        &app,
        "/v1/collections/gal/search",
        json!({"spectrum": {"values": spectrum(40)}, "to": "spectrum", "k": 1}),
    )
    .await
    .json();
    assert_eq!(ids(&found), vec![1000]);
    // Collection info sees the new attribute value (cache invalidated by the write).
    let info = get(&app, "/v1/collections/gal").await.json();
    let z = info["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "redshift")
        .unwrap()
        .clone();
    assert_eq!(z["max"], 0.5);

    let replaced = send(&app, Method::PUT, uri, Some(body.clone()), Some(KEY)).await;
    assert_eq!(replaced.status, StatusCode::OK);
    assert_eq!(replaced.json()["created"], false);

    // Bad writes: wrong attribute type, unknown attribute, wrong embedding length.
    for (bad, field) in [
        (
            json!({"ra": 1.0, "dec": 1.0, "attributes": {"redshift": "high"}}),
            "attributes.redshift",
        ),
        (
            json!({"ra": 1.0, "dec": 1.0, "attributes": {"colour": 1}}),
            "attribute",
        ),
        (
            json!({"ra": 1.0, "dec": 1.0, "embeddings": {"image": [1.0, 2.0]}}),
            "vector (image)",
        ),
        (json!({"ra": 1.0, "dec": 1.0, "color": 2}), "color"),
    ] {
        let r = send(
            &app,
            Method::PUT,
            "/v1/collections/gal/objects/1001",
            Some(bad.to_string().into_bytes()),
            Some(KEY),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
        assert_eq!(r.json()["error"]["field"], field);
    }
    let bad_dec = send(
        &app,
        Method::PUT,
        "/v1/collections/gal/objects/1001",
        Some(json!({"ra": 1.0, "dec": 91.0}).to_string().into_bytes()),
        Some(KEY),
    )
    .await;
    assert_eq!(bad_dec.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        get(&app, "/v1/collections/gal/objects/1001").await.status,
        StatusCode::NOT_FOUND
    );

    let no_key = send(&app, Method::DELETE, uri, None, None).await;
    assert_eq!(no_key.status, StatusCode::UNAUTHORIZED);
    let deleted = send(&app, Method::DELETE, uri, None, Some(KEY)).await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(get(&app, uri).await.status, StatusCode::NOT_FOUND);
    let again = send(&app, Method::DELETE, uri, None, Some(KEY)).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn read_key_guards_reads_but_not_health() {
    let f = build();
    let app = f.app_with(keyed());
    assert_eq!(get(&app, "/health").await.status, StatusCode::OK);
    assert_eq!(get(&app, "/openapi.json").await.status, StatusCode::OK);
    let r = get(&app, "/v1/collections").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.code(), "unauthorized");
    assert_eq!(get(&app, "/metrics").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        get(&app, "/scs/gal?RA=1&DEC=1&SR=1").await.status,
        StatusCode::UNAUTHORIZED
    );
    for key in [READ_KEY, KEY] {
        let ok = send(&app, Method::GET, "/v1/collections", None, Some(key)).await;
        assert_eq!(ok.status, StatusCode::OK);
    }
    // The read key does not allow writes.
    let w = send(
        &app,
        Method::DELETE,
        "/v1/collections/gal/objects/1",
        None,
        Some(READ_KEY),
    )
    .await;
    assert_eq!(w.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn error_paths_say_what_was_wrong() {
    let f = build();
    let app = f.app();
    let uri = "/v1/collections/gal/search";

    // Bad JSON.
    let r = send(&app, Method::POST, uri, Some(b"{\"id\": 1,".to_vec()), None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "bad_json");
    let r = send(&app, Method::POST, uri, Some(b"[1, 2]".to_vec()), None).await;
    assert_eq!(r.code(), "bad_json");
    let r = post(&app, uri, json!({"id": "five"})).await;
    assert_eq!(r.code(), "bad_json");
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("invalid type"));

    // Wrong vector length.
    let r = post(&app, uri, json!({"vector": [0.1, 0.2, 0.3]})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let e = r.json()["error"].clone();
    assert_eq!(e["field"], "vector (image)");
    assert_eq!(e["expected"], "64 values");
    assert_eq!(e["got"], "3 values");

    // NaN / infinity: JSON has no NaN, but 1e39 overflows f32; a NaN arrives in an npy upload.
    let mut v = vec![0.1f64; 64];
    v[7] = 1e39;
    let r = post(&app, uri, json!({"vector": v})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"]["field"], "vector[7]");
    let mut flux = spectrum(1);
    flux[123] = f32::NAN;
    let r = post(
        &app,
        uri,
        json!({"spectrum": {"npy": b64(&npy_f32(&[PIXELS], &flux))}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"]["field"], "spectrum.npy[123]");
    let r = post(&app, uri, json!({"spectrum": {"values": [1.0, 2.0]}})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"]["got"], "2 values");

    // Unknown id / collection / modality.
    let r = post(&app, uri, json!({"id": 424242})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "not_found");
    let r = post(&app, "/v1/collections/nope/search", json!({"id": 1})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "unknown_collection");
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("served: gal"));
    assert_eq!(
        get(&app, "/v1/collections/nope").await.status,
        StatusCode::NOT_FOUND
    );
    let r = post(&app, uri, json!({"id": 1, "to": "radio"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"]["field"], "modality");

    // Bad filter.
    let r = post(&app, uri, json!({"id": 1, "filter": "redshift <"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "bad_filter");
    assert_eq!(r.json()["error"]["field"], "filter");
    // A 5 KB filter of nested parentheses (which once overflowed the parser's stack and
    // aborted the process) is a 400 naming the nesting limit.
    let deep = format!("{}redshift < 1{}", "(".repeat(2500), ")".repeat(2500));
    let r = post(&app, uri, json!({"id": 1, "filter": deep})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"]["field"], "filter");
    assert!(r.text().contains("nest deeper than 64"), "{}", r.text());
    let r = post(&app, uri, json!({"id": 1, "filter": "colour < 3"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // No query / two queries / unknown field.
    let r = post(&app, uri, json!({"k": 3})).await;
    assert_eq!(r.json()["error"]["field"], "query");
    let r = post(&app, uri, json!({"id": 1, "vector": [1.0]})).await;
    assert_eq!(r.json()["error"]["got"], "id and vector");
    let r = post(&app, uri, json!({"id": 1, "kk": 3})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"]["field"], "kk");

    // Limits: k and ef.
    let r = post(&app, uri, json!({"id": 1, "k": 100000})).await;
    assert_eq!(r.json()["error"]["field"], "k");
    let r = post(&app, uri, json!({"id": 1, "k": 0})).await;
    assert_eq!(r.json()["error"]["field"], "k");
    let r = post(&app, uri, json!({"id": 1, "ef": 1000000})).await;
    assert_eq!(r.json()["error"]["field"], "ef");

    // Oversize body.
    let small = f.app_with(ServerConfig {
        max_body_bytes: 1024,
        ..ServerConfig::default()
    });
    let big = json!({"vector": vec![0.5f32; 2000]});
    let r = post(&small, uri, big).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.code(), "body_too_large");
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("1024 bytes"));

    // Wrong method.
    assert_eq!(get(&app, uri).await.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_requests_time_out_with_503() {
    let f = build();
    let app = f.app_with(ServerConfig {
        request_timeout: Duration::from_millis(1),
        ..ServerConfig::default()
    });
    // Embedding a cutout takes far longer than 1 ms.
    let r = post(
        &app,
        "/v1/collections/gal/search",
        json!({"image": {"values": cutout(1), "shape": [3, SIDE, SIDE]}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.code(), "timeout");
    assert_eq!(get(&app, "/health").await.status, StatusCode::OK);
}
