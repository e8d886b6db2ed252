//! Image preprocessing shared by the encoders, the mock survey previews and the
//! server's thumbnails: the Legacy Survey viewer's g, r, z → RGB mapping that the
//! AstroCLIP reference applies before its image encoder.

/// Per-band scale of the Legacy Survey viewer mapping, in band order (g, r, z).
pub const LEGACY_SCALES: [f32; 3] = [6.0, 3.4, 2.2];
/// Additive offset `m` of the mapping (nanomaggies after scaling).
pub const LEGACY_OFFSET: f32 = 0.03;
/// Softening `Q` of the asinh stretch.
pub const LEGACY_Q: f32 = 20.0;

/// An image that cannot be mapped.
#[derive(Debug, thiserror::Error)]
pub enum PreprocessError {
    /// The buffer length does not match `3 × height × width`.
    #[error("image buffer has {got} values, expected 3 bands × {height} × {width} = {expected}")]
    Shape {
        /// Values supplied.
        got: usize,
        /// Values expected.
        expected: usize,
        /// Rows.
        height: usize,
        /// Columns.
        width: usize,
    },
    /// A pixel is NaN or infinite.
    #[error("image has a non-finite value in band {band} at pixel (row {row}, col {col})")]
    NonFinite {
        /// Band index (0 = g, 1 = r, 2 = z).
        band: usize,
        /// Row of the pixel.
        row: usize,
        /// Column of the pixel.
        col: usize,
    },
}

/// Maps a g, r, z cutout in nanomaggies to the reference RGB image.
///
/// Input: planar `[3, height, width]`, bands in order (g, r, z), nanomaggies.
/// Output: planar `[3, height, width]` in [0, 1], channel order **(z, r, g)** — the
/// order the AstroCLIP image encoder expects, and also (R, G, B) for display.
///
/// `I = mean_b max(0, x_b·s_b + m)`, `f(I) = asinh(Q·I)/√Q`, `I += (I == 0)·1e-6`,
/// `out[plane_b] = (x_b·s_b + m)·f(I)/I`, clipped to [0, 1].
pub fn legacy_rgb(grz: &[f32], height: usize, width: usize) -> Result<Vec<f32>, PreprocessError> {
    let plane = height * width;
    if grz.len() != 3 * plane {
        return Err(PreprocessError::Shape {
            got: grz.len(),
            expected: 3 * plane,
            height,
            width,
        });
    }
    if let Some(pos) = grz.iter().position(|v| !v.is_finite()) {
        return Err(PreprocessError::NonFinite {
            band: pos / plane,
            row: (pos % plane) / width,
            col: pos % width,
        });
    }
    let mut out = vec![0.0f32; 3 * plane];
    let sqrt_q = LEGACY_Q.sqrt();
    for p in 0..plane {
        let scaled = [0, 1, 2].map(|b| grz[b * plane + p] * LEGACY_SCALES[b] + LEGACY_OFFSET);
        let mut intensity = scaled.iter().map(|v| v.max(0.0)).sum::<f32>() / 3.0;
        let stretch = (LEGACY_Q * intensity).asinh() / sqrt_q;
        if intensity == 0.0 {
            intensity = 1e-6;
        }
        for (b, value) in scaled.iter().enumerate() {
            // Band b (g, r, z) goes to plane 2 - b so the planes read (z, r, g).
            out[(2 - b) * plane + p] = (value * stretch / intensity).clamp(0.0, 1.0);
        }
    }
    Ok(out)
}

/// Centre-crops a planar `[channels, height, width]` image to `[channels, size, size]`.
///
/// The offset is `(height - size) / 2` (integer division), as in the reference's
/// `CenterCrop`.
pub fn center_crop(
    image: &[f32],
    channels: usize,
    height: usize,
    width: usize,
    size: usize,
) -> Result<Vec<f32>, PreprocessError> {
    let expected = channels * height * width;
    if image.len() != expected || size > height || size > width {
        return Err(PreprocessError::Shape {
            got: image.len(),
            expected,
            height,
            width,
        });
    }
    let (top, left) = ((height - size) / 2, (width - size) / 2);
    let mut out = Vec::with_capacity(channels * size * size);
    for c in 0..channels {
        for r in 0..size {
            let start = c * height * width + (top + r) * width + left;
            out.extend_from_slice(&image[start..start + size]);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_image_maps_to_offset_colour_and_stays_in_range() {
        let rgb = legacy_rgb(&[0.0; 3 * 4], 2, 2).unwrap();
        assert!(rgb.iter().all(|v| (0.0..=1.0).contains(v)));
        // All bands have the same scaled value m, so all planes are equal.
        assert!((rgb[0] - rgb[4]).abs() < 1e-7 && (rgb[4] - rgb[8]).abs() < 1e-7);
        assert!(rgb[0] > 0.0);
    }

    #[test]
    fn planes_come_out_in_z_r_g_order() {
        // A pixel bright only in z must be brightest in output plane 0.
        let mut grz = vec![0.0f32; 3];
        grz[2] = 1.0;
        let rgb = legacy_rgb(&grz, 1, 1).unwrap();
        assert!(rgb[0] > rgb[1] && rgb[0] > rgb[2]);
    }

    #[test]
    fn bad_shapes_and_nan_are_errors() {
        assert!(matches!(
            legacy_rgb(&[0.0; 5], 1, 2),
            Err(PreprocessError::Shape { .. })
        ));
        let mut img = vec![0.0f32; 12];
        img[9] = f32::NAN;
        assert!(matches!(
            legacy_rgb(&img, 2, 2),
            Err(PreprocessError::NonFinite {
                band: 2,
                row: 0,
                col: 1
            })
        ));
    }

    #[test]
    fn centre_crop_takes_the_middle() {
        let img: Vec<f32> = (0..16).map(|v| v as f32).collect();
        assert_eq!(
            center_crop(&img, 1, 4, 4, 2).unwrap(),
            vec![5.0, 6.0, 9.0, 10.0]
        );
    }
}
