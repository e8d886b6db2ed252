//! The kcorrect v4 template basis and galaxy spectral energy distributions.
//!
//! The five templates of Blanton & Roweis (2007, AJ 133, 734; `kcorrect-default-v4`)
//! are rest-frame spectra, in erg s⁻¹ cm⁻² Å⁻¹, of a population that formed one solar
//! mass in total (`INTSFH = 1`) seen from 10 pc. A galaxy is a non-negative mix of them:
//! its coefficients are "solar masses formed, as if at 10 pc", so multiplying by
//! `(D_L / 10 pc)²` gives physical masses (the kcorrect convention).
//!
//! The templates carry nebular lines smoothed to 300 km/s, much broader than a DESI
//! spectrum resolves. We interpolate the continuum across those lines once at load
//! time and add narrow lines whose strength follows the galaxy's star-formation rate
//! instead (see [`emission_lines`]); that is what makes the lines scale with sSFR.

use super::error::{MockError, Result};
use super::filters::Filter;
use crate::fits::FitsFile;

/// Number of templates in the basis.
pub const NT: usize = 5;

/// The five templates and their per-template physical properties.
#[derive(Debug, Clone)]
pub struct Templates {
    /// Rest-frame wavelengths (Å), logarithmically spaced.
    wave: Vec<f64>,
    ln_w0: f64,
    dln: f64,
    /// Line-free flux per template (erg s⁻¹ cm⁻² Å⁻¹ per M⊙ formed, at 10 pc).
    flux: Vec<Vec<f64>>,
    /// Stellar mass remaining today per unit mass formed.
    pub mremain: [f64; NT],
    /// Mass-weighted metallicity (mass fraction Z) of each template.
    pub mets: [f64; NT],
    /// Fraction of the mass formed within the last 300 Myr.
    pub m300: [f64; NT],
    /// Fraction of the mass formed within the last 1 Gyr.
    pub m1000: [f64; NT],
    /// Total mass formed (1 for this basis).
    pub intsfh: [f64; NT],
}

/// Rest-frame (vacuum) wavelengths of lines present in the templates, masked at load.
const TEMPLATE_LINES: [f64; 15] = [
    3727.1, 3729.9, 3869.9, 4102.9, 4341.7, 4862.7, 4960.3, 5008.2, 5877.3, 6302.0, 6549.9, 6564.6,
    6585.3, 6718.3, 6732.7,
];
/// Half-width (Å) of the masked window: ±3σ of a 300 km/s line at Hα plus a pixel.
const MASK_HALF_WIDTH: f64 = 30.0;

impl Templates {
    /// Loads the basis from the bytes of `kcorrect-default-v4.fits`.
    pub(crate) fn from_fits(bytes: &[u8]) -> Result<Self> {
        const FILE: &str = "kcorrect-default-v4.fits";
        let fits = FitsFile::from_bytes(FILE, bytes).map_err(MockError::fits(FILE))?;
        let find = |name: &str| fits.hdu(name).map_err(MockError::fits(FILE));
        let table = find("FLUX")?;
        let rows = table.rows().map_err(MockError::fits(FILE))?;
        let column = |name: &str| -> Result<Vec<f64>> {
            let col = table.column(name).map_err(MockError::fits(FILE))?;
            table
                .column_f64(&col, 0, rows)
                .map_err(MockError::fits(FILE))
        };
        let (wave, flat) = (column("wave")?, column("flux")?);
        let n = wave.len();
        if flat.len() != NT * n || n < 100 {
            return Err(MockError::Fits {
                file: FILE,
                reason: format!("flux has {} values, expected {NT} × {n}", flat.len()),
            });
        }
        let vec5 = |name: &str| -> Result<[f64; NT]> {
            let v = find(name)?.image().map_err(MockError::fits(FILE))?.values;
            v.try_into().map_err(|_| MockError::Fits {
                file: FILE,
                reason: format!("{name} does not have {NT} values"),
            })
        };
        let ln_w0 = wave[0].ln();
        let dln = (wave[n - 1].ln() - ln_w0) / (n - 1) as f64;
        // The fast interpolation below relies on log spacing; the file stores f32, so
        // allow its rounding.
        if wave
            .iter()
            .enumerate()
            .any(|(i, w)| (w.ln() - ln_w0 - i as f64 * dln).abs() > 1e-5)
        {
            return Err(MockError::Fits {
                file: FILE,
                reason: "template wavelengths are not logarithmically spaced".into(),
            });
        }
        let mut flux: Vec<Vec<f64>> = flat.chunks(n).map(|c| c.to_vec()).collect();
        for f in &mut flux {
            mask_lines(&wave, f);
        }
        Ok(Self {
            wave,
            ln_w0,
            dln,
            flux,
            mremain: vec5("MREMAIN")?,
            mets: vec5("METS")?,
            m300: vec5("M300")?,
            m1000: vec5("M1000")?,
            intsfh: vec5("INTSFH")?,
        })
    }

    /// Flux of template `k` at rest wavelength `lambda` (Å), linear interpolation,
    /// zero outside the tabulated range.
    #[inline]
    pub fn rest_flux(&self, k: usize, lambda: f64) -> f64 {
        let t = (lambda.ln() - self.ln_w0) / self.dln;
        if t.is_nan() || t < 0.0 || t >= (self.wave.len() - 1) as f64 {
            return 0.0;
        }
        let i = t as usize;
        let f = t - i as f64;
        let row = &self.flux[k];
        row[i] * (1.0 - f) + row[i + 1] * f
    }

    /// AB maggies of each template redshifted to `z` through `filter`
    /// (`f_obs(λ) = f_rest(λ / (1 + z)) / (1 + z)`, coefficients at 10 pc).
    pub fn band_maggies(&self, filter: &Filter, z: f64) -> [f64; NT] {
        let (grid, weight) = filter.quadrature();
        let mut out = [0.0; NT];
        let inv = 1.0 / (1.0 + z);
        for (&l, &w) in grid.iter().zip(weight) {
            if w == 0.0 {
                continue;
            }
            let rest = l * inv;
            for (k, o) in out.iter_mut().enumerate() {
                *o += w * self.rest_flux(k, rest);
            }
        }
        out.map(|v| v * inv)
    }
}

/// Replaces the template's smoothed emission lines by a straight continuum.
///
/// A window is only touched where the template rises above the straight line
/// through its edges (an emission line), so absorption features of line-free
/// templates stay as they are.
fn mask_lines(wave: &[f64], flux: &mut [f64]) {
    // Merge overlapping windows (Hα + [NII], the [OII] doublet, ...).
    let mut windows: Vec<(f64, f64)> = Vec::new();
    for &l in &TEMPLATE_LINES {
        let (a, b) = (l - MASK_HALF_WIDTH, l + MASK_HALF_WIDTH);
        match windows.last_mut() {
            Some(last) if a <= last.1 => last.1 = b,
            _ => windows.push((a, b)),
        }
    }
    for (a, b) in windows {
        let i0 = wave.partition_point(|&w| w < a).saturating_sub(1);
        let i1 = wave.partition_point(|&w| w <= b).min(wave.len() - 1);
        if i0 + 1 >= i1 {
            continue;
        }
        // Edge levels: the mean of 3 pixels just outside the window, so noise in a
        // single pixel does not tilt the continuum.
        let left = (flux[i0.saturating_sub(2)] + flux[i0.saturating_sub(1)] + flux[i0]) / 3.0;
        let right =
            (flux[i1] + flux[(i1 + 1).min(wave.len() - 1)] + flux[(i1 + 2).min(wave.len() - 1)])
                / 3.0;
        let line = |i: usize| left + (right - left) * (wave[i] - wave[i0]) / (wave[i1] - wave[i0]);
        let peak = (i0 + 1..i1).map(|i| flux[i] / line(i)).fold(0.0, f64::max);
        if peak > 1.03 {
            for (i, f) in flux.iter_mut().enumerate().take(i1).skip(i0 + 1) {
                *f = line(i);
            }
        }
    }
}

/// One narrow emission line of a galaxy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Line {
    /// Rest-frame vacuum wavelength (Å).
    pub rest: f64,
    /// Observed integrated flux (erg s⁻¹ cm⁻²), after dust attenuation.
    pub flux: f64,
    /// Gaussian width in the observed frame (Å).
    pub sigma_obs: f64,
}

/// Vacuum wavelengths (Å) of the lines the mock adds.
pub mod lines {
    /// Hα.
    pub const H_ALPHA: f64 = 6564.61;
    /// Hβ.
    pub const H_BETA: f64 = 4862.68;
    /// Hγ.
    pub const H_GAMMA: f64 = 4341.68;
    /// \[OII\] λ3726.
    pub const OII_3726: f64 = 3727.09;
    /// \[OII\] λ3729.
    pub const OII_3729: f64 = 3729.88;
    /// \[OIII\] λ4959.
    pub const OIII_4959: f64 = 4960.30;
    /// \[OIII\] λ5007.
    pub const OIII_5007: f64 = 5008.24;
    /// \[NII\] λ6548.
    pub const NII_6548: f64 = 6549.86;
    /// \[NII\] λ6584.
    pub const NII_6584: f64 = 6585.27;
    /// \[SII\] λ6716.
    pub const SII_6716: f64 = 6718.29;
    /// \[SII\] λ6731.
    pub const SII_6731: f64 = 6732.67;
}

/// Physical inputs of the emission-line model.
#[derive(Debug, Clone, Copy)]
pub struct LineInputs {
    /// Redshift.
    pub z: f64,
    /// Star-formation rate times `(10 pc / D_L)²`, i.e. `Σ c_k M300_k / 300 Myr`
    /// (M⊙ yr⁻¹ at 10 pc): the luminosity distance then cancels out of the flux.
    pub sfr_at_10pc: f64,
    /// log10 stellar mass (M⊙).
    pub log_mass: f64,
    /// Gas velocity dispersion (km s⁻¹).
    pub sigma_kms: f64,
    /// log10 \[NII\]6584/Hα (metallicity indicator).
    pub log_n2: f64,
    /// log10 \[OIII\]5007/Hβ (ionisation indicator).
    pub log_o3: f64,
}

/// Emission lines from the star-formation rate.
///
/// * Hα luminosity from SFR with the Kennicutt & Evans (2012, ARA&A 50, 531)
///   calibration for a Kroupa IMF: `SFR = 5.37e-42 L(Hα) erg⁻¹ s`.
/// * Dust: `A(Hα)` from stellar mass (Garn & Best 2010, MNRAS 409, 421, eq. 8),
///   other lines attenuated with the Calzetti et al. (2000) curve,
///   `k(Hα) = 3.33, k(Hβ) = 4.60, k(Hγ) = 5.12, k(\[OII\]) = 5.86`.
/// * Case B ratios: Hβ = Hα / 2.86, Hγ = 0.468 Hβ (Osterbrock & Ferland 2006);
///   \[OII\]3727 doublet = 1.0 × intrinsic Hα split 0.42 : 0.58 (low density);
///   \[NII\]6548 = \[NII\]6584 / 3.05; \[OIII\]4959 = \[OIII\]5007 / 2.98;
///   \[SII\]6716 + 6731 = 0.3 Hα split 1.4 : 1.
/// * Width: the galaxy's velocity dispersion plus DESI's instrumental
///   σ ≈ 0.7 Å, added in quadrature.
pub fn emission_lines(p: &LineInputs) -> Vec<Line> {
    const KE12: f64 = 5.37e-42;
    let four_pi_10pc2 = 4.0 * std::f64::consts::PI * (10.0 * super::cosmology::PARSEC_CM).powi(2);
    let ha_intrinsic = p.sfr_at_10pc / KE12 / four_pi_10pc2;
    if ha_intrinsic.is_nan() || ha_intrinsic <= 0.0 {
        return Vec::new();
    }
    let x = p.log_mass - 10.0;
    let a_ha = (0.91 + 0.77 * x + 0.11 * x * x - 0.09 * x * x * x).clamp(0.0, 3.0);
    let att = |k: f64| 10f64.powf(-0.4 * a_ha * k / 3.33);
    let ha = ha_intrinsic * att(3.33);
    let hb = ha_intrinsic / 2.86 * att(4.60);
    let hg = ha_intrinsic / 2.86 * 0.468 * att(5.12);
    let oii = ha_intrinsic * att(5.86);
    let nii = ha * 10f64.powf(p.log_n2);
    let oiii = hb * 10f64.powf(p.log_o3);
    let sii = 0.3 * ha;
    let z1 = 1.0 + p.z;
    let make = |rest: f64, flux: f64| {
        let sv = rest * z1 * p.sigma_kms / 299_792.458;
        Line {
            rest,
            flux,
            sigma_obs: (sv * sv + 0.7 * 0.7).sqrt(),
        }
    };
    use lines::*;
    vec![
        make(OII_3726, 0.42 * oii),
        make(OII_3729, 0.58 * oii),
        make(H_GAMMA, hg),
        make(H_BETA, hb),
        make(OIII_4959, oiii / 2.98),
        make(OIII_5007, oiii),
        make(NII_6548, nii / 3.05),
        make(H_ALPHA, ha),
        make(NII_6584, nii),
        make(SII_6716, sii * 1.4 / 2.4),
        make(SII_6731, sii / 2.4),
    ]
}

/// A galaxy's observed-frame spectral energy distribution: template mix + lines.
#[derive(Debug, Clone)]
pub struct Sed {
    /// Template coefficients: solar masses formed, scaled to 10 pc, i.e. masses
    /// formed × (10 pc / D_L)². They multiply the templates directly.
    pub coeffs: [f64; NT],
    /// Redshift.
    pub z: f64,
    /// Emission lines (observed fluxes).
    pub lines: Vec<Line>,
}

impl Sed {
    /// Continuum f_λ (erg s⁻¹ cm⁻² Å⁻¹) at observed wavelength `lambda` (Å).
    pub fn continuum(&self, t: &Templates, lambda: f64) -> f64 {
        let rest = lambda / (1.0 + self.z);
        let mut f = 0.0;
        for (k, c) in self.coeffs.iter().enumerate() {
            if *c != 0.0 {
                f += c * t.rest_flux(k, rest);
            }
        }
        f / (1.0 + self.z)
    }

    /// Total f_λ (continuum + Gaussian lines) at observed wavelength `lambda` (Å).
    pub fn f_lambda(&self, t: &Templates, lambda: f64) -> f64 {
        let mut f = self.continuum(t, lambda);
        for l in &self.lines {
            let d = (lambda - l.rest * (1.0 + self.z)) / l.sigma_obs;
            if d.abs() < 8.0 {
                f += l.flux / (l.sigma_obs * (2.0 * std::f64::consts::PI).sqrt())
                    * (-0.5 * d * d).exp();
            }
        }
        f
    }

    /// AB maggies through `filter`, lines integrated analytically.
    pub fn maggies(&self, t: &Templates, filter: &Filter) -> f64 {
        let tm = t.band_maggies(filter, self.z);
        let cont: f64 = tm.iter().zip(&self.coeffs).map(|(a, c)| a * c).sum();
        let lines: f64 = self
            .lines
            .iter()
            .map(|l| filter.line_maggies(l.rest * (1.0 + self.z), l.flux))
            .sum();
        cont + lines
    }
}
