//! Tabular exports shared by the search endpoint (`format=csv|votable|parquet`)
//! and the IVOA cone search: one [`Table`] in, bytes and a content type out.

use std::fmt::Write;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema};

use crate::error::{ApiError, ApiResult};

/// Values of one column.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// Unsigned integers (ids).
    U64(Vec<u64>),
    /// Signed integers; `None` is missing.
    I64(Vec<Option<i64>>),
    /// Reals; `None` is missing.
    F64(Vec<Option<f64>>),
    /// Text; `None` is missing.
    Str(Vec<Option<String>>),
}

/// One column with its metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Name.
    pub name: String,
    /// Unit (VOUnit style: `deg`, `arcsec`, `mag`; empty when dimensionless).
    pub unit: String,
    /// UCD (unified content descriptor) for VOTable, empty if none.
    pub ucd: String,
    /// Description.
    pub description: String,
    /// Values, one per row.
    pub values: Values,
}

/// A table: equal-length columns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    /// Columns in output order.
    pub columns: Vec<Column>,
}

/// Output formats of tabular endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON (the default).
    Json,
    /// Comma-separated values with a header line.
    Csv,
    /// IVOA VOTable 1.3, TABLEDATA serialisation.
    Votable,
    /// Apache Parquet.
    Parquet,
}

impl Format {
    /// Parses `json`, `csv`, `votable` or `parquet`.
    pub fn parse(s: &str) -> ApiResult<Format> {
        match s {
            "json" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            "votable" => Ok(Format::Votable),
            "parquet" => Ok(Format::Parquet),
            other => Err(ApiError::invalid(
                "format",
                "json, csv, votable or parquet",
                format!("`{other}`"),
            )),
        }
    }
}

impl Values {
    fn len(&self) -> usize {
        match self {
            Values::U64(v) => v.len(),
            Values::I64(v) => v.len(),
            Values::F64(v) => v.len(),
            Values::Str(v) => v.len(),
        }
    }

    /// The cell as text (empty when missing).
    fn text(&self, row: usize) -> String {
        match self {
            Values::U64(v) => v[row].to_string(),
            Values::I64(v) => v[row].map(|x| x.to_string()).unwrap_or_default(),
            Values::F64(v) => v[row]
                .filter(|x| x.is_finite())
                .map(|x| x.to_string())
                .unwrap_or_default(),
            Values::Str(v) => v[row].clone().unwrap_or_default(),
        }
    }
}

impl Table {
    /// Rows in the table.
    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, |c| c.values.len())
    }

    /// CSV with a header line; text with commas, quotes or newlines is quoted.
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        let quote = |s: &str| {
            if s.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_string()
            }
        };
        let header: Vec<String> = self.columns.iter().map(|c| quote(&c.name)).collect();
        out.push_str(&header.join(","));
        out.push('\n');
        for r in 0..self.rows() {
            let row: Vec<String> = self
                .columns
                .iter()
                .map(|c| quote(&c.values.text(r)))
                .collect();
            out.push_str(&row.join(","));
            out.push('\n');
        }
        out
    }

    /// A VOTable 1.3 document with one RESOURCE / TABLE. `infos` go into the
    /// RESOURCE before the table (name, value, text), e.g. `QUERY_STATUS`.
    pub fn to_votable(&self, table_name: &str, infos: &[(&str, &str, &str)]) -> String {
        let mut out = String::new();
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        out.push_str("<VOTABLE version=\"1.3\" xmlns=\"http://www.ivoa.net/xml/VOTable/v1.3\">\n");
        out.push_str("<RESOURCE type=\"results\">\n");
        for (name, value, text) in infos {
            let _ = writeln!(
                out,
                "<INFO name=\"{}\" value=\"{}\">{}</INFO>",
                xml(name),
                xml(value),
                xml(text)
            );
        }
        let _ = writeln!(out, "<TABLE name=\"{}\">", xml(table_name));
        for (i, c) in self.columns.iter().enumerate() {
            let (datatype, extra) = match c.values {
                Values::U64(_) | Values::I64(_) => ("long", ""),
                Values::F64(_) => ("double", ""),
                Values::Str(_) => ("char", " arraysize=\"*\""),
            };
            let _ = write!(
                out,
                "<FIELD ID=\"col{i}\" name=\"{}\" datatype=\"{datatype}\"{extra}",
                xml(&c.name)
            );
            if !c.unit.is_empty() {
                let _ = write!(out, " unit=\"{}\"", xml(&c.unit));
            }
            if !c.ucd.is_empty() {
                let _ = write!(out, " ucd=\"{}\"", xml(&c.ucd));
            }
            out.push('>');
            if !c.description.is_empty() {
                let _ = write!(out, "<DESCRIPTION>{}</DESCRIPTION>", xml(&c.description));
            }
            // Missing integers need a declared null value in TABLEDATA.
            if matches!(c.values, Values::I64(_)) {
                out.push_str("<VALUES null=\"-9223372036854775808\"/>");
            }
            out.push_str("</FIELD>\n");
        }
        out.push_str("<DATA><TABLEDATA>\n");
        for r in 0..self.rows() {
            out.push_str("<TR>");
            for c in &self.columns {
                let cell = match &c.values {
                    Values::I64(v) if v[r].is_none() => i64::MIN.to_string(),
                    Values::F64(v) if v[r].is_none_or(|x| !x.is_finite()) => "NaN".to_string(),
                    other => other.text(r),
                };
                let _ = write!(out, "<TD>{}</TD>", xml(&cell));
            }
            out.push_str("</TR>\n");
        }
        out.push_str("</TABLEDATA></DATA>\n</TABLE>\n</RESOURCE>\n</VOTABLE>\n");
        out
    }

    /// Parquet bytes (one row group; units and descriptions in the field metadata).
    pub fn to_parquet(&self) -> ApiResult<Vec<u8>> {
        let mut fields = Vec::new();
        let mut arrays: Vec<ArrayRef> = Vec::new();
        for c in &self.columns {
            let (dt, arr): (DataType, ArrayRef) = match &c.values {
                Values::U64(v) => (DataType::UInt64, Arc::new(UInt64Array::from(v.clone()))),
                Values::I64(v) => (DataType::Int64, Arc::new(Int64Array::from(v.clone()))),
                Values::F64(v) => (DataType::Float64, Arc::new(Float64Array::from(v.clone()))),
                Values::Str(v) => (DataType::Utf8, Arc::new(StringArray::from(v.clone()))),
            };
            let mut meta = std::collections::HashMap::new();
            if !c.unit.is_empty() {
                meta.insert("unit".to_string(), c.unit.clone());
            }
            if !c.description.is_empty() {
                meta.insert("description".to_string(), c.description.clone());
            }
            fields.push(Field::new(&c.name, dt, true).with_metadata(meta));
            arrays.push(arr);
        }
        let schema = Arc::new(Schema::new(fields));
        let batch = RecordBatch::try_new(schema.clone(), arrays)
            .map_err(|e| ApiError::Internal(format!("building the parquet batch: {e}")))?;
        let mut out = Vec::new();
        let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, schema, None)
            .map_err(|e| ApiError::Internal(format!("parquet writer: {e}")))?;
        w.write(&batch)
            .map_err(|e| ApiError::Internal(format!("parquet write: {e}")))?;
        w.close()
            .map_err(|e| ApiError::Internal(format!("parquet close: {e}")))?;
        Ok(out)
    }
}

/// Escapes text for XML content and attributes.
pub fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        Table {
            columns: vec![
                Column {
                    name: "id".into(),
                    unit: String::new(),
                    ucd: "ID_MAIN".into(),
                    description: "object id".into(),
                    values: Values::U64(vec![1, 2]),
                },
                Column {
                    name: "label".into(),
                    unit: String::new(),
                    ucd: String::new(),
                    description: String::new(),
                    values: Values::Str(vec![Some("a,\"b\"".into()), None]),
                },
                Column {
                    name: "z".into(),
                    unit: String::new(),
                    ucd: String::new(),
                    description: String::new(),
                    values: Values::F64(vec![Some(0.5), None]),
                },
            ],
        }
    }

    #[test]
    fn csv_quotes_and_leaves_missing_cells_empty() {
        assert_eq!(table().to_csv(), "id,label,z\n1,\"a,\"\"b\"\"\",0.5\n2,,\n");
    }

    #[test]
    fn votable_escapes_and_marks_missing_reals_nan() {
        let v = table().to_votable("t", &[("QUERY_STATUS", "OK", "")]);
        assert!(v.contains("<TD>a,&quot;b&quot;</TD>"));
        assert!(v.contains("<TD>NaN</TD>"));
        assert!(v.contains("ucd=\"ID_MAIN\""));
        assert!(v.contains("<INFO name=\"QUERY_STATUS\" value=\"OK\">"));
    }

    #[test]
    fn parquet_starts_and_ends_with_magic() {
        let p = table().to_parquet().unwrap();
        assert_eq!(&p[..4], b"PAR1");
        assert_eq!(&p[p.len() - 4..], b"PAR1");
    }
}
