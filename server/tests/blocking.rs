//! Every engine and encoder call from the server runs on the blocking pool: the
//! collection handle hands out the engine and the model only inside
//! `AppState::blocking`, so a handler that calls them from async code fails
//! (an internal error; a panic in debug builds) and the endpoint tests catch it.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use astrovec_server::state::on_blocking_pool;
use astrovec_server::{AppState, CollectionHandle, ServerConfig};
use common::*;

/// Whether the handle's engine and model accessors answer on this thread. A
/// refusal is an error in release builds and a panic in debug builds: both are `false`.
fn reachable(h: &CollectionHandle) -> (bool, bool) {
    let collection = catch_unwind(AssertUnwindSafe(|| h.collection().is_ok()));
    let encoder = catch_unwind(AssertUnwindSafe(|| h.encoder().is_ok()));
    (matches!(collection, Ok(true)), matches!(encoder, Ok(true)))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_engine_and_model_answer_only_inside_blocking() {
    let f = build();
    let h: Arc<CollectionHandle> = f.handle.clone();

    // Async code, where the handlers run: refused.
    assert!(!on_blocking_pool());
    assert_eq!(reachable(&h), (false, false));

    // Inside `AppState::blocking`: both answer.
    let state = AppState::shared(vec![h.clone()], ServerConfig::default());
    let inside = h.clone();
    let (on_pool, answers, objects) = state
        .blocking(move || {
            let objects = inside.collection()?.len();
            Ok((on_blocking_pool(), reachable(&inside), objects))
        })
        .await
        .unwrap();
    assert!(on_pool);
    assert_eq!(answers, (true, true));
    assert_eq!(objects, N);

    // Tokio's pool without `AppState::blocking` (no permit, so outside the
    // concurrency limit) is refused too, and a thread the pool reuses after a
    // `blocking` call (even one that panicked) is no longer marked.
    let boom = h.clone();
    let panicked = state
        .blocking(move || -> astrovec_server::ApiResult<()> {
            boom.collection()?;
            panic!("a handler's blocking work panics");
        })
        .await;
    assert!(panicked.is_err());
    for _ in 0..8 {
        let plain = h.clone();
        let answers = tokio::task::spawn_blocking(move || reachable(&plain))
            .await
            .unwrap();
        assert_eq!(answers, (false, false));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_call_is_an_internal_error() {
    if cfg!(debug_assertions) {
        // Debug builds panic instead, which the test above covers.
        return;
    }
    let f = build();
    let err = f.handle.collection().err().expect("refused off the pool");
    assert_eq!(err.status(), axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    assert!(err.to_string().contains("blocking pool"), "{err}");
}
