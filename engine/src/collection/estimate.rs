//! k-NN estimates of a numeric attribute: the distance-weighted mean, spread and
//! percentiles of the values of a query's nearest neighbours.

use super::types::{Estimate, Hit, SearchParams};
use super::{Collection, State};
use crate::config::AttributeKind;
use crate::error::{Error, Result};
use crate::filter::Filter;

impl Collection {
    /// k-NN estimate of a numeric attribute for a query vector: the distance-weighted
    /// mean over the `k` nearest `modality` neighbours that have the attribute.
    pub fn predict(
        &self,
        query: &[f32],
        modality: &str,
        attribute: &str,
        params: &SearchParams,
    ) -> Result<Estimate> {
        let m = self.config.modality_index(modality)?;
        self.check_params(params)?;
        let q = self.prepare_vector(m, query)?;
        let st = self.state.read();
        self.predict_in(&st, m, &q, attribute, params)
    }

    /// k-NN estimate for a stored object (excluded from its own neighbours).
    pub fn predict_by_id(
        &self,
        id: u64,
        from: &str,
        to: &str,
        attribute: &str,
        params: &SearchParams,
    ) -> Result<Estimate> {
        let mf = self.config.modality_index(from)?;
        let mt = self.config.modality_index(to)?;
        self.check_params(params)?;
        let st = self.state.read();
        let q = st.embedding(mf, id, from)?.to_vec();
        let mut p = params.clone();
        p.exclude_ids.push(id);
        self.predict_in(&st, mt, &q, attribute, &p)
    }

    /// [`Collection::predict`] of modality `m` for unit query `q` on one snapshot.
    fn predict_in(
        &self,
        st: &State,
        m: usize,
        q: &[f32],
        attribute: &str,
        params: &SearchParams,
    ) -> Result<Estimate> {
        let a = self.config.attribute_index(attribute)?;
        if self.config.attributes[a].kind == AttributeKind::Category {
            return Err(Error::AttributeType {
                name: attribute.into(),
                expected: "a numeric attribute for k-NN estimation".into(),
                got: "a category".into(),
            });
        }
        let has = Filter::Has(attribute.into());
        let mut p = params.clone();
        p.filter = Some(match p.filter.take() {
            Some(f) => f.and(has),
            None => has,
        });
        let hits = self.search_in(st, m, q, &p)?;
        let cat = &st.catalog;
        let neighbours: Vec<(Hit, f64)> = hits
            .into_iter()
            .filter_map(|h| {
                let slot = cat.live_slot(h.id)?;
                cat.number(a, slot).map(|v| (h, v))
            })
            .collect();
        if neighbours.is_empty() {
            return Err(Error::invalid(
                "attribute",
                format!("no neighbour has a value for `{}`", cat.attr_name(a)),
            ));
        }
        Ok(weighted_estimate(neighbours))
    }
}

/// Distance-weighted k-NN estimate. Weights are 1/d with d the Euclidean distance
/// between unit vectors (`sqrt(2 - 2 cos)`); exact matches (d = 0), if any, take all
/// the weight, as scikit-learn's `weights="distance"` does.
fn weighted_estimate(neighbours: Vec<(Hit, f64)>) -> Estimate {
    let dist: Vec<f64> = neighbours
        .iter()
        .map(|(h, _)| (2.0f64 - 2.0 * h.score as f64).max(0.0).sqrt())
        .collect();
    let exact = dist.iter().any(|d| *d < 1e-9);
    let w: Vec<f64> = dist
        .iter()
        .map(|d| {
            if exact {
                if *d < 1e-9 {
                    1.0
                } else {
                    0.0
                }
            } else {
                1.0 / d
            }
        })
        .collect();
    let wsum: f64 = w.iter().sum();
    let mean = neighbours
        .iter()
        .zip(&w)
        .map(|((_, v), w)| v * w)
        .sum::<f64>()
        / wsum;
    let var = neighbours
        .iter()
        .zip(&w)
        .map(|((_, v), w)| w * (v - mean).powi(2))
        .sum::<f64>()
        / wsum;
    let mut values: Vec<f64> = neighbours.iter().map(|(_, v)| *v).collect();
    values.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        let pos = p * (values.len() - 1) as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        values[lo] + (values[hi] - values[lo]) * (pos - lo as f64)
    };
    Estimate {
        value: mean,
        spread: var.sqrt(),
        p16: pct(0.16),
        p84: pct(0.84),
        neighbours,
    }
}
