//! Physical properties of one mock galaxy: stellar population labels from the
//! template coefficients, and structure (sizes, shapes, morphology) tied to them.

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use super::cosmology::{age_gyr, angular_diameter_distance_mpc, distance_factor};
use super::data::MockData;
use super::fit::FittedGalaxy;
use super::sed::{emission_lines, LineInputs, Sed, NT};

/// Arcseconds per radian.
const ARCSEC_PER_RAD: f64 = 206_264.806;
/// Floor applied to sSFR (yr⁻¹) before taking logs: templates without recent star
/// formation give values down to 1e-20, which carry no information.
pub const SSFR_FLOOR: f64 = 1e-14;

/// Spiral-arm pattern of a featured disk.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Arms {
    /// Number of arms (2–4).
    pub count: u32,
    /// Pitch angle (deg) of the logarithmic spiral.
    pub pitch_deg: f64,
    /// Phase (rad).
    pub phase: f64,
    /// Fractional arm/inter-arm contrast per band (g, r, z); arms are bluer.
    pub amplitude: [f64; 3],
}

/// Everything that defines a mock galaxy, before any pixels are drawn.
#[derive(Debug, Clone)]
pub struct Galaxy {
    /// Row of the parent in the bundled SDSS catalog.
    pub parent: usize,
    /// Whether coefficients/redshift were perturbed away from the parent's fit.
    pub perturbed: bool,
    /// Right ascension (deg).
    pub ra: f64,
    /// Declination (deg).
    pub dec: f64,
    /// Redshift.
    pub z: f64,
    /// Spectral energy distribution (coefficients at 10 pc + emission lines).
    pub sed: Sed,
    /// log10 stellar mass (M⊙).
    pub log_mass: f64,
    /// Star-formation rate averaged over 300 Myr (M⊙ yr⁻¹).
    pub sfr: f64,
    /// log10 specific SFR (yr⁻¹), floored at 1e-14.
    pub log_ssfr: f64,
    /// Mass-weighted stellar metallicity (mass fraction Z; solar ≈ 0.019).
    pub metallicity: f64,
    /// Mass-weighted stellar age (Gyr); see [`mass_weighted_age_gyr`].
    pub age_gyr: f64,
    /// Star forming (log sSFR > −11).
    pub star_forming: bool,
    /// Galaxy Zoo-style "featured or disk" (true) vs "smooth" (false).
    pub featured: bool,
    /// Disk seen edge-on (inclination > 75° on a disk-dominated galaxy).
    pub edge_on: bool,
    /// Spiral arms, if any.
    pub arms: Option<Arms>,
    /// Bulge-to-total flux ratio in g, r, z (bulges are redder).
    pub bulge_fraction: [f64; 3],
    /// Disk inclination (deg, 0 = face-on).
    pub inclination_deg: f64,
    /// Projected axis ratio of the disk.
    pub q_disk: f64,
    /// Projected axis ratio of the bulge.
    pub q_bulge: f64,
    /// Position angle of the major axis (deg, from +y towards −x).
    pub pa_deg: f64,
    /// Disk half-light radius (kpc).
    pub re_disk_kpc: f64,
    /// Bulge half-light radius (kpc).
    pub re_bulge_kpc: f64,
    /// Angular scale (arcsec per kpc) at the galaxy's redshift.
    pub arcsec_per_kpc: f64,
    /// r-band half-light semi-major axis of bulge + disk (arcsec, before the PSF).
    pub half_light_arcsec: f64,
    /// Total DECam g, r, z fluxes (nanomaggies) — synthetic photometry of the SED.
    pub flux_nmgy: [f64; 3],
    /// Observed Hα flux (erg s⁻¹ cm⁻²), after dust.
    pub halpha_flux: f64,
    /// Sub-pixel offset of the centre in the cutout (pixels, x and y).
    pub center_offset: [f64; 2],
}

/// Mass-weighted age (Gyr) of a template mix with masses formed `m_k`.
///
/// kcorrect only records, per template, the fractions of mass formed in the last
/// 300 Myr (M300) and 1 Gyr (M1000). We assume constant star formation within each
/// of the three bins [0, 0.3], [0.3, 1] and [1, t_U(z)] Gyr (t_U = age of the
/// universe at the galaxy's redshift), so their mean ages are 0.15, 0.65 and
/// (1 + t_U)/2 Gyr, and weight them by mass formed.
pub fn mass_weighted_age_gyr(data: &MockData, m: &[f64; NT], z: f64) -> f64 {
    let t = &data.templates;
    let tu = age_gyr(z);
    let old_mean = 0.5 * (1.0 + tu);
    let (mut num, mut den) = (0.0, 0.0);
    for (k, mk) in m.iter().enumerate() {
        let young = t.m300[k];
        let mid = (t.m1000[k] - t.m300[k]).max(0.0);
        let old = (t.intsfh[k] - t.m1000[k]).max(0.0);
        num += mk * (young * 0.15 + mid * 0.65 + old * old_mean);
        den += mk * t.intsfh[k];
    }
    if den > 0.0 {
        num / den
    } else {
        f64::NAN
    }
}

/// Half-light radius (kpc) of late-type (disk) galaxies: Shen et al. (2003, MNRAS
/// 343, 978, Table 1, r band): `R = 0.1 M^0.14 (1 + M/3.98e10)^0.25`, scaled with
/// redshift as `(1+z)^-0.75` relative to SDSS's z ≈ 0.1 (van der Wel et al. 2014).
fn size_late_kpc(mass: f64, z: f64) -> f64 {
    0.1 * mass.powf(0.14) * (1.0 + mass / 3.98e10).powf(0.25) * ((1.0 + z) / 1.1).powf(-0.75)
}

/// Half-light radius (kpc) of early types: Shen et al. (2003) `R = 3.47e-6 M^0.56`
/// above 2e10 M⊙ (below it early types follow a shallower relation, which we
/// approximate by a 1 kpc floor), with `(1+z)^-1.48` evolution (van der Wel et al. 2014).
fn size_early_kpc(mass: f64, z: f64) -> f64 {
    (3.47e-6 * mass.powf(0.56)).max(1.0) * ((1.0 + z) / 1.1).powf(-1.48)
}

/// Builds a galaxy from a fitted parent.
///
/// `perturb` draws small changes of the masses formed (±15 % per template,
/// log-normal) and of the redshift (σ = 0.01 (1+z)) so that more than 10,000 mock
/// objects are not copies of each other.
pub(crate) fn build<R: Rng>(
    data: &MockData,
    parent: &FittedGalaxy,
    perturb: bool,
    rng: &mut R,
) -> Galaxy {
    let gauss = |rng: &mut R| -> f64 { StandardNormal.sample(rng) };
    // Masses formed per template (M⊙): coefficients at 10 pc × (D_L/10 pc)².
    let mut formed = parent.coeffs.map(|c| c * distance_factor(parent.z));
    let (mut z, mut ra, mut dec) = (parent.z, parent.ra, parent.dec);
    if perturb {
        for m in &mut formed {
            *m *= (0.15 * gauss(rng)).exp();
        }
        z = (z + 0.01 * (1.0 + z) * gauss(rng)).clamp(0.005, 0.8);
        // Move within ~0.5° so positions stay in the SDSS footprint but are not duplicated.
        dec = (dec + 0.5 * (2.0 * rng.random::<f64>() - 1.0)).clamp(-89.9, 89.9);
        ra = (ra + 0.5 * (2.0 * rng.random::<f64>() - 1.0) / dec.to_radians().cos())
            .rem_euclid(360.0);
    }
    let df = distance_factor(z);
    let coeffs = formed.map(|m| m / df);
    let t = &data.templates;

    // Stellar population labels (Blanton & Roweis 2007 §4).
    let mass: f64 = (0..NT).map(|k| formed[k] * t.mremain[k]).sum();
    let sfr: f64 = (0..NT).map(|k| formed[k] * t.m300[k]).sum::<f64>() / 3e8;
    let metallicity = (0..NT)
        .map(|k| formed[k] * t.mremain[k] * t.mets[k])
        .sum::<f64>()
        / mass;
    let log_mass = mass.log10();
    let log_ssfr = (sfr / mass).max(SSFR_FLOOR).log10();
    let age = mass_weighted_age_gyr(data, &formed, z);
    let star_forming = log_ssfr > -11.0;

    // Emission lines: [NII]/Hα rises with mass (mass–metallicity), [OIII]/Hβ falls,
    // both with scatter, staying on the star-forming branch of the BPT diagram.
    let x = log_mass - 10.0;
    let log_n2 = (-0.55 + 0.25 * x + 0.08 * gauss(rng)).clamp(-1.3, -0.2);
    let log_o3 = (-0.1 - 0.45 * x + 0.12 * gauss(rng)).clamp(-1.0, 0.8);
    let sigma_kms = (60.0 + 30.0 * x).clamp(30.0, 150.0);
    let sfr_at_10pc = (0..NT).map(|k| coeffs[k] * t.m300[k]).sum::<f64>() / 3e8;
    let lines = emission_lines(&LineInputs {
        z,
        sfr_at_10pc,
        log_mass,
        sigma_kms,
        log_n2,
        log_o3,
    });
    let halpha_flux = lines
        .iter()
        .find(|l| l.rest == super::sed::lines::H_ALPHA)
        .map_or(0.0, |l| l.flux);
    let sed = Sed { coeffs, z, lines };
    let flux_nmgy = [0, 1, 2].map(|b| sed.maggies(t, &data.decam[b]) * 1e9);

    // Morphology tied to star formation: p_disk is the probability-like "diskiness".
    let p_disk = 1.0 / (1.0 + (-(log_ssfr + 11.0) / 0.25).exp());
    let bt = (0.75 - 0.6 * p_disk + 0.1 * (log_mass - 10.5) + 0.12 * gauss(rng)).clamp(0.0, 1.0);
    let p_featured = (p_disk * (1.0 - bt).sqrt() * 1.15).clamp(0.02, 0.95);
    let featured = rng.random::<f64>() < p_featured;
    let cos_i: f64 = rng.random();
    let inclination = cos_i.acos();
    // Hubble (1926) projection of an oblate disk: thin (0.12) for spirals, thicker
    // (0.25) for the disks of lenticulars.
    let q0_disk: f64 = if bt < 0.5 { 0.12 } else { 0.25 };
    let q_disk = (cos_i * cos_i * (1.0 - q0_disk * q0_disk) + q0_disk * q0_disk).sqrt();
    let q0_bulge = 0.55 + 0.35 * rng.random::<f64>();
    let q_bulge = (cos_i * cos_i * (1.0 - q0_bulge * q0_bulge) + q0_bulge * q0_bulge).sqrt();
    let edge_on = bt < 0.5 && inclination.to_degrees() > 75.0;
    let has_arms = featured && !edge_on && rng.random::<f64>() < 0.85;
    let arms = has_arms.then(|| {
        let u: f64 = rng.random();
        let count = if u < 0.7 {
            2
        } else if u < 0.85 {
            3
        } else {
            4
        };
        // Later Hubble types (small bulges) have more open arms.
        let pitch_deg = (10.0 + 20.0 * (1.0 - bt) + 4.0 * gauss(rng)).clamp(6.0, 40.0);
        let amp_r = 0.3 + 0.35 * rng.random::<f64>();
        Arms {
            count,
            pitch_deg,
            phase: rng.random::<f64>() * std::f64::consts::TAU,
            // Arms are bluer than the disk between them, but only mildly: a large
            // g/z contrast would paint the inter-arm disk orange.
            amplitude: [amp_r * 1.15, amp_r, amp_r * 0.85],
        }
    });
    // Bulges are redder than disks: the bulge share grows from g to z while each
    // band's total flux stays the SED's synthetic photometry. The contrast is
    // smaller in quiescent galaxies, whose disks are old too.
    let contrast = 0.1 + 0.15 * p_disk;
    let bulge_fraction = [
        (bt * (1.0 - contrast)).min(1.0),
        bt,
        (bt * (1.0 + 0.8 * contrast)).min(1.0),
    ];

    // Sizes: disks from the late-type relation, bulges from the early-type one for
    // bulge-dominated galaxies, compact (0.2 × disk) bulges in disk-dominated ones.
    let (late, early) = (size_late_kpc(mass, z), size_early_kpc(mass, z));
    let (re_disk_kpc, re_bulge_kpc) = if bt < 0.5 {
        let d = late * 10f64.powf(0.18 * gauss(rng));
        (d, d * (0.2 + 0.05 * gauss(rng)).clamp(0.1, 0.35))
    } else {
        let b = early * 10f64.powf(0.13 * gauss(rng));
        (b * (1.5 + 0.2 * gauss(rng)).clamp(1.1, 2.2), b)
    };
    let arcsec_per_kpc = ARCSEC_PER_RAD / (angular_diameter_distance_mpc(z) * 1e3);
    let half_light_arcsec =
        super::profiles::composite_half_light(bulge_fraction[1], re_bulge_kpc, re_disk_kpc)
            * arcsec_per_kpc;

    Galaxy {
        parent: parent.index,
        perturbed: perturb,
        ra,
        dec,
        z,
        sed,
        log_mass,
        sfr,
        log_ssfr,
        metallicity,
        age_gyr: age,
        star_forming,
        featured,
        edge_on,
        arms,
        bulge_fraction,
        inclination_deg: inclination.to_degrees(),
        q_disk,
        q_bulge,
        pa_deg: rng.random::<f64>() * 180.0,
        re_disk_kpc,
        re_bulge_kpc,
        arcsec_per_kpc,
        half_light_arcsec,
        flux_nmgy,
        halpha_flux,
        center_offset: [rng.random::<f64>() - 0.5, rng.random::<f64>() - 0.5],
    }
}
