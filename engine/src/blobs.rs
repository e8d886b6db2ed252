//! Names and encodings of the per-object blobs the rest of the system agrees on.
//!
//! The engine stores blobs as opaque bytes; these names let the writer (the ingest
//! pipeline) and the readers (the server, the web page) meet without depending on
//! each other.

use crate::error::{Error, Result};

/// A small RGB PNG (at most 96 px a side) for result grids.
pub const THUMB_PNG: &str = "thumb.png";
/// The full-resolution RGB PNG of the cutout (grz mapped to colour with the Legacy
/// Survey viewer's scaling, or the input RGB as given).
pub const IMAGE_PNG: &str = "image.png";
/// The spectrum on the AstroCLIP/DESI grid as little-endian IEEE half floats
/// ([`SPECTRUM_PIXELS`] values, flux in 10⁻¹⁷ erg s⁻¹ cm⁻² Å⁻¹); see
/// [`encode_spectrum_f16`].
pub const SPECTRUM_F16: &str = "spectrum.f16";

/// Pixels of the spectrum grid.
pub const SPECTRUM_PIXELS: usize = 7781;
/// Wavelength of the first grid pixel, Å.
pub const SPECTRUM_START_A: f64 = 3600.0;
/// Grid step, Å.
pub const SPECTRUM_STEP_A: f64 = 0.8;

/// Wavelength of grid pixel `i`, Å.
pub fn spectrum_wavelength(i: usize) -> f64 {
    SPECTRUM_START_A + SPECTRUM_STEP_A * i as f64
}

/// Packs flux values as half floats (half the bytes of f32; 3 significant digits is
/// plenty for plots). Values beyond the half range saturate to ±65504.
pub fn encode_spectrum_f16(flux: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(flux.len() * 2);
    for &v in flux {
        let h = if v.is_finite() {
            half::f16::from_f32(v.clamp(-65504.0, 65504.0))
        } else {
            half::f16::from_f32(0.0)
        };
        out.extend_from_slice(&h.to_le_bytes());
    }
    out
}

/// Unpacks a [`SPECTRUM_F16`] blob.
pub fn decode_spectrum_f16(bytes: &[u8]) -> Result<Vec<f32>> {
    if !bytes.len().is_multiple_of(2) {
        return Err(Error::invalid(
            SPECTRUM_F16,
            format!("blob has an odd length ({} bytes)", bytes.len()),
        ));
    }
    Ok(bytes
        .chunks_exact(2)
        .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spectrum_round_trips_within_half_precision() {
        let flux: Vec<f32> = (0..SPECTRUM_PIXELS)
            .map(|i| (i as f32 * 0.01).sin() * 12.5)
            .collect();
        let back = decode_spectrum_f16(&encode_spectrum_f16(&flux)).unwrap();
        assert_eq!(back.len(), SPECTRUM_PIXELS);
        for (a, b) in flux.iter().zip(&back) {
            assert!((a - b).abs() <= 1e-2 * a.abs().max(1.0), "{a} vs {b}");
        }
        assert_eq!(encode_spectrum_f16(&[f32::NAN, 1e9]).len(), 4);
        assert_eq!(
            decode_spectrum_f16(&encode_spectrum_f16(&[1e9]))
                .unwrap()
                .first(),
            Some(&65504.0)
        );
        assert!(decode_spectrum_f16(&[0u8; 3]).is_err());
        assert!((spectrum_wavelength(SPECTRUM_PIXELS - 1) - 9824.0).abs() < 1e-9);
    }
}
