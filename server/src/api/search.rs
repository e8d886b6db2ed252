//! Search and k-NN estimates: a query (stored id, sky position, raw vector or an
//! uploaded image or spectrum) is resolved to a vector or a stored object, searched
//! among one modality's embeddings, and answered as JSON or an exported table
//! (single and batch searches), or turned into attribute estimates from the
//! neighbours (predict).

use std::collections::BTreeMap;
use std::time::Instant;

use astrovec_engine::{AttrValue, AttributeKind, Filter, Hit, SearchParams};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};

use super::wire::{
    BatchRequest, FormatParam, PredictRequest, QuerySpec, SearchOptions, SearchRequest,
};
use crate::attributes::{attr_json, attribute_columns};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery, KnownFields};
use crate::formats::{Column, Format, Table, Values};
use crate::limits::{DEFAULT_K, DEFAULT_PREDICT_K, MAX_MATCH_RADIUS_ARCSEC};
use crate::state::{AppState, CollectionHandle};
use crate::upload::{embed_image, embed_spectrum};

/// Arcseconds per degree.
const ARCSEC: f64 = 3600.0;

/// A query resolved to something the engine can search with.
#[derive(Debug, Clone)]
struct Resolved {
    kind: &'static str,
    id: Option<u64>,
    from: String,
    vector: Option<Vec<f32>>,
    position: Option<(f64, f64)>,
    encode_ms: f64,
}

impl Resolved {
    /// The modality searched when the request names none: the query's own (`image`
    /// for a raw vector, whose `from` is only a label).
    fn own_modality(&self) -> &str {
        if self.kind == "vector" {
            "image"
        } else {
            &self.from
        }
    }

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

/// Resolves a query (blocking: reads the engine, may run the encoder).
fn resolve(h: &CollectionHandle, q: &QuerySpec) -> ApiResult<Resolved> {
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
    let c = h.collection()?;
    let from = h.modality_or(q.from.as_deref(), "image");
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
        if !(p.radius_arcsec > 0.0 && p.radius_arcsec <= MAX_MATCH_RADIUS_ARCSEC) {
            return Err(ApiError::invalid(
                "position.radius_arcsec",
                format!("a match radius in (0, {MAX_MATCH_RADIUS_ARCSEC}] arcsec"),
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
        let enc = h.encoder()?;
        let enc = enc.lock();
        let flux = q
            .spectrum
            .as_ref()
            .expect("one query kind is set")
            .decode("spectrum", enc.config().spectrum_backbone.spectrum_length)?;
        let v = embed_spectrum(&enc, &flux, "spectrum")?;
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
struct ResultRow {
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
    let c = h.collection()?;
    let k = o.k.unwrap_or(DEFAULT_K);
    let to = h.modality_or(o.to.as_deref(), r.own_modality());
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
        (Some(v), _) => c.search(v, &to, &params)?,
        (None, Some(id)) => c.search_by_id(id, &r.from, &to, &params)?,
        (None, None) => return Err(ApiError::Internal("unresolved query".into())),
    };
    let search_ms = t.elapsed().as_secs_f64() * 1e3;
    let wanted: Option<Vec<String>> = match &o.attributes {
        Some(list) => {
            for a in list {
                c.config().attribute_index(a)?;
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
        let obj = match c.get(hit.id) {
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
    cols.extend(attribute_columns(
        h.config(),
        wanted,
        |i| &rows[i].raw,
        rows.len(),
    ));
    Table { columns: cols }
}

/// Serialises a table response.
fn table_response(format: Format, table: &Table, name: &str) -> ApiResult<Response> {
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
    check_k_ef(&state, req.options.k.unwrap_or(DEFAULT_K), req.options.ef)?;
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
    check_k_ef(&state, req.options.k.unwrap_or(DEFAULT_K), req.options.ef)?;
    let query_fields = QuerySpec::fields();
    let mut specs = Vec::with_capacity(req.queries.len());
    for (i, q) in req.queries.iter().enumerate() {
        if let Some(k) = q
            .as_object()
            .and_then(|o| o.keys().find(|k| !query_fields.contains(&k.as_str())))
        {
            return Err(ApiError::invalid(
                format!("queries[{i}].{k}"),
                format!("one of the fields {}", query_fields.join(", ")),
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
    let k = req.k.unwrap_or(DEFAULT_PREDICT_K);
    check_k_ef(&state, k, req.ef)?;
    let out = state
        .blocking(move || {
            let r = resolve(&h, &req.query)?;
            let coll = h.collection()?;
            let cfg = coll.config();
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
            let to = h.modality_or(req.to.as_deref(), r.own_modality());
            let mut params = SearchParams::new(k);
            params.ef = req.ef;
            params.filter = parse_filter(req.filter.as_deref())?;
            let actual = match r.id {
                Some(id) => Some(coll.get(id)?.attributes),
                None => None,
            };
            let t = Instant::now();
            let mut estimates = serde_json::Map::new();
            for name in &names {
                let est = match (&r.vector, r.id) {
                    (Some(v), _) => coll.predict(v, &to, name, &params)?,
                    (None, Some(id)) => coll.predict_by_id(id, &r.from, &to, name, &params)?,
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
