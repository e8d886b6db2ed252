//! Request extractors whose rejections are [`ApiError`]s, so a malformed body,
//! query string or path gets the same error shape as every other failure.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
pub use crate::fields::KnownFields;

/// A JSON body of type `T`, checked for unknown top-level fields ([`KnownFields`]):
/// bodies built with `#[serde(flatten)]` cannot use `deny_unknown_fields`, so
/// unknown (misspelt) fields are caught here instead of being silently ignored.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned + KnownFields,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let limit = req
            .extensions()
            .get::<BodyLimit>()
            .map(|l| l.0)
            .unwrap_or(0);
        let axum::Json(value) = axum::Json::<serde_json::Value>::from_request(req, state)
            .await
            .map_err(|e| json_rejection(e, limit))?;
        if let Some(obj) = value.as_object() {
            let fields = T::fields();
            if let Some(k) = obj.keys().find(|k| !fields.contains(&k.as_str())) {
                return Err(ApiError::invalid(
                    k.clone(),
                    format!("one of the fields {}", fields.join(", ")),
                    "an unknown field",
                ));
            }
        } else {
            return Err(ApiError::BadJson(format!(
                "expected a JSON object, got {}",
                kind_of(&value)
            )));
        }
        serde_json::from_value(value)
            .map(ApiJson)
            .map_err(|e| ApiError::BadJson(e.to_string()))
    }
}

fn kind_of(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// The configured body limit, put in the request extensions by the router so the
/// 413 message can say what the limit is.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

fn json_rejection(e: JsonRejection, limit: usize) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::TooLarge { limit }
    } else if matches!(e, JsonRejection::MissingJsonContentType(_)) {
        ApiError::BadJson("send the body with `Content-Type: application/json`".into())
    } else {
        ApiError::BadJson(e.body_text())
    }
}

/// A query string of type `T`.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e: QueryRejection| ApiError::BadQuery(e.body_text()))
    }
}

/// Path parameters of type `T`.
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|e: PathRejection| {
                ApiError::invalid(
                    "path",
                    "collection name and object id (an unsigned 64-bit integer)",
                    e.body_text(),
                )
            })
    }
}
