//! Binary-table HDUs (§7.3): the column layout from the TFORM/TTYPE cards and
//! fixed-width columns read for a range of rows.

use super::{decode, Hdu, Result};

/// A binary-table column.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// TTYPE, trimmed.
    pub name: String,
    /// The TFORM type code (`L`, `B`, `I`, `J`, `K`, `E`, `D`, `A`, …).
    pub code: char,
    /// Values per row (for `A`, characters per row).
    pub repeat: usize,
    /// Byte offset of the column within a row.
    pub offset: usize,
    /// TSCAL (1 when absent).
    pub scale: f64,
    /// TZERO (0 when absent).
    pub zero: f64,
    /// TUNIT, if any.
    pub unit: Option<String>,
}

impl Hdu {
    /// Rows of a binary table (NAXIS2).
    pub fn rows(&self) -> Result<usize> {
        if !self.is_table() {
            return Err(self.error(None, "expected a binary table"));
        }
        Ok(self.shape()?.first().copied().unwrap_or(0))
    }

    /// The columns of a binary table.
    pub fn columns(&self) -> Result<Vec<Column>> {
        if !self.is_table() {
            return Err(self.error(None, "expected a binary table"));
        }
        let fields = self.int("TFIELDS")?;
        let width = self.int("NAXIS1")? as usize;
        let mut offset = 0usize;
        let mut out = Vec::new();
        for i in 1..=fields {
            let tform = self
                .keyword(&format!("TFORM{i}"))
                .ok_or_else(|| self.error(None, format!("missing TFORM{i}")))?
                .trim();
            let split = tform
                .find(|c: char| c.is_ascii_alphabetic())
                .ok_or_else(|| self.error(None, format!("TFORM{i} = {tform} has no type code")))?;
            let repeat: usize = if split == 0 {
                1
            } else {
                tform[..split]
                    .parse()
                    .map_err(|_| self.error(None, format!("bad TFORM{i} = {tform}")))?
            };
            let code = tform[split..].chars().next().expect("found above");
            let elem = match code {
                'L' | 'B' | 'A' => 1,
                'I' => 2,
                'J' | 'E' => 4,
                'K' | 'D' | 'C' | 'P' => 8,
                'M' | 'Q' => 16,
                // Bits: repeat counts bits, stored in whole bytes.
                'X' => 0,
                _ => return Err(self.error(None, format!("unknown TFORM{i} = {tform}"))),
            };
            let bytes = if code == 'X' {
                repeat.div_ceil(8)
            } else {
                repeat * elem
            };
            let name = self
                .keyword(&format!("TTYPE{i}"))
                .unwrap_or("")
                .trim()
                .to_string();
            out.push(Column {
                name,
                code,
                repeat,
                offset,
                scale: self.float_or(&format!("TSCAL{i}"), 1.0)?,
                zero: self.float_or(&format!("TZERO{i}"), 0.0)?,
                unit: self.keyword(&format!("TUNIT{i}")).map(str::to_string),
            });
            offset += bytes;
        }
        if offset != width {
            return Err(self.error(
                None,
                format!("the columns take {offset} bytes per row, NAXIS1 says {width}"),
            ));
        }
        Ok(out)
    }

    /// The column named `name` (case-insensitive); an error naming it when absent.
    pub fn column(&self, name: &str) -> Result<Column> {
        self.columns()?
            .into_iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| self.error(Some(name), "missing column"))
    }

    fn cells(&self, col: &Column, start: usize, count: usize) -> Result<Vec<u8>> {
        let rows = self.rows()?;
        if start + count > rows {
            return Err(self.error(
                Some(&col.name),
                format!(
                    "rows {start}..{} requested, the table has {rows}",
                    start + count
                ),
            ));
        }
        let width = self.int("NAXIS1")? as usize;
        let block = self.read_bytes((start * width) as u64, count * width)?;
        let elem = match col.code {
            'I' => 2,
            'J' | 'E' => 4,
            'K' | 'D' => 8,
            _ => 1,
        };
        let mut out = Vec::with_capacity(count * col.repeat * elem);
        for r in 0..count {
            let s = r * width + col.offset;
            out.extend_from_slice(&block[s..s + col.repeat * elem]);
        }
        Ok(out)
    }

    /// Numeric column values for rows `start..start+count`, `repeat` per row, as
    /// `f64` with TSCAL/TZERO applied (`L` gives 0/1).
    pub fn column_f64(&self, col: &Column, start: usize, count: usize) -> Result<Vec<f64>> {
        let elem = match col.code {
            'L' | 'B' => 1,
            'I' => 2,
            'J' | 'E' => 4,
            'K' | 'D' => 8,
            c => {
                return Err(self.error(
                    Some(&col.name),
                    format!("type {c} is not numeric (expected L, B, I, J, K, E or D)"),
                ))
            }
        };
        let bytes = self.cells(col, start, count)?;
        let raw = decode(&bytes, col.code, elem);
        Ok(if col.scale == 1.0 && col.zero == 0.0 {
            raw
        } else {
            raw.into_iter().map(|v| v * col.scale + col.zero).collect()
        })
    }

    /// Integer column values (`B`, `I`, `J`, `K`, with TZERO, e.g. unsigned 64-bit
    /// ids stored as `K` with TZERO = 2⁶³) for rows `start..start+count`.
    pub fn column_i128(&self, col: &Column, start: usize, count: usize) -> Result<Vec<i128>> {
        let elem = match col.code {
            'B' => 1,
            'I' => 2,
            'J' => 4,
            'K' => 8,
            c => {
                return Err(self.error(
                    Some(&col.name),
                    format!("type {c} is not an integer (expected B, I, J or K)"),
                ))
            }
        };
        if col.scale != 1.0 || col.zero.fract() != 0.0 {
            return Err(self.error(Some(&col.name), "scaled integer column is not an id"));
        }
        let zero = col.zero as i128;
        let bytes = self.cells(col, start, count)?;
        Ok(bytes
            .chunks_exact(elem)
            .map(|b| {
                let v: i128 = match elem {
                    1 => b[0] as i128,
                    2 => i16::from_be_bytes([b[0], b[1]]) as i128,
                    4 => i32::from_be_bytes([b[0], b[1], b[2], b[3]]) as i128,
                    _ => i64::from_be_bytes(b.try_into().expect("8 bytes")) as i128,
                };
                v + zero
            })
            .collect())
    }

    /// String column values (`A`) for rows `start..start+count`, trailing blanks
    /// and NULs removed.
    pub fn column_str(&self, col: &Column, start: usize, count: usize) -> Result<Vec<String>> {
        if col.code != 'A' {
            return Err(self.error(
                Some(&col.name),
                format!("type {} is not a string", col.code),
            ));
        }
        let bytes = self.cells(col, start, count)?;
        Ok(bytes
            .chunks(col.repeat.max(1))
            .take(count)
            .map(|b| {
                String::from_utf8_lossy(b)
                    .trim_end_matches(['\0', ' '])
                    .to_string()
            })
            .collect())
    }
}
