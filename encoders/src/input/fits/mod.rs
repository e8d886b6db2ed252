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
//!
//! A file on disk ([`FitsFile::open`]) and bytes in memory ([`FitsFile::from_bytes`],
//! e.g. the data files compiled into the binary) are read by the same code.
//!
//! This module reads the headers (cards, HDU layout, data extents); `image` reads
//! numeric images, `table` binary-table columns, and [`write`] builds FITS files
//! in memory for tests.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod image;
mod table;
pub mod write;

pub use image::ImageData;
pub use table::Column;

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

/// Where the bytes of a FITS file are: read on demand from the file at the HDU's
/// path, or held in memory.
#[derive(Debug, Clone)]
enum Bytes {
    File,
    Memory(Arc<[u8]>),
}

/// One header-data unit: its header and where its data lie in the file.
#[derive(Debug, Clone)]
pub struct Hdu {
    /// The file, or for bytes in memory the name they were given.
    path: PathBuf,
    bytes: Bytes,
    index: usize,
    cards: Vec<(String, String)>,
    data_start: u64,
    data_len: u64,
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
fn parse_value(raw: &str) -> String {
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
        Self::parse(path, size, Bytes::File, |at, buf, hdu| {
            read_exact_at(&mut file, path, hdu, at, buf)
        })
    }

    /// Reads FITS data held in memory; `name` stands for the file in messages.
    pub fn from_bytes(name: impl Into<PathBuf>, bytes: impl Into<Arc<[u8]>>) -> Result<FitsFile> {
        let (name, bytes): (PathBuf, Arc<[u8]>) = (name.into(), bytes.into());
        let size = bytes.len() as u64;
        let memory = bytes.clone();
        Self::parse(&name, size, Bytes::Memory(bytes), |at, buf, _| {
            // The header loop only asks for blocks inside `size`.
            buf.copy_from_slice(&memory[at as usize..at as usize + buf.len()]);
            Ok(())
        })
    }

    /// Reads the headers of a file of `size` bytes, taking its blocks from `read`
    /// (offset, buffer to fill, HDU label for messages).
    fn parse(
        path: &Path,
        size: u64,
        bytes: Bytes,
        mut read: impl FnMut(u64, &mut [u8], &str) -> Result<()>,
    ) -> Result<FitsFile> {
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
                read(pos, &mut block, &here())?;
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
                bytes: bytes.clone(),
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
            if hdu.data_len > size.saturating_sub(hdu.data_start) {
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
        let too_large = || self.error(None, "the header's data size overflows 64 bits");
        let n: u64 = if shape.is_empty() {
            0
        } else {
            shape
                .iter()
                .try_fold(1u64, |n, &d| n.checked_mul(d as u64))
                .ok_or_else(too_large)?
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
        (pcount as u64)
            .checked_add(n)
            .and_then(|v| v.checked_mul(gcount as u64))
            .and_then(|v| v.checked_mul(bitpix.unsigned_abs() / 8))
            .ok_or_else(too_large)
    }

    fn read_bytes(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        if offset
            .checked_add(len as u64)
            .is_none_or(|end| end > self.data_len)
        {
            return Err(self.error(None, "read past the end of the HDU's data"));
        }
        if let Bytes::Memory(bytes) = &self.bytes {
            let at = (self.data_start + offset) as usize;
            return Ok(bytes[at..at + len].to_vec());
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

#[cfg(test)]
mod tests;
