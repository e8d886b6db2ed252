//! DESI-like spectra on the coadd grid used by AstroCLIP.

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use super::data::MockData;
use super::galaxy::Galaxy;

/// Number of pixels of the DESI coadd grid.
pub const NPIX: usize = astrovec_encoders::input::desi::GRID_LEN;
/// First wavelength (Å).
pub const WAVE_MIN: f64 = astrovec_encoders::input::desi::GRID_START_A;
/// Pixel step (Å).
pub const WAVE_STEP: f64 = astrovec_encoders::input::desi::GRID_STEP_A;

/// One standard-normal deviate.
fn normal<R: Rng>(rng: &mut R) -> f64 {
    StandardNormal.sample(rng)
}

/// Wavelength of pixel `i` (Å, vacuum): `3600 + 0.8 i`.
pub fn wavelength(i: usize) -> f64 {
    WAVE_MIN + WAVE_STEP * i as f64
}

/// The whole grid (Å).
pub fn wavelengths() -> Vec<f64> {
    (0..NPIX).map(wavelength).collect()
}

/// Approximate wavelengths (Å) of the strongest night-sky lines: \[OI\] 5577, NaD,
/// \[OI\] 6300/6364 and the brighter OH Meinel band blends. They only raise the noise
/// (no residuals), as a well sky-subtracted coadd would show.
const SKY_LINES: [(f64, f64); 30] = [
    (5578.9, 6.0),
    (5891.6, 2.5),
    (5897.6, 2.5),
    (6302.0, 3.5),
    (6365.5, 1.5),
    (6865.0, 1.5),
    (6925.0, 1.5),
    (7278.0, 1.5),
    (7318.0, 2.0),
    (7343.0, 2.0),
    (7371.0, 1.5),
    (7403.0, 1.5),
    (7526.0, 1.5),
    (7573.0, 1.5),
    (7752.0, 2.0),
    (7796.0, 2.0),
    (7823.0, 2.0),
    (7856.0, 2.0),
    (7915.0, 2.0),
    (7966.0, 2.0),
    (8346.0, 3.0),
    (8401.0, 3.0),
    (8432.0, 3.0),
    (8467.0, 3.0),
    (8829.0, 3.5),
    (8888.0, 3.5),
    (8921.0, 3.5),
    (8945.0, 3.5),
    (9378.0, 4.0),
    (9441.0, 4.0),
];

/// Noise per pixel in the fibre (1e-17 erg s⁻¹ cm⁻² Å⁻¹) for a typical DESI bright
/// time coadd: a smooth sky/read-noise floor rising at the blue end (throughput)
/// and red end (sky, CCD QE), plus sky lines.
pub fn sky_sigma(lambda: f64) -> f64 {
    let blue = 1.5 * (-(lambda - WAVE_MIN) / 250.0).exp();
    let red = 0.8 * ((lambda - 8500.0) / 1300.0).max(0.0).powi(2);
    // The three spectrograph arms overlap at 5660–5930 Å (b/r) and 7470–7620 Å
    // (r/z); near the dichroic edges throughput drops and the noise rises.
    let dichroic = 0.6 * (-((lambda - 5800.0) / 60.0).powi(2)).exp()
        + 0.6 * (-((lambda - 7550.0) / 50.0).powi(2)).exp();
    let mut s = 0.45 * (1.0 + blue + red + dichroic);
    for (l, a) in SKY_LINES {
        let d = (lambda - l) / 1.2;
        if d.abs() < 5.0 {
            s += 0.45 * a * (-0.5 * d * d).exp();
        }
    }
    s
}

/// A spectrum, its inverse variance and the noise-free model.
#[derive(Debug, Clone)]
pub struct Spectrum {
    /// Flux density (1e-17 erg s⁻¹ cm⁻² Å⁻¹), noisy unless noise is off.
    pub flux: Vec<f32>,
    /// Inverse variance of `flux` ((1e-17 erg s⁻¹ cm⁻² Å⁻¹)⁻²).
    pub ivar: Vec<f32>,
}

/// Builds the spectrum of `g` on the DESI grid.
///
/// The flux is the galaxy's *total* SED (as an aperture-corrected spectrum), so its
/// synthetic photometry matches the image. The noise is that of the light a 1.5″
/// fibre collects (`fiber_fraction` of the total): fibre-flux σ from the sky model
/// plus source Poisson noise, divided by the fibre fraction. Bright, compact galaxies
/// therefore get high S/N and large nearby ones low S/N, as in DESI.
pub(crate) fn build<R: Rng>(
    data: &MockData,
    g: &Galaxy,
    fiber_fraction: f64,
    noise: bool,
    rng: &mut R,
) -> Spectrum {
    let t = &data.templates;
    let ff = fiber_fraction.clamp(0.02, 1.0);
    // Observing conditions (exposure depth) vary from target to target.
    let depth: f64 = (0.2 * normal(rng)).exp();
    let mut flux = Vec::with_capacity(NPIX);
    let mut ivar = Vec::with_capacity(NPIX);
    for i in 0..NPIX {
        let l = wavelength(i);
        let model = g.sed.f_lambda(t, l) * 1e17;
        let fib = model * ff;
        let var_fib = (sky_sigma(l) * depth).powi(2) + 0.02 * fib.max(0.0);
        let sigma = var_fib.sqrt() / ff;
        ivar.push((1.0 / (sigma * sigma)) as f32);
        let v = if noise {
            let e: f64 = StandardNormal.sample(rng);
            model + sigma * e
        } else {
            model
        };
        flux.push(v as f32);
    }
    Spectrum { flux, ivar }
}
