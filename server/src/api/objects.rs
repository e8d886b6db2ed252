//! Stored objects: position, attributes and links, the stored image (PNG) and
//! spectrum (optionally smoothed and down-sampled), and the rendering of an
//! uploaded image as the PNG stored with it.

use std::collections::BTreeMap;

use astrovec_engine::blobs::{
    decode_spectrum_f16, spectrum_wavelength, IMAGE_PNG, SPECTRUM_F16, THUMB_PNG,
};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::wire::{ImageParams, SpectrumParams};
use crate::attributes::attr_json;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiPath, ApiQuery};
use crate::limits::{MAX_SMOOTH_PIXELS, MIN_SPECTRUM_POINTS};
use crate::state::AppState;
use crate::upload::{Image, ImageKind};

/// `GET /v1/collections/{c}/objects/{id}`.
pub async fn get_object(
    State(state): State<AppState>,
    ApiPath((c, id)): ApiPath<(String, u64)>,
) -> ApiResult<Json<Value>> {
    let h = state.collection(&c)?;
    let o = state.blocking(move || Ok(h.collection()?.get(id)?)).await?;
    let attributes: BTreeMap<String, Value> = o
        .attributes
        .iter()
        .map(|(k, v)| (k.clone(), attr_json(v)))
        .collect();
    let base = format!("/v1/collections/{c}/objects/{id}");
    Ok(Json(json!({
        "id": o.id,
        "ra": o.ra,
        "dec": o.dec,
        "attributes": attributes,
        "modalities": o.modalities,
        "blobs": o.blobs,
        "links": {
            "image": format!("{base}/image.png"),
            "thumbnail": format!("{base}/image.png?size=thumb"),
            "spectrum": format!("{base}/spectrum"),
        },
    })))
}

/// `GET /v1/collections/{c}/objects/{id}/image.png`: the stored rendering
/// (Legacy Survey g, r, z → RGB mapping, made once at ingest).
pub async fn object_image(
    State(state): State<AppState>,
    ApiPath((c, id)): ApiPath<(String, u64)>,
    ApiQuery(p): ApiQuery<ImageParams>,
) -> ApiResult<Response> {
    let h = state.collection(&c)?;
    let order: &[&str] = match p.size.as_deref() {
        None | Some("full") => &[IMAGE_PNG, THUMB_PNG],
        Some("thumb") => &[THUMB_PNG, IMAGE_PNG],
        Some(other) => {
            return Err(ApiError::invalid(
                "size",
                "`full` or `thumb`",
                format!("`{other}`"),
            ))
        }
    };
    let order: Vec<&'static str> = order.to_vec();
    let png = state
        .blocking(move || {
            let c = h.collection()?;
            c.get(id)?;
            for name in order {
                if let Some(b) = c.get_blob(id, name)? {
                    return Ok(b);
                }
            }
            Err(ApiError::NotFound(format!(
                "object {id} has no stored image ({IMAGE_PNG} or {THUMB_PNG})"
            )))
        })
        .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/png"),
            // Blobs change only when the object is rewritten.
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        png,
    )
        .into_response())
}

/// Boxcar mean of odd `width` (edges use the pixels available).
fn boxcar(flux: &[f32], width: usize) -> Vec<f32> {
    let half = width / 2;
    let mut prefix = vec![0.0f64; flux.len() + 1];
    for (i, v) in flux.iter().enumerate() {
        prefix[i + 1] = prefix[i] + *v as f64;
    }
    (0..flux.len())
        .map(|i| {
            let lo = i.saturating_sub(half);
            let hi = (i + half + 1).min(flux.len());
            ((prefix[hi] - prefix[lo]) / (hi - lo) as f64) as f32
        })
        .collect()
}

/// `GET /v1/collections/{c}/objects/{id}/spectrum`.
pub async fn object_spectrum(
    State(state): State<AppState>,
    ApiPath((c, id)): ApiPath<(String, u64)>,
    ApiQuery(p): ApiQuery<SpectrumParams>,
) -> ApiResult<Json<Value>> {
    let smooth = p.smooth.unwrap_or(1);
    if smooth % 2 == 0 || smooth > MAX_SMOOTH_PIXELS {
        return Err(ApiError::invalid(
            "smooth",
            format!("an odd boxcar width of 1–{MAX_SMOOTH_PIXELS} pixels"),
            smooth.to_string(),
        ));
    }
    if p.max_points.is_some_and(|m| m < MIN_SPECTRUM_POINTS) {
        return Err(ApiError::invalid(
            "max_points",
            format!("at least {MIN_SPECTRUM_POINTS} points"),
            p.max_points.unwrap_or(0).to_string(),
        ));
    }
    let h = state.collection(&c)?;
    let blob = state
        .blocking(move || {
            let c = h.collection()?;
            c.get(id)?;
            c.get_blob(id, SPECTRUM_F16)?.ok_or_else(|| {
                ApiError::NotFound(format!(
                    "object {id} has no stored spectrum ({SPECTRUM_F16})"
                ))
            })
        })
        .await?;
    let mut flux = decode_spectrum_f16(&blob)?;
    let mut wave: Vec<f64> = (0..flux.len()).map(spectrum_wavelength).collect();
    if smooth > 1 {
        flux = boxcar(&flux, smooth);
    }
    let mut bin = 1;
    if let Some(m) = p.max_points {
        bin = flux.len().div_ceil(m).max(1);
        if bin > 1 {
            flux = flux
                .chunks(bin)
                .map(|c| c.iter().sum::<f32>() / c.len() as f32)
                .collect();
            wave = wave
                .chunks(bin)
                .map(|c| c.iter().sum::<f64>() / c.len() as f64)
                .collect();
        }
    }
    Ok(Json(json!({
        "id": id,
        "wavelength_unit": "Angstrom (observed frame, vacuum)",
        "flux_unit": "1e-17 erg s^-1 cm^-2 Angstrom^-1",
        "smooth_pixels": smooth,
        "bin_pixels": bin,
        "wavelength": wave,
        "flux": flux,
    })))
}

/// Renders a decoded image as an 8-bit RGB PNG (g, r, z through the Legacy Survey mapping).
pub(crate) fn render_png(img: &Image) -> ApiResult<Vec<u8>> {
    let (h, w) = (img.height, img.width);
    let rgb = if img.kind == ImageKind::Rgb {
        img.data.clone()
    } else {
        astrovec_encoders::preprocess::legacy_rgb(&img.data, h, w)
            .map_err(|e| ApiError::invalid("image", "a g, r, z cutout", e.to_string()))?
    };
    let plane = h * w;
    let mut px = vec![0u8; plane * 3];
    for p in 0..plane {
        for c in 0..3 {
            px[p * 3 + c] = (rgb[c * plane + p].clamp(0.0, 1.0) * 255.0).round() as u8;
        }
    }
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w as u32, h as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc
        .write_header()
        .map_err(|e| ApiError::Internal(format!("png: {e}")))?;
    writer
        .write_image_data(&px)
        .map_err(|e| ApiError::Internal(format!("png: {e}")))?;
    writer
        .finish()
        .map_err(|e| ApiError::Internal(format!("png: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxcar_keeps_constants_and_averages_spikes() {
        assert_eq!(boxcar(&[2.0; 7], 3), vec![2.0; 7]);
        let s = boxcar(&[0.0, 0.0, 3.0, 0.0, 0.0], 3);
        assert_eq!(s, vec![0.0, 1.0, 1.0, 1.0, 0.0]);
    }
}
