//! Writes through the API (they need the API key): insert or replace an object
//! from embeddings or raw uploads (embedded by the collection's model and stored
//! as blobs), and delete one.

use astrovec_engine::blobs::{encode_spectrum_f16, IMAGE_PNG, SPECTRUM_F16};
use astrovec_engine::{AttrValue, AttributeKind, Object};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::objects::render_png;
use super::wire::PutObject;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::state::{AppState, CollectionHandle};
use crate::upload::{embed_image, embed_spectrum};

/// Converts an attribute's JSON value to the kind the collection declares for it.
fn attr_value(h: &CollectionHandle, name: &str, v: &Value) -> ApiResult<AttrValue> {
    let cfg = h.config();
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
                let enc = h.encoder()?;
                let enc = enc.lock();
                let flux = s.decode("spectrum", enc.config().spectrum_backbone.spectrum_length)?;
                let v = embed_spectrum(&enc, &flux, "spectrum")?;
                o.embeddings.insert("spectrum".into(), v);
                o.blobs
                    .insert(SPECTRUM_F16.into(), encode_spectrum_f16(&flux));
            }
            let c = h.collection()?;
            let existed = match c.get(id) {
                Ok(_) => true,
                Err(astrovec_engine::Error::NotFound(_)) => false,
                Err(e) => return Err(e.into()),
            };
            c.upsert(o)?;
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
            let n = h.collection()?.delete(&[id])?;
            h.touch();
            Ok(n)
        })
        .await?;
    if n == 0 {
        return Err(ApiError::Engine(astrovec_engine::Error::NotFound(id)));
    }
    Ok(Json(json!({"collection": c, "id": id, "deleted": true})))
}
