//! The 2-D PCA projection behind the embedding map: an evenly spaced sample of
//! one modality's vectors, centred and projected on its two leading principal
//! axes (block power iteration).

use astrovec_engine::Collection;

use crate::error::ApiResult;

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

/// Projects an evenly spaced sample of at most `points` of `modality`'s vectors
/// (blocking: reads every object's modalities, then the sample's embeddings).
pub(crate) fn project(c: &Collection, modality: &str, points: usize) -> ApiResult<Projection> {
    c.config().modality_index(modality)?;
    let mut ids = c.ids();
    ids.sort_unstable();
    let mut with = Vec::with_capacity(ids.len());
    for id in ids {
        if c.get(id)
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
        if let Ok(v) = c.get_embedding(id, modality) {
            sample.push(id);
            rows.push(v);
        }
        i += step;
    }
    let (coords, explained_variance) = pca2(&rows);
    Ok(Projection {
        ids: sample,
        x: coords.iter().map(|c| c[0]).collect(),
        y: coords.iter().map(|c| c[1]).collect(),
        explained_variance,
        total,
    })
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
