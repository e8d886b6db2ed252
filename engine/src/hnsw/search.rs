//! Searching the graph: the per-thread visited marks, the filter as a dense bit
//! set, the greedy descent of the upper layers, the one best-first layer loop
//! (unfiltered, or filtered with two-hop steps over rejected rows) and the exact
//! rescoring of candidates found on half floats.

use std::cell::RefCell;
use std::collections::BinaryHeap;
use std::sync::atomic::Ordering::Relaxed;

#[cfg(target_arch = "x86_64")]
use super::space::HalfAvx2;
use super::space::{ahead_lines, first_lines, Full, HalfRows, Space};
use super::{Cand, Hnsw, Near};
use crate::distance::{cosine_distance, prefetch};
use crate::vectors::VectorView;

/// Filtered searches step two hops over rejected rows when at least 1 / this of
/// the rows is admitted (below that, the admitted rows fall apart into islands).
pub(crate) const TWO_HOP_MIN_FRACTION_INV: usize = 20;

/// Largest difference between a unit query's dot product with a unit row and with
/// the row's half-float copy: rounding to half moves each component by at most
/// 2^-11 of itself, so the dot moves by at most 2^-11 · Σ|q_i x_i| ≤ 2^-11
/// (Cauchy–Schwarz); 1e-4 more covers the f32 summation in both kernels and
/// half-float underflow of tiny components.
const HALF_DOT_ERROR: f32 = 1.0 / 2048.0 + 1e-4;

/// How many of the candidates found on half floats (`sorted` ascending by their
/// half-float distance) must be rescored in f32 so that the true `k` nearest among
/// them are returned: every candidate whose half-float distance is within
/// 2 · [`HALF_DOT_ERROR`] of the `k`-th. One further away is, in f32, farther than
/// each of the first `k`, so it cannot be among the `k` nearest. Usually a few more
/// than `k`: each is a random read of a full-precision row.
pub(super) fn rescore_count(sorted: &[Cand], k: usize) -> usize {
    match sorted.get(k.max(1) - 1) {
        None => sorted.len(),
        Some(kth) => {
            let bound = kth.d + 2.0 * HALF_DOT_ERROR;
            k + sorted[k..].partition_point(|c| c.d <= bound)
        }
    }
}

/// Per-thread visited marks: `marks[node] == epoch` means visited in the current
/// traversal. Bumping the epoch forgets everything in O(1).
#[derive(Default)]
struct Visited {
    marks: Vec<u16>,
    epoch: u16,
}

thread_local! {
    static VISITED: RefCell<Visited> = const { RefCell::new(Visited { marks: Vec::new(), epoch: 0 }) };
}

impl Visited {
    /// This thread's array, reset for a graph of `n` rows; [`Visited::give_back`]
    /// returns it. (A search that panics loses it; the next one starts afresh.)
    #[inline(always)]
    fn take(n: usize) -> Visited {
        let mut v = VISITED.with(|c| std::mem::take(&mut *c.borrow_mut()));
        v.reset(n);
        v
    }

    /// Puts the array back for this thread's next search.
    #[inline(always)]
    fn give_back(self) {
        VISITED.with(|c| *c.borrow_mut() = self);
    }

    fn reset(&mut self, n: usize) {
        if self.marks.len() < n {
            self.marks.resize(n, 0);
        }
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.marks.iter_mut().for_each(|m| *m = 0);
            self.epoch = 1;
        }
    }

    /// Marks `node`; true when it was not yet visited.
    #[inline]
    fn insert(&mut self, node: u32) -> bool {
        let m = &mut self.marks[node as usize];
        if *m == self.epoch {
            false
        } else {
            *m = self.epoch;
            true
        }
    }
}

/// A dense bit set over rows: the filter as the traversal checks it (one load and
/// a mask per row, where a compressed bitmap would search its containers).
pub(crate) struct Bits {
    words: Vec<u64>,
}

impl Bits {
    /// Rows below `rows` that are in `allowed` (all rows when `None`) and not in `deny`.
    pub fn new(
        rows: u32,
        allowed: Option<&roaring::RoaringBitmap>,
        deny: &roaring::RoaringBitmap,
    ) -> Bits {
        let n = rows as usize;
        let mut words = match allowed {
            None => {
                let mut w = vec![u64::MAX; n.div_ceil(64)];
                if !n.is_multiple_of(64) {
                    *w.last_mut().unwrap() = (1u64 << (n % 64)) - 1;
                }
                w
            }
            Some(a) => {
                let mut w = vec![0u64; n.div_ceil(64)];
                for r in a.range(..rows) {
                    w[r as usize / 64] |= 1 << (r % 64);
                }
                w
            }
        };
        for r in deny.range(..rows) {
            words[r as usize / 64] &= !(1 << (r % 64));
        }
        Bits { words }
    }

    /// Number of rows in the set.
    pub fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// True when `row` is in the set.
    #[inline]
    pub fn contains(&self, row: u32) -> bool {
        self.words
            .get(row as usize / 64)
            .is_some_and(|w| w & (1 << (row % 64)) != 0)
    }
}

/// Which rows a layer search may return, and how it walks past the others. The
/// layer loop is generic over it, so the unfiltered search ([`Every`]) compiles
/// to a loop with no filter test at all.
pub(super) trait Admit {
    /// True for the filtered kind (sizes its scratch lists).
    const FILTERS: bool;
    /// True when `row` may be returned.
    fn admits(&self, row: u32) -> bool;
    /// True when rejected neighbours are stepped over to their own admitted
    /// neighbours instead of being scored (see [`Hnsw::search_layer`]).
    fn two_hop(&self) -> bool;
}

/// No filter: every row may be returned (index builds, unfiltered searches).
pub(super) struct Every;

impl Admit for Every {
    const FILTERS: bool = false;
    #[inline(always)]
    fn admits(&self, _row: u32) -> bool {
        true
    }
    #[inline(always)]
    fn two_hop(&self) -> bool {
        false
    }
}

/// Only rows in `bits`; with `two_hop`, rejected rows are stepped over.
struct Filtered<'a> {
    bits: &'a Bits,
    two_hop: bool,
}

impl Admit for Filtered<'_> {
    const FILTERS: bool = true;
    #[inline(always)]
    fn admits(&self, row: u32) -> bool {
        self.bits.contains(row)
    }
    #[inline(always)]
    fn two_hop(&self) -> bool {
        self.two_hop
    }
}

impl Hnsw {
    /// Greedy walk on an upper layer: move to the nearest neighbour until none is nearer.
    #[inline(always)]
    pub(super) fn greedy<S: Space>(
        &self,
        space: &S,
        q: &[f32],
        mut cur: Cand,
        layer: u8,
        scratch: &mut Vec<u32>,
    ) -> Cand {
        loop {
            let mut moved = false;
            self.neighbours(cur.node, layer, scratch);
            let lines = first_lines(space.row_lines());
            for &nb in scratch.iter() {
                space.prefetch(nb, 0, lines);
            }
            for &nb in scratch.iter() {
                let d = space.dist(q, nb);
                if d < cur.d {
                    cur = Cand { d, node: nb };
                    moved = true;
                }
            }
            if !moved {
                return cur;
            }
        }
    }

    /// Best-first search of one layer from `eps`; returns up to `ef` nodes that
    /// `admit` admits, nearest first.
    ///
    /// Rows `admit` rejects are walked through like any other but kept out of the
    /// results; with [`Admit::two_hop`] they are never scored: their own admitted
    /// neighbours are looked at instead (as in ACORN), so the admitted rows form a
    /// connected graph and the search stops as early as an unfiltered one (until
    /// `ef` admitted rows are found, rejected rows are walked through as well). Two
    /// hops need the admitted rows not to be too sparse (the caller decides).
    #[inline(always)]
    pub(super) fn search_layer<S: Space, A: Admit>(
        &self,
        space: &S,
        q: &[f32],
        eps: &[Cand],
        ef: usize,
        layer: u8,
        admit: &A,
    ) -> Vec<Cand> {
        // Taken out of the thread-local for the search (not borrowed inside
        // `LocalKey::with`) so the loop below is compiled into its caller, which for
        // half floats enables the vector instructions the kernel inlines with.
        let mut visited = Visited::take(self.rows());
        let mut candidates: BinaryHeap<Near> = BinaryHeap::with_capacity(ef * 2);
        let mut results: BinaryHeap<Cand> = BinaryHeap::with_capacity(ef + 1);
        for &e in eps {
            if visited.insert(e.node) {
                candidates.push(Near(e));
                if admit.admits(e.node) {
                    results.push(e);
                    if results.len() > ef {
                        results.pop();
                    }
                }
            }
        }
        // A two-hop step takes up to `m0` admitted rows plus the rejected ones it
        // walks through; `hop` holds the list being stepped over.
        let mut fresh: Vec<u32> = Vec::with_capacity(if A::FILTERS { 4 } else { 1 } * self.m0);
        let mut hop: Vec<u32> = Vec::with_capacity(if A::FILTERS { self.m0 } else { 0 });
        let (first, ahead) = (
            first_lines(space.row_lines()),
            ahead_lines(space.row_lines()),
        );
        while let Some(Near(c)) = candidates.pop() {
            if results.len() >= ef && results.peek().is_some_and(|w| c.d > w.d) {
                break;
            }
            // The next candidate's list is most likely read next: start loading
            // it while this one's neighbours are scored.
            if let Some(Near(next)) = candidates.peek() {
                prefetch(self.list(next.node, layer).as_ptr(), 3);
            }
            fresh.clear();
            if admit.two_hop() {
                // Admitted neighbours first, then admitted neighbours of rejected
                // ones, at most `m0` in all (as ACORN compresses its lists): the
                // two-hop walk then scores no more rows per step than an
                // unfiltered one.
                self.neighbours(c.node, layer, &mut hop);
                let mut admitted = 0;
                for &nb in &hop {
                    if admit.admits(nb) && visited.insert(nb) {
                        fresh.push(nb);
                        admitted += 1;
                    }
                }
                for &nb in &hop {
                    if admitted >= self.m0 {
                        break;
                    }
                    if admit.admits(nb) || !visited.insert(nb) {
                        continue;
                    }
                    // Until `ef` admitted rows are found, also walk through the
                    // rejected row: when the filter correlates with the vectors
                    // (redshift cuts do), the query's neighbourhood may hold no
                    // admitted row within two hops.
                    if results.len() < ef {
                        fresh.push(nb);
                    }
                    let list = self.list(nb, layer);
                    let n = (list[0].load(Relaxed) as usize).min(list.len() - 1);
                    for a in &list[1..=n] {
                        let nb2 = a.load(Relaxed);
                        if admit.admits(nb2) && visited.insert(nb2) {
                            fresh.push(nb2);
                            admitted += 1;
                            if admitted >= self.m0 {
                                break;
                            }
                        }
                    }
                }
            } else {
                let list = self.list(c.node, layer);
                let n = (list[0].load(Relaxed) as usize).min(list.len() - 1);
                for a in &list[1..=n] {
                    let nb = a.load(Relaxed);
                    if visited.insert(nb) {
                        fresh.push(nb);
                    }
                }
            }
            // Start loading every new neighbour's vector before scoring the first.
            for &nb in &fresh {
                space.prefetch(nb, 0, first);
            }
            for (i, &nb) in fresh.iter().enumerate() {
                if ahead > 0 {
                    if let Some(&next) = fresh.get(i + 1) {
                        space.prefetch(next, first, ahead);
                    }
                }
                let d = space.dist(q, nb);
                let worst = results.peek().map_or(f32::INFINITY, |w| w.d);
                if results.len() < ef || d < worst {
                    let cand = Cand { d, node: nb };
                    candidates.push(Near(cand));
                    if admit.admits(nb) {
                        results.push(cand);
                        if results.len() > ef {
                            results.pop();
                        }
                    }
                }
            }
        }
        let out = results.into_sorted_vec();
        visited.give_back();
        out
    }

    /// The `k` nearest rows to `q` (unit vector) as `(row, cosine distance)`,
    /// nearest first, exploring `ef` (≥ k) candidates on layer 0; with `admit`,
    /// only rows it contains. With a half-float copy attached, the traversal reads
    /// it, and of the `ef` candidates found those that can be among the `k` nearest
    /// (see [`rescore_count`]) are rescored exactly from `view`.
    pub fn search(
        &self,
        view: &VectorView,
        q: &[f32],
        k: usize,
        ef: usize,
        admit: Option<&Bits>,
    ) -> Vec<(u32, f32)> {
        let mut found = match &self.half {
            Some(h) => {
                #[cfg(target_arch = "x86_64")]
                let mut found = if crate::distance::kernels_are_avx2() {
                    // SAFETY: the CPU has AVX and FMA (checked just now) and F16C
                    // (a half-float copy is only made where it does).
                    unsafe { self.search_half_avx2(h, q, ef.max(k), admit) }
                } else {
                    self.search_in(h, q, ef.max(k), admit)
                };
                #[cfg(not(target_arch = "x86_64"))]
                let mut found = self.search_in(h, q, ef.max(k), admit);
                // Half floats move a unit vector's cosine by at most 2^-11, so only
                // the candidates within twice that of the k-th can be among the true
                // k nearest: only those are read again in f32 (a random read of a
                // full row each), not all `ef`.
                found.truncate(rescore_count(&found, k));
                for c in &mut found {
                    c.d = cosine_distance(q, view.row(c.node));
                }
                found.sort_unstable();
                found
            }
            None => self.search_in(&Full(view), q, ef.max(k), admit),
        };
        found.truncate(k);
        found.into_iter().map(|c| (c.node, c.d)).collect()
    }

    /// [`Hnsw::search_in`] on the half-float rows, compiled for AVX, FMA and F16C
    /// so the distance kernel inlines into the traversal.
    ///
    /// # Safety
    /// The CPU must support AVX, FMA and F16C.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx,fma,f16c")]
    unsafe fn search_half_avx2(
        &self,
        h: &HalfRows,
        q: &[f32],
        ef: usize,
        admit: Option<&Bits>,
    ) -> Vec<Cand> {
        self.search_in(&HalfAvx2(h), q, ef, admit)
    }

    /// Descends the upper layers greedily, then searches layer 0 with `ef`.
    #[inline(always)]
    fn search_in<S: Space>(
        &self,
        space: &S,
        q: &[f32],
        ef: usize,
        admit: Option<&Bits>,
    ) -> Vec<Cand> {
        let Some(entry) = *self.entry.read() else {
            return Vec::new();
        };
        let mut cur = Cand {
            d: space.dist(q, entry.node),
            node: entry.node,
        };
        let mut scratch = Vec::with_capacity(self.m0);
        for layer in (1..=entry.level).rev() {
            cur = self.greedy(space, q, cur, layer, &mut scratch);
        }
        match admit {
            Some(bits) => {
                // Two hops keep the admitted rows connected down to ~5% of the graph.
                let two_hop = bits.count() * TWO_HOP_MIN_FRACTION_INV >= self.rows();
                self.search_layer(space, q, &[cur], ef, 0, &Filtered { bits, two_hop })
            }
            None => self.search_layer(space, q, &[cur], ef, 0, &Every),
        }
    }
}
