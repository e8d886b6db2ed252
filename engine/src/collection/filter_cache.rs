//! The rows admitted by recently used filters, kept per modality until the
//! catalog changes.

use std::collections::HashMap;
use std::sync::Arc;

use roaring::RoaringBitmap;

/// Filters whose admitted rows are kept between searches (per modality).
const FILTER_CACHE_ENTRIES: usize = 64;

/// Rows admitted by recently used filters, valid for one catalog generation.
///
/// Why: evaluating a filter walks an attribute column over every object (about a
/// millisecond per 100,000 objects), more than a filtered HNSW search or the exact
/// scan of a 1% selection costs. A portal or a survey script sends the same cut with
/// many queries, so the evaluated rows are kept until the catalog changes.
#[derive(Default)]
pub(super) struct FilterCache {
    generation: u64,
    /// `(modality, filter in Debug form)` → admitted rows, with the use it was last hit at.
    entries: HashMap<(usize, String), (u64, Arc<RoaringBitmap>)>,
    uses: u64,
}

impl FilterCache {
    /// The rows cached under `key`, if the catalog is still at `generation`.
    pub(super) fn get(
        &mut self,
        generation: u64,
        key: &(usize, String),
    ) -> Option<Arc<RoaringBitmap>> {
        if self.generation != generation {
            self.entries.clear();
            self.generation = generation;
            return None;
        }
        self.uses += 1;
        let uses = self.uses;
        self.entries.get_mut(key).map(|(used, rows)| {
            *used = uses;
            Arc::clone(rows)
        })
    }

    /// Keeps `rows` under `key` for catalog `generation`, dropping the least
    /// recently used entry when full.
    pub(super) fn put(&mut self, generation: u64, key: (usize, String), rows: Arc<RoaringBitmap>) {
        if self.generation != generation {
            self.entries.clear();
            self.generation = generation;
        }
        if self.entries.len() >= FILTER_CACHE_ENTRIES {
            // Least recently used goes.
            if let Some(old) = self
                .entries
                .iter()
                .min_by_key(|(_, (used, _))| *used)
                .map(|(k, _)| k.clone())
            {
                self.entries.remove(&old);
            }
        }
        self.uses += 1;
        self.entries.insert(key, (self.uses, rows));
    }
}
