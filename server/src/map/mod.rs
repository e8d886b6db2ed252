//! The embedding map for the web page: a 2-D PCA projection ([`pca`]) of one
//! modality's vectors, computed server-side on an evenly spaced sample of ids,
//! cached until the next write, and returned with an attribute for colouring.

pub(crate) mod pca;

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::attributes::attr_json;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiPath, ApiQuery};
use crate::fields::request_struct;
use crate::limits::DEFAULT_MAP_POINTS;
pub use crate::limits::MAX_MAP_POINTS;
use crate::state::AppState;
pub use pca::{pca2, Projection};

request_struct! {
    /// Query of `GET /v1/collections/{c}/map`.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct MapParams {
        /// Modality (default `image`, or the collection's first).
        #[serde(default)]
        pub modality: Option<String>,
        /// Attribute returned per point for colouring (optional).
        #[serde(default)]
        pub color: Option<String>,
        /// Sample size (default [`DEFAULT_MAP_POINTS`]; at most [`MAX_MAP_POINTS`]).
        #[serde(default)]
        pub points: Option<usize>,
    }
}

/// `GET /v1/collections/{c}/map`.
pub async fn embedding_map(
    State(state): State<AppState>,
    ApiPath(c): ApiPath<String>,
    ApiQuery(p): ApiQuery<MapParams>,
) -> ApiResult<Json<Value>> {
    let points = p.points.unwrap_or(DEFAULT_MAP_POINTS);
    if points == 0 || points > MAX_MAP_POINTS {
        return Err(ApiError::invalid(
            "points",
            format!("1..={MAX_MAP_POINTS}"),
            points.to_string(),
        ));
    }
    let h = state.collection(&c)?;
    let modality = h.modality_or(p.modality.as_deref(), "image");
    let color = p.color.clone();
    let out = state
        .blocking(move || {
            let c = h.collection()?;
            if let Some(a) = &color {
                c.config().attribute_index(a)?;
            }
            let proj = h
                .maps
                .get_or_compute((modality.clone(), points), h.generation(), || {
                    pca::project(c, &modality, points)
                })?;
            let values: Option<Vec<Value>> = color.as_ref().map(|a| {
                proj.ids
                    .iter()
                    .map(|id| {
                        c.get(*id)
                            .ok()
                            .and_then(|o| o.attributes.get(a).map(attr_json))
                            .unwrap_or(Value::Null)
                    })
                    .collect()
            });
            Ok(json!({
                "collection": h.name,
                "modality": modality,
                "method": "PCA (2 leading components of the centred unit vectors)",
                "explained_variance": proj.explained_variance,
                "total_vectors": proj.total,
                "points": proj.ids.len(),
                "ids": proj.ids,
                "x": proj.x,
                "y": proj.y,
                "color": color,
                "values": values,
            }))
        })
        .await?;
    Ok(Json(out))
}
