//! A small, checked FITS reader (FITS 4.0 standard, §4 headers, §7.1 images,
//! §7.3 binary tables) for the files astrovec ingests: DESI coadd spectra and
//! redrock redshift tables, and image cutouts.
//!
//! Why not a crate: cfitsio is C, and the pure-Rust `fitsrs` rewrote its table
//! API across 0.2–0.4 and yields values cell by cell. What is needed here is
//! small: header cards, numeric images (any BITPIX, with BSCALE/BZERO) read whole
//! or a range of their outermost axis, and fixed-width binary-table columns
//! (L, B, I, J, K, E, D, A with a repeat count, TSCAL/TZERO) read for a range of
//! rows. Only headers are read when a file is opened; data are read on demand
//! with positioned reads, so a coadd's large RESOLUTION HDUs are never touched.
//! Anything else (variable-length arrays, compressed HDUs, random groups) is
//! refused with an error naming the file, the HDU and the column.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

const BLOCK: u64 = 2880;
const CARD: usize = 80;

/// A FITS file that cannot be read as required.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "{}: {}{}{reason}",
    .path.display(),
    .hdu.as_deref().map(|h| format!("HDU {h}: ")).unwrap_or_default(),
    .column.as_deref().map(|c| format!("column `{c}`: ")).unwrap_or_default()
)]
pub struct FitsError {
    /// The file.
    pub path: PathBuf,
    /// The HDU (its EXTNAME, or `#index`), when one is involved.
    pub hdu: Option<String>,
    /// The table column, when one is involved.
    pub column: Option<String>,
    /// What is wrong.
    pub reason: String,
}

/// Result alias of the FITS reader.
pub type Result<T, E = FitsError> = std::result::Result<T, E>;

/// One header-data unit: its header and where its data lie in the file.
#[derive(Debug, Clone)]
pub struct Hdu {
    path: PathBuf,
    index: usize,
    cards: Vec<(String, String)>,
    data_start: u64,
    data_len: u64,
}

/// The values of a numeric image, as `f64`, with its axes outermost first
/// (`[NAXISn, …, NAXIS1]`, the order numpy/astropy show).
#[derive(Debug, Clone, PartialEq)]
pub struct ImageData {
    /// Axis lengths, outermost first.
    pub shape: Vec<usize>,
    /// Values in file order (the last axis varies fastest), BSCALE/BZERO applied.
    pub values: Vec<f64>,
}

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

/// A FITS file whose headers have been read.
#[derive(Debug, Clone)]
pub struct FitsFile {
    path: PathBuf,
    hdus: Vec<Hdu>,
}

fn err(
    path: &Path,
    hdu: Option<String>,
    column: Option<&str>,
    reason: impl Into<String>,
) -> FitsError {
    FitsError {
        path: path.to_path_buf(),
        hdu,
        column: column.map(str::to_string),
        reason: reason.into(),
    }
}

/// A header value without quotes or comment.
pub(crate) fn parse_value(raw: &str) -> String {
    let raw = raw.trim_start();
    if let Some(rest) = raw.strip_prefix('\'') {
        // Strings end at the next lone quote ('' is an escaped quote).
        let mut out = String::new();
        let mut chars = rest.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\'' {
                if chars.peek() == Some(&'\'') {
                    chars.next();
                    out.push('\'');
                } else {
                    break;
                }
            } else {
                out.push(c);
            }
        }
        out.trim_end().to_string()
    } else {
        raw.split('/').next().unwrap_or("").trim().to_string()
    }
}

fn read_exact_at(file: &mut File, path: &Path, hdu: &str, at: u64, buf: &mut [u8]) -> Result<()> {
    file.seek(SeekFrom::Start(at))
        .and_then(|_| file.read_exact(buf))
        .map_err(|e| {
            err(
                path,
                Some(hdu.to_string()),
                None,
                format!("cannot read data: {e}"),
            )
        })
}

impl FitsFile {
    /// Reads every header of `path` and checks that each HDU's data fit in the
    /// file (a truncated file is an error naming the HDU that runs past its end).
    pub fn open(path: &Path) -> Result<FitsFile> {
        let mut file =
            File::open(path).map_err(|e| err(path, None, None, format!("cannot open: {e}")))?;
        let size = file
            .metadata()
            .map_err(|e| err(path, None, None, e.to_string()))?
            .len();
        let mut hdus: Vec<Hdu> = Vec::new();
        let mut pos = 0u64;
        let mut block = vec![0u8; BLOCK as usize];
        while pos < size {
            let index = hdus.len();
            let here = || format!("#{index}");
            let mut cards = Vec::new();
            let mut ended = false;
            while !ended {
                if pos + BLOCK > size {
                    return Err(err(
                        path,
                        Some(here()),
                        None,
                        format!("truncated header (file ends at byte {size})"),
                    ));
                }
                read_exact_at(&mut file, path, &here(), pos, &mut block)?;
                let opening: &[u8] = if index == 0 {
                    b"SIMPLE  ="
                } else {
                    b"XTENSION="
                };
                if cards.is_empty() && !block.starts_with(opening) {
                    return Err(err(
                        path,
                        Some(here()),
                        None,
                        if index == 0 {
                            "not a FITS file (the first card is not SIMPLE)".to_string()
                        } else {
                            format!(
                                "extension header without XTENSION at byte {pos} (corrupt or not FITS)"
                            )
                        },
                    ));
                }
                for (k, card) in block.chunks(CARD).enumerate() {
                    // Headers are printable ASCII (§4.1); this also keeps the slicing
                    // below on character boundaries.
                    if !card.iter().all(|b| (32..=126).contains(b)) {
                        return Err(err(
                            path,
                            Some(here()),
                            None,
                            format!(
                                "not a FITS header: non-ASCII card at byte {}",
                                pos + (k * CARD) as u64
                            ),
                        ));
                    }
                    let text = std::str::from_utf8(card).expect("ASCII checked");
                    let key = text[..8].trim_end();
                    if key == "END" {
                        ended = true;
                        break;
                    }
                    if &text[8..10] == "= " {
                        cards.push((key.to_string(), parse_value(&text[10..])));
                    }
                }
                pos += BLOCK;
            }
            let mut hdu = Hdu {
                path: path.to_path_buf(),
                index,
                cards,
                data_start: pos,
                data_len: 0,
            };
            let first_key_ok = if index == 0 {
                hdu.keyword("SIMPLE") == Some("T")
            } else {
                hdu.keyword("XTENSION").is_some()
            };
            if !first_key_ok {
                return Err(hdu.error(
                    None,
                    if index == 0 {
                        "not a FITS file (no SIMPLE = T in the primary header)"
                    } else {
                        "extension header without XTENSION"
                    },
                ));
            }
            hdu.data_len = hdu.data_size()?;
            if hdu.data_start + hdu.data_len > size {
                return Err(hdu.error(
                    None,
                    format!(
                        "data ({} bytes from byte {}) run past the end of the file ({size} bytes): truncated",
                        hdu.data_len, hdu.data_start
                    ),
                ));
            }
            pos = hdu.data_start + hdu.data_len.div_ceil(BLOCK) * BLOCK;
            hdus.push(hdu);
        }
        if hdus.is_empty() {
            return Err(err(path, None, None, "empty file"));
        }
        Ok(FitsFile {
            path: path.to_path_buf(),
            hdus,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every HDU, primary first.
    pub fn hdus(&self) -> &[Hdu] {
        &self.hdus
    }

    /// The HDU whose EXTNAME is `name` (case-insensitive), if any.
    pub fn find(&self, name: &str) -> Option<&Hdu> {
        self.hdus
            .iter()
            .find(|h| h.extname().is_some_and(|n| n.eq_ignore_ascii_case(name)))
    }

    /// The HDU whose EXTNAME is `name`; an error naming it when absent.
    pub fn hdu(&self, name: &str) -> Result<&Hdu> {
        self.find(name)
            .ok_or_else(|| err(&self.path, Some(name.to_string()), None, "missing HDU"))
    }
}

impl Hdu {
    /// Position of the HDU in its file (0 = primary).
    pub fn index(&self) -> usize {
        self.index
    }

    /// The HDU's name for messages: its EXTNAME, or `#index`.
    pub fn label(&self) -> String {
        self.extname()
            .map(str::to_string)
            .unwrap_or_else(|| format!("#{}", self.index))
    }

    /// An error about this HDU (and optionally one of its columns).
    pub fn error(&self, column: Option<&str>, reason: impl Into<String>) -> FitsError {
        err(&self.path, Some(self.label()), column, reason)
    }

    /// The value of header keyword `key` (quotes and comment removed), if present.
    pub fn keyword(&self, key: &str) -> Option<&str> {
        self.cards
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// An integer keyword; an error when missing or not an integer.
    pub fn int(&self, key: &str) -> Result<i64> {
        let v = self
            .keyword(key)
            .ok_or_else(|| self.error(None, format!("missing keyword {key}")))?;
        v.parse()
            .map_err(|_| self.error(None, format!("keyword {key} = {v} is not an integer")))
    }

    fn float_or(&self, key: &str, default: f64) -> Result<f64> {
        match self.keyword(key) {
            None => Ok(default),
            Some(v) => v
                .replace(['D', 'd'], "E")
                .parse()
                .map_err(|_| self.error(None, format!("keyword {key} = {v} is not a number"))),
        }
    }

    /// The EXTNAME, if any.
    pub fn extname(&self) -> Option<&str> {
        self.keyword("EXTNAME")
    }

    /// True for a binary-table extension.
    pub fn is_table(&self) -> bool {
        self.keyword("XTENSION") == Some("BINTABLE")
    }

    /// Axis lengths, outermost first (`[NAXISn, …, NAXIS1]`).
    pub fn shape(&self) -> Result<Vec<usize>> {
        let naxis = self.int("NAXIS")?;
        if !(0..=999).contains(&naxis) {
            return Err(self.error(None, format!("NAXIS = {naxis} is out of range")));
        }
        let mut shape = Vec::with_capacity(naxis as usize);
        for i in (1..=naxis).rev() {
            let n = self.int(&format!("NAXIS{i}"))?;
            shape.push(
                usize::try_from(n)
                    .map_err(|_| self.error(None, format!("NAXIS{i} = {n} is negative")))?,
            );
        }
        Ok(shape)
    }

    fn data_size(&self) -> Result<u64> {
        let bitpix = self.int("BITPIX")?;
        if ![8, 16, 32, 64, -32, -64].contains(&bitpix) {
            return Err(self.error(None, format!("BITPIX = {bitpix} is not a FITS value")));
        }
        let shape = self.shape()?;
        let n: u64 = if shape.is_empty() {
            0
        } else {
            shape.iter().map(|&d| d as u64).product()
        };
        let pcount = match self.keyword("PCOUNT") {
            Some(_) => self.int("PCOUNT")?,
            None => 0,
        };
        let gcount = match self.keyword("GCOUNT") {
            Some(_) => self.int("GCOUNT")?,
            None => 1,
        };
        if pcount < 0 || gcount < 0 {
            return Err(self.error(None, "negative PCOUNT or GCOUNT"));
        }
        Ok(bitpix.unsigned_abs() / 8 * gcount as u64 * (pcount as u64 + n))
    }

    fn read_bytes(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        if offset + len as u64 > self.data_len {
            return Err(self.error(None, "read past the end of the HDU's data"));
        }
        let mut file =
            File::open(&self.path).map_err(|e| self.error(None, format!("cannot open: {e}")))?;
        let mut buf = vec![0u8; len];
        read_exact_at(
            &mut file,
            &self.path,
            &self.label(),
            self.data_start + offset,
            &mut buf,
        )?;
        Ok(buf)
    }

    /// Reads a numeric image whole.
    pub fn image(&self) -> Result<ImageData> {
        let shape = self.shape()?;
        let rows = shape.first().copied().unwrap_or(0);
        self.image_rows(0, rows)
    }

    /// Reads `count` entries of the image's outermost axis from `start` (e.g.
    /// spectra `start..start+count` of a `[N, pixels]` FLUX image).
    pub fn image_rows(&self, start: usize, count: usize) -> Result<ImageData> {
        if self.is_table() {
            return Err(self.error(None, "expected an image, found a binary table"));
        }
        let mut shape = self.shape()?;
        if shape.is_empty() {
            return Err(self.error(None, "expected image data, the HDU has none (NAXIS = 0)"));
        }
        let outer = shape[0];
        if start + count > outer {
            return Err(self.error(
                None,
                format!(
                    "rows {start}..{} requested, the image has {outer}",
                    start + count
                ),
            ));
        }
        let bitpix = self.int("BITPIX")?;
        let elem = (bitpix.unsigned_abs() / 8) as usize;
        let per: usize = shape[1..].iter().product();
        let bytes = self.read_bytes((start * per * elem) as u64, count * per * elem)?;
        let (scale, zero) = (self.float_or("BSCALE", 1.0)?, self.float_or("BZERO", 0.0)?);
        let raw: Vec<f64> = decode(&bytes, bitpix_code(bitpix), elem);
        let values = if scale == 1.0 && zero == 0.0 {
            raw
        } else {
            raw.into_iter().map(|v| v * scale + zero).collect()
        };
        shape[0] = count;
        Ok(ImageData { shape, values })
    }

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

fn bitpix_code(bitpix: i64) -> char {
    match bitpix {
        8 => 'B',
        16 => 'I',
        32 => 'J',
        64 => 'K',
        -32 => 'E',
        _ => 'D',
    }
}

/// Big-endian values of type `code` (FITS TFORM letters) as `f64`.
fn decode(bytes: &[u8], code: char, elem: usize) -> Vec<f64> {
    bytes
        .chunks_exact(elem)
        .map(|b| match code {
            'L' => (b[0] == b'T') as u8 as f64,
            'B' => b[0] as f64,
            'I' => i16::from_be_bytes([b[0], b[1]]) as f64,
            'J' => i32::from_be_bytes([b[0], b[1], b[2], b[3]]) as f64,
            'K' => i64::from_be_bytes(b.try_into().expect("8 bytes")) as f64,
            'E' => f32::from_be_bytes([b[0], b[1], b[2], b[3]]) as f64,
            _ => f64::from_be_bytes(b.try_into().expect("8 bytes")),
        })
        .collect()
}

/// Builds FITS files in memory (tests and fixtures: hand-made spectra, cutouts
/// and deliberately malformed files).
pub mod write {
    /// A header card `KEY = value` (value already formatted: `'text'`, `T`, `42`).
    pub fn card(key: &str, value: &str) -> String {
        format!("{key:<8}= {value:>20}")
    }

    fn header(cards: &[String]) -> Vec<u8> {
        let mut h = String::new();
        for c in cards {
            h.push_str(&format!("{c:<80}"));
        }
        h.push_str(&format!("{:<80}", "END"));
        let mut bytes = h.into_bytes();
        bytes.resize(bytes.len().div_ceil(2880) * 2880, b' ');
        bytes
    }

    fn pad(mut data: Vec<u8>) -> Vec<u8> {
        data.resize(data.len().div_ceil(2880) * 2880, 0);
        data
    }

    /// An empty primary HDU.
    pub fn primary() -> Vec<u8> {
        header(&[
            card("SIMPLE", "T"),
            card("BITPIX", "8"),
            card("NAXIS", "0"),
            card("EXTEND", "T"),
        ])
    }

    /// A primary HDU holding a `BITPIX = -32` image of `shape` (outermost first).
    pub fn primary_image_f32(shape: &[usize], values: &[f32], extra: &[String]) -> Vec<u8> {
        let mut cards = vec![card("SIMPLE", "T")];
        cards.extend(image_cards(-32, shape));
        cards.extend_from_slice(extra);
        let mut out = header(&cards);
        out.extend(pad(values.iter().flat_map(|v| v.to_be_bytes()).collect()));
        out
    }

    fn image_cards(bitpix: i32, shape: &[usize]) -> Vec<String> {
        let mut cards = vec![
            card("BITPIX", &bitpix.to_string()),
            card("NAXIS", &shape.len().to_string()),
        ];
        for (i, n) in shape.iter().rev().enumerate() {
            cards.push(card(&format!("NAXIS{}", i + 1), &n.to_string()));
        }
        cards
    }

    /// An IMAGE extension named `name`: `BITPIX = -64` values for `f64`, `-32`
    /// for `f32` and `32` for `i32` (see [`Pixels`]).
    pub fn image_ext(name: &str, shape: &[usize], pixels: Pixels<'_>) -> Vec<u8> {
        let (bitpix, data): (i32, Vec<u8>) = match pixels {
            Pixels::F64(v) => (-64, v.iter().flat_map(|x| x.to_be_bytes()).collect()),
            Pixels::F32(v) => (-32, v.iter().flat_map(|x| x.to_be_bytes()).collect()),
            Pixels::I32(v) => (32, v.iter().flat_map(|x| x.to_be_bytes()).collect()),
        };
        let mut cards = vec![card("XTENSION", "'IMAGE   '")];
        cards.extend(image_cards(bitpix, shape));
        cards.push(card("PCOUNT", "0"));
        cards.push(card("GCOUNT", "1"));
        cards.push(card("EXTNAME", &format!("'{name}'")));
        let mut out = header(&cards);
        out.extend(pad(data));
        out
    }

    /// Image values for [`image_ext`].
    pub enum Pixels<'a> {
        /// `BITPIX = -64`.
        F64(&'a [f64]),
        /// `BITPIX = -32`.
        F32(&'a [f32]),
        /// `BITPIX = 32`.
        I32(&'a [i32]),
    }

    /// A binary-table column for [`table_ext`].
    pub enum Col<'a> {
        /// `K` (64-bit integers).
        K(&'a str, Vec<i64>),
        /// `D` (64-bit floats).
        D(&'a str, Vec<f64>),
        /// `nA` strings of `n` characters.
        A(&'a str, usize, Vec<String>),
    }

    /// A BINTABLE extension named `name` with `rows` rows.
    pub fn table_ext(name: &str, rows: usize, cols: &[Col<'_>]) -> Vec<u8> {
        let width: usize = cols
            .iter()
            .map(|c| match c {
                Col::K(..) | Col::D(..) => 8,
                Col::A(_, n, _) => *n,
            })
            .sum();
        let mut cards = vec![
            card("XTENSION", "'BINTABLE'"),
            card("BITPIX", "8"),
            card("NAXIS", "2"),
            card("NAXIS1", &width.to_string()),
            card("NAXIS2", &rows.to_string()),
            card("PCOUNT", "0"),
            card("GCOUNT", "1"),
            card("TFIELDS", &cols.len().to_string()),
        ];
        for (i, c) in cols.iter().enumerate() {
            let (n, form) = match c {
                Col::K(n, _) => (n, "'K'".to_string()),
                Col::D(n, _) => (n, "'D'".to_string()),
                Col::A(n, w, _) => (n, format!("'{w}A'")),
            };
            cards.push(card(&format!("TTYPE{}", i + 1), &format!("'{n}'")));
            cards.push(card(&format!("TFORM{}", i + 1), &form));
        }
        cards.push(card("EXTNAME", &format!("'{name}'")));
        let mut data = Vec::with_capacity(width * rows);
        for r in 0..rows {
            for c in cols {
                match c {
                    Col::K(_, v) => data.extend(v[r].to_be_bytes()),
                    Col::D(_, v) => data.extend(v[r].to_be_bytes()),
                    Col::A(_, w, v) => {
                        let mut s = v[r].clone().into_bytes();
                        s.resize(*w, b' ');
                        data.extend(s);
                    }
                }
            }
        }
        let mut out = header(&cards);
        out.extend(pad(data));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::write::*;
    use super::*;

    fn file(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.fits");
        std::fs::write(&p, bytes).unwrap();
        (dir, p)
    }

    #[test]
    fn images_and_tables_round_trip() {
        let mut bytes = primary();
        bytes.extend(image_ext("W", &[3], Pixels::F64(&[1.5, 2.5, 3.5])));
        bytes.extend(image_ext(
            "F",
            &[2, 3],
            Pixels::F32(&[1., 2., 3., 4., 5., 6.]),
        ));
        bytes.extend(image_ext("M", &[2, 3], Pixels::I32(&[0, 1, 0, 0, 0, 7])));
        bytes.extend(table_ext(
            "T",
            2,
            &[
                Col::K("ID", vec![39633345008634465, 7]),
                Col::D("Z", vec![0.25, 1.5]),
                Col::A("KIND", 6, vec!["GALAXY".into(), "QSO".into()]),
            ],
        ));
        let (_d, p) = file(&bytes);
        let f = FitsFile::open(&p).unwrap();
        assert_eq!(f.hdus().len(), 5);
        assert_eq!(
            f.hdu("w").unwrap().image().unwrap().values,
            vec![1.5, 2.5, 3.5]
        );
        let rows = f.hdu("F").unwrap().image_rows(1, 1).unwrap();
        assert_eq!(rows.shape, vec![1, 3]);
        assert_eq!(rows.values, vec![4., 5., 6.]);
        assert_eq!(f.hdu("M").unwrap().image().unwrap().values[5], 7.0);
        let t = f.hdu("T").unwrap();
        assert_eq!(t.rows().unwrap(), 2);
        let id = t.column("id").unwrap();
        assert_eq!(
            t.column_i128(&id, 0, 2).unwrap(),
            vec![39633345008634465, 7]
        );
        let z = t.column("Z").unwrap();
        assert_eq!(t.column_f64(&z, 1, 1).unwrap(), vec![1.5]);
        let k = t.column("KIND").unwrap();
        assert_eq!(t.column_str(&k, 0, 2).unwrap(), vec!["GALAXY", "QSO"]);
    }

    #[test]
    fn malformed_files_name_the_hdu_and_column() {
        let mut bytes = primary();
        bytes.extend(table_ext("REDSHIFTS", 1, &[Col::D("Z", vec![0.1])]));
        // Truncated data.
        let (_d, p) = file(&bytes[..bytes.len() - 2880]);
        let e = FitsFile::open(&p).unwrap_err();
        assert_eq!(e.hdu.as_deref(), Some("REDSHIFTS"));
        assert!(e.to_string().contains("truncated"), "{e}");
        // Truncated header.
        let (_d, p) = file(&bytes[..1000]);
        assert!(FitsFile::open(&p)
            .unwrap_err()
            .to_string()
            .contains("truncated header"));
        // Not FITS at all.
        let (_d, p) = file(&[b'x'; 2880]);
        let e = FitsFile::open(&p).unwrap_err();
        assert!(e.to_string().contains("not a FITS file"), "{e}");
        // Missing HDU and column.
        let (_d, p) = file(&bytes);
        let f = FitsFile::open(&p).unwrap();
        let e = f.hdu("FIBERMAP").unwrap_err();
        assert!(e.to_string().contains("HDU FIBERMAP: missing HDU"), "{e}");
        let e = f.hdu("REDSHIFTS").unwrap().column("TARGETID").unwrap_err();
        assert!(
            e.to_string()
                .contains("HDU REDSHIFTS: column `TARGETID`: missing column"),
            "{e}"
        );
        // Wrong type.
        let t = f.hdu("REDSHIFTS").unwrap();
        let z = t.column("Z").unwrap();
        assert!(t.column_i128(&z, 0, 1).is_err());
        assert!(t.image().is_err());
    }
}
