//! The astrovec HTTP API (axum) and the home of the web page.
//!
//! [`router`] builds the whole application over an [`AppState`] (the open
//! collections, limits and keys); [`serve`] runs it on a listener until a
//! shutdown signal, finishing the requests in flight. Every route is listed once,
//! in [`route_table`], which both builds the router and lets the tests check the
//! OpenAPI document ([`openapi::document`]) against it.
//!
//! Engine and encoder calls are synchronous; handlers run them through
//! [`AppState::blocking`] (tokio's blocking pool, bounded by a semaphore), so the
//! async workers never block. [`CollectionHandle`] hands out the collection and
//! its model only there. The server never touches storage directly: it goes
//! through `astrovec-engine`'s `Collection`.

#![warn(missing_docs)]

pub mod api;
pub mod attributes;
pub mod error;
pub mod extract;
pub mod fields;
pub mod formats;
pub mod limits;
pub mod map;
pub mod metrics;
pub mod openapi;
pub mod scs;
pub mod state;
pub mod upload;
pub mod web;

use std::future::Future;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put, MethodRouter};
use axum::{Extension, Json, Router};
use serde_json::json;

pub use error::{ApiError, ApiResult};
pub use state::{open_collections, AppState, CollectionHandle, ServerConfig};

/// Every route: method, path (axum syntax) and handler. The one list the router
/// and the OpenAPI consistency test both read.
pub fn route_table() -> Vec<(Method, &'static str, MethodRouter<AppState>)> {
    vec![
        (Method::GET, "/", get(web::index)),
        (Method::GET, "/assets/{*path}", get(web::asset)),
        (Method::GET, "/health", get(health)),
        (Method::GET, "/metrics", get(metrics_text)),
        (Method::GET, "/openapi.json", get(openapi_json)),
        (Method::GET, "/v1/collections", get(api::list_collections)),
        (
            Method::GET,
            "/v1/collections/{c}",
            get(api::collection_info),
        ),
        (
            Method::POST,
            "/v1/collections/{c}/search",
            post(api::search),
        ),
        (
            Method::POST,
            "/v1/collections/{c}/search/batch",
            post(api::search_batch),
        ),
        (
            Method::POST,
            "/v1/collections/{c}/predict",
            post(api::predict),
        ),
        (
            Method::GET,
            "/v1/collections/{c}/map",
            get(map::embedding_map),
        ),
        (
            Method::GET,
            "/v1/collections/{c}/objects/{id}",
            get(api::get_object),
        ),
        (
            Method::PUT,
            "/v1/collections/{c}/objects/{id}",
            put(api::put_object),
        ),
        (
            Method::DELETE,
            "/v1/collections/{c}/objects/{id}",
            delete(api::delete_object),
        ),
        (
            Method::GET,
            "/v1/collections/{c}/objects/{id}/image.png",
            get(api::object_image),
        ),
        (
            Method::GET,
            "/v1/collections/{c}/objects/{id}/spectrum",
            get(api::object_spectrum),
        ),
        (Method::GET, "/scs/{c}", get(scs::cone)),
    ]
}

/// `(method, path)` of every route, paths in OpenAPI syntax (`{*path}` → `{path}`).
pub fn routes() -> Vec<(String, String)> {
    route_table()
        .into_iter()
        .map(|(m, p, _)| (m.as_str().to_string(), p.replace("{*", "{")))
        .collect()
}

/// The application: every route, with auth, timeout, body limit, panic catching
/// and metrics.
pub fn router(state: AppState) -> Router {
    let mut r: Router<AppState> = Router::new();
    for (_, path, handler) in route_table() {
        // Routes sharing a path (GET/PUT/DELETE of an object) merge their methods.
        r = r.route(path, handler);
    }
    let limit = state.config.max_body_bytes;
    r.fallback(no_route)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                ApiError::Internal("a handler panicked".into()).into_response()
            },
        ))
        .layer(middleware::from_fn_with_state(state.clone(), auth))
        .layer(middleware::from_fn_with_state(state.clone(), timeout))
        .layer(DefaultBodyLimit::max(limit))
        .layer(Extension(extract::BodyLimit(limit)))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            record_metrics,
        ))
        .with_state(state)
}

async fn no_route(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!(
        "no route {method} {}; the API is described at /openapi.json",
        uri.path()
    ))
}

async fn health(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "collections": state.collections.keys().collect::<Vec<_>>(),
    }))
}

async fn metrics_text(State(state): State<AppState>) -> ApiResult<Response> {
    let collections = state.collections.clone();
    let sizes = state
        .blocking(move || {
            let mut sizes = Vec::new();
            for (name, h) in collections.iter() {
                let stats = h.collection()?.stats();
                sizes.push((name.clone(), String::new(), stats.objects));
                for m in stats.modalities {
                    sizes.push((name.clone(), m.name, m.vectors));
                }
            }
            Ok(sizes)
        })
        .await?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(&sizes),
    )
        .into_response())
}

async fn openapi_json() -> Json<serde_json::Value> {
    Json(openapi::document())
}

/// Paths anyone may read, keys or not.
fn is_public(path: &str) -> bool {
    matches!(path, "/" | "/health" | "/openapi.json") || path.starts_with("/assets/")
}

/// The key of an `Authorization: Bearer <key>` header; the scheme name is matched
/// case-insensitively, as HTTP auth schemes are (RFC 9110 §11.1).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim_start();
    let (scheme, key) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
}

/// Compares keys in time independent of where they differ.
fn same_key(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

async fn auth(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let cfg = &state.config;
    let write = matches!(*req.method(), Method::PUT | Method::DELETE | Method::PATCH);
    let given = bearer(req.headers());
    if write {
        let Some(key) = cfg.api_key.as_deref() else {
            return ApiError::Forbidden(
                "writes are disabled on this server (start it with --api-key-file)".into(),
            )
            .into_response();
        };
        if !given.is_some_and(|g| same_key(g, key)) {
            return ApiError::Unauthorized(
                "writes need the API key: send `Authorization: Bearer <key>`".into(),
            )
            .into_response();
        }
    } else if let Some(read) = cfg.read_key.as_deref() {
        let ok = given.is_some_and(|g| {
            same_key(g, read) || cfg.api_key.as_deref().is_some_and(|k| same_key(g, k))
        });
        if !ok && !is_public(req.uri().path()) {
            return ApiError::Unauthorized(
                "this server needs a read key: send `Authorization: Bearer <key>`".into(),
            )
            .into_response();
        }
    }
    next.run(req).await
}

async fn timeout(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let limit = state.config.request_timeout;
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::Timeout {
            seconds: limit.as_secs_f64(),
        }
        .into_response(),
    }
}

async fn record_metrics(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().as_str().to_string();
    let resp = next.run(req).await;
    state.metrics.record(
        &route,
        &method,
        resp.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    resp
}

/// Serves `state` on `listener` until `shutdown` completes, then stops accepting
/// and lets requests in flight finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Completes on SIGTERM or Ctrl-C (SIGINT).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

/// Runs a server on its own multi-threaded runtime until SIGTERM / Ctrl-C: binds
/// `addr`, calls `on_listening` with the bound address (useful with port 0), serves.
pub fn run_blocking(
    state: AppState,
    addr: std::net::SocketAddr,
    on_listening: impl FnOnce(std::net::SocketAddr),
) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        on_listening(listener.local_addr()?);
        serve(listener, state, shutdown_signal()).await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_matched_case_insensitively() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, v.parse().unwrap());
            bearer(&h).map(str::to_string)
        };
        for v in ["Bearer k3y", "bearer k3y", "BEARER  k3y ", "  Bearer k3y"] {
            assert_eq!(with(v).as_deref(), Some("k3y"), "{v:?}");
        }
        assert_eq!(with("Basic k3y"), None);
        assert_eq!(with("Bearerk3y"), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }
}
