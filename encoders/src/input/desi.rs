//! DESI coadd spectra (`coadd-*.fits`) on the model's grid.
//!
//! A coadd holds N spectra: a `FIBERMAP` table (TARGETID, TARGET_RA, TARGET_DEC in
//! degrees, …) and, per spectrograph arm (b, r, z), `<ARM>_WAVELENGTH` (Å, vacuum),
//! `<ARM>_FLUX` `[N, pixels]` (10⁻¹⁷ erg s⁻¹ cm⁻² Å⁻¹), `<ARM>_IVAR` and
//! `<ARM>_MASK`. The arms overlap (b/r near 5760–5800 Å, r/z near 7520–7620 Å),
//! so each spectrum is combined onto the AstroCLIP grid (7,781 pixels,
//! λᵢ = 3600 + 0.8·i Å) by [`combine_arms`]:
//!
//! - every arm pixel is weighted by its inverse variance; masked pixels
//!   (MASK ≠ 0, IVAR ≤ 0 or a non-finite value) get weight zero, so where arms
//!   overlap the flux is Σ wₐfₐ / Σ wₐ and the combined IVAR is Σ wₐ;
//! - arm pixels that sit on the grid (DESI's own 0.8 Å grid) are taken as they
//!   are; an arm on another grid is linearly interpolated (flux, and variance
//!   propagated through the interpolation);
//! - grid pixels with no valid data in any arm are filled by linear
//!   interpolation between the nearest valid pixels on either side (the nearest
//!   valid value beyond the ends), because the encoder has no notion of a mask
//!   and standardises each spectrum by its mean and std: zeros would read as
//!   deep absorption. Their combined IVAR stays 0. A spectrum with no valid pixel
//!   at all is rejected.
//!
//! [`Coadd`] checks a file's layout and reads its spectra; the ingest adds the FIBERMAP
//! attributes and redrock redshifts, an upload picks one spectrum by TARGETID.

use super::fits::{Column, FitsFile, Hdu, Result as FitsResult};
use super::{InputError, Result};

/// Pixels of the grid.
pub const GRID_LEN: usize = 7781;
/// First wavelength of the AstroCLIP/DESI grid, Å.
pub const GRID_START_A: f64 = 3600.0;
/// Grid step, Å.
pub const GRID_STEP_A: f64 = 0.8;

/// Wavelength of grid pixel `i`, Å.
pub fn grid_wavelength(i: usize) -> f64 {
    GRID_START_A + GRID_STEP_A * i as f64
}

/// One arm of one spectrum.
#[derive(Debug, Clone, Copy)]
pub struct Arm<'a> {
    /// Wavelengths, Å, increasing.
    pub wave: &'a [f64],
    /// Flux.
    pub flux: &'a [f32],
    /// Inverse variance of the flux.
    pub ivar: &'a [f32],
    /// Mask bits (0 = good); empty when the file has no mask.
    pub mask: &'a [i32],
}

/// A spectrum on the AstroCLIP grid.
#[derive(Debug, Clone, PartialEq)]
pub struct Combined {
    /// Flux on the 7,781-pixel grid (gaps filled, see the module docs).
    pub flux: Vec<f32>,
    /// Summed inverse variance per grid pixel (0 where no arm had valid data).
    pub ivar: Vec<f32>,
    /// Grid pixels with valid data.
    pub valid: usize,
}

/// Combines the arms of one spectrum onto the grid (inverse-variance weighted;
/// see the module docs). `None` when no pixel of any arm is valid.
pub fn combine_arms(arms: &[Arm<'_>]) -> Option<Combined> {
    let mut wsum = vec![0.0f64; GRID_LEN];
    let mut wflux = vec![0.0f64; GRID_LEN];
    for arm in arms {
        let n = arm.wave.len().min(arm.flux.len()).min(arm.ivar.len());
        if n == 0 {
            continue;
        }
        let good = |j: usize| {
            arm.ivar[j] > 0.0
                && arm.ivar[j].is_finite()
                && arm.flux[j].is_finite()
                && arm.mask.get(j).is_none_or(|&m| m == 0)
        };
        let (lo, hi) = (arm.wave[0], arm.wave[n - 1]);
        // Tolerances: arm wavelengths sit on the grid up to rounding.
        let first = ((lo - GRID_START_A) / GRID_STEP_A - 1e-6).ceil().max(0.0) as usize;
        let last = ((hi - GRID_START_A) / GRID_STEP_A + 1e-6)
            .floor()
            .min((GRID_LEN - 1) as f64);
        if last < 0.0 {
            continue;
        }
        for i in first..=last as usize {
            let lam = grid_wavelength(i);
            // First arm pixel at or beyond lam.
            let j = arm.wave[..n].partition_point(|&w| w < lam - 1e-6);
            if j >= n {
                continue;
            }
            let (f, w) = if (arm.wave[j] - lam).abs() <= 1e-3 * GRID_STEP_A {
                if !good(j) {
                    continue;
                }
                (arm.flux[j] as f64, arm.ivar[j] as f64)
            } else {
                if j == 0 || !good(j) || !good(j - 1) {
                    continue;
                }
                let t = (lam - arm.wave[j - 1]) / (arm.wave[j] - arm.wave[j - 1]);
                let f = (1.0 - t) * arm.flux[j - 1] as f64 + t * arm.flux[j] as f64;
                let var =
                    (1.0 - t).powi(2) / arm.ivar[j - 1] as f64 + t.powi(2) / arm.ivar[j] as f64;
                (f, 1.0 / var)
            };
            wsum[i] += w;
            wflux[i] += w * f;
        }
    }
    let valid: Vec<usize> = (0..GRID_LEN).filter(|&i| wsum[i] > 0.0).collect();
    let (&first, &last) = (valid.first()?, valid.last()?);
    let mut flux = vec![0.0f32; GRID_LEN];
    for &i in &valid {
        flux[i] = (wflux[i] / wsum[i]) as f32;
    }
    // Gaps: constant beyond the ends, linear between valid neighbours.
    for f in flux.iter_mut().take(first) {
        *f = (wflux[first] / wsum[first]) as f32;
    }
    for f in flux.iter_mut().skip(last + 1) {
        *f = (wflux[last] / wsum[last]) as f32;
    }
    for pair in valid.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if b > a + 1 {
            let (fa, fb) = (flux[a], flux[b]);
            for (k, f) in flux.iter_mut().enumerate().take(b).skip(a + 1) {
                let t = (k - a) as f32 / (b - a) as f32;
                *f = (1.0 - t) * fa + t * fb;
            }
        }
    }
    Some(Combined {
        flux,
        ivar: wsum.iter().map(|&w| w as f32).collect(),
        valid: valid.len(),
    })
}

/// True when `fits` is a coadd (a `FIBERMAP` and at least one `<ARM>_FLUX` image).
pub fn is_coadd(fits: &FitsFile) -> bool {
    fits.find("FIBERMAP").is_some() && !arm_names(fits).is_empty()
}

/// The arms of a coadd, in file order (`B`, `R`, `Z` for DESI).
fn arm_names(fits: &FitsFile) -> Vec<String> {
    fits.hdus()
        .iter()
        .filter_map(|h| h.extname()?.strip_suffix("_FLUX").map(str::to_string))
        .filter(|a| fits.find(&format!("{a}_WAVELENGTH")).is_some())
        .collect()
}

/// TARGETIDs of FIBERMAP rows `start..start + count` (`None` for negative ids: sky
/// fibres, unassigned).
pub fn ids_of(hdu: &Hdu, col: &Column, start: usize, count: usize) -> FitsResult<Vec<Option<u64>>> {
    Ok(hdu
        .column_i128(col, start, count)?
        .into_iter()
        .map(|v| u64::try_from(v).ok())
        .collect())
}

/// A coadd whose layout has been checked: FIBERMAP with TARGETID; per arm WAVELENGTH
/// (finite, increasing), FLUX and IVAR of matching sizes, MASK when present.
pub struct Coadd {
    fits: FitsFile,
    rows: usize,
    arms: Vec<(String, Vec<f64>)>,
}

impl Coadd {
    /// Checks the layout of `fits` (a clone of its headers is kept).
    pub fn open(fits: &FitsFile) -> FitsResult<Coadd> {
        let fits = fits.clone();
        let fm = fits.hdu("FIBERMAP")?;
        let rows = fm.rows()?;
        fm.column("TARGETID")?;
        let names = arm_names(&fits);
        if names.is_empty() {
            return Err(fm.error(
                None,
                "no <ARM>_FLUX / <ARM>_WAVELENGTH image HDUs: not a DESI coadd",
            ));
        }
        let mut arms = Vec::new();
        for a in names {
            let wave_hdu = fits.hdu(&format!("{a}_WAVELENGTH"))?;
            let wave = wave_hdu.image()?;
            let npix = wave.values.len();
            if wave
                .values
                .windows(2)
                .any(|w| w[1] <= w[0] || !w[1].is_finite())
            {
                return Err(wave_hdu.error(None, "wavelengths are not finite and increasing"));
            }
            for part in ["FLUX", "IVAR", "MASK"] {
                let name = format!("{a}_{part}");
                let h = match (fits.find(&name), part) {
                    (Some(h), _) => h,
                    (None, "MASK") => continue,
                    // The error naming the missing HDU.
                    (None, _) => fits.hdu(&name)?,
                };
                let shape = h.shape()?;
                let ok = match shape.as_slice() {
                    [n, p] => *n == rows && *p == npix,
                    [p] => rows == 1 && *p == npix,
                    _ => false,
                };
                if !ok {
                    return Err(h.error(
                        None,
                        format!(
                            "shape {shape:?}, expected [{rows}, {npix}] ({rows} FIBERMAP rows × {npix} wavelengths)"
                        ),
                    ));
                }
            }
            arms.push((a, wave.values));
        }
        Ok(Coadd { fits, rows, arms })
    }

    /// The file.
    pub fn fits(&self) -> &FitsFile {
        &self.fits
    }

    /// Spectra in the file.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// TARGETIDs of spectra `start..start + count`.
    pub fn ids(&self, start: usize, count: usize) -> FitsResult<Vec<Option<u64>>> {
        let fm = self.fits.hdu("FIBERMAP")?;
        ids_of(fm, &fm.column("TARGETID")?, start, count)
    }

    /// Spectra `start..start + count` combined onto the grid (`None` where no pixel of
    /// any arm is valid), in parallel.
    pub fn spectra(&self, start: usize, count: usize) -> FitsResult<Vec<Option<Combined>>> {
        use rayon::prelude::*;
        let mut arm_data = Vec::new();
        for (a, wave) in &self.arms {
            let read = |part: &str| -> FitsResult<Option<Vec<f64>>> {
                match self.fits.find(&format!("{a}_{part}")) {
                    None => Ok(None),
                    Some(h) => {
                        let single = h.shape()?.len() == 1;
                        let d = if single {
                            h.image()?
                        } else {
                            h.image_rows(start, count)?
                        };
                        Ok(Some(d.values))
                    }
                }
            };
            let flux: Vec<f32> = read("FLUX")?
                .expect("checked at open")
                .into_iter()
                .map(|v| v as f32)
                .collect();
            let ivar: Vec<f32> = read("IVAR")?
                .expect("checked at open")
                .into_iter()
                .map(|v| v as f32)
                .collect();
            let mask: Vec<i32> = read("MASK")?
                .map(|m| m.into_iter().map(|v| v as i32).collect())
                .unwrap_or_default();
            arm_data.push((wave, flux, ivar, mask));
        }
        Ok((0..count)
            .into_par_iter()
            .map(|r| {
                let arms: Vec<Arm<'_>> = arm_data
                    .iter()
                    .map(|(wave, flux, ivar, mask)| {
                        let p = wave.len();
                        Arm {
                            wave,
                            flux: &flux[r * p..(r + 1) * p],
                            ivar: &ivar[r * p..(r + 1) * p],
                            mask: if mask.is_empty() {
                                &[]
                            } else {
                                &mask[r * p..(r + 1) * p]
                            },
                        }
                    })
                    .collect();
                combine_arms(&arms)
            })
            .collect())
    }
}

/// The spectrum of `targetid` in a coadd (`None`: the file must hold exactly one),
/// combined onto the grid.
pub fn coadd_spectrum(what: &str, fits: &FitsFile, targetid: Option<u64>) -> Result<Combined> {
    let bad = |got: String| InputError::new(what, "a DESI coadd", got);
    let coadd = Coadd::open(fits).map_err(|e| bad(e.to_string()))?;
    let ids = coadd.ids(0, coadd.rows()).map_err(|e| bad(e.to_string()))?;
    let row = match targetid {
        Some(t) => ids.iter().position(|i| *i == Some(t)).ok_or_else(|| {
            InputError::new(
                format!("{what}: targetid"),
                "a TARGETID of the coadd's FIBERMAP",
                t.to_string(),
            )
        })?,
        None if ids.len() == 1 => 0,
        None => {
            return Err(InputError::new(
                format!("{what}: targetid"),
                "the TARGETID of one of its spectra (the coadd holds several)",
                format!("none, among {} spectra", ids.len()),
            ))
        }
    };
    coadd
        .spectra(row, 1)
        .map_err(|e| bad(e.to_string()))?
        .pop()
        .flatten()
        .ok_or_else(|| bad("a spectrum with no valid pixel (all masked or IVAR = 0)".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(lo: usize, hi: usize) -> Vec<f64> {
        (lo..hi).map(grid_wavelength).collect()
    }

    #[test]
    fn overlap_is_inverse_variance_weighted_and_masks_get_no_weight() {
        // Arm 1 covers grid pixels 0..100, arm 2 pixels 80..200: overlap 80..100.
        let (w1, w2) = (grid(0, 100), grid(80, 200));
        let f1 = vec![2.0f32; 100];
        let f2 = vec![5.0f32; 120];
        let iv1 = vec![1.0f32; 100];
        let mut iv2 = vec![3.0f32; 120];
        let mut m2 = vec![0i32; 120];
        m2[5] = 4; // grid pixel 85: arm 2 masked there
        iv2[6] = 0.0; // grid pixel 86: arm 2 has no variance there
        let c = combine_arms(&[
            Arm {
                wave: &w1,
                flux: &f1,
                ivar: &iv1,
                mask: &[],
            },
            Arm {
                wave: &w2,
                flux: &f2,
                ivar: &iv2,
                mask: &m2,
            },
        ])
        .unwrap();
        assert_eq!(c.flux.len(), GRID_LEN);
        assert_eq!(c.flux[10], 2.0);
        assert_eq!(c.flux[150], 5.0);
        // (1·2 + 3·5) / (1 + 3) = 4.25 in the overlap; IVARs add.
        assert!((c.flux[90] - 4.25).abs() < 1e-6);
        assert_eq!(c.ivar[90], 4.0);
        // Masked arm-2 pixels leave arm 1 alone.
        assert_eq!((c.flux[85], c.ivar[85]), (2.0, 1.0));
        assert_eq!((c.flux[86], c.ivar[86]), (2.0, 1.0));
        // Beyond the data: the last valid value, zero weight.
        assert_eq!(c.valid, 200);
        assert_eq!((c.flux[7000], c.ivar[7000]), (5.0, 0.0));
    }

    #[test]
    fn gaps_are_interpolated_and_off_grid_arms_resampled() {
        // Valid at pixels 0..10 (flux 1) and 20..30 (flux 3), masked between.
        let w = grid(0, 30);
        let f: Vec<f32> = (0..30).map(|i| if i < 15 { 1.0 } else { 3.0 }).collect();
        let iv: Vec<f32> = (0..30)
            .map(|i| if (10..20).contains(&i) { 0.0 } else { 1.0 })
            .collect();
        let c = combine_arms(&[Arm {
            wave: &w,
            flux: &f,
            ivar: &iv,
            mask: &[],
        }])
        .unwrap();
        assert_eq!(c.valid, 20);
        assert!(
            (c.flux[14] - (1.0 + 2.0 * 5.0 / 11.0)).abs() < 1e-5,
            "{}",
            c.flux[14]
        );
        assert_eq!(c.ivar[14], 0.0);
        // An arm offset by half a pixel: flux linear in λ is reproduced.
        let w: Vec<f64> = (0..50).map(|i| grid_wavelength(i) + 0.4).collect();
        let f: Vec<f32> = w.iter().map(|l| (l - 3600.0) as f32).collect();
        let iv = vec![2.0f32; 50];
        let c = combine_arms(&[Arm {
            wave: &w,
            flux: &f,
            ivar: &iv,
            mask: &[],
        }])
        .unwrap();
        assert!((c.flux[10] - 8.0).abs() < 1e-4);
        assert!((c.ivar[10] - 4.0).abs() < 1e-4, "half-way: var = (¼+¼)/2");
        // Nothing valid at all.
        let z = vec![0.0f32; 50];
        assert!(combine_arms(&[Arm {
            wave: &w,
            flux: &f,
            ivar: &z,
            mask: &[]
        }])
        .is_none());
    }
}
