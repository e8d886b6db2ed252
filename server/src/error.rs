//! The server's one error type and its mapping to HTTP.
//!
//! Every handler returns [`ApiError`]. 4xx bodies say what was wrong — the field,
//! what was expected and what was supplied — so a client can fix its request
//! without reading logs; 5xx bodies are generic and the detail goes to the log.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A field has the wrong value, type or shape.
    #[error("invalid `{field}`: expected {expected}, got {got}")]
    Invalid {
        /// The field (JSON path or query parameter), with its unit where it has one.
        field: String,
        /// What is accepted.
        expected: String,
        /// What was supplied.
        got: String,
    },
    /// The body is not valid JSON, or does not have the documented shape.
    #[error("request body is not valid JSON for this endpoint: {0}")]
    BadJson(String),
    /// The query string does not parse.
    #[error("bad query string: {0}")]
    BadQuery(String),
    /// The body exceeds the configured limit.
    #[error("request body is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit, bytes.
        limit: usize,
    },
    /// No collection of that name is served.
    #[error("unknown collection `{name}` (served: {known})")]
    UnknownCollection {
        /// Requested name.
        name: String,
        /// Comma-separated list of served collections.
        known: String,
    },
    /// The object (or one of its blobs) does not exist.
    #[error("{0}")]
    NotFound(String),
    /// No or wrong bearer key.
    #[error("{0}")]
    Unauthorized(String),
    /// The operation is switched off in this server's configuration.
    #[error("{0}")]
    Forbidden(String),
    /// The request took longer than the configured limit.
    #[error("the request took longer than the server's limit of {seconds} s")]
    Timeout {
        /// The limit, seconds.
        seconds: f64,
    },
    /// An error inside the engine (user errors are converted to 4xx, others to 500).
    #[error(transparent)]
    Engine(#[from] astrovec_engine::Error),
    /// The collection's model failed or is unavailable.
    #[error("encoder: {0}")]
    Encoder(String),
    /// Anything else that is the service's fault (detail logged, not returned).
    #[error("internal error: {0}")]
    Internal(String),
}

/// Result alias for handlers.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// Shorthand for [`ApiError::Invalid`].
    pub fn invalid(
        field: impl Into<String>,
        expected: impl Into<String>,
        got: impl Into<String>,
    ) -> Self {
        ApiError::Invalid {
            field: field.into(),
            expected: expected.into(),
            got: got.into(),
        }
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        use astrovec_engine::Error as E;
        match self {
            ApiError::Invalid { .. } | ApiError::BadJson(_) | ApiError::BadQuery(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnknownCollection { .. } | ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Timeout { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Engine(e) => match e {
                E::NotFound(_) | E::MissingEmbedding { .. } => StatusCode::NOT_FOUND,
                e if e.is_user_error() => StatusCode::BAD_REQUEST,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
            ApiError::Encoder(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A short machine-readable code for the body.
    fn code(&self) -> &'static str {
        match self {
            ApiError::Invalid { .. } => "invalid_field",
            ApiError::BadJson(_) => "bad_json",
            ApiError::BadQuery(_) => "bad_query",
            ApiError::TooLarge { .. } => "body_too_large",
            ApiError::UnknownCollection { .. } => "unknown_collection",
            ApiError::NotFound(_) => "not_found",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::Timeout { .. } => "timeout",
            ApiError::Engine(e) => match e {
                astrovec_engine::Error::NotFound(_) => "not_found",
                astrovec_engine::Error::MissingEmbedding { .. } => "missing_embedding",
                astrovec_engine::Error::FilterSyntax { .. } => "bad_filter",
                e if e.is_user_error() => "invalid_field",
                _ => "internal",
            },
            ApiError::Encoder(_) | ApiError::Internal(_) => "internal",
        }
    }

    /// Field / expected / got for the body, where the error knows them.
    fn details(&self) -> (Option<String>, Option<String>, Option<String>) {
        use astrovec_engine::Error as E;
        match self {
            ApiError::Invalid {
                field,
                expected,
                got,
            } => (
                Some(field.clone()),
                Some(expected.clone()),
                Some(got.clone()),
            ),
            ApiError::Engine(e) => match e {
                E::DimensionMismatch {
                    modality,
                    expected,
                    got,
                } => (
                    Some(format!("vector ({modality})")),
                    Some(format!("{expected} values")),
                    Some(format!("{got} values")),
                ),
                E::NonFiniteVector { index, .. } => (
                    Some(format!("vector[{index}]")),
                    Some("a finite number".into()),
                    Some("NaN or infinity".into()),
                ),
                E::FilterSyntax { position, message } => (
                    Some("filter".into()),
                    Some(message.clone()),
                    Some(format!("a syntax error at character {position}")),
                ),
                E::UnknownModality { name, known } => (
                    Some("modality".into()),
                    Some(format!("one of {known}")),
                    Some(name.clone()),
                ),
                E::UnknownAttribute { name, known } => (
                    Some("attribute".into()),
                    Some(format!("one of {known}")),
                    Some(name.clone()),
                ),
                E::AttributeType {
                    name,
                    expected,
                    got,
                } => (
                    Some(name.clone()),
                    Some(expected.clone()),
                    Some(got.clone()),
                ),
                E::InvalidArgument { field, reason } => {
                    (Some(field.clone()), None, Some(reason.clone()))
                }
                _ => (None, None, None),
            },
            _ => (None, None, None),
        }
    }
}

#[derive(Serialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize)]
struct ErrorDetail {
    status: u16,
    code: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expected: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    got: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
            // The detail may name files or internals: log it, return a generic message.
            tracing::error!(error = %self, "request failed");
            ErrorDetail {
                status: status.as_u16(),
                code: "internal",
                message: "internal server error (the detail is in the server log)".into(),
                field: None,
                expected: None,
                got: None,
            }
        } else {
            let (field, expected, got) = self.details();
            ErrorDetail {
                status: status.as_u16(),
                code: self.code(),
                message: self.to_string(),
                field,
                expected,
                got,
            }
        };
        let mut resp = (status, axum::Json(ErrorBody { error: body })).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}
