//! Catalog attributes on their way out of the server: as JSON values, as export
//! columns typed by the collection config, and as per-collection summaries
//! (count, range, most common labels) for the web page's filter widgets.

use std::collections::BTreeMap;

use astrovec_engine::{AttrValue, AttributeKind, Collection, CollectionConfig};
use serde::Serialize;
use serde_json::{json, Value};

use crate::error::ApiResult;
use crate::formats::{Column, Values};

/// Distinct labels kept per category attribute in a summary (the most common).
const MAX_LABELS: usize = 100;

/// Converts an attribute value to JSON (NaN → null).
pub(crate) fn attr_json(v: &AttrValue) -> Value {
    match v {
        AttrValue::Float(x) if x.is_finite() => json!(x),
        AttrValue::Float(_) => Value::Null,
        AttrValue::Int(x) => json!(x),
        AttrValue::Category(s) => json!(s),
    }
}

/// One column per declared attribute (or per name in `wanted`), typed by the
/// collection config; `get(i)` gives row `i`'s attributes.
pub(crate) fn attribute_columns<'a>(
    config: &CollectionConfig,
    wanted: Option<&[String]>,
    get: impl Fn(usize) -> &'a BTreeMap<String, AttrValue>,
    n: usize,
) -> Vec<Column> {
    config
        .attributes
        .iter()
        .filter(|a| wanted.is_none_or(|w| w.contains(&a.name)))
        .map(|a| {
            let values = match a.kind {
                AttributeKind::Float => Values::F64(
                    (0..n)
                        .map(|i| get(i).get(&a.name).and_then(AttrValue::as_f64))
                        .collect(),
                ),
                AttributeKind::Int => Values::I64(
                    (0..n)
                        .map(|i| match get(i).get(&a.name) {
                            Some(AttrValue::Int(x)) => Some(*x),
                            _ => None,
                        })
                        .collect(),
                ),
                AttributeKind::Category => Values::Str(
                    (0..n)
                        .map(|i| match get(i).get(&a.name) {
                            Some(AttrValue::Category(s)) => Some(s.clone()),
                            _ => None,
                        })
                        .collect(),
                ),
            };
            Column {
                name: a.name.clone(),
                unit: a.unit.clone(),
                ucd: String::new(),
                description: format!("Catalog attribute `{}` ({})", a.name, a.kind.name()),
                values,
            }
        })
        .collect()
}

/// Summary of one attribute across the collection (for filter widgets).
#[derive(Debug, Clone, Serialize)]
pub struct AttributeSummary {
    /// Name.
    pub name: String,
    /// `float`, `int` or `category`.
    pub kind: &'static str,
    /// Display unit (empty when dimensionless).
    pub unit: String,
    /// Objects with a (finite) value.
    pub count: u64,
    /// Smallest value (numeric attributes).
    pub min: Option<f64>,
    /// Largest value (numeric attributes).
    pub max: Option<f64>,
    /// Distinct labels with their counts (categories; the 100 most common).
    pub values: Option<Vec<(String, u64)>>,
}

/// Attribute summaries of a collection.
pub type AttributeSummaries = Vec<AttributeSummary>;

/// Scans every object once (blocking). A served collection keeps the result until
/// its next write ([`crate::CollectionHandle::attribute_summaries`]).
pub(crate) fn attribute_summaries(c: &Collection) -> ApiResult<AttributeSummaries> {
    let cfg = c.config();
    let mut sums: Vec<AttributeSummary> = cfg
        .attributes
        .iter()
        .map(|a| AttributeSummary {
            name: a.name.clone(),
            kind: a.kind.name(),
            unit: a.unit.clone(),
            count: 0,
            min: None,
            max: None,
            values: None,
        })
        .collect();
    let mut cats: Vec<BTreeMap<String, u64>> = vec![BTreeMap::new(); sums.len()];
    for id in c.ids() {
        let o = match c.get(id) {
            Ok(o) => o,
            Err(astrovec_engine::Error::NotFound(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        for (i, s) in sums.iter_mut().enumerate() {
            match o.attributes.get(&s.name) {
                Some(AttrValue::Category(label)) => {
                    s.count += 1;
                    *cats[i].entry(label.clone()).or_insert(0) += 1;
                }
                Some(v) => {
                    if let Some(x) = v.as_f64().filter(|x| x.is_finite()) {
                        s.count += 1;
                        s.min = Some(s.min.map_or(x, |m| m.min(x)));
                        s.max = Some(s.max.map_or(x, |m| m.max(x)));
                    }
                }
                None => {}
            }
        }
    }
    for (s, c) in sums.iter_mut().zip(cats) {
        if s.kind == "category" {
            let mut v: Vec<(String, u64)> = c.into_iter().collect();
            v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            v.truncate(MAX_LABELS);
            s.values = Some(v);
        }
    }
    Ok(sums)
}
