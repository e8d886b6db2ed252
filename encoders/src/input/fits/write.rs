//! Builds FITS files in memory (tests and fixtures: hand-made spectra, cutouts
//! and deliberately malformed files).

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
