//! The in-memory catalog: one dense *slot* per object, with columns for position,
//! attributes and per-modality row numbers. It is rebuilt from RocksDB on open and
//! kept in step with every committed write; filters are evaluated here, column by
//! column, into roaring bitmaps of slots.

use std::collections::{BTreeMap, HashMap};

use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};

use crate::config::{AttributeKind, CollectionConfig};
use crate::error::{Error, Result};
use crate::filter::{CmpOp, Filter, Literal};
use crate::sky;

/// "No row" / "no value" marker in u32 columns.
pub(crate) const NONE: u32 = u32::MAX;

/// A typed attribute value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AttrValue {
    /// A real number.
    Float(f64),
    /// An integer.
    Int(i64),
    /// A category label.
    Category(String),
}

impl AttrValue {
    /// The value as a float (None for categories).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            AttrValue::Float(v) => Some(*v),
            AttrValue::Int(v) => Some(*v as f64),
            AttrValue::Category(_) => None,
        }
    }
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            AttrValue::Float(_) => "a float",
            AttrValue::Int(_) => "an int",
            AttrValue::Category(_) => "a category string",
        }
    }
}

enum Column {
    Float(Vec<f64>),
    Int {
        values: Vec<i64>,
        present: RoaringBitmap,
    },
    Category {
        codes: Vec<u32>,
        dict: Vec<String>,
        lookup: HashMap<String, u32>,
    },
}

impl Column {
    fn new(kind: AttributeKind) -> Self {
        match kind {
            AttributeKind::Float => Column::Float(Vec::new()),
            AttributeKind::Int => Column::Int {
                values: Vec::new(),
                present: RoaringBitmap::new(),
            },
            AttributeKind::Category => Column::Category {
                codes: Vec::new(),
                dict: Vec::new(),
                lookup: HashMap::new(),
            },
        }
    }

    fn push_empty(&mut self) {
        match self {
            Column::Float(v) => v.push(f64::NAN),
            Column::Int { values, .. } => values.push(0),
            Column::Category { codes, .. } => codes.push(NONE),
        }
    }

    fn set(&mut self, slot: u32, value: Option<&AttrValue>) {
        let s = slot as usize;
        match self {
            Column::Float(v) => v[s] = value.and_then(AttrValue::as_f64).unwrap_or(f64::NAN),
            Column::Int { values, present } => match value {
                Some(AttrValue::Int(x)) => {
                    values[s] = *x;
                    present.insert(slot);
                }
                _ => {
                    present.remove(slot);
                }
            },
            Column::Category {
                codes,
                dict,
                lookup,
            } => {
                codes[s] = match value {
                    Some(AttrValue::Category(label)) => match lookup.get(label) {
                        Some(&c) => c,
                        None => {
                            let c = dict.len() as u32;
                            dict.push(label.clone());
                            lookup.insert(label.clone(), c);
                            c
                        }
                    },
                    _ => NONE,
                }
            }
        }
    }

    fn number(&self, slot: usize) -> Option<f64> {
        match self {
            Column::Float(v) => Some(v[slot]).filter(|x| !x.is_nan()),
            Column::Int { values, present } => {
                present.contains(slot as u32).then(|| values[slot] as f64)
            }
            Column::Category { .. } => None,
        }
    }
}

/// Where one object stands in memory.
pub(crate) struct Catalog {
    pub ids: Vec<u64>,
    pub ra: Vec<f64>,
    pub dec: Vec<f64>,
    pub alive: RoaringBitmap,
    pub slot_of: HashMap<u64, u32>,
    columns: Vec<Column>,
    /// `rows[m][slot]`: the object's row in modality `m`, or [`NONE`].
    pub rows: Vec<Vec<u32>>,
    /// `row_slot[m][row]`: the slot owning a row (for dead rows, the former owner).
    pub row_slot: Vec<Vec<u32>>,
    /// Rows no live object points at (replaced or deleted embeddings).
    pub dead_rows: Vec<RoaringBitmap>,
    /// HEALPix cell (depth [`sky::INDEX_DEPTH`]) → slots in it.
    pub sky: BTreeMap<u64, RoaringBitmap>,
    cell_of: Vec<u64>,
    kinds: Vec<AttributeKind>,
    names: Vec<String>,
    /// Bumped by every change, so results derived from the catalog (cached filter
    /// rows) can tell whether they are still current.
    generation: u64,
}

impl Catalog {
    pub fn new(config: &CollectionConfig) -> Self {
        let m = config.modalities.len();
        Catalog {
            ids: Vec::new(),
            ra: Vec::new(),
            dec: Vec::new(),
            alive: RoaringBitmap::new(),
            slot_of: HashMap::new(),
            columns: config
                .attributes
                .iter()
                .map(|a| Column::new(a.kind))
                .collect(),
            rows: vec![Vec::new(); m],
            row_slot: vec![Vec::new(); m],
            dead_rows: vec![RoaringBitmap::new(); m],
            sky: BTreeMap::new(),
            cell_of: Vec::new(),
            kinds: config.attributes.iter().map(|a| a.kind).collect(),
            names: config.attributes.iter().map(|a| a.name.clone()).collect(),
            generation: 0,
        }
    }

    /// Changes with every upsert or delete applied to the catalog.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Number of live objects.
    pub fn len(&self) -> u64 {
        self.alive.len()
    }

    /// Slot of a live object.
    pub fn live_slot(&self, id: u64) -> Option<u32> {
        self.slot_of
            .get(&id)
            .copied()
            .filter(|s| self.alive.contains(*s))
    }

    fn slot_for(&mut self, id: u64) -> u32 {
        if let Some(&s) = self.slot_of.get(&id) {
            return s;
        }
        let s = self.ids.len() as u32;
        self.ids.push(id);
        self.ra.push(0.0);
        self.dec.push(0.0);
        self.cell_of.push(u64::MAX);
        for c in &mut self.columns {
            c.push_empty();
        }
        for r in &mut self.rows {
            r.push(NONE);
        }
        self.slot_of.insert(id, s);
        s
    }

    /// Makes the catalog reflect a committed upsert. `attrs` is indexed like the
    /// config's attributes; `rows[m]` is the new row (or NONE).
    pub fn apply_upsert(
        &mut self,
        id: u64,
        ra: f64,
        dec: f64,
        attrs: &[Option<AttrValue>],
        rows: &[u32],
    ) {
        self.remove(id);
        self.generation += 1;
        let s = self.slot_for(id);
        let si = s as usize;
        self.ra[si] = ra;
        self.dec[si] = dec;
        let cell = sky::cell(ra, dec);
        self.cell_of[si] = cell;
        self.sky.entry(cell).or_default().insert(s);
        for (c, v) in self.columns.iter_mut().zip(attrs) {
            c.set(s, v.as_ref());
        }
        for (m, &row) in rows.iter().enumerate() {
            self.rows[m][si] = row;
            if row != NONE {
                let rs = &mut self.row_slot[m];
                if rs.len() <= row as usize {
                    rs.resize(row as usize + 1, NONE);
                }
                rs[row as usize] = s;
            }
        }
        self.alive.insert(s);
    }

    /// Makes the catalog reflect a committed delete (or the first half of a
    /// replacement): the object's rows become dead.
    pub fn remove(&mut self, id: u64) {
        let Some(s) = self.live_slot(id) else { return };
        self.generation += 1;
        let si = s as usize;
        for m in 0..self.rows.len() {
            let row = self.rows[m][si];
            if row != NONE {
                self.dead_rows[m].insert(row);
                self.rows[m][si] = NONE;
            }
        }
        if let Some(cell) = self.sky.get_mut(&self.cell_of[si]) {
            cell.remove(s);
        }
        self.alive.remove(s);
    }

    /// Value of an attribute for a live slot as a number.
    pub fn number(&self, attr: usize, slot: u32) -> Option<f64> {
        self.columns[attr].number(slot as usize)
    }

    /// Live slots matching a filter. `attr_index` resolves names against the config.
    pub fn evaluate(&self, filter: &Filter, config: &CollectionConfig) -> Result<RoaringBitmap> {
        Ok(match filter {
            Filter::And(parts) => {
                let mut acc: Option<RoaringBitmap> = None;
                for p in parts {
                    let b = self.evaluate(p, config)?;
                    acc = Some(match acc {
                        None => b,
                        Some(a) => a & b,
                    });
                }
                acc.unwrap_or_else(|| self.alive.clone())
            }
            Filter::Or(parts) => {
                let mut acc = RoaringBitmap::new();
                for p in parts {
                    acc |= self.evaluate(p, config)?;
                }
                acc
            }
            Filter::Not(inner) => &self.alive - &self.evaluate(inner, config)?,
            Filter::Ids(ids) => ids.iter().filter_map(|id| self.live_slot(*id)).collect(),
            Filter::Cone {
                ra_deg,
                dec_deg,
                radius_deg,
            } => {
                sky::check_position(*ra_deg, *dec_deg)?;
                sky::check_radius(*radius_deg)?;
                let mut out = RoaringBitmap::new();
                for s in sky::candidates(&self.sky, *ra_deg, *dec_deg, *radius_deg) {
                    let si = s as usize;
                    if sky::separation_deg(*ra_deg, *dec_deg, self.ra[si], self.dec[si])
                        <= *radius_deg
                    {
                        out.insert(s);
                    }
                }
                out & &self.alive
            }
            Filter::Has(name) => {
                let a = config.attribute_index(name)?;
                self.select(|s| match &self.columns[a] {
                    Column::Category { codes, .. } => codes[s] != NONE,
                    col => col.number(s).is_some(),
                })
            }
            Filter::Range {
                attribute,
                min,
                max,
            } => {
                let a = self.numeric_attr(attribute, config)?;
                self.select_numeric(a, |v| v >= *min && v <= *max)
            }
            Filter::Compare {
                attribute,
                op,
                value,
            } => {
                let a = config.attribute_index(attribute)?;
                match (&self.columns[a], value) {
                    (Column::Category { codes, lookup, .. }, Literal::Text(t)) => {
                        let code = lookup.get(t).copied();
                        match op {
                            CmpOp::Eq => self.select(|s| code.is_some_and(|c| codes[s] == c)),
                            CmpOp::Ne => {
                                self.select(|s| codes[s] != NONE && Some(codes[s]) != code)
                            }
                            _ => {
                                return Err(Error::AttributeType {
                                    name: attribute.clone(),
                                    expected: "a category (only = and != apply)".into(),
                                    got: "an ordering comparison".into(),
                                })
                            }
                        }
                    }
                    (Column::Category { .. }, Literal::Number(_)) => {
                        return Err(type_error(attribute, AttributeKind::Category, "a number"))
                    }
                    (_, Literal::Text(_)) => {
                        return Err(type_error(attribute, self.kinds[a], "a string"))
                    }
                    (_, Literal::Number(x)) => {
                        // One loop per operator, so the comparison is not re-dispatched
                        // for every value.
                        let x = *x;
                        match op {
                            CmpOp::Lt => self.select_numeric(a, |v| v < x),
                            CmpOp::Le => self.select_numeric(a, |v| v <= x),
                            CmpOp::Gt => self.select_numeric(a, |v| v > x),
                            CmpOp::Ge => self.select_numeric(a, |v| v >= x),
                            CmpOp::Eq => self.select_numeric(a, |v| v == x),
                            CmpOp::Ne => self.select_numeric(a, |v| v != x),
                        }
                    }
                }
            }
            Filter::In { attribute, values } => {
                let a = config.attribute_index(attribute)?;
                match &self.columns[a] {
                    Column::Category { codes, lookup, .. } => {
                        let mut wanted = Vec::new();
                        for v in values {
                            match v {
                                Literal::Text(t) => wanted.extend(lookup.get(t).copied()),
                                Literal::Number(_) => {
                                    return Err(type_error(
                                        attribute,
                                        AttributeKind::Category,
                                        "a number",
                                    ))
                                }
                            }
                        }
                        self.select(|s| wanted.contains(&codes[s]))
                    }
                    _ => {
                        let mut nums = Vec::new();
                        for v in values {
                            match v {
                                Literal::Number(x) => nums.push(*x),
                                Literal::Text(_) => {
                                    return Err(type_error(attribute, self.kinds[a], "a string"))
                                }
                            }
                        }
                        self.select_numeric(a, |v| nums.contains(&v))
                    }
                }
            }
        })
    }

    fn numeric_attr(&self, name: &str, config: &CollectionConfig) -> Result<usize> {
        let a = config.attribute_index(name)?;
        if self.kinds[a] == AttributeKind::Category {
            return Err(type_error(name, AttributeKind::Category, "a numeric range"));
        }
        Ok(a)
    }

    /// Live slots whose numeric attribute `a` has a value passing `pred` (slots
    /// without a value never pass).
    ///
    /// Why not [`Catalog::select`]: this walks the column itself, a tight loop over
    /// contiguous values, and consults the live set only for the matches — measured
    /// ~1 ms per condition per 100,000 objects through `select`, which is more than
    /// a filtered search itself costs.
    fn select_numeric(&self, a: usize, pred: impl Fn(f64) -> bool) -> RoaringBitmap {
        let picked: Vec<u32> = match &self.columns[a] {
            Column::Float(values) => values
                .iter()
                .enumerate()
                .filter(|(_, v)| !v.is_nan() && pred(**v))
                .map(|(s, _)| s as u32)
                .collect(),
            Column::Int { values, present } => present
                .iter()
                .filter(|s| pred(values[*s as usize] as f64))
                .collect(),
            Column::Category { .. } => Vec::new(),
        };
        let mut out = RoaringBitmap::from_sorted_iter(picked).expect("slots ascend");
        // Removed objects keep their old values in the columns.
        out &= &self.alive;
        out
    }

    fn select(&self, pred: impl Fn(usize) -> bool) -> RoaringBitmap {
        // Slots come out of `alive` in ascending order; building the bitmap from the
        // sorted list is several times faster than inserting one slot at a time.
        let picked: Vec<u32> = self.alive.iter().filter(|s| pred(*s as usize)).collect();
        RoaringBitmap::from_sorted_iter(picked).expect("alive iterates in ascending order")
    }

    /// Rows of modality `m` owned by the given slots.
    pub fn rows_of(&self, m: usize, slots: &RoaringBitmap) -> RoaringBitmap {
        let rows = &self.rows[m];
        let mut picked: Vec<u32> = slots
            .iter()
            .map(|s| rows[s as usize])
            .filter(|r| *r != NONE)
            .collect();
        // Live slots own distinct rows, so after sorting the list is strictly ascending.
        picked.sort_unstable();
        RoaringBitmap::from_sorted_iter(picked).expect("rows of distinct slots are distinct")
    }

    /// Name of attribute `a` (for messages).
    pub fn attr_name(&self, a: usize) -> &str {
        &self.names[a]
    }
}

fn type_error(name: &str, kind: AttributeKind, got: &str) -> Error {
    Error::AttributeType {
        name: name.into(),
        expected: format!("a {} attribute", kind.name()),
        got: got.into(),
    }
}
