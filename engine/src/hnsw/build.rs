//! Building the graph: levels drawn from a hash of the row, parallel insertion,
//! back links, and the neighbour-selection heuristic with its rule for exact
//! copies of one vector (twins). Both hashes (levels, twin order) are the first
//! output of a SplitMix64 generator seeded with the row, kept together here.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering::Relaxed};

use parking_lot::{Mutex, RwLock};
use rand_xoshiro::rand_core::{RngCore, SeedableRng};
use rand_xoshiro::SplitMix64;
use rayon::prelude::*;

use super::search::Every;
use super::space::Full;
use super::{Cand, Entry, Hnsw, ABSENT, MAX_LEVEL};
use crate::distance::cosine_distance;
use crate::vectors::VectorView;

/// Seed of the level hash (any constant; fixed so builds are reproducible).
const LEVEL_SEED: u64 = 0x5EED_A57E_0C1B_0001;
/// Cosine distance at or below which two rows count as the same vector when choosing
/// neighbours: above f32 rounding of a 1024-d dot product of identical unit vectors,
/// far below the distance between two different galaxies' embeddings (the closest two of
/// 2,000 held-out mock galaxies under the default model are 2e-3 apart).
pub(super) const TWIN_DISTANCE: f32 = 1e-5;

/// A pseudo-random rank of `node` as seen from `base`, for ordering a node's exact twins
/// without favouring low ids.
fn twin_rank(base: u32, node: u32) -> u64 {
    SplitMix64::seed_from_u64((base as u64) << 32 | node as u64).next_u64()
}

/// The level a row is inserted at: a uniform u in (0, 1] hashed from the row,
/// level = floor(-ln(u) / ln(m)), capped at [`MAX_LEVEL`].
fn level_of(row: u32, m: usize) -> u8 {
    let z = SplitMix64::seed_from_u64(row as u64 ^ LEVEL_SEED).next_u64();
    let u = ((z >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    let level = (-u.ln() / (m as f64).ln()).floor();
    level.min(MAX_LEVEL as f64) as u8
}

impl Hnsw {
    /// An empty graph spanning `rows` rows, or a copy of `base` extended to `rows`
    /// rows, ready for [`Hnsw::insert`] of `new_rows` (rows past `base`'s span).
    pub fn extend(
        base: Option<&Hnsw>,
        m: usize,
        ef_construction: usize,
        dim: usize,
        rows: usize,
        new_rows: &[u32],
    ) -> Hnsw {
        let m0 = 2 * m;
        let (mut levels, old_rows) = match base {
            Some(b) => (b.levels.clone(), b.rows()),
            None => (Vec::new(), 0),
        };
        levels.resize(rows.max(old_rows), ABSENT);
        for &r in new_rows {
            levels[r as usize] = level_of(r, m);
        }
        let mut upper_start = Vec::with_capacity(levels.len());
        let mut total = 0usize;
        for &l in &levels {
            upper_start.push(total);
            if l != ABSENT {
                total += l as usize * (m + 1);
            }
        }
        let mut links0: Vec<AtomicU32> = Vec::with_capacity(levels.len() * (m0 + 1));
        let mut upper: Vec<AtomicU32> = Vec::with_capacity(total);
        if let Some(b) = base {
            links0.extend(b.links0.iter().map(|a| AtomicU32::new(a.load(Relaxed))));
            upper.extend(b.upper.iter().map(|a| AtomicU32::new(a.load(Relaxed))));
        }
        links0.resize_with(levels.len() * (m0 + 1), || AtomicU32::new(0));
        upper.resize_with(total, || AtomicU32::new(0));
        let locks = (0..levels.len()).map(|_| Mutex::new(())).collect();
        Hnsw {
            m,
            m0,
            ef_construction,
            dim,
            levels,
            links0,
            upper_start,
            upper,
            locks,
            entry: RwLock::new(base.and_then(|b| *b.entry.read())),
            points: AtomicUsize::new(base.map_or(0, |b| b.len())),
            half: None,
        }
    }

    /// Replaces `node`'s list on `layer` with `ids` (the caller holds its lock).
    fn set_list(&self, node: u32, layer: u8, ids: &[Cand]) {
        let list = self.list(node, layer);
        for (slot, c) in list[1..].iter().zip(ids) {
            slot.store(c.node, Relaxed);
        }
        list[0].store(ids.len() as u32, Relaxed);
    }

    /// Inserts `rows` (each marked present by [`Hnsw::extend`]) in parallel.
    pub fn insert(&self, view: &VectorView, rows: &[u32]) {
        let mut rest = rows;
        if self.entry.read().is_none() {
            let Some((&first, tail)) = rows.split_first() else {
                return;
            };
            *self.entry.write() = Some(Entry {
                node: first,
                level: self.levels[first as usize],
            });
            self.points.fetch_add(1, Relaxed);
            rest = tail;
        }
        rest.par_iter().for_each(|&r| self.insert_one(view, r));
    }

    /// Inserts one row: greedy descent to its level, then on each layer from there
    /// down a best-first search for candidates, the heuristic's choice of them as
    /// its neighbours, and a link back from each.
    fn insert_one(&self, view: &VectorView, row: u32) {
        let level = self.levels[row as usize];
        let q = view.row(row);
        let entry = self
            .entry
            .read()
            .expect("the first node is inserted serially");
        let mut cur = Cand {
            d: cosine_distance(q, view.row(entry.node)),
            node: entry.node,
        };
        let mut scratch = Vec::with_capacity(self.m0);
        for layer in (level.saturating_add(1)..=entry.level).rev() {
            cur = self.greedy(&Full(view), q, cur, layer, &mut scratch);
        }
        let mut eps = vec![cur];
        for layer in (0..=level.min(entry.level)).rev() {
            let mut found =
                self.search_layer(&Full(view), q, &eps, self.ef_construction, layer, &Every);
            found.retain(|c| c.node != row);
            let chosen = self.select(view, row, &found, self.m);
            {
                let _g = self.locks[row as usize].lock();
                self.set_list(row, layer, &chosen);
            }
            for c in &chosen {
                self.link_back(view, c.node, Cand { d: c.d, node: row }, layer);
            }
            if !found.is_empty() {
                eps = found;
            }
        }
        self.points.fetch_add(1, Relaxed);
        if level > entry.level {
            let mut e = self.entry.write();
            if e.is_none_or(|e| level > e.level) {
                *e = Some(Entry { node: row, level });
            }
        }
    }

    /// Adds `new` to `node`'s list on `layer`, pruning with the heuristic when full.
    fn link_back(&self, view: &VectorView, node: u32, new: Cand, layer: u8) {
        let _g = self.locks[node as usize].lock();
        let list = self.list(node, layer);
        let cap = list.len() - 1;
        let n = (list[0].load(Relaxed) as usize).min(cap);
        if list[1..=n].iter().any(|a| a.load(Relaxed) == new.node) {
            return;
        }
        if n < cap {
            list[1 + n].store(new.node, Relaxed);
            list[0].store(n as u32 + 1, Relaxed);
            return;
        }
        let v = view.row(node);
        let mut cands: Vec<Cand> = list[1..=n]
            .iter()
            .map(|a| {
                let id = a.load(Relaxed);
                Cand {
                    d: cosine_distance(v, view.row(id)),
                    node: id,
                }
            })
            .collect();
        cands.push(new);
        cands.sort_unstable();
        let chosen = self.select(view, node, &cands, cap);
        self.set_list(node, layer, &chosen);
    }

    /// The neighbour-selection heuristic (paper, algorithm 4, without extension):
    /// walking candidates nearest first, keep one only if it is closer to the base
    /// than to every neighbour kept so far. `sorted` is ascending by distance.
    ///
    /// Exact duplicates (the same vector under several ids, e.g. an object ingested
    /// twice) tie at distance zero, so the rule alone keeps all of them: a node with
    /// more twins than list slots would link only to its twins, and the group becomes
    /// an island that searches can neither leave nor, once the links into it are
    /// pruned, reach. So at most half the slots go to twins of a kept neighbour; the
    /// rest stay free for the diverse links the heuristic is for. The base's own twins
    /// tie, and a tie broken by id would have every twin link to the same lowest ids
    /// and leave the others with no link in; they are taken in an order drawn from the
    /// base instead, so each twin is linked from some of the others.
    fn select(&self, view: &VectorView, base: u32, sorted: &[Cand], m: usize) -> Vec<Cand> {
        if sorted.len() <= m {
            return sorted.to_vec();
        }
        let own_twins = sorted.iter().take_while(|c| c.d <= TWIN_DISTANCE).count();
        let order: std::borrow::Cow<[Cand]> = if own_twins > 1 {
            let mut o = sorted.to_vec();
            o[..own_twins].sort_unstable_by_key(|c| twin_rank(base, c.node));
            o.into()
        } else {
            sorted.into()
        };
        let max_twins = m / 2;
        let mut twins = 0;
        let mut kept: Vec<Cand> = Vec::with_capacity(m);
        for &c in order.iter() {
            if kept.len() >= m {
                break;
            }
            let vc = view.row(c.node);
            let mut twin = false;
            let diverse = kept.iter().all(|k| {
                let d = cosine_distance(vc, view.row(k.node));
                twin |= d <= TWIN_DISTANCE;
                d >= c.d
            });
            if diverse && !(twin && twins >= max_twins) {
                twins += usize::from(twin);
                kept.push(c);
            }
        }
        kept
    }
}
