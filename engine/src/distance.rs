//! Dot products on normalised vectors, and the cosine distance the HNSW graph uses.
//!
//! Vectors are L2-normalised on write, so cosine similarity is a dot product. The
//! dot product is the hot loop of both the exact scan and HNSW traversal; it has a
//! portable version (eight independent accumulators, which the compiler
//! vectorises for the baseline target), an AVX + FMA version and an opt-in AVX-512
//! version, chosen at run time, because release builds target baseline x86-64 and would
//! otherwise leave most of the machine's vector width unused.

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

/// AVX + FMA kernel: four independent 8-lane accumulators (32 floats per step) so
/// the FMA latency is hidden. It needs AVX and FMA only (no AVX2 instruction), so it
/// is gated on exactly those.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,fma")]
unsafe fn dot_fma(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    // SAFETY (whole function): every load reads 8 floats at offsets below `n`,
    // which both slices hold.
    while i + 32 <= n {
        for (j, s) in acc.iter_mut().enumerate() {
            let x = _mm256_loadu_ps(pa.add(i + 8 * j));
            let y = _mm256_loadu_ps(pb.add(i + 8 * j));
            *s = _mm256_fmadd_ps(x, y, *s);
        }
        i += 32;
    }
    while i + 8 <= n {
        acc[0] = _mm256_fmadd_ps(
            _mm256_loadu_ps(pa.add(i)),
            _mm256_loadu_ps(pb.add(i)),
            acc[0],
        );
        i += 8;
    }
    let mut total = hsum(_mm256_add_ps(
        _mm256_add_ps(acc[0], acc[1]),
        _mm256_add_ps(acc[2], acc[3]),
    ));
    while i < n {
        total += *pa.add(i) * *pb.add(i);
        i += 1;
    }
    total
}

/// The widest dot-product kernels this CPU runs.
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    /// The portable loop.
    Generic = 1,
    /// 256-bit AVX + FMA (+ F16C for half floats when present).
    Avx2 = 2,
    /// 512-bit AVX-512F (which includes the half-float conversion).
    Avx512 = 3,
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn level() -> Level {
    use std::sync::atomic::{AtomicU8, Ordering};
    // 0 = not probed yet. A plain atomic byte keeps the check to one load on the
    // hot path.
    static LEVEL: AtomicU8 = AtomicU8::new(0);
    match LEVEL.load(Ordering::Relaxed) {
        0 => {
            let l = probe_level();
            LEVEL.store(l as u8, Ordering::Relaxed);
            l
        }
        3 => Level::Avx512,
        2 => Level::Avx2,
        _ => Level::Generic,
    }
}

#[cfg(target_arch = "x86_64")]
fn probe_level() -> Level {
    let fma = is_x86_feature_detected!("avx") && is_x86_feature_detected!("fma");
    // The 512-bit kernels are opt-in (`ASTROVEC_SIMD=avx512`): on the machine the
    // benchmarks ran on, 100,000 × 1024 HNSW searches were as fast or up to 13%
    // faster with the 256-bit ones (the graph walk is bound by memory, and 512-bit
    // instructions lower the clock).
    let wide = std::env::var("ASTROVEC_SIMD").is_ok_and(|v| v.eq_ignore_ascii_case("avx512"));
    if fma && is_x86_feature_detected!("avx512f") && wide {
        Level::Avx512
    } else if fma {
        Level::Avx2
    } else {
        Level::Generic
    }
}

#[cfg(target_arch = "x86_64")]
fn has_fma() -> bool {
    level() >= Level::Avx2
}

/// True when the dot kernels in use are the 256-bit AVX + FMA ones (not the opt-in
/// 512-bit ones, nor the portable loops).
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn kernels_are_avx2() -> bool {
    level() == Level::Avx2
}

/// AVX-512 kernel: four independent 16-lane accumulators (64 floats per step),
/// the remainder with one masked load.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn dot_avx512(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = [_mm512_setzero_ps(); 4];
    let mut i = 0;
    // SAFETY (whole function): full loads read 16 floats below `n`; the last load
    // is masked to the elements below `n`.
    while i + 64 <= n {
        for (j, s) in acc.iter_mut().enumerate() {
            let x = _mm512_loadu_ps(pa.add(i + 16 * j));
            let y = _mm512_loadu_ps(pb.add(i + 16 * j));
            *s = _mm512_fmadd_ps(x, y, *s);
        }
        i += 64;
    }
    while i + 16 <= n {
        acc[0] = _mm512_fmadd_ps(
            _mm512_loadu_ps(pa.add(i)),
            _mm512_loadu_ps(pb.add(i)),
            acc[0],
        );
        i += 16;
    }
    if i < n {
        let mask: __mmask16 = (1u16 << (n - i)) - 1;
        let x = _mm512_maskz_loadu_ps(mask, pa.add(i));
        let y = _mm512_maskz_loadu_ps(mask, pb.add(i));
        acc[1] = _mm512_fmadd_ps(x, y, acc[1]);
    }
    _mm512_reduce_add_ps(_mm512_add_ps(
        _mm512_add_ps(acc[0], acc[1]),
        _mm512_add_ps(acc[2], acc[3]),
    ))
}

/// Half-float rows with AVX-512F: 16 halves converted per instruction.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn dot_f16_avx512(q: &[f32], h: &[u16]) -> f32 {
    use std::arch::x86_64::*;
    let n = q.len().min(h.len());
    let (pq, ph) = (q.as_ptr(), h.as_ptr());
    let mut acc = [_mm512_setzero_ps(); 4];
    let mut i = 0;
    // SAFETY (whole function): every load reads 16 elements at offsets below `n`.
    while i + 64 <= n {
        for (j, s) in acc.iter_mut().enumerate() {
            let x = _mm512_cvtph_ps(_mm256_loadu_si256(ph.add(i + 16 * j).cast::<__m256i>()));
            *s = _mm512_fmadd_ps(x, _mm512_loadu_ps(pq.add(i + 16 * j)), *s);
        }
        i += 64;
    }
    while i + 16 <= n {
        let x = _mm512_cvtph_ps(_mm256_loadu_si256(ph.add(i).cast::<__m256i>()));
        acc[0] = _mm512_fmadd_ps(x, _mm512_loadu_ps(pq.add(i)), acc[0]);
        i += 16;
    }
    let mut total = _mm512_reduce_add_ps(_mm512_add_ps(
        _mm512_add_ps(acc[0], acc[1]),
        _mm512_add_ps(acc[2], acc[3]),
    ));
    while i < n {
        total += *pq.add(i) * half::f16::from_bits(*ph.add(i)).to_f32();
        i += 1;
    }
    total
}

/// Dot product of two equal-length slices.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        match level() {
            // SAFETY: the CPU supports AVX-512F (checked at run time).
            Level::Avx512 => return unsafe { dot_avx512(a, b) },
            // SAFETY: the CPU supports AVX and FMA (checked at run time).
            Level::Avx2 => return unsafe { dot_fma(a, b) },
            Level::Generic => {}
        }
    }
    dot_generic(a, b)
}

/// Reduces eight lanes to their sum.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
fn hsum(v: std::arch::x86_64::__m256) -> f32 {
    use std::arch::x86_64::*;
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps::<0b01>(s, s));
    _mm_cvtss_f32(s)
}

/// Dot product of an f32 query with a row stored as IEEE half floats, converted
/// eight at a time by F16C. Half the bytes of an f32 row: the graph traversal,
/// which is bound by memory bandwidth at 1024-d, reads these.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,fma,f16c")]
#[inline]
pub(crate) unsafe fn dot_f16_fma(q: &[f32], h: &[u16]) -> f32 {
    use std::arch::x86_64::*;
    let n = q.len().min(h.len());
    let (pq, ph) = (q.as_ptr(), h.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    // SAFETY (whole function): every load reads 8 elements at offsets below `n`.
    while i + 32 <= n {
        for (j, s) in acc.iter_mut().enumerate() {
            let x = _mm256_cvtph_ps(_mm_loadu_si128(ph.add(i + 8 * j).cast::<__m128i>()));
            *s = _mm256_fmadd_ps(x, _mm256_loadu_ps(pq.add(i + 8 * j)), *s);
        }
        i += 32;
    }
    while i + 8 <= n {
        let x = _mm256_cvtph_ps(_mm_loadu_si128(ph.add(i).cast::<__m128i>()));
        acc[0] = _mm256_fmadd_ps(x, _mm256_loadu_ps(pq.add(i)), acc[0]);
        i += 8;
    }
    let mut total = hsum(_mm256_add_ps(
        _mm256_add_ps(acc[0], acc[1]),
        _mm256_add_ps(acc[2], acc[3]),
    ));
    while i < n {
        total += *pq.add(i) * half::f16::from_bits(*ph.add(i)).to_f32();
        i += 1;
    }
    total
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,f16c")]
unsafe fn to_f16_f16c(src: &[f32], dst: &mut [u16]) {
    use std::arch::x86_64::*;
    let n = src.len().min(dst.len());
    let mut i = 0;
    // SAFETY: each step reads and writes 8 elements below `n`.
    while i + 8 <= n {
        let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm256_loadu_ps(src.as_ptr().add(i)));
        _mm_storeu_si128(dst.as_mut_ptr().add(i).cast::<__m128i>(), h);
        i += 8;
    }
    for j in i..n {
        dst[j] = half::f16::from_f32(src[j]).to_bits();
    }
}

/// True when this CPU converts and multiplies half floats in hardware (AVX, FMA,
/// F16C): only then does the graph keep a half-float copy of the vectors to
/// traverse (elsewhere the conversion would cost more than the bandwidth saved).
pub(crate) fn f16_supported() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        has_fma() && is_x86_feature_detected!("f16c")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Dot product of an f32 query with a row stored as IEEE half-float bits (see
/// [`to_f16`]), as the HNSW traversal scores rows.
#[inline]
pub fn dot_f16(q: &[f32], h: &[u16]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if f16_supported_cached() {
            if level() == Level::Avx512 {
                // SAFETY: AVX-512F is present (checked at run time).
                return unsafe { dot_f16_avx512(q, h) };
            }
            // SAFETY: AVX, FMA and F16C are present (checked at run time).
            return unsafe { dot_f16_fma(q, h) };
        }
    }
    q.iter()
        .zip(h)
        .map(|(x, y)| x * half::f16::from_bits(*y).to_f32())
        .sum()
}

/// Converts `src` to IEEE half-float bits (round to nearest) into `dst` (the
/// shorter length wins).
pub fn to_f16(src: &[f32], dst: &mut [u16]) {
    #[cfg(target_arch = "x86_64")]
    {
        if f16_supported_cached() {
            // SAFETY: AVX and F16C are present (checked at run time).
            return unsafe { to_f16_f16c(src, dst) };
        }
    }
    for (d, s) in dst.iter_mut().zip(src) {
        *d = half::f16::from_f32(*s).to_bits();
    }
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn f16_supported_cached() -> bool {
    use std::sync::atomic::{AtomicU8, Ordering};
    static HAS: AtomicU8 = AtomicU8::new(0);
    match HAS.load(Ordering::Relaxed) {
        0 => {
            let yes = f16_supported();
            HAS.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
            yes
        }
        v => v == 2,
    }
}

/// Hints the CPU to start loading the cache lines at `ptr` (the first `lines` × 64
/// bytes). Used by the graph traversal to overlap the memory latency of the next
/// neighbours' vectors with the current dot product. A no-op off x86-64.
#[inline(always)]
pub(crate) fn prefetch<T>(ptr: *const T, lines: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        for l in 0..lines {
            // SAFETY: prefetching never faults, whatever the address.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(ptr.cast::<i8>().wrapping_add(64 * l)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (ptr, lines);
    }
}

/// Normalises `v` in place to unit L2 norm; returns the original norm (computed in
/// f64, so it neither overflows nor underflows for any finite f32 input).
pub fn normalize(v: &mut [f32]) -> f64 {
    let norm = (v.iter().map(|x| (*x as f64) * (*x as f64)).sum::<f64>()).sqrt();
    if norm > 0.0 && norm.is_finite() {
        // Divided in f64: `1 / norm` of a vector of subnormal values exceeds f32's range,
        // and multiplying by that infinity would turn the vector into infinities and NaNs.
        v.iter_mut().for_each(|x| *x = (*x as f64 / norm) as f32);
    }
    norm
}

/// Cosine distance `1 - a·b` of unit vectors (in [0, 2] up to rounding). The
/// graph orders candidates by it; it is never turned back into a score (the
/// collection recomputes exact similarities), so it needs no clamping.
#[inline]
pub(crate) fn cosine_distance(a: &[f32], b: &[f32]) -> f32 {
    1.0 - dot(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnormal_vectors_normalise_to_finite_unit_vectors() {
        let mut v = vec![0.0f32; 64];
        v[3] = 1e-45;
        v[9] = -3e-45;
        let norm = normalize(&mut v);
        assert!(norm > 0.0);
        assert!(v.iter().all(|x| x.is_finite()), "{v:?}");
        let len: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((len - 1.0).abs() < 1e-6, "length {len}");
    }

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
    fn half_float_dot_matches_the_f32_dot_within_half_precision() {
        for n in [0usize, 1, 7, 8, 31, 32, 33, 1024, 1031] {
            let mut a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let mut b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            normalize(&mut a);
            normalize(&mut b);
            let mut h = vec![0u16; n];
            to_f16(&b, &mut h);
            for (x, y) in b.iter().zip(&h) {
                // Round to nearest: half an ulp (2^-11 relative), or half the
                // subnormal spacing (2^-25) near zero.
                let err = (x - half::f16::from_bits(*y).to_f32()).abs();
                assert!(err <= x.abs() / 2048.0 + 3e-8, "{x} -> {err}");
            }
            let exact = dot(&a, &b);
            assert!((dot_f16(&a, &h) - exact).abs() < 2e-3, "n = {n}");
        }
    }

    /// Every kernel this CPU can run, not only the one `dot` picks.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn every_available_kernel_matches_the_naive_sum() {
        let fma = is_x86_feature_detected!("avx") && is_x86_feature_detected!("fma");
        let f16c = fma && is_x86_feature_detected!("f16c");
        let avx512 = fma && is_x86_feature_detected!("avx512f");
        for n in [0usize, 1, 15, 16, 17, 63, 64, 65, 100, 1024, 1031] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let mut h = vec![0u16; n];
            to_f16(&b, &mut h);
            let naive: f64 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (*x as f64) * (*y as f64))
                .sum();
            let naive_h: f64 = a
                .iter()
                .zip(&h)
                .map(|(x, y)| (*x as f64) * half::f16::from_bits(*y).to_f64())
                .sum();
            let close = |got: f32, want: f64, what: &str| {
                assert!(
                    (got as f64 - want).abs() < 1e-3,
                    "{what}, n = {n}: {got} vs {want}"
                );
            };
            if fma {
                // SAFETY: AVX and FMA checked above.
                close(unsafe { dot_fma(&a, &b) }, naive, "avx2");
            }
            if f16c {
                // SAFETY: AVX, FMA and F16C checked above.
                close(unsafe { dot_f16_fma(&a, &h) }, naive_h, "avx2 half");
            }
            if avx512 {
                // SAFETY: AVX-512F checked above.
                close(unsafe { dot_avx512(&a, &b) }, naive, "avx512");
                // SAFETY: AVX-512F checked above.
                close(unsafe { dot_f16_avx512(&a, &h) }, naive_h, "avx512 half");
            }
        }
    }

    #[test]
    fn cosine_distance_of_a_unit_vector_with_itself_is_zero() {
        let mut v: Vec<f32> = (0..1024)
            .map(|i| ((i * 7919) % 101) as f32 - 50.0)
            .collect();
        normalize(&mut v);
        assert!(cosine_distance(&v, &v).abs() < 1e-5);
        let w: Vec<f32> = v.iter().map(|x| -x).collect();
        assert!((cosine_distance(&v, &w) - 2.0).abs() < 1e-5);
    }
}
