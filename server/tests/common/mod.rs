//! A small collection for the router tests: 30 objects with synthetic g, r, z
//! cutouts and spectra embedded by a random tiny model that is saved in the
//! collection (so uploads are embedded by the same model), attributes of every
//! kind, the image / spectrum blobs, and a built index. Plus a `oneshot` helper.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use astrovec_encoders::{AstroClipConfig, CpuBackend, Encoder};
use astrovec_engine::blobs::{encode_spectrum_f16, IMAGE_PNG, SPECTRUM_F16, THUMB_PNG};
use astrovec_engine::layout::encoder_dir;
use astrovec_engine::{
    AttrValue, AttributeDef, Collection, CollectionConfig, ModalityConfig, Object,
};
use astrovec_server::{router, AppState, CollectionHandle, ServerConfig};
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// Objects in the fixture.
pub const N: u64 = 30;
/// Side of the stored cutouts, pixels.
pub const SIDE: usize = 152;
/// Spectrum pixels.
pub const PIXELS: usize = 7781;
/// The write key of [`app_with`] configs made by [`keyed`].
pub const KEY: &str = "write-key-0123456789";
/// The read key of [`keyed`].
pub const READ_KEY: &str = "read-key-0123456789";

/// Deterministic pseudo-random numbers in [0, 1).
fn noise(seed: u64, i: usize) -> f32 {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add((i as u64).wrapping_mul(1442695040888963407).wrapping_add(1));
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51afd7ed558ccd);
    x ^= x >> 33;
    (x >> 40) as f32 / (1u64 << 24) as f32
}

/// The g, r, z cutout of object `id` (planar [3, 152, 152], nanomaggies).
pub fn cutout(id: u64) -> Vec<f32> {
    let c = (SIDE / 2) as f32;
    let width = 4.0 + (id % 7) as f32;
    let mut out = vec![0.0f32; 3 * SIDE * SIDE];
    for b in 0..3 {
        for y in 0..SIDE {
            for x in 0..SIDE {
                let r2 = ((x as f32 - c).powi(2) + (y as f32 - c).powi(2)) / (width * width);
                let i = (b * SIDE + y) * SIDE + x;
                out[i] = (1.0 + b as f32 * 0.3 * (id % 3) as f32) * (-r2).exp()
                    + 0.5 * (noise(id, i) - 0.5);
            }
        }
    }
    out
}

/// The spectrum of object `id` (7,781 pixels, 1e-17 erg/s/cm²/Å).
pub fn spectrum(id: u64) -> Vec<f32> {
    (0..PIXELS)
        .map(|i| {
            let line = (-((i as f32 - 1000.0 - 40.0 * id as f32) / 6.0).powi(2)).exp();
            2.0 + (i as f32 * 0.001 * (1 + id % 5) as f32).sin()
                + 5.0 * line
                + 2.0 * (noise(id + 1000, i) - 0.5)
        })
        .collect()
}

/// A tiny valid PNG (2 × 1 px, RGB).
pub fn tiny_png() -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, 2, 1);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc.write_header().unwrap();
    w.write_image_data(&[255, 0, 0, 0, 0, 255]).unwrap();
    w.finish().unwrap();
    out
}

/// The fixture collection in a temporary directory.
pub struct Fixture {
    /// The open collection, shared by every router made from the fixture.
    pub handle: Arc<CollectionHandle>,
    /// Keeps the directory alive.
    pub dir: tempfile::TempDir,
}

/// Builds the collection `dir/gal`.
pub fn build() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gal");
    let enc = Encoder::<CpuBackend>::random(&AstroClipConfig::tiny(), &Default::default()).unwrap();
    let dim = enc.embedding_dim();
    let mut config = CollectionConfig::astroclip();
    config.modalities = vec![
        ModalityConfig {
            name: "image".into(),
            dim,
        },
        ModalityConfig {
            name: "spectrum".into(),
            dim,
        },
    ];
    config.model = "tiny (random)".into();
    let config = config
        .with_attribute(AttributeDef::float("redshift", ""))
        .with_attribute(AttributeDef::float("mag_r", "mag"))
        .with_attribute(AttributeDef::int("n_obs", ""))
        .with_attribute(AttributeDef::category("morph"));
    let c = Collection::create(&path, config).unwrap();
    enc.save_dir(encoder_dir(&path)).unwrap();
    // Embed with the model as the server will load it from `encoder/`.
    let enc = Encoder::<CpuBackend>::load_dir(encoder_dir(&path), &Default::default()).unwrap();
    let ids: Vec<u64> = (1..=N).collect();
    let images: Vec<f32> = ids.iter().flat_map(|id| cutout(*id)).collect();
    let spectra: Vec<f32> = ids.iter().flat_map(|id| spectrum(*id)).collect();
    let ie = enc.embed_grz(&images, 3, SIDE, SIDE).unwrap();
    let se = enc.embed_spectra(&spectra).unwrap();
    let png = tiny_png();
    let objects: Vec<Object> = ids
        .iter()
        .zip(ie.into_iter().zip(se))
        .map(|(&id, (iv, sv))| {
            let mut o = Object::new(id, 150.0 + id as f64 * 0.01, 2.0 + id as f64 * 0.005)
                .attribute("redshift", AttrValue::Float(0.01 * id as f64))
                .attribute("mag_r", AttrValue::Float(17.0 + (id % 5) as f64 * 0.5))
                .attribute("n_obs", AttrValue::Int(id as i64 % 4))
                .attribute(
                    "morph",
                    AttrValue::Category(if id % 2 == 0 { "spiral" } else { "elliptical" }.into()),
                )
                .embedding("image", iv)
                .embedding("spectrum", sv)
                .blob(THUMB_PNG, png.clone());
            if id != N {
                // The last object has no full image or spectrum blob.
                o = o
                    .blob(IMAGE_PNG, png.clone())
                    .blob(SPECTRUM_F16, encode_spectrum_f16(&spectrum(id)));
            }
            o
        })
        .collect();
    c.upsert_batch(&objects).unwrap();
    c.build_index().unwrap();
    Fixture {
        handle: Arc::new(CollectionHandle::new("gal", c)),
        dir,
    }
}

impl Fixture {
    /// The collection directory.
    pub fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("gal")
    }

    /// A router over the fixture with `config`.
    pub fn app_with(&self, config: ServerConfig) -> Router {
        router(AppState::shared(vec![self.handle.clone()], config))
    }

    /// Runs `f` on the fixture's collection through the server's blocking pool, the
    /// only place the handle hands the engine out.
    pub async fn engine<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Collection) -> T + Send + 'static,
    ) -> T {
        let h = self.handle.clone();
        AppState::shared(vec![h.clone()], ServerConfig::default())
            .blocking(move || Ok(f(h.collection()?)))
            .await
            .unwrap()
    }

    /// A router with the default limits, writes enabled with [`KEY`].
    pub fn app(&self) -> Router {
        self.app_with(ServerConfig {
            api_key: Some(KEY.into()),
            ..ServerConfig::default()
        })
    }
}

/// Config with both keys.
pub fn keyed() -> ServerConfig {
    ServerConfig {
        api_key: Some(KEY.into()),
        read_key: Some(READ_KEY.into()),
        ..ServerConfig::default()
    }
}

/// A response: status, headers, body bytes.
pub struct Resp {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Vec<u8>,
}

impl Resp {
    /// The body as JSON (panics with the body text if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body[..self.body.len().min(500)])
            )
        })
    }
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The error code of an error body.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

/// Sends one request through the router.
pub async fn send(
    app: &Router,
    method: Method,
    uri: &str,
    body: Option<Vec<u8>>,
    key: Option<&str>,
) -> Resp {
    let mut req = Request::builder().method(method).uri(uri);
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    let req = req
        .body(body.map(Body::from).unwrap_or_else(Body::empty))
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(60), app.clone().oneshot(req))
        .await
        .expect("the request finishes")
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Resp {
        status,
        headers,
        body,
    }
}

/// GET.
pub async fn get(app: &Router, uri: &str) -> Resp {
    send(app, Method::GET, uri, None, None).await
}

/// POST a JSON value.
pub async fn post(app: &Router, uri: &str, body: Value) -> Resp {
    send(
        app,
        Method::POST,
        uri,
        Some(body.to_string().into_bytes()),
        None,
    )
    .await
}
