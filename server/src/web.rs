//! The web page, served at `/` from files embedded in the binary at build time
//! (`server/web/`): `index.html`, a stylesheet and three ES modules (`app.js`:
//! the page; `coords.js`: RA/Dec parsing; `plots.js`: spectrum and map drawing).
//! Plain files, no build step: editing them and rebuilding the binary is all.

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

/// Files under `/assets/`: the stylesheet and the page's JavaScript modules
/// (plain ES modules, no build step).
pub const ASSETS: &[Asset] = &[
    Asset {
        path: "style.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../web/style.css"),
    },
    Asset {
        path: "app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../web/app.js"),
    },
    Asset {
        path: "coords.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../web/coords.js"),
    },
    Asset {
        path: "plots.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../web/plots.js"),
    },
];

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
