//! Filter response curves and AB synthetic photometry.
//!
//! Curves are the `speclite` ECSV files bundled under `indexer/data/filters`
//! (response per photon, atmosphere at airmass 1.3 included). The AB flux in
//! maggies of a spectrum `f_λ` (erg s⁻¹ cm⁻² Å⁻¹) through a photon-counting
//! response `R(λ)` is
//!
//! `maggies = ∫ f_λ R λ dλ / (3631 Jy · c ∫ R / λ dλ)`
//!
//! (Fukugita et al. 1996; the same definition `speclite` and kcorrect use).

use super::error::{MockError, Result};

/// Speed of light in Å s⁻¹.
pub const C_ANGSTROM_PER_S: f64 = 2.997_924_58e18;
/// The AB zero point, 3631 Jy, in erg s⁻¹ cm⁻² Hz⁻¹.
pub const AB_ZERO_FNU: f64 = 3.631e-20;
/// Step of the resampled integration grid (Å). The template pixels are ≥ 4 Å in the
/// observed frame and the curves are smooth, so 2 Å keeps quadrature error ≪ 0.1 %.
const GRID_STEP: f64 = 2.0;

/// A band: its response curve and precomputed quadrature weights.
#[derive(Debug, Clone)]
pub struct Filter {
    /// Short name, e.g. `decam_g` or `sdss_u`.
    pub name: &'static str,
    /// Tabulated wavelengths (Å, increasing).
    wave: Vec<f64>,
    /// Tabulated response (dimensionless).
    resp: Vec<f64>,
    /// Regular quadrature grid (Å).
    grid: Vec<f64>,
    /// Weights so that `maggies = Σ weight_i · f_λ(grid_i)`, f_λ in erg s⁻¹ cm⁻² Å⁻¹.
    weight: Vec<f64>,
    /// `1 / (3631 Jy · c ∫ R/λ dλ)`, to turn `∫ f R λ dλ` into maggies.
    norm: f64,
}

impl Filter {
    /// Parses a speclite ECSV curve (wavelength in Å or nm, response).
    pub(crate) fn from_ecsv(name: &'static str, file: &'static str, text: &str) -> Result<Self> {
        let bad = |reason: String| MockError::Filter { file, reason };
        let mut scale = None;
        let mut wave = Vec::new();
        let mut resp = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if let Some(meta) = line.strip_prefix('#') {
                if meta.contains("name: wavelength") {
                    scale = Some(if meta.contains("unit: nm") {
                        10.0
                    } else if meta.contains("unit: Angstrom") {
                        1.0
                    } else {
                        return Err(bad(format!("unknown wavelength unit in `{meta}`")));
                    });
                }
                continue;
            }
            if line.is_empty() || line.starts_with("wavelength") {
                continue;
            }
            let mut parts = line.split_whitespace().map(str::parse::<f64>);
            match (parts.next(), parts.next()) {
                (Some(Ok(w)), Some(Ok(r))) => {
                    wave.push(w);
                    resp.push(r.max(0.0));
                }
                _ => return Err(bad(format!("unparsable line `{line}`"))),
            }
        }
        let scale = scale.ok_or_else(|| bad("no wavelength unit".into()))?;
        wave.iter_mut().for_each(|w| *w *= scale);
        if wave.len() < 3 || wave.windows(2).any(|p| p[1] <= p[0]) {
            return Err(bad("wavelengths must be increasing".into()));
        }
        Ok(Self::from_curve(name, wave, resp))
    }

    /// Builds a filter from a tabulated curve (Å, response).
    pub fn from_curve(name: &'static str, wave: Vec<f64>, resp: Vec<f64>) -> Self {
        let (lo, hi) = (wave[0], wave[wave.len() - 1]);
        let n = ((hi - lo) / GRID_STEP).ceil() as usize + 1;
        let grid: Vec<f64> = (0..n)
            .map(|i| (lo + i as f64 * GRID_STEP).min(hi))
            .collect();
        let mut f = Self {
            name,
            wave,
            resp,
            grid,
            weight: Vec::new(),
            norm: 0.0,
        };
        // Trapezoid weights on the regular grid.
        let mut inv = 0.0;
        let mut weight = vec![0.0; n];
        for i in 0..n - 1 {
            let (a, b) = (f.grid[i], f.grid[i + 1]);
            let h = b - a;
            let (ra, rb) = (f.response(a), f.response(b));
            inv += 0.5 * h * (ra / a + rb / b);
            weight[i] += 0.5 * h * ra * a;
            weight[i + 1] += 0.5 * h * rb * b;
        }
        f.norm = 1.0 / (AB_ZERO_FNU * C_ANGSTROM_PER_S * inv);
        f.weight = weight.into_iter().map(|w| w * f.norm).collect();
        f
    }

    /// Response at `lambda` (Å), linearly interpolated, zero outside the curve.
    pub fn response(&self, lambda: f64) -> f64 {
        if lambda <= self.wave[0] || lambda >= self.wave[self.wave.len() - 1] {
            return 0.0;
        }
        let i = self.wave.partition_point(|&w| w <= lambda);
        let (w0, w1) = (self.wave[i - 1], self.wave[i]);
        let t = (lambda - w0) / (w1 - w0);
        self.resp[i - 1] * (1.0 - t) + self.resp[i] * t
    }

    /// Wavelength range covered by the curve (Å).
    pub fn range(&self) -> (f64, f64) {
        (self.wave[0], self.wave[self.wave.len() - 1])
    }

    /// Quadrature grid (Å) and weights of the band integral (see
    /// `Templates::band_maggies`).
    pub(crate) fn quadrature(&self) -> (&[f64], &[f64]) {
        (&self.grid, &self.weight)
    }

    /// AB maggies contributed by an unresolved emission line of integrated flux
    /// `flux` (erg s⁻¹ cm⁻²) at observed wavelength `lambda` (Å). Lines are added
    /// analytically because they are narrower than the quadrature grid.
    pub fn line_maggies(&self, lambda: f64, flux: f64) -> f64 {
        flux * self.response(lambda) * lambda * self.norm
    }

    /// AB maggies of a spectrum sampled on an increasing wavelength grid (Å),
    /// by trapezoid integration of the samples (used to check spectra on the DESI grid).
    pub fn maggies_of_samples(&self, wave: &[f64], f_lambda: &[f64]) -> f64 {
        let mut num = 0.0;
        for i in 0..wave.len().saturating_sub(1) {
            let (a, b) = (wave[i], wave[i + 1]);
            num += 0.5
                * (b - a)
                * (f_lambda[i] * self.response(a) * a + f_lambda[i + 1] * self.response(b) * b);
        }
        num * self.norm
    }
}

/// AB magnitude of a flux in nanomaggies (`22.5 − 2.5 log10 f`); NaN for f ≤ 0.
pub fn nanomaggies_to_mag(nmgy: f64) -> f64 {
    if nmgy > 0.0 {
        22.5 - 2.5 * nmgy.log10()
    } else {
        f64::NAN
    }
}
