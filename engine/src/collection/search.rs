//! Search planning: parameter checks, filter rows (through the cache), the
//! choice between the graph and the exact scan, the graph search with its
//! exact tail scan, and the public searches built on it (by vector, in batches,
//! by stored object) and the cone search.

use std::borrow::Cow;
use std::sync::Arc;

use rayon::prelude::*;
use roaring::RoaringBitmap;

use super::types::{ConeHit, Hit, SearchParams, Strategy};
use super::{Collection, State, MAX_EF, MAX_K};
use crate::catalog::{Catalog, NONE};
use crate::distance::dot;
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::hnsw::TWO_HOP_MIN_FRACTION_INV;
use crate::search::{exact_top_k, RowFilter};
use crate::sky;

/// Below this many candidate rows the automatic strategy scans exactly.
const EXACT_ROWS: u64 = 4096;
/// With a catalog filter, the automatic strategy scans up to this many candidate
/// rows exactly (recall 1, and about as fast as the filtered graph search there).
const FILTER_EXACT_ROWS: u64 = 8192;

impl Collection {
    /// Nearest neighbours of `query` among the `modality` embeddings, by cosine
    /// similarity, best first.
    pub fn search(&self, query: &[f32], modality: &str, params: &SearchParams) -> Result<Vec<Hit>> {
        let m = self.config.modality_index(modality)?;
        self.check_params(params)?;
        let q = self.prepare_vector(m, query)?;
        let st = self.state.read();
        self.search_in(&st, m, &q, params)
    }

    /// Many searches at once (parallel over queries), all on one snapshot.
    pub fn search_batch(
        &self,
        queries: &[Vec<f32>],
        modality: &str,
        params: &SearchParams,
    ) -> Result<Vec<Vec<Hit>>> {
        let m = self.config.modality_index(modality)?;
        self.check_params(params)?;
        let qs = queries
            .iter()
            .map(|q| self.prepare_vector(m, q))
            .collect::<Result<Vec<_>>>()?;
        let guard = self.state.read();
        let st: &State = &guard;
        qs.par_iter()
            .map(|q| self.search_in(st, m, q, params))
            .collect()
    }

    /// Neighbours of a stored object: its `from` embedding searched among the `to`
    /// embeddings (image→spectrum etc.). The object itself is excluded unless
    /// `params.include_self`.
    pub fn search_by_id(
        &self,
        id: u64,
        from: &str,
        to: &str,
        params: &SearchParams,
    ) -> Result<Vec<Hit>> {
        let mf = self.config.modality_index(from)?;
        let mt = self.config.modality_index(to)?;
        self.check_params(params)?;
        let st = self.state.read();
        let q = st.embedding(mf, id, from)?.to_vec();
        let mut p = Cow::Borrowed(params);
        if !params.include_self {
            p.to_mut().exclude_ids.push(id);
        }
        self.search_in(&st, mt, &q, &p)
    }

    /// Checks `k` and `ef` against [`MAX_K`] and [`MAX_EF`].
    pub(super) fn check_params(&self, p: &SearchParams) -> Result<()> {
        if p.k == 0 || p.k > MAX_K {
            return Err(Error::invalid(
                "k",
                format!("{} is outside 1..={MAX_K}", p.k),
            ));
        }
        if let Some(ef) = p.ef {
            if ef == 0 || ef > MAX_EF {
                return Err(Error::invalid(
                    "ef",
                    format!("{ef} is outside 1..={MAX_EF}"),
                ));
            }
        }
        Ok(())
    }

    /// Rows of modality `m` whose objects pass `filter`, from the cache when the
    /// catalog has not changed since they were evaluated.
    fn filter_rows(&self, cat: &Catalog, m: usize, filter: &Filter) -> Result<Arc<RoaringBitmap>> {
        let key = (m, format!("{filter:?}"));
        let generation = cat.generation();
        if let Some(rows) = self.filter_cache.lock().get(generation, &key) {
            return Ok(rows);
        }
        // Evaluated outside the cache lock so concurrent searches with other
        // filters are not serialised behind it.
        let rows = Arc::new(cat.rows_of(m, &cat.evaluate(filter, &self.config)?));
        self.filter_cache
            .lock()
            .put(generation, key, Arc::clone(&rows));
        Ok(rows)
    }

    /// Search of modality `m` for unit query `q` on one snapshot: the graph or the
    /// exact scan (see [`Strategy`]), then exact scores, best first, one hit per object.
    pub(super) fn search_in(
        &self,
        st: &State,
        m: usize,
        q: &[f32],
        params: &SearchParams,
    ) -> Result<Vec<Hit>> {
        let cat = &st.catalog;
        let allowed_rows = match &params.filter {
            Some(f) => Some(self.filter_rows(cat, m, f)?),
            None => None,
        };
        let deny: Cow<RoaringBitmap> = if params.exclude_ids.is_empty() {
            Cow::Borrowed(&cat.dead_rows[m])
        } else {
            let mut d = cat.dead_rows[m].clone();
            for id in &params.exclude_ids {
                if let Some(s) = cat.live_slot(*id) {
                    let r = cat.rows[m][s as usize];
                    if r != NONE {
                        d.insert(r);
                    }
                }
            }
            Cow::Owned(d)
        };
        let ms = &st.modalities[m];
        let n = ms.rows;
        let graph = ms.graph.as_ref().filter(|_| ms.indexed > 0);
        let candidates = allowed_rows.as_ref().map_or(n as u64, |a| a.len());
        let use_graph = match params.strategy {
            Strategy::Exact => false,
            Strategy::Hnsw => graph.is_some(),
            // Narrow filters (few candidate rows, or under 5% of the indexed rows)
            // are answered by scanning just those rows exactly; broader ones by the
            // filtered graph traversal. Below that fraction the traversal cannot
            // step two hops over rejected rows (the admitted rows fall apart into
            // islands), so the graph would answer slower and worse than the scan.
            Strategy::Auto => {
                graph.is_some()
                    && candidates > EXACT_ROWS
                    && (allowed_rows.is_none()
                        || (candidates > FILTER_EXACT_ROWS
                            && candidates * TWO_HOP_MIN_FRACTION_INV as u64 >= ms.indexed as u64))
            }
        };
        let k = params.k;
        let view = &ms.view;
        let mut found: Vec<(u32, f32)> = if let (true, Some(g)) = (use_graph, graph) {
            let indexed = ms.indexed;
            let graph_filter = RowFilter {
                allowed: allowed_rows.as_deref(),
                deny: &deny,
                limit: indexed,
            };
            let ef = params.ef.unwrap_or(self.config.hnsw.ef_search);
            let admitted = |raw: Vec<(u32, f32)>| -> Vec<(u32, f32)> {
                raw.into_iter()
                    // Nodes past `indexed` may appear while a build is running; the
                    // exact tail scan below covers them.
                    .filter(|(r, _)| graph_filter.admits(*r))
                    .map(|(r, d)| (r, 1.0 - d))
                    .collect()
            };
            // Without a catalog filter (or, in Auto mode, with one keeping at least
            // 30% of the rows) an unfiltered traversal asks for enough extra results
            // to absorb the rows the filter rejects (and tombstones), falling back
            // to the filtered traversal if they were not enough.
            let oversample = match (&allowed_rows, params.strategy) {
                (None, _) => Some(1.0),
                (Some(a), Strategy::Auto) if a.len() * 10 >= indexed as u64 * 3 => {
                    Some((2.0 * indexed as f64 / a.len().max(1) as f64).min(8.0))
                }
                (Some(_), _) => None,
            };
            let mut hits = match oversample {
                Some(factor) => {
                    let want =
                        (k as f64 * factor).ceil() as usize + (deny.len() as usize).min(k.max(16));
                    let raw = g.search(view, q, want, ef, None);
                    let full = raw.len() == want;
                    let kept = admitted(raw);
                    if kept.len() < k && full {
                        admitted(g.search(view, q, k, ef, Some(&graph_filter)))
                    } else {
                        kept
                    }
                }
                None => admitted(g.search(view, q, k, ef, Some(&graph_filter))),
            };
            let tail = RowFilter {
                allowed: allowed_rows.as_deref(),
                deny: &deny,
                limit: n,
            };
            let tail_rows = tail.rows_from(indexed);
            if !tail_rows.is_empty() {
                hits.extend(exact_top_k(view, q, &tail_rows, k));
            }
            hits
        } else {
            let all = RowFilter {
                allowed: allowed_rows.as_deref(),
                deny: &deny,
                limit: n,
            };
            exact_top_k(view, q, &all.rows_from(0), k)
        };
        // Scores from the graph are 1 - clamped distance; recompute exactly so both
        // paths report identical similarities for the same object.
        for h in &mut found {
            h.1 = dot(q, view.row(h.0));
        }
        let mut hits: Vec<Hit> = found
            .into_iter()
            .map(|(r, score)| Hit {
                id: cat.ids[cat.row_slot[m][r as usize] as usize],
                score,
            })
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
        hits.dedup_by_key(|h| h.id);
        hits.truncate(k);
        Ok(hits)
    }

    /// Objects within `radius_deg` of (`ra`, `dec`) (ICRS degrees), nearest first,
    /// at most `limit`.
    pub fn cone_search(
        &self,
        ra: f64,
        dec: f64,
        radius_deg: f64,
        limit: usize,
    ) -> Result<Vec<ConeHit>> {
        let st = self.state.read();
        let slots = st.catalog.evaluate(
            &Filter::Cone {
                ra_deg: ra,
                dec_deg: dec,
                radius_deg,
            },
            &self.config,
        )?;
        let mut hits: Vec<ConeHit> = slots
            .iter()
            .map(|s| ConeHit {
                id: st.catalog.ids[s as usize],
                separation_deg: sky::separation_deg(
                    ra,
                    dec,
                    st.catalog.ra[s as usize],
                    st.catalog.dec[s as usize],
                ),
            })
            .collect();
        hits.sort_by(|a, b| {
            a.separation_deg
                .total_cmp(&b.separation_deg)
                .then(a.id.cmp(&b.id))
        });
        hits.truncate(limit);
        Ok(hits)
    }
}
