//! numpy `.npy` files (format versions 1.0–3.0): the header (shape, dtype, order) and
//! the data as `f32`. Large files are read through [`Header`] alone (the ingest reads
//! rows with positioned reads); small ones (uploads, `astrovec embed`) whole with
//! [`read`].

use super::{element_count, Array, InputError, Result};

/// The magic string every `.npy` file starts with.
const MAGIC: &[u8] = b"\x93NUMPY";

/// A numeric dtype `.npy` files hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dtype {
    /// numpy's code without the byte-order mark: `f4`, `f8`, `i1`, `i2`, `i4`, `i8`,
    /// `u1`, `u2`.
    pub code: &'static str,
    /// Bytes per value.
    pub width: usize,
    /// Big-endian (`>`).
    pub big_endian: bool,
}

impl Dtype {
    /// Parses a numpy `descr` (`'<f4'`, `'>f8'`, `'|u1'`, …).
    pub fn parse(descr: &str) -> Option<Dtype> {
        let descr = descr.trim_matches(['\'', '"']);
        let (big_endian, code) = match descr.as_bytes().first()? {
            b'>' => (true, &descr[1..]),
            b'<' | b'|' | b'=' => (false, &descr[1..]),
            _ => (false, descr),
        };
        let (code, width) = match code {
            "f4" => ("f4", 4),
            "f8" => ("f8", 8),
            "i1" => ("i1", 1),
            "i2" => ("i2", 2),
            "i4" => ("i4", 4),
            "i8" => ("i8", 8),
            "u1" => ("u1", 1),
            "u2" => ("u2", 2),
            _ => return None,
        };
        Some(Dtype {
            code,
            width,
            big_endian,
        })
    }

    /// Decodes `n` values from `data` (which must hold at least `n × width` bytes).
    pub fn decode(&self, data: &[u8], n: usize) -> Vec<f32> {
        let w = self.width;
        data[..n * w]
            .chunks_exact(w)
            .map(|c| {
                let mut b = [0u8; 8];
                b[..w].copy_from_slice(c);
                if self.big_endian {
                    b[..w].reverse();
                }
                match self.code {
                    "f4" => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
                    "f8" => f64::from_le_bytes(b) as f32,
                    "i1" => b[0] as i8 as f32,
                    "i2" => i16::from_le_bytes([b[0], b[1]]) as f32,
                    "i4" => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32,
                    "i8" => i64::from_le_bytes(b) as f32,
                    "u2" => u16::from_le_bytes([b[0], b[1]]) as f32,
                    _ => b[0] as f32,
                }
            })
            .collect()
    }
}

/// A parsed `.npy` header.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// Shape, slowest axis first.
    pub shape: Vec<usize>,
    /// Element type.
    pub dtype: Dtype,
    /// Byte offset of the data.
    pub data_offset: usize,
    /// Bytes of data the shape and dtype promise.
    pub data_bytes: usize,
}

/// The bytes a header needs before [`Header::parse`] can tell its full length: magic,
/// version and the length field.
pub const PREAMBLE: usize = 12;

/// The value of `key` in a numpy header dict (`'descr': '<f4'` → `'<f4'`).
fn header_value<'h>(header: &'h str, key: &str) -> Option<&'h str> {
    let at = header.find(&format!("'{key}'"))? + key.len() + 2;
    let rest = header[at..].trim_start().strip_prefix(':')?.trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')')? + 1
    } else {
        rest.find([',', '}'])?
    };
    Some(rest[..end].trim())
}

impl Header {
    /// The header's total length (magic to data) from the first [`PREAMBLE`] bytes.
    pub fn length(what: &str, preamble: &[u8]) -> Result<usize> {
        let bad = |got: String| InputError::new(what, "a .npy file", got);
        if preamble.len() < 10 || &preamble[..6] != MAGIC {
            return Err(bad("no \\x93NUMPY magic".into()));
        }
        match preamble[6] {
            1 => Ok(10 + u16::from_le_bytes([preamble[8], preamble[9]]) as usize),
            2 | 3 if preamble.len() >= 12 => Ok(12
                + u32::from_le_bytes([preamble[8], preamble[9], preamble[10], preamble[11]])
                    as usize),
            2 | 3 => Err(bad("a truncated header".into())),
            v => Err(bad(format!("format version {v} (1 to 3 are read)"))),
        }
    }

    /// Parses the header at the start of `bytes` (at least [`Header::length`] bytes).
    pub fn parse(what: &str, bytes: &[u8]) -> Result<Header> {
        let bad = |got: String| InputError::new(what, "a .npy file", got);
        let length = Header::length(what, bytes)?;
        let start = if bytes[6] == 1 { 10 } else { 12 };
        let text = bytes
            .get(start..length)
            .ok_or_else(|| bad("a truncated header".into()))?;
        let text = String::from_utf8_lossy(text);
        let descr =
            header_value(&text, "descr").ok_or_else(|| bad("no descr in the header".into()))?;
        let dtype = Dtype::parse(descr).ok_or_else(|| {
            bad(format!(
                "dtype {descr} (float32/64, int8/16/32/64 and uint8/16 are read)"
            ))
        })?;
        if header_value(&text, "fortran_order") != Some("False") {
            return Err(bad("a Fortran-ordered array (save it in C order)".into()));
        }
        let shape_text =
            header_value(&text, "shape").ok_or_else(|| bad("no shape in the header".into()))?;
        let shape = shape_text
            .trim_matches(['(', ')'])
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<usize>())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|_| bad(format!("an unreadable shape {shape_text}")))?;
        let data_bytes = element_count(what, &shape)?
            .checked_mul(dtype.width)
            .ok_or_else(|| bad(format!("shape {shape:?}, too large")))?;
        Ok(Header {
            shape,
            dtype,
            data_offset: length,
            data_bytes,
        })
    }
}

/// Reads a whole `.npy` file held in memory; at most `max_values` elements.
pub fn read(what: &str, bytes: &[u8], max_values: usize) -> Result<Array> {
    let header = Header::parse(what, bytes)?;
    let n = header.data_bytes / header.dtype.width;
    if n > max_values {
        return Err(InputError::new(
            what,
            format!("at most {max_values} values"),
            format!("shape {:?}", header.shape),
        ));
    }
    let data = &bytes[header.data_offset..];
    if data.len() < header.data_bytes {
        return Err(InputError::new(
            what,
            format!(
                "{} bytes of data for shape {:?}",
                header.data_bytes, header.shape
            ),
            format!("{} bytes", data.len()),
        ));
    }
    Ok(Array {
        data: header.dtype.decode(data, n),
        shape: header.shape,
    })
}

/// Writes a little-endian float32 `.npy` (format 1.0) of `shape` (tests, fixtures and
/// `astrovec embed` outputs).
pub fn write_f32(shape: &[usize], values: &[f32]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut out = with_header("<f4", &shape_text, false);
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// A format 1.0 header for `descr` and a shape written as numpy does (`(3,)`).
fn with_header(descr: &str, shape_text: &str, fortran: bool) -> Vec<u8> {
    let order = if fortran { "True" } else { "False" };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape_text}, }}");
    // The data start on a 64-byte boundary, as numpy writes them.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_int_and_big_endian_arrays_read() {
        let a = read("x", &write_f32(&[3], &[1.5, -2.0, 3.25]), 100).unwrap();
        assert_eq!((a.shape, a.data), (vec![3], vec![1.5, -2.0, 3.25]));
        let mut bytes = with_header(">f8", "(2, 2)", false);
        for v in [1.0f64, 2.0, 3.0, 4.0] {
            bytes.extend_from_slice(&v.to_be_bytes());
        }
        let a = read("x", &bytes, 100).unwrap();
        assert_eq!((a.shape, a.data), (vec![2, 2], vec![1.0, 2.0, 3.0, 4.0]));
        let mut bytes = with_header("|u1", "(3,)", false);
        bytes.extend_from_slice(&[0, 128, 255]);
        assert_eq!(
            read("x", &bytes, 100).unwrap().data,
            vec![0.0, 128.0, 255.0]
        );
    }

    #[test]
    fn bad_files_name_the_problem() {
        let err = |b: &[u8], max| read("up.npy", b, max).unwrap_err().to_string();
        assert!(err(b"not an npy file", 10).contains("magic"));
        let ok = write_f32(&[4], &[1.0; 4]);
        assert!(err(&ok[..ok.len() - 4], 10).contains("16 bytes of data"));
        assert!(err(&ok, 3).contains("at most 3 values"));
        // A shape whose byte count overflows is refused before any allocation.
        let huge = with_header("<f4", "(9223372036854775807, 4)", false);
        assert!(
            err(&huge, 10).contains("fits in memory"),
            "{}",
            err(&huge, 10)
        );
        assert!(err(&with_header("<f4", "(4,)", true), 10).contains("Fortran"));
        assert!(err(&with_header("<c8", "(4,)", false), 10).contains("dtype"));
        assert!(err(&with_header("<f4", "(a, b)", false), 10).contains("shape"));
    }
}
