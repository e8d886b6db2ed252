//! The Parquet reader: the mock survey's files and the AstroCLIP Parquet mirror
//! (`image` as nested `[152][152][3]` lists or a flat list, `spectrum` 7781 or
//! `[7781][1]`, `redshift`, `targetid`), plus precomputed-embedding columns.
//!
//! The schema is checked once per file (missing columns and wrong dtypes are
//! errors naming file and column); each row is then validated on its own (nulls
//! in required cells, wrong shapes, NaN/inf) and rejected with a reason rather
//! than stopping the run. Rows are read in record batches of the pipeline's batch
//! size, projected to the columns in use, and can start at any row (`--resume`).

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type,
    UInt64Type, UInt8Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Schema};
use astrovec_engine::{AttrValue, AttributeDef, AttributeKind};
use parquet::arrow::arrow_reader::{
    ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder, RowSelection, RowSelector,
};
use parquet::arrow::ProjectionMask;

use super::error::{IngestError, Result};
use super::mapping::{attribute_name_for, Mapping, UnknownColumns};
use super::plan::{to_image, to_spectrum, Plan, PlannedAttribute};
use super::row::{check_finite, check_position, Row, RowOutcome};

fn is_scalar(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Float32
            | DataType::Float64
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Boolean
            | DataType::Utf8
            | DataType::LargeUtf8
    )
}

fn natural_kind(dt: &DataType) -> AttributeKind {
    match dt {
        DataType::Float32 | DataType::Float64 => AttributeKind::Float,
        DataType::Utf8 | DataType::LargeUtf8 => AttributeKind::Category,
        _ => AttributeKind::Int,
    }
}

/// The leaf type of a (possibly nested) list type and the nesting depth.
fn leaf_type(dt: &DataType) -> (usize, &DataType) {
    match dt {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            let (d, t) = leaf_type(f.data_type());
            (d + 1, t)
        }
        other => (0, other),
    }
}

/// The fixed number of leaf values per row, when every level is fixed-size.
fn fixed_len(dt: &DataType) -> Option<usize> {
    match dt {
        DataType::FixedSizeList(f, n) => match f.data_type() {
            DataType::Float32 | DataType::Float64 => Some(*n as usize),
            inner => fixed_len(inner).map(|m| m * *n as usize),
        },
        _ => None,
    }
}

fn check_float_list(path: &Path, schema: &Schema, column: &str) -> Result<()> {
    let field = schema
        .field_with_name(column)
        .map_err(|_| IngestError::malformed(path, Some(column), None, "missing column"))?;
    let (depth, leaf) = leaf_type(field.data_type());
    if depth == 0 || !matches!(leaf, DataType::Float32 | DataType::Float64) {
        return Err(IngestError::malformed(
            path,
            Some(column),
            None,
            format!(
                "has type {}, expected a list of float32/float64",
                field.data_type()
            ),
        ));
    }
    Ok(())
}

// The plan of a Parquet catalog comes from its Arrow schema, so it is made here,
// beside the reader; the other readers build theirs in `source` or their own module.
impl Plan {
    /// Decides the plan for the Parquet catalog `path` (the first input) under
    /// `mapping`. `min_image_size` is the encoder's crop size, or 0 when no encoder runs.
    pub fn new(path: &Path, mapping: &Mapping, min_image_size: usize) -> Result<Plan> {
        let schema = read_schema(path)?;
        let has = |c: &str| schema.field_with_name(c).is_ok();
        for c in [&mapping.id, &mapping.ra, &mapping.dec] {
            if !has(c.as_str()) {
                return Err(IngestError::malformed(
                    path,
                    Some(c),
                    None,
                    "missing column",
                ));
            }
        }
        let image = mapping.image.clone().filter(|c| has(c.as_str()));
        let spectrum = mapping.spectrum.clone().filter(|c| has(c.as_str()));
        for c in image.iter().chain(spectrum.iter()) {
            check_float_list(path, &schema, c)?;
        }
        let mut embeddings = Vec::new();
        for (modality, column) in &mapping.embeddings {
            check_float_list(path, &schema, column)?;
            let dt = schema.field_with_name(column).expect("checked").data_type();
            let dim = match fixed_len(dt) {
                Some(n) => n,
                None => probe_len(path, column)?,
            };
            embeddings.push((modality.clone(), column.clone(), dim));
        }
        let roles = mapping.role_columns();
        let mut attributes = Vec::new();
        let mut ignored = Vec::new();
        for (column, spec) in &mapping.attributes {
            let field = schema.field_with_name(column).map_err(|_| {
                IngestError::malformed(
                    path,
                    Some(column),
                    None,
                    "missing column (named in the mapping's attributes)",
                )
            })?;
            if !is_scalar(field.data_type()) {
                return Err(IngestError::malformed(
                    path,
                    Some(column),
                    None,
                    format!(
                        "has type {}, not a scalar usable as an attribute",
                        field.data_type()
                    ),
                ));
            }
            let kind = spec.kind().unwrap_or(natural_kind(field.data_type()));
            attributes.push(PlannedAttribute {
                column: column.clone(),
                def: AttributeDef {
                    name: spec.name().to_string(),
                    kind,
                    unit: spec.unit().to_string(),
                },
            });
        }
        for field in schema.fields() {
            let c = field.name();
            if roles.contains(&c.as_str()) || mapping.attributes.contains_key(c) {
                continue;
            }
            let why = if mapping.ignore.contains(c) {
                "listed in the mapping's `ignore`".to_string()
            } else if mapping.unknown_columns == UnknownColumns::Ignore {
                "not named in the mapping (unknown_columns = \"ignore\")".to_string()
            } else if !is_scalar(field.data_type()) {
                format!("type {} is not a scalar attribute", field.data_type())
            } else {
                match attribute_name_for(c) {
                    Some(name) if !attributes.iter().any(|a| a.def.name == name) => {
                        let kind = natural_kind(field.data_type());
                        let unit = field.metadata().get("unit").cloned().unwrap_or_default();
                        attributes.push(PlannedAttribute {
                            column: c.clone(),
                            def: AttributeDef { name, kind, unit },
                        });
                        continue;
                    }
                    _ => "no valid, unused attribute name can be made from it".to_string(),
                }
            };
            ignored.push((c.clone(), why));
        }
        Ok(Plan {
            id: mapping.id.clone(),
            ra: mapping.ra.clone(),
            dec: mapping.dec.clone(),
            image,
            image_layout: mapping.image_layout,
            spectrum,
            embeddings,
            attributes,
            ignored,
            min_image_size,
        })
    }
}

fn parquet_err(path: &Path, e: impl std::fmt::Display) -> IngestError {
    IngestError::malformed(
        path,
        None,
        None,
        format!("not a readable Parquet file: {e}"),
    )
}

fn builder(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>> {
    let file = File::open(path).map_err(|e| IngestError::io(path, e))?;
    ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| parquet_err(path, e))
}

/// The Arrow schema of a Parquet file.
pub fn read_schema(path: &Path) -> Result<Schema> {
    Ok(builder(path)?.schema().as_ref().clone())
}

/// The number of leaf values in the first non-null cell of `column`.
fn probe_len(path: &Path, column: &str) -> Result<usize> {
    let reader = open_reader(path, &[column], 0, 256)?;
    for batch in reader {
        let batch =
            batch.map_err(|e| IngestError::malformed(path, Some(column), None, e.to_string()))?;
        let arr = batch.column(0);
        for i in 0..arr.len() {
            if let Some((_, v)) = list_cell(arr.as_ref(), i)
                .map_err(|e| IngestError::malformed(path, Some(column), Some(i as u64), e))?
            {
                return Ok(v.len());
            }
        }
    }
    Err(IngestError::malformed(
        path,
        Some(column),
        None,
        "has no non-null value to take the embedding dimension from",
    ))
}

fn open_reader(
    path: &Path,
    columns: &[&str],
    skip: u64,
    batch_size: usize,
) -> Result<ParquetRecordBatchReader> {
    let b = builder(path)?;
    let schema = b.schema().clone();
    let mut roots = Vec::new();
    for c in columns {
        let i = schema
            .index_of(c)
            .map_err(|_| IngestError::malformed(path, Some(c), None, "missing column"))?;
        if !roots.contains(&i) {
            roots.push(i);
        }
    }
    roots.sort_unstable();
    let mask = ProjectionMask::roots(b.parquet_schema(), roots);
    let total = b.metadata().file_metadata().num_rows().max(0) as u64;
    let mut b = b.with_projection(mask).with_batch_size(batch_size.max(1));
    if skip > 0 {
        let skip = skip.min(total) as usize;
        b = b.with_row_selection(RowSelection::from(vec![
            RowSelector::skip(skip),
            RowSelector::select(total as usize - skip),
        ]));
    }
    b.build().map_err(|e| parquet_err(path, e))
}

/// A flattened list cell: its shape (lengths per nesting level) and values.
pub type Cell = (Vec<usize>, Vec<f32>);

/// Flattens cell `i` of a (nested) float list column: its shape and values, or
/// `None` for a null cell. Nulls inside become NaN (and so reject the row).
pub fn list_cell(arr: &dyn Array, i: usize) -> std::result::Result<Option<Cell>, String> {
    if arr.is_null(i) {
        return Ok(None);
    }
    let mut shape = Vec::new();
    let mut out = Vec::new();
    collect(arr, i, 1, 0, &mut shape, &mut out)?;
    Ok(Some((shape, out)))
}

/// Records the length `len` of a list at nesting `depth` (lists at one depth must
/// all have the same length: images and spectra are dense arrays).
fn level(shape: &mut Vec<usize>, depth: usize, len: usize) -> std::result::Result<(), String> {
    match shape.get(depth) {
        None => {
            shape.push(len);
            Ok(())
        }
        Some(&l) if l == len => Ok(()),
        Some(&l) => Err(format!(
            "ragged nested list ({l} vs {len} values at depth {depth})"
        )),
    }
}

/// Appends the leaf values of elements `start..start + len` of `arr` (lists at
/// nesting `depth`, or the float leaves) to `out`.
fn collect(
    arr: &dyn Array,
    start: usize,
    len: usize,
    depth: usize,
    shape: &mut Vec<usize>,
    out: &mut Vec<f32>,
) -> std::result::Result<(), String> {
    let null_inside = |a: &dyn Array, j: usize| depth > 0 && a.is_null(j);
    match arr.data_type() {
        DataType::FixedSizeList(_, n) => {
            let a = arr.as_fixed_size_list();
            let n = *n as usize;
            for j in start..start + len {
                if null_inside(a, j) {
                    return Err(format!("null inside the list at depth {depth}"));
                }
            }
            level(shape, depth, n)?;
            let first = a.value_offset(start) as usize;
            collect(a.values().as_ref(), first, len * n, depth + 1, shape, out)
        }
        DataType::List(_) => {
            let a = arr.as_list::<i32>();
            let offs = a.value_offsets();
            for j in start..start + len {
                if null_inside(a, j) {
                    return Err(format!("null inside the list at depth {depth}"));
                }
                level(shape, depth, (offs[j + 1] - offs[j]) as usize)?;
            }
            let (s, e) = (offs[start] as usize, offs[start + len] as usize);
            collect(a.values().as_ref(), s, e - s, depth + 1, shape, out)
        }
        DataType::LargeList(_) => {
            let a = arr.as_list::<i64>();
            let offs = a.value_offsets();
            for j in start..start + len {
                if null_inside(a, j) {
                    return Err(format!("null inside the list at depth {depth}"));
                }
                level(shape, depth, (offs[j + 1] - offs[j]) as usize)?;
            }
            let (s, e) = (offs[start] as usize, offs[start + len] as usize);
            collect(a.values().as_ref(), s, e - s, depth + 1, shape, out)
        }
        DataType::Float32 => {
            let a = arr.as_primitive::<Float32Type>();
            if a.null_count() > 0 {
                out.extend((start..start + len).map(|j| {
                    if a.is_null(j) {
                        f32::NAN
                    } else {
                        a.value(j)
                    }
                }));
            } else {
                out.extend_from_slice(&a.values()[start..start + len]);
            }
            Ok(())
        }
        DataType::Float64 => {
            let a = arr.as_primitive::<Float64Type>();
            out.extend((start..start + len).map(|j| {
                if a.is_null(j) {
                    f32::NAN
                } else {
                    a.value(j) as f32
                }
            }));
            Ok(())
        }
        other => Err(format!("unexpected item type {other}")),
    }
}

/// An integer cell as i128 (covers every Arrow integer type), or `None` when null.
fn int_cell(arr: &dyn Array, i: usize) -> Option<i128> {
    if arr.is_null(i) {
        return None;
    }
    Some(match arr.data_type() {
        DataType::Int8 => arr.as_primitive::<Int8Type>().value(i) as i128,
        DataType::Int16 => arr.as_primitive::<Int16Type>().value(i) as i128,
        DataType::Int32 => arr.as_primitive::<Int32Type>().value(i) as i128,
        DataType::Int64 => arr.as_primitive::<Int64Type>().value(i) as i128,
        DataType::UInt8 => arr.as_primitive::<UInt8Type>().value(i) as i128,
        DataType::UInt16 => arr.as_primitive::<UInt16Type>().value(i) as i128,
        DataType::UInt32 => arr.as_primitive::<UInt32Type>().value(i) as i128,
        DataType::UInt64 => arr.as_primitive::<UInt64Type>().value(i) as i128,
        DataType::Boolean => arr.as_boolean().value(i) as i128,
        _ => return None,
    })
}

fn float_cell(arr: &dyn Array, i: usize) -> Option<f64> {
    if arr.is_null(i) {
        return None;
    }
    match arr.data_type() {
        DataType::Float32 => Some(arr.as_primitive::<Float32Type>().value(i) as f64),
        DataType::Float64 => Some(arr.as_primitive::<Float64Type>().value(i)),
        _ => int_cell(arr, i).map(|v| v as f64),
    }
}

fn string_cell(arr: &dyn Array, i: usize) -> Option<String> {
    if arr.is_null(i) {
        return None;
    }
    match arr.data_type() {
        DataType::Utf8 => Some(arr.as_string::<i32>().value(i).to_string()),
        DataType::LargeUtf8 => Some(arr.as_string::<i64>().value(i).to_string()),
        _ => None,
    }
}

fn is_int_type(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
    )
}

fn is_number_type(dt: &DataType) -> bool {
    is_int_type(dt) || matches!(dt, DataType::Float32 | DataType::Float64)
}

fn attr_cell(arr: &dyn Array, i: usize, kind: AttributeKind) -> Option<AttrValue> {
    match kind {
        AttributeKind::Float => float_cell(arr, i)
            .filter(|v| v.is_finite())
            .map(AttrValue::Float),
        AttributeKind::Int => match arr.data_type() {
            DataType::Float32 | DataType::Float64 => float_cell(arr, i)
                .filter(|v| v.is_finite() && v.fract() == 0.0)
                .map(|v| AttrValue::Int(v as i64)),
            _ => int_cell(arr, i)
                .and_then(|v| i64::try_from(v).ok())
                .map(AttrValue::Int),
        },
        AttributeKind::Category => string_cell(arr, i)
            .or_else(|| int_cell(arr, i).map(|v| v.to_string()))
            .or_else(|| float_cell(arr, i).map(|v| v.to_string()))
            .map(AttrValue::Category),
    }
}

/// A Parquet catalog being read in order.
pub struct ParquetSource {
    path: PathBuf,
    plan: Plan,
    rows: u64,
}

impl ParquetSource {
    /// Opens `path` and checks its schema against `plan` (every planned column
    /// present with a usable type).
    pub fn open(path: &Path, plan: &Plan) -> Result<Self> {
        let b = builder(path)?;
        let rows = b.metadata().file_metadata().num_rows().max(0) as u64;
        let schema = b.schema().clone();
        drop(b);
        for c in plan.columns() {
            if schema.field_with_name(c).is_err() {
                return Err(IngestError::malformed(
                    path,
                    Some(c),
                    None,
                    "missing column",
                ));
            }
        }
        let dt = |c: &str| {
            schema
                .field_with_name(c)
                .expect("checked")
                .data_type()
                .clone()
        };
        let id_t = dt(&plan.id);
        if !is_int_type(&id_t) {
            return Err(IngestError::malformed(
                path,
                Some(&plan.id),
                None,
                format!("has type {id_t}, expected an integer id"),
            ));
        }
        for c in [&plan.ra, &plan.dec] {
            let t = dt(c);
            if !is_number_type(&t) {
                return Err(IngestError::malformed(
                    path,
                    Some(c),
                    None,
                    format!("has type {t}, expected degrees as a number"),
                ));
            }
        }
        for c in plan.image.iter().chain(plan.spectrum.iter()) {
            check_float_list(path, &schema, c)?;
        }
        for (_, c, _) in &plan.embeddings {
            check_float_list(path, &schema, c)?;
        }
        for a in &plan.attributes {
            let t = dt(&a.column);
            if !is_scalar(&t) {
                return Err(IngestError::malformed(
                    path,
                    Some(&a.column),
                    None,
                    format!("has type {t}, expected a scalar"),
                ));
            }
        }
        Ok(ParquetSource {
            path: path.to_path_buf(),
            plan: plan.clone(),
            rows,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rows in the file.
    pub fn len(&self) -> u64 {
        self.rows
    }

    /// True when the file has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Iterates over record batches from row `start`, converted to row outcomes.
    pub fn read_from(
        &self,
        start: u64,
        batch_size: usize,
    ) -> Result<impl Iterator<Item = Result<Vec<RowOutcome>>> + '_> {
        let reader = open_reader(&self.path, &self.plan.columns(), start, batch_size)?;
        let mut next_row = start;
        Ok(reader.map(move |batch| {
            let batch = batch.map_err(|e| {
                IngestError::malformed(
                    &self.path,
                    None,
                    Some(next_row),
                    format!("cannot decode the rows from here on: {e}"),
                )
            })?;
            let first = next_row;
            next_row += batch.num_rows() as u64;
            self.convert(&batch, first)
        }))
    }

    /// The ids of rows `start..end` (only the id column is read): `None` for rows
    /// without a valid id.
    pub fn ids(&self, end: u64) -> Result<Vec<Option<u64>>> {
        let reader = open_reader(&self.path, &[&self.plan.id], 0, 8192)?;
        let mut out = Vec::with_capacity(end as usize);
        for batch in reader {
            let batch = batch.map_err(|e| {
                IngestError::malformed(
                    &self.path,
                    Some(&self.plan.id),
                    Some(out.len() as u64),
                    e.to_string(),
                )
            })?;
            let arr = batch.column(0);
            for i in 0..arr.len() {
                if out.len() as u64 >= end {
                    return Ok(out);
                }
                out.push(int_cell(arr.as_ref(), i).and_then(|v| u64::try_from(v).ok()));
            }
        }
        Ok(out)
    }

    fn column<'a>(&self, batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef> {
        batch
            .column_by_name(name)
            .ok_or_else(|| IngestError::malformed(&self.path, Some(name), None, "missing column"))
    }

    fn convert(&self, batch: &RecordBatch, first: u64) -> Result<Vec<RowOutcome>> {
        let p = &self.plan;
        let id = self.column(batch, &p.id)?;
        let ra = self.column(batch, &p.ra)?;
        let dec = self.column(batch, &p.dec)?;
        let image = p
            .image
            .as_deref()
            .map(|c| self.column(batch, c))
            .transpose()?;
        let spectrum = p
            .spectrum
            .as_deref()
            .map(|c| self.column(batch, c))
            .transpose()?;
        let embeddings = p
            .embeddings
            .iter()
            .map(|(m, c, d)| Ok((m, c, *d, self.column(batch, c)?)))
            .collect::<Result<Vec<_>>>()?;
        let attrs = p
            .attributes
            .iter()
            .map(|a| Ok((a, self.column(batch, &a.column)?)))
            .collect::<Result<Vec<_>>>()?;
        let n = batch.num_rows();
        let convert_one = |i: usize| -> RowOutcome {
            let row = first + i as u64;
            let id = match int_cell(id.as_ref(), i) {
                Some(v) if v >= 0 && v <= u64::MAX as i128 => v as u64,
                Some(v) => {
                    return RowOutcome {
                        row,
                        id: None,
                        result: Err(format!("{}: id {v} is negative", p.id)),
                    }
                }
                None => {
                    return RowOutcome {
                        row,
                        id: None,
                        result: Err(format!("{}: id is null", p.id)),
                    }
                }
            };
            let result = (|| -> std::result::Result<Row, String> {
                let ra_v = float_cell(ra.as_ref(), i).ok_or(format!("{}: null", p.ra))?;
                let dec_v = float_cell(dec.as_ref(), i).ok_or(format!("{}: null", p.dec))?;
                check_position(&p.ra, ra_v, &p.dec, dec_v)?;
                let image = match (image, &p.image) {
                    (Some(arr), Some(col)) => list_cell(arr.as_ref(), i)
                        .map_err(|e| format!("{col}: {e}"))?
                        .map(|(shape, v)| to_image(&shape, v, p.image_layout, p.min_image_size))
                        .transpose()
                        .map_err(|e| format!("{col}: {e}"))?,
                    _ => None,
                };
                let spectrum = match (spectrum, &p.spectrum) {
                    (Some(arr), Some(col)) => list_cell(arr.as_ref(), i)
                        .map_err(|e| format!("{col}: {e}"))?
                        .map(|(shape, v)| to_spectrum(&shape, v))
                        .transpose()
                        .map_err(|e| format!("{col}: {e}"))?,
                    _ => None,
                };
                let mut emb = std::collections::BTreeMap::new();
                for (m, c, dim, arr) in &embeddings {
                    if let Some((_, v)) =
                        list_cell(arr.as_ref(), i).map_err(|e| format!("{c}: {e}"))?
                    {
                        if v.len() != *dim {
                            return Err(format!(
                                "{c}: embedding has {} values, expected {dim}",
                                v.len()
                            ));
                        }
                        check_finite(c, &v)?;
                        if v.iter().all(|x| *x == 0.0) {
                            return Err(format!("{c}: embedding is all zeros"));
                        }
                        emb.insert((*m).clone(), v);
                    }
                }
                let attributes = attrs
                    .iter()
                    .filter_map(|(a, arr)| {
                        attr_cell(arr.as_ref(), i, a.def.kind).map(|v| (a.def.name.clone(), v))
                    })
                    .collect();
                Ok(Row {
                    id,
                    ra: ra_v,
                    dec: dec_v,
                    attributes,
                    image,
                    spectrum,
                    embeddings: emb,
                })
            })();
            RowOutcome {
                row,
                id: Some(id),
                result,
            }
        };
        use rayon::prelude::*;
        Ok((0..n).into_par_iter().map(convert_one).collect())
    }
}
