//! The served collections: their list with sizes, modalities and index state,
//! and one collection's full description (attribute summaries, HNSW parameters).

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::extract::ApiPath;
use crate::state::{AppState, CollectionHandle};

/// Size, modalities, model and index state of a collection (blocking).
fn collection_summary(h: &CollectionHandle) -> ApiResult<Value> {
    let stats = h.collection()?.stats();
    let index_state = if stats.modalities.iter().all(|m| m.indexed_rows == m.rows) {
        "indexed"
    } else if stats.modalities.iter().any(|m| m.indexed_rows > 0) {
        "partial"
    } else {
        "unindexed"
    };
    Ok(json!({
        "name": h.name,
        "objects": stats.objects,
        "model": h.config().model,
        "has_encoder": h.has_encoder(),
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
    }))
}

/// `GET /v1/collections`.
pub async fn list_collections(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let collections = state.collections.clone();
    let list: Vec<Value> = state
        .blocking(move || {
            collections
                .values()
                .map(|h| collection_summary(h))
                .collect()
        })
        .await?;
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
            let mut v = collection_summary(&h)?;
            v["attributes"] = serde_json::to_value(&*h.attribute_summaries()?)
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            let hnsw = &h.config().hnsw;
            v["hnsw"] = json!({
                "m": hnsw.m,
                "ef_construction": hnsw.ef_construction,
                "ef_search": hnsw.ef_search,
            });
            Ok(v)
        })
        .await?;
    Ok(Json(out))
}
