//! A deliberately small FITS reader for the two bundled kcorrect files.
//!
//! Why not `fitsrs`: its table API has been rewritten across its 0.2–0.4 releases
//! and yields values cell by cell, while all we need is (a) fixed-width binary-table
//! columns of big-endian `E`/`D` values with a repeat count (e.g. `5E` fluxes, a
//! `10000E` wavelength vector) and (b) one-dimensional `BITPIX = -32` image HDUs.
//! Both are a few lines of the FITS 4.0 standard (§4, §7.3), so a checked reader of
//! exactly those cases is smaller and easier to audit than adapting to a moving API.
//! Anything else (scaling keywords, heaps, compressed HDUs) is rejected loudly.

use super::error::{MockError, Result};
use crate::fits::parse_value;

const BLOCK: usize = 2880;
const CARD: usize = 80;

/// One header-data unit: its header cards and its (unpadded) data bytes.
pub(crate) struct Hdu<'a> {
    cards: Vec<(String, String)>,
    data: &'a [u8],
    file: &'static str,
}

/// Splits a FITS file into its HDUs.
pub(crate) fn read_hdus<'a>(bytes: &'a [u8], file: &'static str) -> Result<Vec<Hdu<'a>>> {
    let bad = |reason: String| MockError::Fits { file, reason };
    let mut hdus = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let mut cards = Vec::new();
        let mut ended = false;
        while !ended {
            if pos + BLOCK > bytes.len() {
                return Err(bad(format!("truncated header at byte {pos}")));
            }
            for card in bytes[pos..pos + BLOCK].chunks(CARD) {
                // FITS headers are printable ASCII (§4.1); checking it keeps the byte
                // slicing below on character boundaries.
                if !card.is_ascii() {
                    return Err(bad(format!("non-ASCII header card at byte {pos}")));
                }
                let text =
                    std::str::from_utf8(card).map_err(|_| bad("non-ASCII header card".into()))?;
                let key = text[..8].trim().to_string();
                if key == "END" {
                    ended = true;
                    break;
                }
                if text.len() > 10 && &text[8..10] == "= " {
                    cards.push((key, parse_value(&text[10..])));
                }
            }
            pos += BLOCK;
        }
        let get = |k: &str| {
            cards
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        let int = |k: &str| -> Result<i64> {
            get(k)
                .ok_or_else(|| bad(format!("missing keyword {k}")))?
                .parse::<i64>()
                .map_err(|_| bad(format!("keyword {k} is not an integer")))
        };
        let bitpix = int("BITPIX")?;
        let naxis = int("NAXIS")?;
        let mut n: i64 = if naxis == 0 { 0 } else { 1 };
        for i in 1..=naxis {
            n *= int(&format!("NAXIS{i}"))?;
        }
        let pcount = get("PCOUNT")
            .map(|v| v.parse::<i64>().unwrap_or(0))
            .unwrap_or(0);
        let gcount = get("GCOUNT")
            .map(|v| v.parse::<i64>().unwrap_or(1))
            .unwrap_or(1);
        let size = usize::try_from(bitpix.abs() / 8 * gcount * (pcount + n))
            .map_err(|_| bad("negative data size".into()))?;
        if pos + size > bytes.len() {
            return Err(bad(format!(
                "data of HDU {} runs past the end of the file",
                hdus.len()
            )));
        }
        hdus.push(Hdu {
            cards,
            data: &bytes[pos..pos + size],
            file,
        });
        pos += size.div_ceil(BLOCK) * BLOCK;
    }
    Ok(hdus)
}

impl<'a> Hdu<'a> {
    fn bad(&self, reason: String) -> MockError {
        MockError::Fits {
            file: self.file,
            reason,
        }
    }

    /// The value of header keyword `key`, if present.
    pub(crate) fn keyword(&self, key: &str) -> Option<&str> {
        self.cards
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The `EXTNAME` of the HDU, if any.
    pub(crate) fn extname(&self) -> Option<&str> {
        self.keyword("EXTNAME")
    }

    /// The data of a `BITPIX = -32` image, in file order.
    pub(crate) fn image_f32(&self) -> Result<Vec<f32>> {
        if self.keyword("BITPIX") != Some("-32") {
            return Err(self.bad("expected a BITPIX = -32 image".into()));
        }
        Ok(self
            .data
            .chunks_exact(4)
            .map(|b| f32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }

    /// Number of rows of a binary table.
    pub(crate) fn rows(&self) -> usize {
        self.keyword("NAXIS2")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// A binary-table column as `f64`, row-major with `repeat` values per row.
    ///
    /// Only unscaled `E` (f32) and `D` (f64) columns are supported; the value is
    /// returned together with its repeat count.
    pub(crate) fn column_f64(&self, name: &str) -> Result<(usize, Vec<f64>)> {
        if self.keyword("XTENSION") != Some("BINTABLE") {
            return Err(self.bad(format!("column {name} requested from a non-table HDU")));
        }
        let int = |k: &str| -> Result<usize> {
            self.keyword(k)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| self.bad(format!("missing or bad {k}")))
        };
        let (width, rows, fields) = (int("NAXIS1")?, int("NAXIS2")?, int("TFIELDS")?);
        let mut offset = 0usize;
        for i in 1..=fields {
            let tform = self
                .keyword(&format!("TFORM{i}"))
                .ok_or_else(|| self.bad(format!("missing TFORM{i}")))?;
            let split = tform.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(0);
            let repeat: usize = if split == 0 {
                1
            } else {
                tform[..split]
                    .parse()
                    .map_err(|_| self.bad(format!("bad TFORM{i} {tform}")))?
            };
            let code = tform[split..].chars().next().unwrap_or(' ');
            let elem = match code {
                'L' | 'X' | 'B' | 'A' => 1,
                'I' => 2,
                'J' | 'E' => 4,
                'K' | 'D' | 'C' => 8,
                'M' => 16,
                'P' => 8,
                'Q' => 16,
                _ => return Err(self.bad(format!("unknown TFORM{i} {tform}"))),
            };
            let ttype = self.keyword(&format!("TTYPE{i}")).unwrap_or("");
            if ttype.eq_ignore_ascii_case(name) {
                if self.keyword(&format!("TSCAL{i}")).is_some()
                    || self.keyword(&format!("TZERO{i}")).is_some()
                {
                    return Err(self.bad(format!("scaled column {name} is not supported")));
                }
                let mut out = Vec::with_capacity(rows * repeat);
                for r in 0..rows {
                    let start = r * width + offset;
                    let cell = &self.data[start..start + repeat * elem];
                    match code {
                        'E' => out.extend(
                            cell.chunks_exact(4)
                                .map(|b| f32::from_be_bytes([b[0], b[1], b[2], b[3]]) as f64),
                        ),
                        'D' => out.extend(cell.chunks_exact(8).map(|b| {
                            f64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
                        })),
                        _ => {
                            return Err(
                                self.bad(format!("column {name} has unsupported type {code}"))
                            )
                        }
                    }
                }
                return Ok((repeat, out));
            }
            offset += repeat * elem;
        }
        Err(self.bad(format!("no column named {name}")))
    }
}
