//! Exact (brute-force) top-k over vector rows, and the row filter handed to the
//! HNSW traversal. The exact path is a feature — small collections and very
//! selective filters — and the oracle every approximate search is tested against.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use rayon::prelude::*;
use roaring::RoaringBitmap;

use crate::distance::dot;
use crate::vectors::VectorView;

/// Rows per parallel task in the exact scan: large enough to amortise scheduling.
const CHUNK: usize = 4096;

#[derive(Clone, Copy)]
struct Entry {
    score: f32,
    row: u32,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    // Reversed so the max-heap keeps the *worst* kept entry on top.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then_with(|| self.row.cmp(&other.row))
    }
}

fn top_k_of(view: &VectorView, q: &[f32], rows: &[u32], k: usize) -> Vec<(u32, f32)> {
    let mut heap = BinaryHeap::with_capacity(k + 1);
    for &row in rows {
        let score = dot(q, view.row(row));
        if heap.len() < k {
            heap.push(Entry { score, row });
        } else if let Some(worst) = heap.peek() {
            if score > worst.score {
                heap.pop();
                heap.push(Entry { score, row });
            }
        }
    }
    heap.into_iter().map(|e| (e.row, e.score)).collect()
}

/// The `k` rows with the highest dot product with `q`, best first.
pub(crate) fn exact_top_k(view: &VectorView, q: &[f32], rows: &[u32], k: usize) -> Vec<(u32, f32)> {
    let mut all = if rows.len() <= CHUNK {
        top_k_of(view, q, rows, k)
    } else {
        rows.par_chunks(CHUNK)
            .map(|chunk| top_k_of(view, q, chunk, k))
            .reduce(Vec::new, |mut a, b| {
                a.extend(b);
                a
            })
    };
    all.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    all.truncate(k);
    all
}

/// Which rows a search may return.
pub(crate) struct RowFilter<'a> {
    /// Rows passing the catalog filter (None: all rows).
    pub allowed: Option<&'a RoaringBitmap>,
    /// Rows that must never be returned (tombstones, excluded objects).
    pub deny: &'a RoaringBitmap,
    /// Rows at or past this bound are not covered by this path.
    pub limit: u32,
}

impl RowFilter<'_> {
    #[inline]
    pub fn admits(&self, row: u32) -> bool {
        row < self.limit && !self.deny.contains(row) && self.allowed.is_none_or(|a| a.contains(row))
    }

    /// Admitted rows in `[start, self.limit)`, in order.
    pub fn rows_from(&self, start: u32) -> Vec<u32> {
        match self.allowed {
            Some(a) => a
                .range(start..self.limit.max(start))
                .filter(|r| !self.deny.contains(*r))
                .collect(),
            None => (start..self.limit)
                .filter(|r| !self.deny.contains(*r))
                .collect(),
        }
    }
}
