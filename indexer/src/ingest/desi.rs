//! DESI coadd spectra (`coadd-*.fits`) and redrock redshifts (`redrock-*.fits`).
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
//! A redrock file's `REDSHIFTS` table (TARGETID, Z, ZERR, ZWARN, SPECTYPE) is
//! joined by TARGETID: its values become the attributes `redshift`,
//! `redshift_err`, `zwarn` and `spectype`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use astrovec_engine::{AttrValue, AttributeDef, AttributeKind};
use rayon::prelude::*;

use super::error::{IngestError, Result};
use super::mapping::Mapping;
use super::plan::{Ignored, PlannedAttribute};
use super::read::Batches;
use super::row::{check_position, Row, RowOutcome, SPECTRUM_LEN};
use crate::fits::{Column, FitsFile, Hdu};

/// First wavelength of the AstroCLIP/DESI grid, Å.
pub const GRID_START_A: f64 = astrovec_engine::blobs::SPECTRUM_START_A;
/// Grid step, Å.
pub const GRID_STEP_A: f64 = astrovec_engine::blobs::SPECTRUM_STEP_A;

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
    let mut wsum = vec![0.0f64; SPECTRUM_LEN];
    let mut wflux = vec![0.0f64; SPECTRUM_LEN];
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
            .min((SPECTRUM_LEN - 1) as f64);
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
    let valid: Vec<usize> = (0..SPECTRUM_LEN).filter(|&i| wsum[i] > 0.0).collect();
    let (&first, &last) = (valid.first()?, valid.last()?);
    let mut flux = vec![0.0f32; SPECTRUM_LEN];
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

/// A redrock fit of one target.
#[derive(Debug, Clone, PartialEq)]
pub struct Redshift {
    /// Redshift.
    pub z: f64,
    /// Its error.
    pub zerr: f64,
    /// Redrock warning bits (0 = a good fit).
    pub zwarn: i64,
    /// Best template class (GALAXY, QSO, STAR).
    pub spectype: String,
}

/// Redshifts by TARGETID, from one or more redrock files.
pub type Redshifts = HashMap<u64, Redshift>;

/// True when `fits` is a redrock output (it has a `REDSHIFTS` table).
pub fn is_redrock(fits: &FitsFile) -> bool {
    fits.find("REDSHIFTS").is_some_and(Hdu::is_table)
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

fn ids_of(hdu: &Hdu, col: &Column, start: usize, count: usize) -> Result<Vec<Option<u64>>> {
    Ok(hdu
        .column_i128(col, start, count)?
        .into_iter()
        .map(|v| u64::try_from(v).ok())
        .collect())
}

/// Reads the `REDSHIFTS` table of a redrock file into `into`.
pub fn read_redrock(path: &Path, into: &mut Redshifts) -> Result<()> {
    let fits = FitsFile::open(path)?;
    let t = fits.hdu("REDSHIFTS")?;
    let n = t.rows()?;
    let ids = ids_of(t, &t.column("TARGETID")?, 0, n)?;
    let z = t.column_f64(&t.column("Z")?, 0, n)?;
    let zerr = t.column_f64(&t.column("ZERR")?, 0, n)?;
    let zwarn = t.column_i128(&t.column("ZWARN")?, 0, n)?;
    let spectype = t.column_str(&t.column("SPECTYPE")?, 0, n)?;
    for (k, id) in ids.into_iter().enumerate() {
        if let Some(id) = id {
            into.insert(
                id,
                Redshift {
                    z: z[k],
                    zerr: zerr[k],
                    zwarn: zwarn[k] as i64,
                    spectype: spectype[k].clone(),
                },
            );
        }
    }
    Ok(())
}

/// The attributes a redrock join adds.
pub fn redrock_attributes() -> Vec<PlannedAttribute> {
    let def = |column: &str, name: &str, kind, unit: &str| PlannedAttribute {
        column: format!("REDSHIFTS.{column}"),
        def: AttributeDef {
            name: name.into(),
            kind,
            unit: unit.into(),
        },
    };
    vec![
        def("Z", "redshift", AttributeKind::Float, ""),
        def("ZERR", "redshift_err", AttributeKind::Float, ""),
        def("ZWARN", "zwarn", AttributeKind::Int, ""),
        def("SPECTYPE", "spectype", AttributeKind::Category, ""),
    ]
}

/// FIBERMAP columns read as attributes: those named in the mapping's
/// `[attributes]` (FITS sources keep no unnamed column: a FIBERMAP has ~80).
pub fn fibermap_attributes(
    path: &Path,
    mapping: &Mapping,
) -> Result<(Vec<PlannedAttribute>, Vec<Ignored>)> {
    let fits = FitsFile::open(path)?;
    let fm = fits.hdu("FIBERMAP")?;
    let cols = fm.columns()?;
    let mut out = Vec::new();
    for (name, spec) in &mapping.attributes {
        let col = fm.column(name)?;
        let kind = spec.kind().unwrap_or(match col.code {
            'A' => AttributeKind::Category,
            'E' | 'D' => AttributeKind::Float,
            _ => AttributeKind::Int,
        });
        out.push(PlannedAttribute {
            column: col.name.clone(),
            def: AttributeDef {
                name: spec.name().to_string(),
                kind,
                unit: if spec.unit().is_empty() {
                    col.unit.clone().unwrap_or_default()
                } else {
                    spec.unit().to_string()
                },
            },
        });
    }
    let used = ["TARGETID", "TARGET_RA", "TARGET_DEC"];
    let ignored = cols
        .iter()
        .filter(|c| !used.contains(&c.name.as_str()) && !out.iter().any(|a| a.column == c.name))
        .map(|c| {
            (
                format!("FIBERMAP.{}", c.name),
                "FITS readers keep only the mapping's [attributes]".to_string(),
            )
        })
        .collect();
    Ok((out, ignored))
}

/// One coadd file being read.
pub struct CoaddSource {
    path: PathBuf,
    fits: FitsFile,
    rows: u64,
    arms: Vec<(String, Vec<f64>)>,
    redshifts: Option<Arc<Redshifts>>,
    attributes: Vec<PlannedAttribute>,
}

impl CoaddSource {
    /// Opens a coadd and checks its layout: FIBERMAP with TARGETID, TARGET_RA and
    /// TARGET_DEC; per arm WAVELENGTH, FLUX and IVAR of matching sizes (MASK when
    /// present). `attributes` are FIBERMAP columns (from [`fibermap_attributes`]).
    pub fn open(
        path: &Path,
        redshifts: Option<Arc<Redshifts>>,
        attributes: Vec<PlannedAttribute>,
    ) -> Result<Self> {
        let fits = FitsFile::open(path)?;
        let fm = fits.hdu("FIBERMAP")?;
        let rows = fm.rows()?;
        for c in ["TARGETID", "TARGET_RA", "TARGET_DEC"] {
            fm.column(c)?;
        }
        for a in &attributes {
            fm.column(&a.column)?;
        }
        let names = arm_names(&fits);
        if names.is_empty() {
            return Err(IngestError::malformed(
                path,
                Some("B_FLUX"),
                None,
                "no <ARM>_FLUX / <ARM>_WAVELENGTH image HDUs: not a DESI coadd",
            ));
        }
        let mut arms = Vec::new();
        for a in names {
            let wave = fits.hdu(&format!("{a}_WAVELENGTH"))?.image()?;
            let npix = wave.values.len();
            if wave
                .values
                .windows(2)
                .any(|w| w[1] <= w[0] || !w[1].is_finite())
            {
                return Err(fits
                    .hdu(&format!("{a}_WAVELENGTH"))?
                    .error(None, "wavelengths are not finite and increasing")
                    .into());
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
                    return Err(h
                        .error(
                            None,
                            format!(
                                "shape {shape:?}, expected [{rows}, {npix}] ({rows} FIBERMAP rows × {npix} wavelengths)"
                            ),
                        )
                        .into());
                }
            }
            arms.push((a, wave.values));
        }
        Ok(CoaddSource {
            path: path.to_path_buf(),
            fits,
            rows: rows as u64,
            arms,
            redshifts,
            attributes,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Spectra in the file.
    pub fn len(&self) -> u64 {
        self.rows
    }

    /// True when the file has no spectra.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// TARGETIDs of spectra `0..end` (`None` for negative ids: sky fibres, unassigned).
    pub fn ids(&self, end: u64) -> Result<Vec<Option<u64>>> {
        let fm = self.fits.hdu("FIBERMAP")?;
        let end = end.min(self.rows) as usize;
        ids_of(fm, &fm.column("TARGETID")?, 0, end)
    }

    /// Spectra from `start` on, in batches of `batch`.
    pub fn read_from(&self, start: u64, batch: usize) -> Result<Batches<'_>> {
        let batch = batch.max(1) as u64;
        let starts: Vec<u64> = (start..self.rows).step_by(batch as usize).collect();
        Ok(Box::new(starts.into_iter().map(move |s| {
            let n = batch.min(self.rows - s) as usize;
            self.read_rows(s as usize, n)
        })))
    }

    fn read_rows(&self, start: usize, n: usize) -> Result<Vec<RowOutcome>> {
        let fm = self.fits.hdu("FIBERMAP")?;
        let ids = ids_of(fm, &fm.column("TARGETID")?, start, n)?;
        let ra = fm.column_f64(&fm.column("TARGET_RA")?, start, n)?;
        let dec = fm.column_f64(&fm.column("TARGET_DEC")?, start, n)?;
        let mut attr_values: Vec<Vec<Option<AttrValue>>> = Vec::new();
        for a in &self.attributes {
            let col = fm.column(&a.column)?;
            let vals: Vec<Option<AttrValue>> = if col.code == 'A' {
                fm.column_str(&col, start, n)?
                    .into_iter()
                    .map(|s| Some(AttrValue::Category(s)))
                    .collect()
            } else {
                let v = fm.column_f64(&col, start, n)?;
                let per = col.repeat.max(1);
                (0..n)
                    .map(|r| {
                        let x = v[r * per];
                        match a.def.kind {
                            _ if !x.is_finite() => None,
                            AttributeKind::Float => Some(AttrValue::Float(x)),
                            AttributeKind::Int => Some(AttrValue::Int(x as i64)),
                            AttributeKind::Category => Some(AttrValue::Category(x.to_string())),
                        }
                    })
                    .collect()
            };
            attr_values.push(vals);
        }
        // Per arm: flux, ivar, mask for the rows.
        let mut arm_data = Vec::new();
        for (a, wave) in &self.arms {
            let read = |part: &str| -> Result<Option<Vec<f64>>> {
                match self.fits.find(&format!("{a}_{part}")) {
                    None => Ok(None),
                    Some(h) => {
                        let single = h.shape()?.len() == 1;
                        let d = if single {
                            h.image()?
                        } else {
                            h.image_rows(start, n)?
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
        let outcomes = (0..n)
            .into_par_iter()
            .map(|r| {
                let row = (start + r) as u64;
                let Some(id) = ids[r] else {
                    return RowOutcome {
                        row,
                        id: None,
                        result: Err("FIBERMAP.TARGETID: id is negative (sky fibre or unassigned)".into()),
                    };
                };
                let result = (|| -> std::result::Result<Row, String> {
                    let (ra, dec) = (ra[r], dec[r]);
                    check_position("FIBERMAP.TARGET_RA", ra, "FIBERMAP.TARGET_DEC", dec)?;
                    let arms: Vec<Arm<'_>> = arm_data
                        .iter()
                        .map(|(wave, flux, ivar, mask)| {
                            let p = wave.len();
                            Arm {
                                wave,
                                flux: &flux[r * p..(r + 1) * p],
                                ivar: &ivar[r * p..(r + 1) * p],
                                mask: if mask.is_empty() { &[] } else { &mask[r * p..(r + 1) * p] },
                            }
                        })
                        .collect();
                    let combined = combine_arms(&arms).ok_or(
                        "spectrum has no valid pixel on the 3600–9824 Å grid (all masked or IVAR = 0)",
                    )?;
                    let mut attributes: Vec<(String, AttrValue)> = self
                        .attributes
                        .iter()
                        .zip(&attr_values)
                        .filter_map(|(a, v)| v[r].clone().map(|v| (a.def.name.clone(), v)))
                        .collect();
                    if let Some(z) = self.redshifts.as_ref().and_then(|m| m.get(&id)) {
                        if z.z.is_finite() {
                            attributes.push(("redshift".into(), AttrValue::Float(z.z)));
                        }
                        if z.zerr.is_finite() {
                            attributes.push(("redshift_err".into(), AttrValue::Float(z.zerr)));
                        }
                        attributes.push(("zwarn".into(), AttrValue::Int(z.zwarn)));
                        attributes.push(("spectype".into(), AttrValue::Category(z.spectype.clone())));
                    }
                    Ok(Row {
                        id,
                        ra,
                        dec,
                        attributes,
                        image: None,
                        spectrum: Some(combined.flux),
                        embeddings: Default::default(),
                    })
                })();
                RowOutcome {
                    row,
                    id: Some(id),
                    result,
                }
            })
            .collect();
        Ok(outcomes)
    }
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
        assert_eq!(c.flux.len(), SPECTRUM_LEN);
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
