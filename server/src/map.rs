//! The embedding map for the web page: a 2-D PCA projection of one modality's
//! vectors, computed server-side on an evenly spaced sample of ids, cached until
//! the next write, and returned with an attribute for colouring.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::attr_json;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiPath, ApiQuery};
use crate::state::{AppState, Cached, CollectionHandle};

/// Largest sample a map may ask for.
pub const MAX_MAP_POINTS: usize = 20_000;
/// Power iterations (plenty for the two leading components of embedding clouds).
const ITERATIONS: usize = 40;

/// A computed projection.
#[derive(Debug, Clone)]
pub struct Projection {
    /// Object ids of the sample.
    pub ids: Vec<u64>,
    /// First principal coordinate per id.
    pub x: Vec<f32>,
    /// Second principal coordinate per id.
    pub y: Vec<f32>,
    /// Fraction of the sample's variance along each of the two axes.
    pub explained_variance: [f64; 2],
    /// Live vectors of the modality when computed.
    pub total: u64,
}

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
    /// Sample size (default 5,000; at most 20,000).
    #[serde(default)]
    pub points: Option<usize>,
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
}

/// Top-2 principal axes of the (centred) rows by block power iteration.
pub fn pca2(rows: &[Vec<f32>]) -> (Vec<[f32; 2]>, [f64; 2]) {
    let n = rows.len();
    if n == 0 {
        return (Vec::new(), [0.0, 0.0]);
    }
    let d = rows[0].len();
    let mut mean = vec![0.0f64; d];
    for r in rows {
        for (m, v) in mean.iter_mut().zip(r) {
            *m += *v as f64;
        }
    }
    let mean: Vec<f32> = mean.iter().map(|m| (m / n as f64) as f32).collect();
    let centred: Vec<Vec<f32>> = rows
        .iter()
        .map(|r| r.iter().zip(&mean).map(|(v, m)| v - m).collect())
        .collect();
    let total_var: f64 = centred.iter().map(|r| dot(r, r)).sum::<f64>().max(1e-30);
    // Deterministic, non-degenerate start vectors.
    let mut basis: Vec<Vec<f32>> = (0..2)
        .map(|k| {
            (0..d)
                .map(|j| (((j * 7919 + k * 104_729) % 1000) as f32 / 1000.0) - 0.5)
                .collect()
        })
        .collect();
    let mut eig = [0.0f64; 2];
    for _ in 0..ITERATIONS {
        let mut next: Vec<Vec<f64>> = vec![vec![0.0; d]; 2];
        for r in &centred {
            for k in 0..2 {
                let p = dot(r, &basis[k]);
                for (acc, v) in next[k].iter_mut().zip(r) {
                    *acc += p * *v as f64;
                }
            }
        }
        // Gram–Schmidt keeps the second axis orthogonal to the first.
        let n0 = next[0].iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-30);
        eig[0] = n0;
        let b0: Vec<f64> = next[0].iter().map(|x| x / n0).collect();
        let proj: f64 = next[1].iter().zip(&b0).map(|(a, b)| a * b).sum();
        let mut b1: Vec<f64> = next[1].iter().zip(&b0).map(|(a, b)| a - proj * b).collect();
        let n1 = b1.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-30);
        eig[1] = n1;
        b1.iter_mut().for_each(|x| *x /= n1);
        basis = vec![
            b0.iter().map(|x| *x as f32).collect(),
            b1.iter().map(|x| *x as f32).collect(),
        ];
    }
    let coords = centred
        .iter()
        .map(|r| [dot(r, &basis[0]) as f32, dot(r, &basis[1]) as f32])
        .collect();
    (coords, [eig[0] / total_var, eig[1] / total_var])
}

/// Computes (or takes from the cache) the projection of `modality` (blocking).
fn projection(h: &CollectionHandle, modality: &str, points: usize) -> ApiResult<Arc<Projection>> {
    let generation = h.generation();
    let key = (modality.to_string(), points);
    if let Some(c) = h.maps.lock().get(&key) {
        if c.generation == generation {
            return Ok(c.value.clone());
        }
    }
    h.collection.config().modality_index(modality)?;
    let mut ids = h.collection.ids();
    ids.sort_unstable();
    let mut with = Vec::with_capacity(ids.len());
    for id in ids {
        if h.collection
            .get(id)
            .is_ok_and(|o| o.modalities.iter().any(|m| m == modality))
        {
            with.push(id);
        }
    }
    let total = with.len() as u64;
    let step = (with.len() as f64 / points as f64).max(1.0);
    let mut sample = Vec::new();
    let mut rows = Vec::new();
    let mut i = 0.0f64;
    while (i as usize) < with.len() && sample.len() < points {
        let id = with[i as usize];
        if let Ok(v) = h.collection.get_embedding(id, modality) {
            sample.push(id);
            rows.push(v);
        }
        i += step;
    }
    let (coords, explained_variance) = pca2(&rows);
    let p = Arc::new(Projection {
        ids: sample,
        x: coords.iter().map(|c| c[0]).collect(),
        y: coords.iter().map(|c| c[1]).collect(),
        explained_variance,
        total,
    });
    h.maps.lock().insert(
        key,
        Cached {
            generation,
            value: p.clone(),
        },
    );
    Ok(p)
}

/// `GET /v1/collections/{c}/map`.
pub async fn embedding_map(
    State(state): State<AppState>,
    ApiPath(c): ApiPath<String>,
    ApiQuery(p): ApiQuery<MapParams>,
) -> ApiResult<Json<Value>> {
    let points = p.points.unwrap_or(5000);
    if points == 0 || points > MAX_MAP_POINTS {
        return Err(ApiError::invalid(
            "points",
            format!("1..={MAX_MAP_POINTS}"),
            points.to_string(),
        ));
    }
    let h = state.collection(&c)?;
    let modality = p.modality.clone().unwrap_or_else(|| {
        let ms = &h.collection.config().modalities;
        if ms.iter().any(|m| m.name == "image") {
            "image".into()
        } else {
            ms.first().map(|m| m.name.clone()).unwrap_or_default()
        }
    });
    let color = p.color.clone();
    let out = state
        .blocking(move || {
            if let Some(a) = &color {
                h.collection.config().attribute_index(a)?;
            }
            let proj = projection(&h, &modality, points)?;
            let values: Option<Vec<Value>> = color.as_ref().map(|a| {
                proj.ids
                    .iter()
                    .map(|id| {
                        h.collection
                            .get(*id)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pca_finds_the_dominant_axis() {
        // Points spread along (1, 1, 0) with a little spread along (0, 0, 1).
        let rows: Vec<Vec<f32>> = (0..50)
            .map(|i| {
                let t = i as f32 - 25.0;
                vec![t, t, 0.1 * ((i % 5) as f32 - 2.0)]
            })
            .collect();
        let (coords, ev) = pca2(&rows);
        assert_eq!(coords.len(), 50);
        assert!(ev[0] > 0.99, "{ev:?}");
        // The first coordinate is monotone in t (up to sign).
        let increasing = coords.windows(2).all(|w| w[1][0] > w[0][0]);
        let decreasing = coords.windows(2).all(|w| w[1][0] < w[0][0]);
        assert!(increasing || decreasing);
    }
}
