//! Uploaded images and spectra: JSON arrays, or base64 `.npy`, FITS, PNG, JPEG and CSV,
//! decoded by the encoders' [`astrovec_encoders::input`] — the code the ingest and
//! `astrovec embed` read the same files with — and embedded by the collection's own
//! model, so an uploaded file finds its ingested copy.

use base64::Engine as _;
use serde::Deserialize;

use astrovec_encoders::input::image::{self as input_image, ImageFormat, Layout};
use astrovec_encoders::input::raster::Picture;
use astrovec_encoders::input::spectrum::{self as input_spectrum, SpectrumFormat};
use astrovec_encoders::input::{Array, InputError, MAX_PIXELS};
use astrovec_encoders::{AnyEncoder, EncoderError};

pub use astrovec_encoders::input::{Image, ImageKind};

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
    /// Base64 of a FITS file with a `[3, height, width]` g, r, z cutout (NAXIS1 = width,
    /// NAXIS2 = height, NAXIS3 = 3 bands; band order from BAND0..2 or BANDS).
    #[serde(default)]
    pub fits: Option<String>,
    /// Base64 of an 8- or 16-bit RGB(A) or grey PNG (colours as displayed).
    #[serde(default)]
    pub png: Option<String>,
    /// Base64 of a JPEG (colours as displayed).
    #[serde(default)]
    pub jpeg: Option<String>,
    /// What numeric values hold: `grz` (g, r, z fluxes in nanomaggies; the default)
    /// or `rgb` (display colours in [0, 1], channel order R, G, B). PNG and JPEG are
    /// always `rgb`, FITS always `grz`.
    #[serde(default)]
    pub bands: Option<String>,
}

/// An uploaded spectrum. Exactly one of `values`, `npy`, `fits`, `csv`.
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
    /// Base64 of a FITS file: a DESI coadd (with `targetid` when it holds several
    /// spectra), or a file whose first image HDU is the flux.
    #[serde(default)]
    pub fits: Option<String>,
    /// CSV text: one flux column on the grid, or wavelength (Å) and flux columns
    /// (resampled onto the grid).
    #[serde(default)]
    pub csv: Option<String>,
    /// The TARGETID of the spectrum to take from a DESI coadd.
    #[serde(default)]
    pub targetid: Option<u64>,
}

/// The request field of an input error.
fn invalid(e: InputError) -> ApiError {
    ApiError::invalid(e.what, e.expected, e.got)
}

fn b64(field: &str, s: &str) -> ApiResult<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| ApiError::invalid(field, "standard base64", format!("undecodable text ({e})")))
}

/// The one field set among `present`, or an error naming them all.
fn one_of<'a>(field: &str, present: &[(&'a str, bool)]) -> ApiResult<&'a str> {
    let set: Vec<&str> = present.iter().filter(|p| p.1).map(|p| p.0).collect();
    match set.as_slice() {
        [one] => Ok(one),
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
        let numeric = match self.bands.as_deref() {
            None => ImageKind::Grz,
            Some(b) => ImageKind::parse(&format!("{field}.bands"), b).map_err(invalid)?,
        };
        let what = format!("{field}.{kind}");
        let (text, format) = match kind {
            "values" => {
                let shape = self.shape.clone().ok_or_else(|| {
                    ApiError::invalid(
                        format!("{field}.shape"),
                        "[3, height, width] or [height, width, 3] alongside `values`",
                        "nothing",
                    )
                })?;
                let values = self.values.clone().unwrap_or_default();
                let array = Array::new(&what, shape, values).map_err(invalid)?;
                return Image::from_array(&what, array, numeric, Layout::Auto).map_err(invalid);
            }
            "npy" => (&self.npy, ImageFormat::Npy),
            "fits" => (&self.fits, ImageFormat::Fits),
            "png" => (&self.png, ImageFormat::Picture(Picture::Png)),
            _ => (&self.jpeg, ImageFormat::Picture(Picture::Jpeg)),
        };
        let bytes = b64(&what, text.as_deref().unwrap_or_default())?;
        input_image::decode(&what, &bytes, format, numeric, MAX_PIXELS)
            .map(|d| d.image)
            .map_err(invalid)
    }
}

impl SpectrumUpload {
    /// Decodes to flux on the model's grid of `length` pixels.
    pub fn decode(&self, field: &str, length: usize) -> ApiResult<Vec<f32>> {
        let kind = one_of(
            field,
            &[
                ("values", self.values.is_some()),
                ("npy", self.npy.is_some()),
                ("fits", self.fits.is_some()),
                ("csv", self.csv.is_some()),
            ],
        )?;
        let what = format!("{field}.{kind}");
        if self.targetid.is_some() && kind != "fits" {
            return Err(ApiError::invalid(
                format!("{field}.targetid"),
                "a TARGETID only alongside `fits` (a DESI coadd)",
                format!("`targetid` with `{kind}`"),
            ));
        }
        match kind {
            "values" => {
                let values = self.values.clone().unwrap_or_default();
                input_spectrum::from_values(&what, values, length).map_err(invalid)
            }
            "csv" => {
                input_spectrum::from_csv(&what, self.csv.as_deref().unwrap_or_default(), length)
                    .map_err(invalid)
            }
            "npy" => {
                let bytes = b64(&what, self.npy.as_deref().unwrap_or_default())?;
                input_spectrum::decode(&what, &bytes, SpectrumFormat::Npy, None, length)
                    .map_err(invalid)
            }
            _ => {
                let bytes = b64(&what, self.fits.as_deref().unwrap_or_default())?;
                input_spectrum::decode(&what, &bytes, SpectrumFormat::Fits, self.targetid, length)
                    .map_err(invalid)
            }
        }
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

/// Embeds a decoded image with the collection's model (blocking), prepared as the
/// ingest prepares it ([`Image::model_input`]).
pub fn embed_image(enc: &AnyEncoder, img: &Image, field: &str) -> ApiResult<Vec<f32>> {
    let size = enc.config().image_backbone.image_size;
    let input = img.model_input(field, size).map_err(invalid)?;
    enc.embed_images(&input)
        .map_err(|e| encoder_error(field, e))?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::Encoder("the model returned no embedding".into()))
}

/// Embeds a spectrum with the collection's model (blocking).
pub fn embed_spectrum(enc: &AnyEncoder, flux: &[f32], field: &str) -> ApiResult<Vec<f32>> {
    enc.embed_spectra(flux)
        .map_err(|e| encoder_error(field, e))?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::Encoder("the model returned no embedding".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload(json: serde_json::Value) -> ImageUpload {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn field_names_lead_every_decoding_error() {
        let e = upload(serde_json::json!({"values": [1.0, 2.0], "shape": [2, 2]}))
            .decode("image")
            .unwrap_err();
        assert!(format!("{e:?}").contains("image.values"), "{e:?}");
        let e = upload(serde_json::json!({"png": "not base64!"}))
            .decode("image")
            .unwrap_err();
        assert!(format!("{e:?}").contains("image.png"), "{e:?}");
        let e = upload(serde_json::json!({"npy": "AAAA", "png": "AAAA"}))
            .decode("image")
            .unwrap_err();
        assert!(format!("{e:?}").contains("npy and png"), "{e:?}");
        let s: SpectrumUpload =
            serde_json::from_value(serde_json::json!({"csv": "1\n2\n", "targetid": 5})).unwrap();
        assert!(
            format!("{:?}", s.decode("spectrum", 7781).unwrap_err()).contains("spectrum.targetid")
        );
    }
}
