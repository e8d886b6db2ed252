//! What the traversal scores nodes against: the f32 rows of the vector file, or a
//! half-float copy of them (scored through the dispatched kernel, or through the
//! AVX + FMA + F16C kernel inlined into a traversal compiled for those features),
//! and how many cache lines of a row to prefetch ahead of scoring it.

use rayon::prelude::*;

use super::ABSENT;
use crate::distance::{cosine_distance, dot_f16, f16_supported, prefetch, to_f16};
use crate::vectors::VectorView;

/// What the traversal scores nodes against: full f32 rows, or half floats.
pub(super) trait Space {
    /// Cosine distance of the query to `node` (approximate for half floats).
    fn dist(&self, q: &[f32], node: u32) -> f32;
    /// Starts loading cache lines `[from, from + lines)` of `node`'s row.
    fn prefetch(&self, node: u32, from: usize, lines: usize);
    /// 64-byte cache lines one row spans.
    fn row_lines(&self) -> usize;
}

/// Cache lines of each new neighbour's row to request before the first is scored:
/// whole rows when they are short (at 128-d a half-float row is 4 lines), else the
/// first two, so that 32 neighbours' requests do not flood the load queue; the rest
/// of a long row is requested one row ahead ([`ahead_lines`]).
#[inline]
pub(super) fn first_lines(row_lines: usize) -> usize {
    if row_lines <= 8 {
        row_lines
    } else {
        2
    }
}

/// Lines of the next row requested while the current one is scored (after
/// [`first_lines`]); the hardware prefetcher streams the rest of a long row.
#[inline]
pub(super) fn ahead_lines(row_lines: usize) -> usize {
    row_lines.saturating_sub(first_lines(row_lines)).min(6)
}

/// The f32 rows of the memory-mapped vector file.
pub(super) struct Full<'a>(pub(super) &'a VectorView);

impl Space for Full<'_> {
    #[inline]
    fn dist(&self, q: &[f32], node: u32) -> f32 {
        cosine_distance(q, self.0.row(node))
    }
    #[inline]
    fn prefetch(&self, node: u32, from: usize, lines: usize) {
        prefetch(self.0.row(node).as_ptr().wrapping_add(16 * from), lines);
    }
    #[inline]
    fn row_lines(&self) -> usize {
        (self.0.dim() * 4).div_ceil(64)
    }
}

/// A half-float copy of the graph's rows (absent rows left zero): half the bytes
/// of the f32 file for the bandwidth-bound traversal; final scores come from f32.
pub(super) struct HalfRows {
    data: Vec<u16>,
    dim: usize,
}

impl HalfRows {
    /// The copy of the rows whose level is not [`ABSENT`]; `None` on CPUs without
    /// F16C (the traversal then reads the f32 rows).
    pub(super) fn new(view: &VectorView, levels: &[u8]) -> Option<HalfRows> {
        if !f16_supported() {
            return None;
        }
        let dim = view.dim();
        let mut data = vec![0u16; levels.len() * dim];
        data.par_chunks_mut(dim)
            .zip(levels.par_iter())
            .enumerate()
            .filter(|(_, (_, l))| **l != ABSENT)
            .for_each(|(r, (out, _))| to_f16(view.row(r as u32), out));
        Some(HalfRows { data, dim })
    }

    /// Bytes the copy holds.
    pub(super) fn bytes(&self) -> usize {
        self.data.len() * 2
    }

    #[inline]
    fn row(&self, r: u32) -> &[u16] {
        let s = r as usize * self.dim;
        &self.data[s..s + self.dim]
    }
}

impl Space for HalfRows {
    #[inline]
    fn dist(&self, q: &[f32], node: u32) -> f32 {
        1.0 - dot_f16(q, self.row(node))
    }
    #[inline]
    fn prefetch(&self, node: u32, from: usize, lines: usize) {
        prefetch(self.row(node).as_ptr().wrapping_add(32 * from), lines);
    }
    #[inline]
    fn row_lines(&self) -> usize {
        (self.dim * 2).div_ceil(64)
    }
}

/// Half-float rows scored by the AVX + FMA + F16C kernel called directly: inside
/// `Hnsw::search_half_avx2`, which is compiled with those features, the kernel
/// inlines into the traversal loop instead of being dispatched on every call.
/// (Named for the 256-bit kernel level; AVX2 itself is not required.)
#[cfg(target_arch = "x86_64")]
pub(super) struct HalfAvx2<'a>(pub(super) &'a HalfRows);

#[cfg(target_arch = "x86_64")]
impl Space for HalfAvx2<'_> {
    #[inline(always)]
    fn dist(&self, q: &[f32], node: u32) -> f32 {
        // SAFETY: a `HalfAvx2` is only made after `kernels_are_avx2()` (AVX and FMA)
        // and a `HalfRows` exists only where F16C is present (`f16_supported`).
        1.0 - unsafe { crate::distance::dot_f16_fma(q, self.0.row(node)) }
    }
    #[inline(always)]
    fn prefetch(&self, node: u32, from: usize, lines: usize) {
        self.0.prefetch(node, from, lines)
    }
    #[inline(always)]
    fn row_lines(&self) -> usize {
        self.0.row_lines()
    }
}
