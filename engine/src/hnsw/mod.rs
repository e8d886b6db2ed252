//! The engine's own HNSW graph (Malkov & Yashunin), laid out for the vector file.
//!
//! Node ids *are* vector-file row numbers, so a node's vector is read straight from
//! the memory-mapped file (one contiguous array) instead of per-point allocations,
//! and results need no id translation. Rows that are not in the graph (tombstoned at
//! build time) are marked [`ABSENT`]. Layer-0 neighbour lists live in one flat array
//! of `m0 + 1` words per node (a count, then ids); the few nodes on upper layers keep
//! theirs in a second flat array addressed by a per-node offset.
//!
//! Building is parallel (rayon): lists are atomics written under a per-node lock and
//! read without one — a reader may see a list mid-update, but every word it reads is
//! a valid node id, which is all the traversal needs. Levels are drawn from a hash
//! of the row, so the layer structure does not depend on thread timing.
//!
//! Searching reuses a per-thread, epoch-stamped visited array (no clearing, no
//! hashing), prefetches the next neighbours' vectors before scoring them (whole
//! rows when they are short) and the next candidate's list while scoring, and
//! applies row filters inside the traversal as a dense bit set: rejected nodes are
//! never scored, the search steps over them to their neighbours (two hops), so a
//! filtered search stops as early as an unfiltered one once enough admitted rows
//! are found.
//!
//! This module holds the graph's layout; the submodules each hold one side of it:
//! `space` (what the traversal scores rows against), `build` (insertion and
//! neighbour selection), `search` (the traversal) and `file` (the on-disk form).

mod build;
mod file;
mod search;
mod space;
#[cfg(test)]
mod tests;

use std::cmp::Ordering;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering::Relaxed};

use parking_lot::{Mutex, RwLock};

use crate::vectors::VectorView;

pub(crate) use search::{Bits, TWO_HOP_MIN_FRACTION_INV};
use space::HalfRows;

/// Level of a row that is not in the graph.
pub(crate) const ABSENT: u8 = u8::MAX;
/// Highest layer a node may reach (2^-16-rare at M = 16; keeps levels in a byte).
const MAX_LEVEL: u8 = 15;

/// A candidate: cosine distance to the query and node id. Ordered by distance
/// (ties by id, so the order is total and deterministic).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Cand {
    d: f32,
    node: u32,
}

impl Eq for Cand {}
impl PartialOrd for Cand {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Cand {
    fn cmp(&self, other: &Self) -> Ordering {
        self.d
            .total_cmp(&other.d)
            .then_with(|| self.node.cmp(&other.node))
    }
}

/// Min-heap wrapper (nearest first).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Near(Cand);
impl PartialOrd for Near {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Near {
    fn cmp(&self, other: &Self) -> Ordering {
        other.0.cmp(&self.0)
    }
}

/// The graph's entry point: the node with the highest level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    node: u32,
    level: u8,
}

/// An HNSW graph over rows `[0, rows())` of one vector file.
pub(crate) struct Hnsw {
    /// Neighbours per node on upper layers.
    m: usize,
    /// Neighbours per node on layer 0 (2·m, as in the paper).
    m0: usize,
    /// Candidate list size while inserting.
    ef_construction: usize,
    /// Components per row (checked against the vector file on load).
    dim: usize,
    /// Level of each row, or [`ABSENT`].
    levels: Vec<u8>,
    /// Layer-0 lists: `m0 + 1` words per row (count, then ids).
    links0: Vec<AtomicU32>,
    /// Start of each row's upper-layer block in `upper` (`level · (m + 1)` words).
    upper_start: Vec<usize>,
    /// Upper-layer lists: per node, `m + 1` words (count, then ids) per layer above 0.
    upper: Vec<AtomicU32>,
    /// Writers of a node's lists hold its lock (readers do not).
    locks: Vec<Mutex<()>>,
    /// Where searches and insertions start (`None` while the graph is empty).
    entry: RwLock<Option<Entry>>,
    /// Nodes in the graph.
    points: AtomicUsize,
    /// Half-float copy of the rows the traversal reads, when attached.
    half: Option<HalfRows>,
}

impl Hnsw {
    /// Number of rows the graph spans (present or not).
    pub fn rows(&self) -> usize {
        self.levels.len()
    }

    /// Number of nodes in the graph.
    pub fn len(&self) -> usize {
        self.points.load(Relaxed)
    }

    /// Bytes of graph structure held in memory (lists, levels, offsets, locks).
    pub fn memory_bytes(&self) -> usize {
        self.levels.len() * (1 + std::mem::size_of::<usize>() + std::mem::size_of::<Mutex<()>>())
            + (self.links0.len() + self.upper.len()) * 4
    }

    /// Bytes of the half-float copy of the rows (0 when none is attached).
    pub fn half_bytes(&self) -> usize {
        self.half.as_ref().map_or(0, HalfRows::bytes)
    }

    /// Keeps a half-float copy of the graph's rows for the traversal to read (on
    /// CPUs with F16C; a no-op elsewhere). Call after building or loading.
    pub fn attach_half(&mut self, view: &VectorView) {
        self.half = HalfRows::new(view, &self.levels);
    }

    /// The list (count word, then `cap` ids) of `node` on `layer`.
    #[inline]
    fn list(&self, node: u32, layer: u8) -> &[AtomicU32] {
        if layer == 0 {
            let s = node as usize * (self.m0 + 1);
            &self.links0[s..s + self.m0 + 1]
        } else {
            let s = self.upper_start[node as usize] + (layer as usize - 1) * (self.m + 1);
            &self.upper[s..s + self.m + 1]
        }
    }

    /// Copies the neighbours of `node` on `layer` into `out` (cleared first).
    #[inline]
    fn neighbours(&self, node: u32, layer: u8, out: &mut Vec<u32>) {
        let list = self.list(node, layer);
        let cap = list.len() - 1;
        let n = (list[0].load(Relaxed) as usize).min(cap);
        out.clear();
        out.extend(list[1..=n].iter().map(|a| a.load(Relaxed)));
    }
}
