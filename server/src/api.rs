//! The JSON API under `/v1`: collections, search (single and batch), k-NN
//! estimates, objects (attributes, image, spectrum) and writes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use astrovec_engine::blobs::{
    decode_spectrum_f16, encode_spectrum_f16, spectrum_wavelength, IMAGE_PNG, SPECTRUM_F16,
    THUMB_PNG,
};
use astrovec_engine::{AttrValue, AttributeKind, Filter, Hit, Object, SearchParams};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery, KnownFields};
use crate::formats::{Column, Format, Table, Values};
use crate::state::{AppState, Cached, CollectionHandle};
use crate::upload::{embed_image, embed_spectrum, ImageUpload, SpectrumUpload};

/// Arcseconds per degree.
const ARCSEC: f64 = 3600.0;

/// A sky position to start a search from: the nearest catalogue object within
/// `radius_arcsec` of (`ra`, `dec`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Position {
    /// Right ascension, ICRS degrees.
    pub ra: f64,
    /// Declination, ICRS degrees.
    pub dec: f64,
    /// Match radius, arcsec (default 5″).
    #[serde(default = "default_match_radius")]
    pub radius_arcsec: f64,
}

fn default_match_radius() -> f64 {
    5.0
}

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

const QUERY_FIELDS: [&str; 6] = ["id", "from", "position", "vector", "image", "spectrum"];

impl KnownFields for QuerySpec {
    const FIELDS: &'static [&'static [&'static str]] = &[&QUERY_FIELDS];
}

/// Options shared by single and batch searches.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SearchOptions {
    /// Modality searched among (`spectrum` for image→spectrum); default: the query's own.
    #[serde(default)]
    pub to: Option<String>,
    /// Results wanted (default 10).
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

const OPTION_FIELDS: [&str; 7] = [
    "to",
    "k",
    "ef",
    "filter",
    "exclude_self",
    "near_duplicate_arcsec",
    "attributes",
];

impl KnownFields for SearchRequest {
    const FIELDS: &'static [&'static [&'static str]] =
        &[&QUERY_FIELDS, &OPTION_FIELDS, &["format"]];
}

/// `POST /v1/collections/{c}/search/batch`.
#[derive(Debug, Clone, Deserialize)]
pub struct BatchRequest {
    /// The queries (each as in a single search: `id`, `position`, `vector`, `image` or `spectrum`).
    pub queries: Vec<Value>,
    /// Options applied to every query.
    #[serde(flatten)]
    pub options: SearchOptions,
}

impl KnownFields for BatchRequest {
    const FIELDS: &'static [&'static [&'static str]] = &[&["queries"], &OPTION_FIELDS];
}

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
    /// Neighbours (default 16).
    #[serde(default)]
    pub k: Option<usize>,
    /// HNSW candidate list size.
    #[serde(default)]
    pub ef: Option<usize>,
    /// Catalog filter on the neighbours.
    #[serde(default)]
    pub filter: Option<String>,
}

impl KnownFields for PredictRequest {
    const FIELDS: &'static [&'static [&'static str]] =
        &[&QUERY_FIELDS, &["attributes", "to", "k", "ef", "filter"]];
}

/// A query resolved to something the engine can search with.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    kind: &'static str,
    id: Option<u64>,
    from: String,
    vector: Option<Vec<f32>>,
    position: Option<(f64, f64)>,
    encode_ms: f64,
}

impl Resolved {
    fn describe(&self) -> Value {
        json!({
            "kind": self.kind,
            "id": self.id,
            "from": self.from,
            "ra": self.position.map(|p| p.0),
            "dec": self.position.map(|p| p.1),
        })
    }
}

/// Converts an attribute value to JSON (NaN → null).
pub(crate) fn attr_json(v: &AttrValue) -> Value {
    match v {
        AttrValue::Float(x) if x.is_finite() => json!(x),
        AttrValue::Float(_) => Value::Null,
        AttrValue::Int(x) => json!(x),
        AttrValue::Category(s) => json!(s),
    }
}

fn modality_or_default(h: &CollectionHandle, m: Option<&str>, default: &str) -> String {
    match m {
        Some(m) => m.to_string(),
        None => {
            let known = &h.collection.config().modalities;
            if known.iter().any(|k| k.name == default) {
                default.to_string()
            } else {
                known.first().map(|k| k.name.clone()).unwrap_or_default()
            }
        }
    }
}

/// Resolves a query (blocking: reads the engine, may run the encoder).
pub(crate) fn resolve(h: &CollectionHandle, q: &QuerySpec) -> ApiResult<Resolved> {
    let given = [
        ("id", q.id.is_some()),
        ("position", q.position.is_some()),
        ("vector", q.vector.is_some()),
        ("image", q.image.is_some()),
        ("spectrum", q.spectrum.is_some()),
    ];
    let set: Vec<&str> = given.iter().filter(|g| g.1).map(|g| g.0).collect();
    if set.len() != 1 {
        return Err(ApiError::invalid(
            "query",
            "exactly one of id, position, vector, image, spectrum",
            if set.is_empty() {
                "none".into()
            } else {
                set.join(" and ")
            },
        ));
    }
    let c = &h.collection;
    let from = modality_or_default(h, q.from.as_deref(), "image");
    if let Some(id) = q.id {
        let o = c.get(id)?;
        return Ok(Resolved {
            kind: "id",
            id: Some(id),
            from,
            vector: None,
            position: Some((o.ra, o.dec)),
            encode_ms: 0.0,
        });
    }
    if let Some(p) = &q.position {
        if !(p.radius_arcsec > 0.0 && p.radius_arcsec <= 3600.0) {
            return Err(ApiError::invalid(
                "position.radius_arcsec",
                "a match radius in (0, 3600] arcsec",
                p.radius_arcsec.to_string(),
            ));
        }
        let hits = c.cone_search(p.ra, p.dec, p.radius_arcsec / ARCSEC, 1)?;
        let hit = hits.first().ok_or_else(|| {
            ApiError::NotFound(format!(
                "no object within {}″ of (ra {}°, dec {}°)",
                p.radius_arcsec, p.ra, p.dec
            ))
        })?;
        let o = c.get(hit.id)?;
        return Ok(Resolved {
            kind: "position",
            id: Some(hit.id),
            from,
            vector: None,
            position: Some((o.ra, o.dec)),
            encode_ms: 0.0,
        });
    }
    if let Some(v) = &q.vector {
        if let Some(i) = v.iter().position(|x| !x.is_finite()) {
            return Err(ApiError::invalid(
                format!("vector[{i}]"),
                "a finite number",
                "NaN or infinity (or a value beyond the f32 range)",
            ));
        }
        return Ok(Resolved {
            kind: "vector",
            id: None,
            from: q.from.clone().unwrap_or_else(|| "vector".into()),
            vector: Some(v.clone()),
            position: None,
            encode_ms: 0.0,
        });
    }
    let t = Instant::now();
    let (kind, from, vector) = if let Some(img) = &q.image {
        let decoded = img.decode("image")?;
        let enc = h.encoder()?;
        let v = embed_image(&enc.lock(), &decoded, "image")?;
        ("image", "image".to_string(), v)
    } else {
        let flux = q
            .spectrum
            .as_ref()
            .expect("one query kind is set")
            .decode("spectrum")?;
        let enc = h.encoder()?;
        let v = embed_spectrum(&enc.lock(), &flux, "spectrum")?;
        ("spectrum", "spectrum".to_string(), v)
    };
    Ok(Resolved {
        kind,
        id: None,
        from,
        vector: Some(vector),
        position: None,
        encode_ms: t.elapsed().as_secs_f64() * 1e3,
    })
}

fn check_k_ef(state: &AppState, k: usize, ef: Option<usize>) -> ApiResult<()> {
    let cfg = &state.config;
    if k == 0 || k > cfg.max_k {
        return Err(ApiError::invalid(
            "k",
            format!("1..={} results", cfg.max_k),
            k.to_string(),
        ));
    }
    if let Some(ef) = ef {
        if ef == 0 || ef > cfg.max_ef {
            return Err(ApiError::invalid(
                "ef",
                format!("1..={}", cfg.max_ef),
                ef.to_string(),
            ));
        }
    }
    Ok(())
}

fn parse_filter(text: Option<&str>) -> ApiResult<Option<Filter>> {
    text.map(|t| Filter::parse(t).map_err(ApiError::from))
        .transpose()
}

/// One result row.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ResultRow {
    rank: usize,
    id: u64,
    score: f32,
    ra: f64,
    dec: f64,
    separation_arcsec: Option<f64>,
    attributes: BTreeMap<String, Value>,
    #[serde(skip)]
    raw: BTreeMap<String, AttrValue>,
}

/// Runs one resolved search and decorates the hits (blocking).
fn run_search(
    h: &CollectionHandle,
    r: &Resolved,
    o: &SearchOptions,
    max_k: usize,
) -> ApiResult<(Vec<ResultRow>, String, f64)> {
    let k = o.k.unwrap_or(10);
    let to = modality_or_default(
        h,
        o.to.as_deref(),
        if r.kind == "vector" { "image" } else { &r.from },
    );
    let near = o.near_duplicate_arcsec.unwrap_or(0.0);
    if !(near.is_finite() && near >= 0.0) {
        return Err(ApiError::invalid(
            "near_duplicate_arcsec",
            "a non-negative number of arcsec",
            near.to_string(),
        ));
    }
    // Near-duplicate pruning removes results after the fact, so ask for more.
    let fetch = if near > 0.0 {
        (k * 3 + 20)
            .min(max_k.max(k) * 3)
            .min(astrovec_engine::MAX_K)
    } else {
        k
    };
    let mut params = SearchParams::new(fetch);
    params.ef = o.ef;
    params.filter = parse_filter(o.filter.as_deref())?;
    params.include_self = !o.exclude_self.unwrap_or(true);
    let t = Instant::now();
    let hits: Vec<Hit> = match (&r.vector, r.id) {
        (Some(v), _) => h.collection.search(v, &to, &params)?,
        (None, Some(id)) => h.collection.search_by_id(id, &r.from, &to, &params)?,
        (None, None) => return Err(ApiError::Internal("unresolved query".into())),
    };
    let search_ms = t.elapsed().as_secs_f64() * 1e3;
    let wanted: Option<Vec<String>> = match &o.attributes {
        Some(list) => {
            for a in list {
                h.collection.config().attribute_index(a)?;
            }
            Some(list.clone())
        }
        None => None,
    };
    let mut rows: Vec<ResultRow> = Vec::with_capacity(k);
    for hit in hits {
        if rows.len() == k {
            break;
        }
        let obj = match h.collection.get(hit.id) {
            Ok(o) => o,
            // Deleted between the search and this read: skip it.
            Err(astrovec_engine::Error::NotFound(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        if near > 0.0 {
            let close = |ra: f64, dec: f64| {
                astrovec_engine::separation_deg(ra, dec, obj.ra, obj.dec) * ARCSEC <= near
            };
            if r.position.is_some_and(|(ra, dec)| close(ra, dec))
                || rows.iter().any(|k| close(k.ra, k.dec))
            {
                continue;
            }
        }
        let attributes: BTreeMap<String, Value> = obj
            .attributes
            .iter()
            .filter(|(n, _)| wanted.as_ref().is_none_or(|w| w.contains(n)))
            .map(|(n, v)| (n.clone(), attr_json(v)))
            .collect();
        rows.push(ResultRow {
            rank: rows.len() + 1,
            id: hit.id,
            score: hit.score,
            ra: obj.ra,
            dec: obj.dec,
            separation_arcsec: r.position.map(|(ra, dec)| {
                astrovec_engine::separation_deg(ra, dec, obj.ra, obj.dec) * ARCSEC
            }),
            attributes,
            raw: obj.attributes,
        });
    }
    Ok((rows, to, search_ms))
}

/// Builds the export table of a result list.
fn result_table(h: &CollectionHandle, rows: &[ResultRow], wanted: Option<&[String]>) -> Table {
    let mut cols = vec![
        Column {
            name: "rank".into(),
            unit: String::new(),
            ucd: "meta.number".into(),
            description: "Rank of the result, 1 = most similar".into(),
            values: Values::I64(rows.iter().map(|r| Some(r.rank as i64)).collect()),
        },
        Column {
            name: "id".into(),
            unit: String::new(),
            ucd: "meta.id;meta.main".into(),
            description: "Object id".into(),
            values: Values::U64(rows.iter().map(|r| r.id).collect()),
        },
        Column {
            name: "score".into(),
            unit: String::new(),
            ucd: "stat.correlation".into(),
            description: "Cosine similarity with the query, in [-1, 1]".into(),
            values: Values::F64(rows.iter().map(|r| Some(r.score as f64)).collect()),
        },
        Column {
            name: "ra".into(),
            unit: "deg".into(),
            ucd: "pos.eq.ra;meta.main".into(),
            description: "Right ascension, ICRS".into(),
            values: Values::F64(rows.iter().map(|r| Some(r.ra)).collect()),
        },
        Column {
            name: "dec".into(),
            unit: "deg".into(),
            ucd: "pos.eq.dec;meta.main".into(),
            description: "Declination, ICRS".into(),
            values: Values::F64(rows.iter().map(|r| Some(r.dec)).collect()),
        },
        Column {
            name: "separation_arcsec".into(),
            unit: "arcsec".into(),
            ucd: "pos.angDistance".into(),
            description: "Angular distance from the query object".into(),
            values: Values::F64(rows.iter().map(|r| r.separation_arcsec).collect()),
        },
    ];
    cols.extend(attribute_columns(h, wanted, |i| &rows[i].raw, rows.len()));
    Table { columns: cols }
}

/// One column per declared attribute (or per name in `wanted`), typed by the
/// collection config; `get(i)` gives row `i`'s attributes.
pub(crate) fn attribute_columns<'a>(
    h: &CollectionHandle,
    wanted: Option<&[String]>,
    get: impl Fn(usize) -> &'a BTreeMap<String, AttrValue>,
    n: usize,
) -> Vec<Column> {
    h.collection
        .config()
        .attributes
        .iter()
        .filter(|a| wanted.is_none_or(|w| w.contains(&a.name)))
        .map(|a| {
            let values = match a.kind {
                AttributeKind::Float => Values::F64(
                    (0..n)
                        .map(|i| get(i).get(&a.name).and_then(AttrValue::as_f64))
                        .collect(),
                ),
                AttributeKind::Int => Values::I64(
                    (0..n)
                        .map(|i| match get(i).get(&a.name) {
                            Some(AttrValue::Int(x)) => Some(*x),
                            _ => None,
                        })
                        .collect(),
                ),
                AttributeKind::Category => Values::Str(
                    (0..n)
                        .map(|i| match get(i).get(&a.name) {
                            Some(AttrValue::Category(s)) => Some(s.clone()),
                            _ => None,
                        })
                        .collect(),
                ),
            };
            Column {
                name: a.name.clone(),
                unit: a.unit.clone(),
                ucd: String::new(),
                description: format!("Catalog attribute `{}` ({})", a.name, a.kind.name()),
                values,
            }
        })
        .collect()
}

/// `format` from the query string (takes precedence) or the body.
#[derive(Debug, Deserialize)]
pub struct FormatParam {
    /// Output format.
    #[serde(default)]
    pub format: Option<String>,
}

/// Serialises a table response.
pub(crate) fn table_response(format: Format, table: &Table, name: &str) -> ApiResult<Response> {
    Ok(match format {
        Format::Csv => (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            table.to_csv(),
        )
            .into_response(),
        Format::Votable => (
            [(header::CONTENT_TYPE, "application/x-votable+xml")],
            table.to_votable(name, &[("QUERY_STATUS", "OK", "")]),
        )
            .into_response(),
        Format::Parquet => (
            [(header::CONTENT_TYPE, "application/vnd.apache.parquet")],
            table.to_parquet()?,
        )
            .into_response(),
        Format::Json => return Err(ApiError::Internal("json is not a table format".into())),
    })
}

/// `POST /v1/collections/{c}/search`.
pub async fn search(
    State(state): State<AppState>,
    ApiPath(c): ApiPath<String>,
    ApiQuery(fp): ApiQuery<FormatParam>,
    ApiJson(req): ApiJson<SearchRequest>,
) -> ApiResult<Response> {
    let start = Instant::now();
    let h = state.collection(&c)?;
    let format = Format::parse(
        fp.format
            .or(req.format.clone())
            .as_deref()
            .unwrap_or("json"),
    )?;
    check_k_ef(&state, req.options.k.unwrap_or(10), req.options.ef)?;
    let max_k = state.config.max_k;
    let hh = h.clone();
    let (resolved, rows, to, search_ms, table) = state
        .blocking(move || {
            let r = resolve(&hh, &req.query)?;
            let (rows, to, ms) = run_search(&hh, &r, &req.options, max_k)?;
            let table = (format != Format::Json)
                .then(|| result_table(&hh, &rows, req.options.attributes.as_deref()));
            Ok((r, rows, to, ms, table))
        })
        .await?;
    if let Some(t) = table {
        return table_response(format, &t, &format!("{c}_search"));
    }
    Ok(Json(json!({
        "collection": c,
        "query": resolved.describe(),
        "to": to,
        "results": rows,
        "timing_ms": {
            "encode": resolved.encode_ms,
            "search": search_ms,
            "total": start.elapsed().as_secs_f64() * 1e3,
        },
    }))
    .into_response())
}

/// `POST /v1/collections/{c}/search/batch`.
pub async fn search_batch(
    State(state): State<AppState>,
    ApiPath(c): ApiPath<String>,
    ApiJson(req): ApiJson<BatchRequest>,
) -> ApiResult<Json<Value>> {
    let start = Instant::now();
    let h = state.collection(&c)?;
    if req.queries.is_empty() || req.queries.len() > state.config.max_batch {
        return Err(ApiError::invalid(
            "queries",
            format!("1..={} queries", state.config.max_batch),
            format!("{} queries", req.queries.len()),
        ));
    }
    check_k_ef(&state, req.options.k.unwrap_or(10), req.options.ef)?;
    let mut specs = Vec::with_capacity(req.queries.len());
    for (i, q) in req.queries.iter().enumerate() {
        if let Some(k) = q
            .as_object()
            .and_then(|o| o.keys().find(|k| !QUERY_FIELDS.contains(&k.as_str())))
        {
            return Err(ApiError::invalid(
                format!("queries[{i}].{k}"),
                format!("one of the fields {}", QUERY_FIELDS.join(", ")),
                "an unknown field",
            ));
        }
        let spec: QuerySpec = serde_json::from_value(q.clone())
            .map_err(|e| ApiError::BadJson(format!("queries[{i}]: {e}")))?;
        specs.push(spec);
    }
    let max_k = state.config.max_k;
    let options = req.options;
    let out = state
        .blocking(move || {
            let mut out = Vec::with_capacity(specs.len());
            for (i, s) in specs.iter().enumerate() {
                let prefix = |e: ApiError| match e {
                    ApiError::Invalid {
                        field,
                        expected,
                        got,
                    } => ApiError::Invalid {
                        field: format!("queries[{i}].{field}"),
                        expected,
                        got,
                    },
                    other => other,
                };
                let r = resolve(&h, s).map_err(prefix)?;
                let (rows, to, ms) = run_search(&h, &r, &options, max_k).map_err(prefix)?;
                out.push(json!({
                    "query": r.describe(),
                    "to": to,
                    "results": rows,
                    "timing_ms": {"encode": r.encode_ms, "search": ms},
                }));
            }
            Ok(out)
        })
        .await?;
    Ok(Json(json!({
        "collection": c,
        "responses": out,
        "timing_ms": {"total": start.elapsed().as_secs_f64() * 1e3},
    })))
}

/// `POST /v1/collections/{c}/predict`.
pub async fn predict(
    State(state): State<AppState>,
    ApiPath(c): ApiPath<String>,
    ApiJson(req): ApiJson<PredictRequest>,
) -> ApiResult<Json<Value>> {
    let start = Instant::now();
    let h = state.collection(&c)?;
    let k = req.k.unwrap_or(16);
    check_k_ef(&state, k, req.ef)?;
    let out = state
        .blocking(move || {
            let r = resolve(&h, &req.query)?;
            let cfg = h.collection.config();
            let names: Vec<String> = match &req.attributes {
                Some(list) if list.is_empty() => {
                    return Err(ApiError::invalid(
                        "attributes",
                        "at least one numeric attribute",
                        "an empty list",
                    ))
                }
                Some(list) => list.clone(),
                None => cfg
                    .attributes
                    .iter()
                    .filter(|a| a.kind != AttributeKind::Category)
                    .map(|a| a.name.clone())
                    .collect(),
            };
            let to = modality_or_default(
                &h,
                req.to.as_deref(),
                if r.kind == "vector" { "image" } else { &r.from },
            );
            let mut params = SearchParams::new(k);
            params.ef = req.ef;
            params.filter = parse_filter(req.filter.as_deref())?;
            let actual = match r.id {
                Some(id) => Some(h.collection.get(id)?.attributes),
                None => None,
            };
            let t = Instant::now();
            let mut estimates = serde_json::Map::new();
            for name in &names {
                let est = match (&r.vector, r.id) {
                    (Some(v), _) => h.collection.predict(v, &to, name, &params)?,
                    (None, Some(id)) => h
                        .collection
                        .predict_by_id(id, &r.from, &to, name, &params)?,
                    (None, None) => return Err(ApiError::Internal("unresolved query".into())),
                };
                let unit = cfg
                    .attributes
                    .iter()
                    .find(|a| &a.name == name)
                    .map(|a| a.unit.clone())
                    .unwrap_or_default();
                estimates.insert(
                    name.clone(),
                    json!({
                        "value": est.value,
                        "spread": est.spread,
                        "p16": est.p16,
                        "p84": est.p84,
                        "unit": unit,
                        "actual": actual.as_ref().and_then(|a| a.get(name)).map(attr_json),
                        "neighbours": est.neighbours.iter().map(|(hit, v)| json!({
                            "id": hit.id, "score": hit.score, "value": v,
                        })).collect::<Vec<_>>(),
                    }),
                );
            }
            Ok(json!({
                "collection": h.name,
                "query": r.describe(),
                "to": to,
                "k": k,
                "estimates": estimates,
                "timing_ms": {
                    "encode": r.encode_ms,
                    "predict": t.elapsed().as_secs_f64() * 1e3,
                },
            }))
        })
        .await?;
    let mut out = out;
    out["timing_ms"]["total"] = json!(start.elapsed().as_secs_f64() * 1e3);
    Ok(Json(out))
}

/// Summary of one attribute across the collection (for filter widgets).
#[derive(Debug, Clone, Serialize)]
pub struct AttributeSummary {
    /// Name.
    pub name: String,
    /// `float`, `int` or `category`.
    pub kind: &'static str,
    /// Display unit (empty when dimensionless).
    pub unit: String,
    /// Objects with a (finite) value.
    pub count: u64,
    /// Smallest value (numeric attributes).
    pub min: Option<f64>,
    /// Largest value (numeric attributes).
    pub max: Option<f64>,
    /// Distinct labels with their counts (categories; the 100 most common).
    pub values: Option<Vec<(String, u64)>>,
}

/// Attribute summaries of a collection.
pub type AttributeSummaries = Vec<AttributeSummary>;

/// Scans every object once (blocking); cached until the next write.
fn attribute_summaries(h: &CollectionHandle) -> ApiResult<Arc<AttributeSummaries>> {
    let generation = h.generation();
    if let Some(c) = h.attributes.lock().as_ref() {
        if c.generation == generation {
            return Ok(c.value.clone());
        }
    }
    let cfg = h.collection.config();
    let mut sums: Vec<AttributeSummary> = cfg
        .attributes
        .iter()
        .map(|a| AttributeSummary {
            name: a.name.clone(),
            kind: a.kind.name(),
            unit: a.unit.clone(),
            count: 0,
            min: None,
            max: None,
            values: None,
        })
        .collect();
    let mut cats: Vec<BTreeMap<String, u64>> = vec![BTreeMap::new(); sums.len()];
    for id in h.collection.ids() {
        let o = match h.collection.get(id) {
            Ok(o) => o,
            Err(astrovec_engine::Error::NotFound(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        for (i, s) in sums.iter_mut().enumerate() {
            match o.attributes.get(&s.name) {
                Some(AttrValue::Category(label)) => {
                    s.count += 1;
                    *cats[i].entry(label.clone()).or_insert(0) += 1;
                }
                Some(v) => {
                    if let Some(x) = v.as_f64().filter(|x| x.is_finite()) {
                        s.count += 1;
                        s.min = Some(s.min.map_or(x, |m| m.min(x)));
                        s.max = Some(s.max.map_or(x, |m| m.max(x)));
                    }
                }
                None => {}
            }
        }
    }
    for (s, c) in sums.iter_mut().zip(cats) {
        if s.kind == "category" {
            let mut v: Vec<(String, u64)> = c.into_iter().collect();
            v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            v.truncate(100);
            s.values = Some(v);
        }
    }
    let value = Arc::new(sums);
    *h.attributes.lock() = Some(Cached {
        generation,
        value: value.clone(),
    });
    Ok(value)
}

fn collection_summary(h: &CollectionHandle) -> Value {
    let stats = h.collection.stats();
    let index_state = if stats.modalities.iter().all(|m| m.indexed_rows == m.rows) {
        "indexed"
    } else if stats.modalities.iter().any(|m| m.indexed_rows > 0) {
        "partial"
    } else {
        "unindexed"
    };
    json!({
        "name": h.name,
        "objects": stats.objects,
        "model": h.collection.config().model,
        "has_encoder": h.encoder_dir().join("model.safetensors").exists(),
        "index_state": index_state,
        "modalities": stats.modalities.iter().map(|m| json!({
            "name": m.name,
            "dim": m.dim,
            "vectors": m.vectors,
            "indexed_rows": m.indexed_rows,
            "unindexed_rows": m.rows - m.indexed_rows.min(m.rows),
            "graph_points": m.graph_points,
            "graph_loaded": m.graph_loaded,
        })).collect::<Vec<_>>(),
    })
}

/// `GET /v1/collections`.
pub async fn list_collections(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let list: Vec<Value> = state
        .collections
        .values()
        .map(|h| collection_summary(h))
        .collect();
    Ok(Json(json!({ "collections": list })))
}

/// `GET /v1/collections/{c}`.
pub async fn collection_info(
    State(state): State<AppState>,
    ApiPath(c): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let h = state.collection(&c)?;
    let out = state
        .blocking(move || {
            let mut v = collection_summary(&h);
            v["attributes"] = serde_json::to_value(&*attribute_summaries(&h)?)
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            v["hnsw"] = json!({
                "m": h.collection.config().hnsw.m,
                "ef_construction": h.collection.config().hnsw.ef_construction,
                "ef_search": h.collection.config().hnsw.ef_search,
            });
            Ok(v)
        })
        .await?;
    Ok(Json(out))
}

/// `GET /v1/collections/{c}/objects/{id}`.
pub async fn get_object(
    State(state): State<AppState>,
    ApiPath((c, id)): ApiPath<(String, u64)>,
) -> ApiResult<Json<Value>> {
    let h = state.collection(&c)?;
    let o = state.blocking(move || Ok(h.collection.get(id)?)).await?;
    let attributes: BTreeMap<String, Value> = o
        .attributes
        .iter()
        .map(|(k, v)| (k.clone(), attr_json(v)))
        .collect();
    let base = format!("/v1/collections/{c}/objects/{id}");
    Ok(Json(json!({
        "id": o.id,
        "ra": o.ra,
        "dec": o.dec,
        "attributes": attributes,
        "modalities": o.modalities,
        "blobs": o.blobs,
        "links": {
            "image": format!("{base}/image.png"),
            "thumbnail": format!("{base}/image.png?size=thumb"),
            "spectrum": format!("{base}/spectrum"),
        },
    })))
}

/// Query of `GET …/image.png`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageParams {
    /// `full` (default: the full cutout) or `thumb` (at most 96 px a side).
    #[serde(default)]
    pub size: Option<String>,
}

/// `GET /v1/collections/{c}/objects/{id}/image.png`: the stored rendering
/// (Legacy Survey g, r, z → RGB mapping, made once at ingest).
pub async fn object_image(
    State(state): State<AppState>,
    ApiPath((c, id)): ApiPath<(String, u64)>,
    ApiQuery(p): ApiQuery<ImageParams>,
) -> ApiResult<Response> {
    let h = state.collection(&c)?;
    let order: &[&str] = match p.size.as_deref() {
        None | Some("full") => &[IMAGE_PNG, THUMB_PNG],
        Some("thumb") => &[THUMB_PNG, IMAGE_PNG],
        Some(other) => {
            return Err(ApiError::invalid(
                "size",
                "`full` or `thumb`",
                format!("`{other}`"),
            ))
        }
    };
    let order: Vec<&'static str> = order.to_vec();
    let png = state
        .blocking(move || {
            h.collection.get(id)?;
            for name in order {
                if let Some(b) = h.collection.get_blob(id, name)? {
                    return Ok(b);
                }
            }
            Err(ApiError::NotFound(format!(
                "object {id} has no stored image ({IMAGE_PNG} or {THUMB_PNG})"
            )))
        })
        .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/png"),
            // Blobs change only when the object is rewritten.
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        png,
    )
        .into_response())
}

/// Query of `GET …/spectrum`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpectrumParams {
    /// Boxcar smoothing width, pixels (odd, 1–201; 1 = none). One pixel is 0.8 Å.
    #[serde(default)]
    pub smooth: Option<usize>,
    /// Down-sample to at most this many points by averaging adjacent pixels (≥ 16).
    #[serde(default)]
    pub max_points: Option<usize>,
}

/// Boxcar mean of odd `width` (edges use the pixels available).
pub(crate) fn boxcar(flux: &[f32], width: usize) -> Vec<f32> {
    let half = width / 2;
    let mut prefix = vec![0.0f64; flux.len() + 1];
    for (i, v) in flux.iter().enumerate() {
        prefix[i + 1] = prefix[i] + *v as f64;
    }
    (0..flux.len())
        .map(|i| {
            let lo = i.saturating_sub(half);
            let hi = (i + half + 1).min(flux.len());
            ((prefix[hi] - prefix[lo]) / (hi - lo) as f64) as f32
        })
        .collect()
}

/// `GET /v1/collections/{c}/objects/{id}/spectrum`.
pub async fn object_spectrum(
    State(state): State<AppState>,
    ApiPath((c, id)): ApiPath<(String, u64)>,
    ApiQuery(p): ApiQuery<SpectrumParams>,
) -> ApiResult<Json<Value>> {
    let smooth = p.smooth.unwrap_or(1);
    if smooth % 2 == 0 || smooth > 201 {
        return Err(ApiError::invalid(
            "smooth",
            "an odd boxcar width of 1–201 pixels",
            smooth.to_string(),
        ));
    }
    if p.max_points.is_some_and(|m| m < 16) {
        return Err(ApiError::invalid(
            "max_points",
            "at least 16 points",
            p.max_points.unwrap_or(0).to_string(),
        ));
    }
    let h = state.collection(&c)?;
    let blob = state
        .blocking(move || {
            h.collection.get(id)?;
            h.collection.get_blob(id, SPECTRUM_F16)?.ok_or_else(|| {
                ApiError::NotFound(format!(
                    "object {id} has no stored spectrum ({SPECTRUM_F16})"
                ))
            })
        })
        .await?;
    let mut flux = decode_spectrum_f16(&blob)?;
    let mut wave: Vec<f64> = (0..flux.len()).map(spectrum_wavelength).collect();
    if smooth > 1 {
        flux = boxcar(&flux, smooth);
    }
    let mut bin = 1;
    if let Some(m) = p.max_points {
        bin = flux.len().div_ceil(m).max(1);
        if bin > 1 {
            flux = flux
                .chunks(bin)
                .map(|c| c.iter().sum::<f32>() / c.len() as f32)
                .collect();
            wave = wave
                .chunks(bin)
                .map(|c| c.iter().sum::<f64>() / c.len() as f64)
                .collect();
        }
    }
    Ok(Json(json!({
        "id": id,
        "wavelength_unit": "Angstrom (observed frame, vacuum)",
        "flux_unit": "1e-17 erg s^-1 cm^-2 Angstrom^-1",
        "smooth_pixels": smooth,
        "bin_pixels": bin,
        "wavelength": wave,
        "flux": flux,
    })))
}

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

impl KnownFields for PutObject {
    const FIELDS: &'static [&'static [&'static str]] =
        &[&["ra", "dec", "attributes", "embeddings", "image", "spectrum"]];
}

fn attr_value(h: &CollectionHandle, name: &str, v: &Value) -> ApiResult<AttrValue> {
    let cfg = h.collection.config();
    let i = cfg.attribute_index(name)?;
    let field = format!("attributes.{name}");
    let got = || v.to_string();
    match cfg.attributes[i].kind {
        AttributeKind::Float => v
            .as_f64()
            .map(AttrValue::Float)
            .ok_or_else(|| ApiError::invalid(field, "a number", got())),
        AttributeKind::Int => v
            .as_i64()
            .map(AttrValue::Int)
            .ok_or_else(|| ApiError::invalid(field, "an integer", got())),
        AttributeKind::Category => v
            .as_str()
            .map(|s| AttrValue::Category(s.to_string()))
            .ok_or_else(|| ApiError::invalid(field, "a string label", got())),
    }
}

/// Renders a decoded image as an 8-bit RGB PNG (g, r, z through the Legacy Survey mapping).
fn render_png(img: &crate::upload::Image) -> ApiResult<Vec<u8>> {
    let (h, w) = (img.height, img.width);
    let rgb = if img.rgb {
        img.data.clone()
    } else {
        astrovec_encoders::preprocess::legacy_rgb(&img.data, h, w)
            .map_err(|e| ApiError::invalid("image", "a g, r, z cutout", e.to_string()))?
    };
    let plane = h * w;
    let mut px = vec![0u8; plane * 3];
    for p in 0..plane {
        for c in 0..3 {
            px[p * 3 + c] = (rgb[c * plane + p].clamp(0.0, 1.0) * 255.0).round() as u8;
        }
    }
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w as u32, h as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc
        .write_header()
        .map_err(|e| ApiError::Internal(format!("png: {e}")))?;
    writer
        .write_image_data(&px)
        .map_err(|e| ApiError::Internal(format!("png: {e}")))?;
    writer
        .finish()
        .map_err(|e| ApiError::Internal(format!("png: {e}")))?;
    Ok(out)
}

/// `PUT /v1/collections/{c}/objects/{id}`: insert or replace (needs the API key).
pub async fn put_object(
    State(state): State<AppState>,
    ApiPath((c, id)): ApiPath<(String, u64)>,
    ApiJson(body): ApiJson<PutObject>,
) -> ApiResult<Response> {
    let h = state.collection(&c)?;
    let created = state
        .blocking(move || {
            let mut o = Object::new(id, body.ra, body.dec);
            for (name, v) in &body.attributes {
                o.attributes.insert(name.clone(), attr_value(&h, name, v)?);
            }
            for (m, v) in &body.embeddings {
                if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                    return Err(ApiError::invalid(
                        format!("embeddings.{m}[{i}]"),
                        "a finite number",
                        "NaN or infinity",
                    ));
                }
                o.embeddings.insert(m.clone(), v.clone());
            }
            if let Some(img) = &body.image {
                if body.embeddings.contains_key("image") {
                    return Err(ApiError::invalid(
                        "image",
                        "either `image` or `embeddings.image`, not both",
                        "both",
                    ));
                }
                let decoded = img.decode("image")?;
                let v = embed_image(&h.encoder()?.lock(), &decoded, "image")?;
                o.embeddings.insert("image".into(), v);
                o.blobs.insert(IMAGE_PNG.into(), render_png(&decoded)?);
            }
            if let Some(s) = &body.spectrum {
                if body.embeddings.contains_key("spectrum") {
                    return Err(ApiError::invalid(
                        "spectrum",
                        "either `spectrum` or `embeddings.spectrum`, not both",
                        "both",
                    ));
                }
                let flux = s.decode("spectrum")?;
                let v = embed_spectrum(&h.encoder()?.lock(), &flux, "spectrum")?;
                o.embeddings.insert("spectrum".into(), v);
                o.blobs
                    .insert(SPECTRUM_F16.into(), encode_spectrum_f16(&flux));
            }
            let existed = match h.collection.get(id) {
                Ok(_) => true,
                Err(astrovec_engine::Error::NotFound(_)) => false,
                Err(e) => return Err(e.into()),
            };
            h.collection.upsert(o)?;
            h.touch();
            Ok(!existed)
        })
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json!({"collection": c, "id": id, "created": created})),
    )
        .into_response())
}

/// `DELETE /v1/collections/{c}/objects/{id}` (needs the API key).
pub async fn delete_object(
    State(state): State<AppState>,
    ApiPath((c, id)): ApiPath<(String, u64)>,
) -> ApiResult<Json<Value>> {
    let h = state.collection(&c)?;
    let n = state
        .blocking(move || {
            let n = h.collection.delete(&[id])?;
            h.touch();
            Ok(n)
        })
        .await?;
    if n == 0 {
        return Err(ApiError::Engine(astrovec_engine::Error::NotFound(id)));
    }
    Ok(Json(json!({"collection": c, "id": id, "deleted": true})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxcar_keeps_constants_and_averages_spikes() {
        assert_eq!(boxcar(&[2.0; 7], 3), vec![2.0; 7]);
        let s = boxcar(&[0.0, 0.0, 3.0, 0.0, 0.0], 3);
        assert_eq!(s, vec![0.0, 1.0, 1.0, 1.0, 0.0]);
    }
}
