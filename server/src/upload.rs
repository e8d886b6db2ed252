//! Uploaded images and spectra: JSON arrays, or base64 `.npy`, FITS, PNG and JPEG,
//! decoded to flat `f32` buffers and embedded by the collection's own model.

use base64::Engine as _;
use serde::Deserialize;

use astrovec_encoders::{preprocess::center_crop, AnyEncoder, EncoderError};

use crate::error::{ApiError, ApiResult};

/// An uploaded image. Exactly one of `values`, `npy`, `fits`, `png`, `jpeg`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageUpload {
    /// Pixel values, row-major, with `shape` `[3, height, width]` (planar) or
    /// `[height, width, 3]`.
    #[serde(default)]
    pub values: Option<Vec<f32>>,
    /// Shape of `values`.
    #[serde(default)]
    pub shape: Option<Vec<usize>>,
    /// Base64 of a `.npy` file (float32/float64/int, shape as for `values`).
    #[serde(default)]
    pub npy: Option<String>,
    /// Base64 of a FITS file: primary (or first image extension) cube with
    /// NAXIS1 = width, NAXIS2 = height, NAXIS3 = 3 bands.
    #[serde(default)]
    pub fits: Option<String>,
    /// Base64 of an 8- or 16-bit RGB(A) or grey PNG (colours as displayed).
    #[serde(default)]
    pub png: Option<String>,
    /// Base64 of a JPEG (colours as displayed).
    #[serde(default)]
    pub jpeg: Option<String>,
    /// What numeric values hold: `grz` (g, r, z fluxes in nanomaggies; the default)
    /// or `rgb` (display colours in [0, 1], channel order R, G, B). PNG and JPEG are always `rgb`.
    #[serde(default)]
    pub bands: Option<String>,
}

/// An uploaded spectrum. Exactly one of `values`, `npy`, `fits`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpectrumUpload {
    /// Flux on the model's grid (DESI: 7,781 pixels, 3600–9824 Å in 0.8 Å steps),
    /// 10⁻¹⁷ erg s⁻¹ cm⁻² Å⁻¹.
    #[serde(default)]
    pub values: Option<Vec<f32>>,
    /// Base64 of a 1-d `.npy` array of the same flux.
    #[serde(default)]
    pub npy: Option<String>,
    /// Base64 of a FITS file whose primary (or first image extension) array is the flux.
    #[serde(default)]
    pub fits: Option<String>,
}

/// A decoded n-d array.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    /// Shape, slowest axis first (numpy order).
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
}

/// A decoded image: planar `[3, height, width]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// True for display RGB in [0, 1]; false for g, r, z nanomaggies.
    pub rgb: bool,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// Planar values.
    pub data: Vec<f32>,
}

fn b64(field: &str, s: &str) -> ApiResult<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| ApiError::invalid(field, "standard base64", format!("undecodable text ({e})")))
}

fn one_of(field: &str, present: &[(&str, bool)]) -> ApiResult<&'static str> {
    let set: Vec<&str> = present.iter().filter(|p| p.1).map(|p| p.0).collect();
    match set.as_slice() {
        [one] => Ok(match *one {
            "values" => "values",
            "npy" => "npy",
            "fits" => "fits",
            "png" => "png",
            _ => "jpeg",
        }),
        _ => Err(ApiError::invalid(
            field,
            format!(
                "exactly one of {}",
                present.iter().map(|p| p.0).collect::<Vec<_>>().join(", ")
            ),
            if set.is_empty() {
                "none".to_string()
            } else {
                set.join(" and ")
            },
        )),
    }
}

impl ImageUpload {
    /// Decodes to a planar image. `field` names the upload in errors (e.g. `image`).
    pub fn decode(&self, field: &str) -> ApiResult<Image> {
        let kind = one_of(
            field,
            &[
                ("values", self.values.is_some()),
                ("npy", self.npy.is_some()),
                ("fits", self.fits.is_some()),
                ("png", self.png.is_some()),
                ("jpeg", self.jpeg.is_some()),
            ],
        )?;
        let numeric_rgb = match self.bands.as_deref() {
            None | Some("grz") => false,
            Some("rgb") => true,
            Some(other) => {
                return Err(ApiError::invalid(
                    format!("{field}.bands"),
                    "`grz` (nanomaggies) or `rgb` (display colours in [0, 1])",
                    format!("`{other}`"),
                ))
            }
        };
        let array = match kind {
            "values" => {
                let values = self.values.clone().unwrap_or_default();
                let shape = self.shape.clone().ok_or_else(|| {
                    ApiError::invalid(
                        format!("{field}.shape"),
                        "[3, height, width] or [height, width, 3] alongside `values`",
                        "nothing",
                    )
                })?;
                let n: usize = shape.iter().product();
                if n != values.len() {
                    return Err(ApiError::invalid(
                        format!("{field}.values"),
                        format!("{n} values for shape {shape:?}"),
                        format!("{} values", values.len()),
                    ));
                }
                Array {
                    shape,
                    data: values,
                }
            }
            "npy" => parse_npy(
                &format!("{field}.npy"),
                &b64(field, self.npy.as_ref().unwrap())?,
            )?,
            "fits" => parse_fits(
                &format!("{field}.fits"),
                &b64(field, self.fits.as_ref().unwrap())?,
            )?,
            "png" => {
                return decode_png(
                    &format!("{field}.png"),
                    &b64(field, self.png.as_ref().unwrap())?,
                )
            }
            _ => {
                return decode_jpeg(
                    &format!("{field}.jpeg"),
                    &b64(field, self.jpeg.as_ref().unwrap())?,
                )
            }
        };
        planar_image(field, array, numeric_rgb)
    }
}

/// `[3, h, w]` stays; `[h, w, 3]` is transposed; anything else is an error.
fn planar_image(field: &str, a: Array, rgb: bool) -> ApiResult<Image> {
    let s = &a.shape;
    if s.len() == 3 && s[0] == 3 {
        return Ok(Image {
            rgb,
            height: s[1],
            width: s[2],
            data: a.data,
        });
    }
    if s.len() == 3 && s[2] == 3 {
        let (h, w) = (s[0], s[1]);
        let mut data = vec![0.0; 3 * h * w];
        for p in 0..h * w {
            for c in 0..3 {
                data[c * h * w + p] = a.data[p * 3 + c];
            }
        }
        return Ok(Image {
            rgb,
            height: h,
            width: w,
            data,
        });
    }
    Err(ApiError::invalid(
        field,
        "an image of shape [3, height, width] or [height, width, 3]",
        format!("shape {s:?}"),
    ))
}

impl SpectrumUpload {
    /// Decodes to a flat flux vector.
    pub fn decode(&self, field: &str) -> ApiResult<Vec<f32>> {
        let kind = one_of(
            field,
            &[
                ("values", self.values.is_some()),
                ("npy", self.npy.is_some()),
                ("fits", self.fits.is_some()),
            ],
        )?;
        let a = match kind {
            "values" => return Ok(self.values.clone().unwrap_or_default()),
            "npy" => parse_npy(
                &format!("{field}.npy"),
                &b64(field, self.npy.as_ref().unwrap())?,
            )?,
            _ => parse_fits(
                &format!("{field}.fits"),
                &b64(field, self.fits.as_ref().unwrap())?,
            )?,
        };
        if a.shape.iter().filter(|d| **d > 1).count() > 1 {
            return Err(ApiError::invalid(
                field,
                "a 1-d flux array",
                format!("shape {:?}", a.shape),
            ));
        }
        Ok(a.data)
    }
}

/// Converts an encoder error: bad input is the caller's fault (400), anything else ours.
pub fn encoder_error(field: &str, e: EncoderError) -> ApiError {
    match e {
        EncoderError::ImageSize { .. }
        | EncoderError::BandCount { .. }
        | EncoderError::CutoutTooSmall { .. }
        | EncoderError::SpectrumLength { .. }
        | EncoderError::EmptyBatch { .. }
        | EncoderError::NonFinite { .. }
        | EncoderError::Preprocess(_) => {
            ApiError::invalid(field, "input the model accepts", e.to_string())
        }
        other => ApiError::Encoder(other.to_string()),
    }
}

/// Embeds a decoded image with the collection's model (blocking).
pub fn embed_image(enc: &AnyEncoder, img: &Image, field: &str) -> ApiResult<Vec<f32>> {
    if let Some(i) = img.data.iter().position(|v| !v.is_finite()) {
        return Err(ApiError::invalid(
            format!("{field}[{i}]"),
            "a finite number",
            "NaN or infinity",
        ));
    }
    let size = enc.config().image_backbone.image_size;
    let rows = if img.rgb {
        if img.height < size || img.width < size {
            return Err(ApiError::invalid(
                field,
                format!("an image at least {size} × {size} pixels"),
                format!("{} × {}", img.height, img.width),
            ));
        }
        let crop = center_crop(&img.data, 3, img.height, img.width, size)
            .map_err(|e| encoder_error(field, e.into()))?;
        enc.embed_images(&crop)
    } else {
        enc.embed_grz(&img.data, 3, img.height, img.width)
    }
    .map_err(|e| encoder_error(field, e))?;
    rows.into_iter()
        .next()
        .ok_or_else(|| ApiError::Encoder("the model returned no embedding".into()))
}

/// Embeds a spectrum with the collection's model (blocking).
pub fn embed_spectrum(enc: &AnyEncoder, flux: &[f32], field: &str) -> ApiResult<Vec<f32>> {
    let want = enc.config().spectrum_backbone.spectrum_length;
    if flux.len() != want {
        return Err(ApiError::invalid(
            field,
            format!("{want} flux values (the model's spectrum grid)"),
            format!("{} values", flux.len()),
        ));
    }
    if let Some(i) = flux.iter().position(|v| !v.is_finite()) {
        return Err(ApiError::invalid(
            format!("{field}[{i}]"),
            "a finite number",
            "NaN or infinity",
        ));
    }
    enc.embed_spectra(flux)
        .map_err(|e| encoder_error(field, e))?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::Encoder("the model returned no embedding".into()))
}

/// Parses a `.npy` file (format versions 1–3; little- or big-endian float32,
/// float64, int8/16/32/64, uint8/16; C order).
pub fn parse_npy(field: &str, bytes: &[u8]) -> ApiResult<Array> {
    let bad = |why: String| ApiError::invalid(field, "a .npy file", why);
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("no NUMPY magic".into()));
    }
    let (hlen, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(bad(format!("unsupported format version {v}"))),
    };
    let header = bytes
        .get(start..start + hlen)
        .ok_or_else(|| bad("truncated header".into()))?;
    let header = String::from_utf8_lossy(header);
    let value_of = |key: &str| -> Option<String> {
        let at = header.find(&format!("'{key}'"))?;
        let rest = header[at + key.len() + 2..]
            .trim_start()
            .strip_prefix(':')?;
        Some(rest.trim_start().to_string())
    };
    let descr = value_of("descr")
        .and_then(|r| {
            r.strip_prefix('\'')
                .map(|r| r.split('\'').next().unwrap_or("").to_string())
        })
        .ok_or_else(|| bad("header has no descr".into()))?;
    if value_of("fortran_order").is_some_and(|r| r.starts_with("True")) {
        return Err(bad(
            "Fortran-ordered arrays are not supported (save with C order)".into(),
        ));
    }
    let shape_text = value_of("shape")
        .and_then(|r| {
            let r = r.strip_prefix('(')?;
            Some(r[..r.find(')')?].to_string())
        })
        .ok_or_else(|| bad("header has no shape".into()))?;
    let shape = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| bad(format!("bad shape ({shape_text})")))
        })
        .collect::<ApiResult<Vec<usize>>>()?;
    let n: usize = shape.iter().product();
    let data = &bytes[start + hlen..];
    let (big, code) = match descr.as_bytes().first() {
        Some(b'>') => (true, &descr[1..]),
        Some(b'<') | Some(b'|') | Some(b'=') => (false, &descr[1..]),
        _ => (false, descr.as_str()),
    };
    let values = decode_numbers(code, big, data, n).map_err(bad)?;
    Ok(Array {
        shape,
        data: values,
    })
}

/// Reads `n` numbers of a numpy type code (`f4`, `f8`, `i1`, `i2`, `i4`, `i8`, `u1`, `u2`).
fn decode_numbers(code: &str, big: bool, data: &[u8], n: usize) -> Result<Vec<f32>, String> {
    let width = match code {
        "f4" | "i4" => 4,
        "f8" | "i8" => 8,
        "i2" | "u2" => 2,
        "i1" | "u1" => 1,
        other => return Err(format!("unsupported dtype `{other}`")),
    };
    if data.len() < n * width {
        return Err(format!(
            "data holds {} bytes, the shape needs {}",
            data.len(),
            n * width
        ));
    }
    let mut out = Vec::with_capacity(n);
    for c in data[..n * width].chunks_exact(width) {
        let mut b = [0u8; 8];
        b[..width].copy_from_slice(c);
        if big {
            b[..width].reverse();
        }
        out.push(match code {
            "f4" => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            "f8" => f64::from_le_bytes(b) as f32,
            "i4" => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32,
            "i8" => i64::from_le_bytes(b) as f32,
            "i2" => i16::from_le_bytes([b[0], b[1]]) as f32,
            "u2" => u16::from_le_bytes([b[0], b[1]]) as f32,
            "i1" => b[0] as i8 as f32,
            _ => b[0] as f32,
        });
    }
    Ok(out)
}

/// Parses the first image HDU with data of a FITS file (BITPIX 8, 16, 32, 64,
/// -32, -64; BSCALE / BZERO applied). Shape is returned slowest axis first.
pub fn parse_fits(field: &str, bytes: &[u8]) -> ApiResult<Array> {
    let bad = |why: String| ApiError::invalid(field, "a FITS file with an image HDU", why);
    let mut offset = 0usize;
    let mut first = true;
    loop {
        let mut cards: Vec<(String, String)> = Vec::new();
        let mut end = false;
        while !end {
            let block = bytes
                .get(offset..offset + 2880)
                .ok_or_else(|| bad("truncated header (no END card)".into()))?;
            offset += 2880;
            for card in block.chunks(80) {
                let text = String::from_utf8_lossy(card);
                let key = text[..8.min(text.len())].trim().to_string();
                if key == "END" {
                    end = true;
                    break;
                }
                if text.len() > 10 && &text[8..10] == "= " {
                    let v = text[10..].split('/').next().unwrap_or("").trim();
                    cards.push((key, v.trim_matches('\'').trim().to_string()));
                }
            }
        }
        let get = |k: &str| cards.iter().find(|c| c.0 == k).map(|c| c.1.clone());
        let int = |k: &str| -> ApiResult<i64> {
            get(k)
                .ok_or_else(|| bad(format!("header has no {k}")))?
                .parse::<i64>()
                .map_err(|_| bad(format!("{k} is not an integer")))
        };
        if first && get("SIMPLE").as_deref() != Some("T") {
            return Err(bad("the first card is not SIMPLE = T".into()));
        }
        first = false;
        let bitpix = int("BITPIX")?;
        let naxis = int("NAXIS")?;
        let mut axes = Vec::new();
        for i in 1..=naxis {
            axes.push(int(&format!("NAXIS{i}"))?.max(0) as usize);
        }
        let n: usize = if axes.is_empty() {
            0
        } else {
            axes.iter().product()
        };
        let width = (bitpix.unsigned_abs() / 8) as usize;
        let pcount = get("PCOUNT")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        let gcount = get("GCOUNT")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(1);
        let is_image = get("SIMPLE").is_some() || get("XTENSION").as_deref() == Some("IMAGE");
        if n > 0 && is_image {
            let code = match bitpix {
                8 => "u1",
                16 => "i2",
                32 => "i4",
                64 => "i8",
                -32 => "f4",
                -64 => "f8",
                other => return Err(bad(format!("unsupported BITPIX {other}"))),
            };
            let data = bytes
                .get(offset..)
                .ok_or_else(|| bad("truncated data".into()))?;
            let mut values = decode_numbers(code, true, data, n).map_err(bad)?;
            let scale: f32 = get("BSCALE").and_then(|v| v.parse().ok()).unwrap_or(1.0);
            let zero: f32 = get("BZERO").and_then(|v| v.parse().ok()).unwrap_or(0.0);
            if scale != 1.0 || zero != 0.0 {
                for v in &mut values {
                    *v = *v * scale + zero;
                }
            }
            axes.reverse();
            return Ok(Array {
                shape: axes,
                data: values,
            });
        }
        let data_bytes = (width * gcount * (pcount + n)).div_ceil(2880) * 2880;
        offset += data_bytes;
        if offset >= bytes.len() {
            return Err(bad("no image HDU with data".into()));
        }
    }
}

fn decode_png(field: &str, bytes: &[u8]) -> ApiResult<Image> {
    let bad = |why: String| ApiError::invalid(field, "a PNG image", why);
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(|e| bad(e.to_string()))?;
    let mut buf = vec![0u8; reader.output_buffer_size()];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| bad(e.to_string()))?;
    let channels = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => return Err(bad("palette PNG after expansion".into())),
    };
    interleaved_to_planar(
        &buf[..info.buffer_size()],
        info.height as usize,
        info.width as usize,
        channels,
    )
    .ok_or_else(|| bad("pixel buffer does not match the header".into()))
}

fn decode_jpeg(field: &str, bytes: &[u8]) -> ApiResult<Image> {
    let bad = |why: String| ApiError::invalid(field, "a JPEG image", why);
    let mut decoder = zune_jpeg::JpegDecoder::new(std::io::Cursor::new(bytes));
    let pixels = decoder.decode().map_err(|e| bad(e.to_string()))?;
    let (w, h) = decoder
        .dimensions()
        .ok_or_else(|| bad("no dimensions".into()))?;
    let channels = pixels.len().checked_div(w * h).unwrap_or(0);
    interleaved_to_planar(&pixels, h, w, channels)
        .ok_or_else(|| bad(format!("unsupported layout ({channels} channels)")))
}

/// 8-bit interleaved grey / grey+alpha / RGB / RGBA → planar RGB in [0, 1].
fn interleaved_to_planar(px: &[u8], h: usize, w: usize, channels: usize) -> Option<Image> {
    if !(1..=4).contains(&channels) || px.len() < h * w * channels || h * w == 0 {
        return None;
    }
    let plane = h * w;
    let mut data = vec![0.0f32; 3 * plane];
    for p in 0..plane {
        let pix = &px[p * channels..(p + 1) * channels];
        for c in 0..3 {
            let v = if channels <= 2 { pix[0] } else { pix[c] };
            data[c * plane + p] = v as f32 / 255.0;
        }
    }
    Some(Image {
        rgb: true,
        height: h,
        width: w,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        let mut header =
            format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({shape}), }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn npy_float32_and_float64_parse() {
        let data: Vec<u8> = [1.5f32, -2.0, 3.25]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let a = parse_npy("x", &npy("<f4", "3,", &data)).unwrap();
        assert_eq!(a.shape, vec![3]);
        assert_eq!(a.data, vec![1.5, -2.0, 3.25]);
        let data: Vec<u8> = [1.0f64, 2.0, 3.0, 4.0]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        let a = parse_npy("x", &npy(">f8", "2, 2", &data)).unwrap();
        assert_eq!(a.shape, vec![2, 2]);
        assert_eq!(a.data, vec![1.0, 2.0, 3.0, 4.0]);
        assert!(parse_npy("x", &npy("<f4", "4,", &data[..8])).is_err());
        assert!(parse_npy("x", b"not an npy file").is_err());
    }

    fn fits_card(s: &str) -> String {
        format!("{s:<80}")
    }

    #[test]
    fn fits_float_cube_parses_with_axes_reversed() {
        let mut h = String::new();
        for c in [
            "SIMPLE  =                    T",
            "BITPIX  =                  -32",
            "NAXIS   =                    3",
            "NAXIS1  =                    2",
            "NAXIS2  =                    1",
            "NAXIS3  =                    3",
            "END",
        ] {
            h.push_str(&fits_card(c));
        }
        let mut bytes = h.into_bytes();
        bytes.resize(2880, b' ');
        for v in [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0] {
            bytes.extend_from_slice(&v.to_be_bytes());
        }
        bytes.resize(5760, 0);
        let a = parse_fits("f", &bytes).unwrap();
        assert_eq!(a.shape, vec![3, 1, 2]);
        assert_eq!(a.data, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert!(parse_fits("f", &bytes[..100]).is_err());
    }

    #[test]
    fn hwc_values_become_planar() {
        let a = Array {
            shape: vec![1, 2, 3],
            data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        };
        let img = planar_image("image", a, false).unwrap();
        assert_eq!((img.height, img.width), (1, 2));
        assert_eq!(img.data, vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    }
}
