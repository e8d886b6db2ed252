//! IVOA Simple Cone Search 1.03: `GET /scs/{c}?RA=&DEC=&SR=[&VERB=]`, all in
//! degrees, answered with a VOTable whose columns carry the UCD1 names the
//! standard requires (`ID_MAIN`, `POS_EQ_RA_MAIN`, `POS_EQ_DEC_MAIN`), so that
//! `pyvo.dal.SCSService` and TOPCAT read it. Errors are VOTables too (HTTP 200
//! with an `Error` INFO, as the standard says).

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::attributes::attribute_columns;
use crate::error::ApiResult;
use crate::extract::ApiPath;
use crate::formats::{xml, Column, Table, Values};
use crate::state::AppState;

/// Content type SCS 1.03 prescribes.
const SCS_CONTENT_TYPE: &str = "text/xml; charset=utf-8";

fn error_votable(message: &str) -> Response {
    let m = xml(message);
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <VOTABLE version=\"1.3\" xmlns=\"http://www.ivoa.net/xml/VOTable/v1.3\">\n\
         <INFO ID=\"Error\" name=\"Error\" value=\"{m}\"/>\n\
         <RESOURCE type=\"results\">\n\
         <INFO name=\"QUERY_STATUS\" value=\"ERROR\">{m}</INFO>\n\
         </RESOURCE>\n</VOTABLE>\n"
    );
    ([(header::CONTENT_TYPE, SCS_CONTENT_TYPE)], body).into_response()
}

fn number(params: &HashMap<String, String>, name: &str) -> Result<f64, String> {
    let v = params
        .get(name)
        .ok_or_else(|| format!("missing required parameter {name} (degrees)"))?;
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
        .ok_or_else(|| format!("parameter {name} must be a number of degrees, got `{v}`"))
}

/// `GET /scs/{c}`.
pub async fn cone(
    State(state): State<AppState>,
    ApiPath(c): ApiPath<String>,
    Query(raw): Query<HashMap<String, String>>,
) -> Response {
    match cone_inner(state, c, raw).await {
        Ok(r) => r,
        // Unknown collections and bad parameters both come back as SCS errors.
        Err(e) if e.status().is_client_error() => error_votable(&e.to_string()),
        Err(e) => e.into_response(),
    }
}

async fn cone_inner(
    state: AppState,
    c: String,
    raw: HashMap<String, String>,
) -> ApiResult<Response> {
    // Parameter names are case-insensitive in the IVOA DAL protocols.
    let params: HashMap<String, String> = raw
        .into_iter()
        .map(|(k, v)| (k.to_ascii_uppercase(), v))
        .collect();
    let h = state.collection(&c)?;
    let parsed = (|| -> Result<(f64, f64, f64, u8), String> {
        let ra = number(&params, "RA")?;
        let dec = number(&params, "DEC")?;
        let sr = number(&params, "SR")?;
        if !(0.0..=360.0).contains(&ra) {
            return Err(format!("RA must be in [0, 360] degrees, got {ra}"));
        }
        if !(-90.0..=90.0).contains(&dec) {
            return Err(format!("DEC must be in [-90, 90] degrees, got {dec}"));
        }
        if !(0.0..=180.0).contains(&sr) {
            return Err(format!("SR must be in [0, 180] degrees, got {sr}"));
        }
        let verb = match params.get("VERB").map(|v| v.trim()) {
            None | Some("") => 2,
            Some("1") => 1,
            Some("2") => 2,
            Some("3") => 3,
            Some(v) => return Err(format!("VERB must be 1, 2 or 3, got `{v}`")),
        };
        Ok((ra, dec, sr, verb))
    })();
    let (ra, dec, sr, verb) = match parsed {
        Ok(p) => p,
        Err(m) => return Ok(error_votable(&m)),
    };
    let max_rows = state.config.max_cone_rows;
    let (table, overflow) = state
        .blocking(move || {
            let c = h.collection()?;
            // SR = 0 asks for the table's metadata only.
            let hits = if sr > 0.0 {
                c.cone_search(ra, dec, sr, max_rows + 1)?
            } else {
                Vec::new()
            };
            let overflow = hits.len() > max_rows;
            let mut objects = Vec::with_capacity(hits.len().min(max_rows));
            for hit in hits.iter().take(max_rows) {
                match c.get(hit.id) {
                    Ok(o) => objects.push((hit.separation_deg, o)),
                    Err(astrovec_engine::Error::NotFound(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            let mut cols = vec![
                Column {
                    name: "id".into(),
                    unit: String::new(),
                    ucd: "ID_MAIN".into(),
                    description: "Object id".into(),
                    values: Values::Str(objects.iter().map(|o| Some(o.1.id.to_string())).collect()),
                },
                Column {
                    name: "ra".into(),
                    unit: "deg".into(),
                    ucd: "POS_EQ_RA_MAIN".into(),
                    description: "Right ascension, ICRS".into(),
                    values: Values::F64(objects.iter().map(|o| Some(o.1.ra)).collect()),
                },
                Column {
                    name: "dec".into(),
                    unit: "deg".into(),
                    ucd: "POS_EQ_DEC_MAIN".into(),
                    description: "Declination, ICRS".into(),
                    values: Values::F64(objects.iter().map(|o| Some(o.1.dec)).collect()),
                },
            ];
            if verb >= 2 {
                cols.push(Column {
                    name: "separation".into(),
                    unit: "deg".into(),
                    ucd: "POS_ANG_DIST_GENERAL".into(),
                    description: "Angular distance from the cone centre".into(),
                    values: Values::F64(objects.iter().map(|o| Some(o.0)).collect()),
                });
                cols.extend(attribute_columns(
                    h.config(),
                    None,
                    |i| &objects[i].1.attributes,
                    objects.len(),
                ));
            }
            Ok((Table { columns: cols }, overflow))
        })
        .await?;
    let status = if overflow {
        (
            "QUERY_STATUS",
            "OVERFLOW",
            "more rows matched than the server returns",
        )
    } else {
        ("QUERY_STATUS", "OK", "")
    };
    let body = table.to_votable(&format!("{c}_cone"), &[status]);
    Ok(([(header::CONTENT_TYPE, SCS_CONTENT_TYPE)], body).into_response())
}
