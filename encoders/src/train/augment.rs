//! Light, label-preserving augmentations applied on the host before each training
//! step: flips and 90° rotations of the (square) image, and Gaussian noise on images and
//! spectra. Rotations and flips do not change a galaxy's physics; the noise amplitudes
//! are small next to the data's own.

use rand::Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

/// Which augmentations run and how strong the noise is.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Augment {
    /// Random horizontal / vertical flips of the image.
    pub flips: bool,
    /// Random rotations of the image by a multiple of 90°.
    pub rot90: bool,
    /// Standard deviation of Gaussian noise added to image pixels (the model sees
    /// values in [0, 1]); 0 turns it off.
    pub image_noise: f32,
    /// Gaussian noise added to each spectrum, as a fraction of that spectrum's standard
    /// deviation; 0 turns it off.
    pub spectrum_noise: f32,
}

impl Augment {
    /// Everything off.
    pub const NONE: Augment = Augment {
        flips: false,
        rot90: false,
        image_noise: 0.0,
        spectrum_noise: 0.0,
    };

    /// The defaults used for the shipped model.
    pub const DEFAULT: Augment = Augment {
        flips: true,
        rot90: true,
        image_noise: 0.01,
        spectrum_noise: 0.05,
    };

    /// Augments one planar image `[channels, size, size]` in place.
    pub fn image<R: Rng>(&self, rng: &mut R, img: &mut [f32], channels: usize, size: usize) {
        let (flip_x, flip_y) = if self.flips {
            (rng.random_bool(0.5), rng.random_bool(0.5))
        } else {
            (false, false)
        };
        let turns = if self.rot90 {
            rng.random_range(0..4u8)
        } else {
            0
        };
        if flip_x || flip_y || turns != 0 {
            let src = img.to_vec();
            let plane = size * size;
            let last = size - 1;
            for c in 0..channels {
                for y in 0..size {
                    for x in 0..size {
                        // Where output pixel (y, x) comes from: rotate, then flip.
                        let (mut sy, mut sx) = match turns {
                            0 => (y, x),
                            1 => (x, last - y),
                            2 => (last - y, last - x),
                            _ => (last - x, y),
                        };
                        if flip_x {
                            sx = last - sx;
                        }
                        if flip_y {
                            sy = last - sy;
                        }
                        img[c * plane + y * size + x] = src[c * plane + sy * size + sx];
                    }
                }
            }
        }
        if self.image_noise > 0.0 {
            let n = Normal::new(0.0f32, self.image_noise).expect("finite positive sigma");
            for v in img.iter_mut() {
                *v += n.sample(rng);
            }
        }
    }

    /// Augments one spectrum in place.
    pub fn spectrum<R: Rng>(&self, rng: &mut R, flux: &mut [f32]) {
        if self.spectrum_noise <= 0.0 || flux.len() < 2 {
            return;
        }
        let mean = flux.iter().map(|&v| v as f64).sum::<f64>() / flux.len() as f64;
        let var =
            flux.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / (flux.len() - 1) as f64;
        let sigma = (var.sqrt() as f32 * self.spectrum_noise).max(f32::MIN_POSITIVE);
        let n = Normal::new(0.0f32, sigma).expect("finite positive sigma");
        for v in flux.iter_mut() {
            *v += n.sample(rng);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn flips_and_rotations_permute_pixels() {
        let size = 5;
        let img: Vec<f32> = (0..2 * size * size).map(|i| i as f32).collect();
        let aug = Augment {
            image_noise: 0.0,
            spectrum_noise: 0.0,
            ..Augment::DEFAULT
        };
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut seen_change = false;
        for _ in 0..16 {
            let mut out = img.clone();
            aug.image(&mut rng, &mut out, 2, size);
            // Each plane keeps exactly its own values (a permutation within the plane).
            for c in 0..2 {
                let mut a = img[c * 25..(c + 1) * 25].to_vec();
                let mut b = out[c * 25..(c + 1) * 25].to_vec();
                a.sort_by(f32::total_cmp);
                b.sort_by(f32::total_cmp);
                assert_eq!(a, b);
            }
            // The centre pixel of an odd square never moves.
            assert_eq!(out[12], img[12]);
            seen_change |= out != img;
        }
        assert!(seen_change);
        let mut same = img.clone();
        Augment::NONE.image(&mut rng, &mut same, 2, size);
        assert_eq!(same, img);
    }

    #[test]
    fn spectrum_noise_scales_with_the_spectrum() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let flux: Vec<f32> = (0..4000).map(|i| (i as f32 * 0.1).sin() * 10.0).collect();
        let mut noisy = flux.clone();
        Augment::DEFAULT.spectrum(&mut rng, &mut noisy);
        let rms = (flux
            .iter()
            .zip(&noisy)
            .map(|(a, b)| ((a - b) as f64).powi(2))
            .sum::<f64>()
            / flux.len() as f64)
            .sqrt();
        // std of the clean spectrum ≈ 10/√2 ≈ 7.07, so the noise rms ≈ 0.35.
        assert!((rms - 0.354).abs() < 0.03, "{rms}");
    }
}
