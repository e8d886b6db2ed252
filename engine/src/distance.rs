//! Dot products on normalised vectors, and the distance handed to `hnsw_rs`.
//!
//! Vectors are L2-normalised on write, so cosine similarity is a dot product. The
//! dot product is the hot loop of both the exact scan and HNSW traversal; it is
//! written with eight independent accumulators so the compiler vectorises it, and
//! compiled twice — a baseline version and an AVX2+FMA version chosen at run time —
//! because release builds target baseline x86-64 and would otherwise leave most of
//! the machine's vector width unused.

use hnsw_rs::prelude::Distance;

#[inline(always)]
fn dot_generic(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; 8];
    let chunks = n / 8;
    for c in 0..chunks {
        let (x, y) = (&a[c * 8..c * 8 + 8], &b[c * 8..c * 8 + 8]);
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut tail = 0.0f32;
    for i in chunks * 8..n {
        tail += a[i] * b[i];
    }
    (acc[0] + acc[4]) + (acc[1] + acc[5]) + (acc[2] + acc[6]) + (acc[3] + acc[7]) + tail
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    // Same code as the generic path; the target feature lets LLVM use 256-bit FMA.
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; 16];
    let chunks = n / 16;
    for c in 0..chunks {
        let (x, y) = (&a[c * 16..c * 16 + 16], &b[c * 16..c * 16 + 16]);
        for i in 0..16 {
            acc[i] = x[i].mul_add(y[i], acc[i]);
        }
    }
    let mut tail = 0.0f32;
    for i in chunks * 16..n {
        tail += a[i] * b[i];
    }
    let mut s = 0.0f32;
    for v in acc {
        s += v;
    }
    s + tail
}

#[cfg(target_arch = "x86_64")]
fn has_avx2() -> bool {
    use std::sync::OnceLock;
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
}

/// Dot product of two equal-length slices.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx2() {
            // SAFETY: the CPU supports AVX2 and FMA (checked at run time above).
            return unsafe { dot_avx2(a, b) };
        }
    }
    dot_generic(a, b)
}

/// Normalises `v` in place to unit L2 norm; returns the original norm (computed in
/// f64, so it neither overflows nor underflows for any finite f32 input).
pub fn normalize(v: &mut [f32]) -> f64 {
    let norm = (v.iter().map(|x| (*x as f64) * (*x as f64)).sum::<f64>()).sqrt();
    if norm > 0.0 {
        let inv = (1.0 / norm) as f32;
        v.iter_mut().for_each(|x| *x *= inv);
    }
    norm
}

/// Cosine distance `1 - a·b` on unit vectors, clamped at 0.
///
/// The clamp matters: rounding can make `a·a` slightly above 1 for a unit vector,
/// and a negative distance breaks the graph library's invariants (it panics on some
/// self-queries). Clamping keeps distances in [0, 2].
#[derive(Debug, Clone, Copy, Default)]
pub struct CosineDistance;

impl Distance<f32> for CosineDistance {
    fn eval(&self, va: &[f32], vb: &[f32]) -> f32 {
        (1.0 - dot(va, vb)).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_naive_sum_for_odd_lengths() {
        for n in [0usize, 1, 7, 8, 15, 16, 17, 33, 1024, 1031] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let naive: f64 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (*x as f64) * (*y as f64))
                .sum();
            assert!((dot(&a, &b) as f64 - naive).abs() < 1e-3, "n = {n}");
            assert!((dot_generic(&a, &b) as f64 - naive).abs() < 1e-3, "n = {n}");
        }
    }

    #[test]
    fn cosine_distance_is_never_negative_on_self() {
        let mut v: Vec<f32> = (0..1024)
            .map(|i| ((i * 7919) % 101) as f32 - 50.0)
            .collect();
        normalize(&mut v);
        assert!(CosineDistance.eval(&v, &v) >= 0.0);
        assert!(CosineDistance.eval(&v, &v) < 1e-5);
    }
}
