//! JPEG and PNG pictures (display colours) decoded to planar R, G, B in [0, 1].
//!
//! The picture's size is read from its header and checked against the caller's pixel
//! limit before any pixel is decoded. PNG: 8 or 16 bits, grey, grey + alpha, RGB, RGBA
//! or palette (alpha dropped; 16-bit values keep their precision). JPEG: decoded to
//! RGB whatever its colour space (grey pictures give equal planes).

use super::{InputError, Result};

/// A decoded picture: planes R, G, B in [0, 1].
#[derive(Debug, Clone, PartialEq)]
pub struct Planes {
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// `3 × height × width` values, plane by plane.
    pub data: Vec<f32>,
}

/// Formats [`decode`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Picture {
    /// JPEG (JFIF/EXIF).
    Jpeg,
    /// PNG.
    Png,
}

impl Picture {
    /// The format a file's leading bytes announce, if it is a picture.
    pub fn sniff(bytes: &[u8]) -> Option<Picture> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Picture::Jpeg)
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Picture::Png)
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Picture::Jpeg => "a JPEG picture",
            Picture::Png => "a PNG picture",
        }
    }
}

fn check_size(what: &str, height: usize, width: usize, max_pixels: usize) -> Result<()> {
    let pixels = height.checked_mul(width);
    if height == 0 || width == 0 || pixels.is_none_or(|p| p > max_pixels) {
        return Err(InputError::new(
            what,
            format!("a picture of at most {max_pixels} pixels"),
            format!("a header claiming {height} × {width} pixels"),
        ));
    }
    Ok(())
}

/// Decodes a picture of `format` held in `bytes`; at most `max_pixels` pixels.
pub fn decode(what: &str, bytes: &[u8], format: Picture, max_pixels: usize) -> Result<Planes> {
    match format {
        Picture::Jpeg => decode_jpeg(what, bytes, max_pixels),
        Picture::Png => decode_png(what, bytes, max_pixels),
    }
}

fn decode_jpeg(what: &str, bytes: &[u8], max_pixels: usize) -> Result<Planes> {
    let bad = |got: String| InputError::new(what, Picture::Jpeg.name(), got);
    let opts = zune_core::options::DecoderOptions::default()
        .jpeg_set_out_colorspace(zune_core::colorspace::ColorSpace::RGB);
    let mut dec =
        zune_jpeg::JpegDecoder::new_with_options(zune_core::bytestream::ZCursor::new(bytes), opts);
    dec.decode_headers()
        .map_err(|e| bad(format!("undecodable bytes ({e:?})")))?;
    let info = dec
        .info()
        .ok_or_else(|| bad("no frame header".to_string()))?;
    let (h, w) = (info.height as usize, info.width as usize);
    check_size(what, h, w, max_pixels)?;
    let px = dec
        .decode()
        .map_err(|e| bad(format!("undecodable bytes ({e:?})")))?;
    let values: Vec<f32> = px.iter().map(|&b| b as f32 / 255.0).collect();
    planar(what, &values, h, w, 3)
}

fn decode_png(what: &str, bytes: &[u8], max_pixels: usize) -> Result<Planes> {
    let bad = |got: String| InputError::new(what, Picture::Png.name(), got);
    let mut dec = png::Decoder::new(std::io::Cursor::new(bytes));
    dec.set_transformations(png::Transformations::EXPAND);
    let mut reader = dec
        .read_info()
        .map_err(|e| bad(format!("undecodable bytes ({e})")))?;
    let (h, w) = {
        let info = reader.info();
        (info.height as usize, info.width as usize)
    };
    check_size(what, h, w, max_pixels)?;
    let mut buf = vec![0u8; reader.output_buffer_size()];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| bad(format!("undecodable bytes ({e})")))?;
    let channels = info.color_type.samples();
    let values: Vec<f32> = match info.bit_depth {
        png::BitDepth::Sixteen => buf[..info.buffer_size()]
            .chunks_exact(2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]) as f32 / 65535.0)
            .collect(),
        _ => buf[..info.buffer_size()]
            .iter()
            .map(|&b| b as f32 / 255.0)
            .collect(),
    };
    planar(what, &values, h, w, channels)
}

/// Interleaved grey / grey + alpha / RGB / RGBA values → planar R, G, B.
fn planar(what: &str, v: &[f32], h: usize, w: usize, channels: usize) -> Result<Planes> {
    let plane = h * w;
    if !(1..=4).contains(&channels) || v.len() < plane * channels {
        return Err(InputError::new(
            what,
            format!("{plane} pixels of 1 to 4 channels"),
            format!("{} values of {channels} channels", v.len()),
        ));
    }
    let mut data = vec![0.0f32; 3 * plane];
    for p in 0..plane {
        let px = &v[p * channels..(p + 1) * channels];
        for c in 0..3 {
            // Grey (with alpha): the same value in R, G and B.
            data[c * plane + p] = if channels <= 2 { px[0] } else { px[c] };
        }
    }
    Ok(Planes {
        height: h,
        width: w,
        data,
    })
}
