//! The wire types of the `/v1` API: request bodies and query strings. Each is
//! declared with [`request_struct!`], which also gives its list of accepted fields
//! ([`KnownFields`]); the OpenAPI document is tested against those lists.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::fields::{request_struct, serde_fields, KnownFields};
use crate::limits::DEFAULT_MATCH_RADIUS_ARCSEC;
use crate::upload::{ImageUpload, SpectrumUpload};

request_struct! {
    /// A sky position to start a search from: the nearest catalogue object within
    /// `radius_arcsec` of (`ra`, `dec`).
    #[derive(Debug, Clone, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Position {
        /// Right ascension, ICRS degrees.
        pub ra: f64,
        /// Declination, ICRS degrees.
        pub dec: f64,
        /// Match radius, arcsec (default [`DEFAULT_MATCH_RADIUS_ARCSEC`]).
        #[serde(default = "default_match_radius")]
        pub radius_arcsec: f64,
    }
}

fn default_match_radius() -> f64 {
    DEFAULT_MATCH_RADIUS_ARCSEC
}

request_struct! {
    /// What a query starts from. Exactly one of `id`, `position`, `vector`, `image`, `spectrum`.
    #[derive(Debug, Clone, Default, Deserialize)]
    pub struct QuerySpec {
        /// A stored object's id.
        #[serde(default)]
        pub id: Option<u64>,
        /// Modality of the stored object's embedding to search with (`image` default).
        #[serde(default)]
        pub from: Option<String>,
        /// A sky position (nearest object).
        #[serde(default)]
        pub position: Option<Position>,
        /// A raw embedding (any length the collection's modalities use; normalised by the engine).
        #[serde(default)]
        pub vector: Option<Vec<f32>>,
        /// An image to embed with the collection's model.
        #[serde(default)]
        pub image: Option<ImageUpload>,
        /// A spectrum to embed with the collection's model.
        #[serde(default)]
        pub spectrum: Option<SpectrumUpload>,
    }
}

request_struct! {
    /// Options shared by single and batch searches.
    #[derive(Debug, Clone, Default, Deserialize)]
    pub struct SearchOptions {
        /// Modality searched among (`spectrum` for image→spectrum); default: the query's own.
        #[serde(default)]
        pub to: Option<String>,
        /// Results wanted (default [`DEFAULT_K`](crate::limits::DEFAULT_K)).
        #[serde(default)]
        pub k: Option<usize>,
        /// HNSW candidate list size.
        #[serde(default)]
        pub ef: Option<usize>,
        /// Catalog filter, e.g. `redshift < 0.3 and mag_r < 19`.
        #[serde(default)]
        pub filter: Option<String>,
        /// Leave the query object out of its own results (default true).
        #[serde(default)]
        pub exclude_self: Option<bool>,
        /// Drop results within this many arcsec of the query or of a better result.
        #[serde(default)]
        pub near_duplicate_arcsec: Option<f64>,
        /// Attributes to return per result (default: all; `[]`: none).
        #[serde(default)]
        pub attributes: Option<Vec<String>>,
    }
}

request_struct! {
    /// `POST /v1/collections/{c}/search`.
    #[derive(Debug, Clone, Deserialize)]
    pub struct SearchRequest {
        /// The query.
        #[serde(flatten)]
        pub query: QuerySpec,
        /// The options.
        #[serde(flatten)]
        pub options: SearchOptions,
        /// `json` (default), `csv`, `votable` or `parquet`.
        #[serde(default)]
        pub format: Option<String>,
    }
}

request_struct! {
    /// `POST /v1/collections/{c}/search/batch`.
    #[derive(Debug, Clone, Deserialize)]
    pub struct BatchRequest {
        /// The queries (each as in a single search: `id`, `position`, `vector`, `image`
        /// or `spectrum`).
        pub queries: Vec<Value>,
        /// Options applied to every query.
        #[serde(flatten)]
        pub options: SearchOptions,
    }
}

request_struct! {
    /// `POST /v1/collections/{c}/predict`.
    #[derive(Debug, Clone, Deserialize)]
    pub struct PredictRequest {
        /// The query.
        #[serde(flatten)]
        pub query: QuerySpec,
        /// Numeric attributes to estimate (default: every numeric attribute).
        #[serde(default)]
        pub attributes: Option<Vec<String>>,
        /// Modality whose neighbours vote (default: the query's own).
        #[serde(default)]
        pub to: Option<String>,
        /// Neighbours (default [`DEFAULT_PREDICT_K`](crate::limits::DEFAULT_PREDICT_K)).
        #[serde(default)]
        pub k: Option<usize>,
        /// HNSW candidate list size.
        #[serde(default)]
        pub ef: Option<usize>,
        /// Catalog filter on the neighbours.
        #[serde(default)]
        pub filter: Option<String>,
    }
}

request_struct! {
    /// `PUT /v1/collections/{c}/objects/{id}` body.
    #[derive(Debug, Clone, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct PutObject {
        /// Right ascension, ICRS degrees.
        pub ra: f64,
        /// Declination, ICRS degrees.
        pub dec: f64,
        /// Attributes by name (numbers for float/int, strings for categories).
        #[serde(default)]
        pub attributes: BTreeMap<String, Value>,
        /// Embeddings by modality.
        #[serde(default)]
        pub embeddings: BTreeMap<String, Vec<f32>>,
        /// Raw image, embedded with the collection's model (and stored as `image.png`).
        #[serde(default)]
        pub image: Option<ImageUpload>,
        /// Raw spectrum, embedded with the collection's model (and stored as `spectrum.f16`).
        #[serde(default)]
        pub spectrum: Option<SpectrumUpload>,
    }
}

request_struct! {
    /// `format` from the query string (takes precedence) or the body.
    #[derive(Debug, Deserialize)]
    pub struct FormatParam {
        /// Output format.
        #[serde(default)]
        pub format: Option<String>,
    }
}

request_struct! {
    /// Query of `GET …/image.png`.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ImageParams {
        /// `full` (default: the full cutout) or `thumb` (at most 96 px a side).
        #[serde(default)]
        pub size: Option<String>,
    }
}

request_struct! {
    /// Query of `GET …/spectrum`.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct SpectrumParams {
        /// Boxcar smoothing width, pixels (odd, 1 to
        /// [`MAX_SMOOTH_PIXELS`](crate::limits::MAX_SMOOTH_PIXELS); 1 = none). One
        /// pixel is 0.8 Å.
        #[serde(default)]
        pub smooth: Option<usize>,
        /// Down-sample to at most this many points by averaging adjacent pixels (at
        /// least [`MIN_SPECTRUM_POINTS`](crate::limits::MIN_SPECTRUM_POINTS)).
        #[serde(default)]
        pub max_points: Option<usize>,
    }
}

// The upload bodies are plain structs with `deny_unknown_fields`: serde's own
// field list is theirs.
impl KnownFields for ImageUpload {
    fn collect_fields(out: &mut Vec<&'static str>) {
        out.extend(serde_fields::<Self>());
    }
}

impl KnownFields for SpectrumUpload {
    fn collect_fields(out: &mut Vec<&'static str>) {
        out.extend(serde_fields::<Self>());
    }
}
