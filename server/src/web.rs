//! The web page, served at `/` from files embedded in the binary at build time
//! (`server/web/`). Today `index.html` is a placeholder that points at the API;
//! the search page replaces the files in `server/web/` and lists them in
//! [`ASSETS`] — nothing else in the server changes.

use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, ApiResult};
use crate::extract::ApiPath;

/// An embedded file: path under `/assets/`, content type, bytes.
pub struct Asset {
    /// Path below `/assets/` (e.g. `style.css`).
    pub path: &'static str,
    /// MIME type.
    pub content_type: &'static str,
    /// Contents.
    pub bytes: &'static [u8],
}

/// The page itself.
const INDEX_HTML: &[u8] = include_bytes!("../web/index.html");

/// Files under `/assets/`.
pub const ASSETS: &[Asset] = &[Asset {
    path: "style.css",
    content_type: "text/css; charset=utf-8",
    bytes: include_bytes!("../web/style.css"),
}];

/// `GET /`.
pub async fn index() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        INDEX_HTML,
    )
        .into_response()
}

/// `GET /assets/{*path}`.
pub async fn asset(ApiPath(path): ApiPath<String>) -> ApiResult<Response> {
    let a = ASSETS
        .iter()
        .find(|a| a.path == path)
        .ok_or_else(|| ApiError::NotFound(format!("no asset `{path}`")))?;
    Ok((
        [
            (header::CONTENT_TYPE, a.content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        a.bytes,
    )
        .into_response())
}
