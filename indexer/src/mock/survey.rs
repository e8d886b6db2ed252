//! The public entry point: configuration, the survey and its rows.

use std::ops::Range;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::data::MockData;
use super::error::{MockError, Result};
use super::galaxy::{self, Galaxy};
use super::image::{self, SIZE};
use super::spectrum::{self, NPIX};

/// Largest supported object count (ids and sizes stay far from overflow; at ~300 KB
/// an object this is already 30 TB of Parquet).
pub const MAX_COUNT: usize = 100_000_000;

/// What to generate. Every field is validated by [`MockConfig::validate`].
#[derive(Debug, Clone, PartialEq)]
pub struct MockConfig {
    /// Number of objects (1 ..= 10⁸). Up to the 10,000 usable SDSS parents each
    /// object is a distinct real galaxy; beyond that, parents are resampled with
    /// small perturbations.
    pub count: usize,
    /// Random seed: the same seed and config give byte-identical output.
    pub seed: u64,
    /// `targetid` of object 0; object i gets `first_targetid + i`.
    pub first_targetid: i64,
    /// Add sky, read and Poisson noise to images and spectra (off: noise-free models).
    pub noise: bool,
    /// Add faint neighbouring galaxies and stars to the cutouts.
    pub neighbours: bool,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            count: 1000,
            seed: 0,
            // DESI-like 64-bit ids, clear of real DESI TARGETIDs' usual range start.
            first_targetid: 9_000_000_000_000_000,
            noise: true,
            neighbours: true,
        }
    }
}

impl MockConfig {
    /// Checks ranges; the error names the offending field (`count`, `first_targetid`).
    pub fn validate(&self) -> Result<()> {
        if self.count == 0 || self.count > MAX_COUNT {
            return Err(MockError::InvalidArgument {
                name: "count",
                reason: format!("must be between 1 and {MAX_COUNT}, got {}", self.count),
            });
        }
        if self.first_targetid < 0 || self.first_targetid.checked_add(self.count as i64).is_none() {
            return Err(MockError::InvalidArgument {
                name: "first_targetid",
                reason: format!(
                    "must be ≥ 0 and leave room for {} ids, got {}",
                    self.count, self.first_targetid
                ),
            });
        }
        Ok(())
    }
}

/// Scalar labels of one object. Units are in each field's doc.
#[derive(Debug, Clone, PartialEq)]
pub struct Labels {
    /// Redshift (dimensionless).
    pub redshift: f64,
    /// Row of the parent galaxy in the SDSS catalog (`sdss_gst_10k.fits`).
    pub parent_index: i32,
    /// Whether the object was perturbed away from its parent (counts > 10,000).
    pub perturbed: bool,
    /// DECam g, r, z total fluxes (nanomaggies), noise-free.
    pub flux_grz: [f64; 3],
    /// AB magnitudes g, r, z (`22.5 − 2.5 log10 flux`).
    pub mag_grz: [f64; 3],
    /// log10 stellar mass (M⊙; Chabrier-like IMF of kcorrect; H0 = 70).
    pub log_stellar_mass: f64,
    /// log10 star-formation rate over the last 300 Myr (M⊙ yr⁻¹).
    pub log_sfr: f64,
    /// log10 specific SFR (yr⁻¹), floored at −14.
    pub log_ssfr: f64,
    /// Mass-weighted stellar metallicity Z (mass fraction; solar ≈ 0.019).
    pub metallicity: f64,
    /// Mass-weighted stellar age (Gyr).
    pub age_gyr: f64,
    /// Observed Hα flux (1e-17 erg s⁻¹ cm⁻²).
    pub halpha_flux: f64,
    /// log sSFR > −11.
    pub star_forming: bool,
    /// Galaxy Zoo "featured/disk" (true) vs "smooth" (false).
    pub featured: bool,
    /// Disk seen edge-on.
    pub edge_on: bool,
    /// Visible spiral arms.
    pub spiral_arms: bool,
    /// Number of spiral arms (0 if none).
    pub arm_count: i32,
    /// Spiral pitch angle (deg; 0 if no arms).
    pub pitch_angle_deg: f64,
    /// r-band bulge-to-total flux ratio.
    pub bulge_fraction: f64,
    /// Disk inclination (deg; 0 = face-on).
    pub inclination_deg: f64,
    /// Light-weighted projected axis ratio (r band: B/T·q_bulge + (1−B/T)·q_disk).
    pub axis_ratio: f64,
    /// Position angle of the major axis (deg, from +y (north) towards −x (east)).
    pub position_angle_deg: f64,
    /// r-band half-light semi-major axis before the PSF (arcsec).
    pub half_light_radius_arcsec: f64,
    /// The same in kpc (proper).
    pub half_light_radius_kpc: f64,
    /// Fraction of the r-band light inside a 1.5″ DESI fibre.
    pub fiber_fraction_r: f64,
}

impl Labels {
    /// Every label as `(column name, value)`, named as in the Parquet output;
    /// booleans are 0 or 1. Handy for storing them as numeric catalog attributes.
    pub fn fields(&self) -> Vec<(&'static str, f64)> {
        let b = |v: bool| if v { 1.0 } else { 0.0 };
        vec![
            ("redshift", self.redshift),
            ("parent_index", self.parent_index as f64),
            ("perturbed", b(self.perturbed)),
            ("flux_g", self.flux_grz[0]),
            ("flux_r", self.flux_grz[1]),
            ("flux_z", self.flux_grz[2]),
            ("mag_g", self.mag_grz[0]),
            ("mag_r", self.mag_grz[1]),
            ("mag_z", self.mag_grz[2]),
            ("log_stellar_mass", self.log_stellar_mass),
            ("log_sfr", self.log_sfr),
            ("log_ssfr", self.log_ssfr),
            ("metallicity", self.metallicity),
            ("age_gyr", self.age_gyr),
            ("halpha_flux", self.halpha_flux),
            ("star_forming", b(self.star_forming)),
            ("featured", b(self.featured)),
            ("edge_on", b(self.edge_on)),
            ("spiral_arms", b(self.spiral_arms)),
            ("arm_count", self.arm_count as f64),
            ("pitch_angle_deg", self.pitch_angle_deg),
            ("bulge_fraction", self.bulge_fraction),
            ("inclination_deg", self.inclination_deg),
            ("axis_ratio", self.axis_ratio),
            ("position_angle_deg", self.position_angle_deg),
            ("half_light_radius_arcsec", self.half_light_radius_arcsec),
            ("half_light_radius_kpc", self.half_light_radius_kpc),
            ("fiber_fraction_r", self.fiber_fraction_r),
        ]
    }
}

/// One generated object: what the ingest pipeline stores and embeds.
#[derive(Debug, Clone)]
pub struct MockRow {
    /// 64-bit object id.
    pub targetid: i64,
    /// Right ascension (deg, ICRS).
    pub ra: f64,
    /// Declination (deg, ICRS).
    pub dec: f64,
    /// Physical labels.
    pub labels: Labels,
    /// Planar `[3, 152, 152]` cutout, bands g, r, z, nanomaggies, 0.262″/px.
    pub image: Vec<f32>,
    /// Flux on the DESI grid (7781 px, 3600 + 0.8 i Å), 1e-17 erg s⁻¹ cm⁻² Å⁻¹.
    pub spectrum: Vec<f32>,
    /// Inverse variance of `spectrum`, (1e-17 erg s⁻¹ cm⁻² Å⁻¹)⁻².
    pub spectrum_ivar: Vec<f32>,
}

/// A mock survey: a validated config plus the fitted parents, ready to generate
/// any object by index (objects are independent, so any range can be generated
/// on any machine — e.g. one shard per batch job).
#[derive(Debug, Clone)]
pub struct MockSurvey {
    config: MockConfig,
    data: &'static MockData,
    /// Usable parents (catalog rows) in a seed-dependent order.
    parents: Vec<usize>,
}

impl MockSurvey {
    /// Validates `config`, loads the bundled data and fits the parents (once per process).
    pub fn new(config: MockConfig) -> Result<Self> {
        config.validate()?;
        let data = MockData::shared()?;
        let mut parents: Vec<usize> = data
            .fitted
            .iter()
            .filter(|f| f.usable())
            .map(|f| f.index)
            .collect();
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        parents.shuffle(&mut rng);
        Ok(Self {
            config,
            data,
            parents,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &MockConfig {
        &self.config
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.config.count
    }

    /// Always false: a survey has at least one object.
    pub fn is_empty(&self) -> bool {
        self.config.count == 0
    }

    /// Templates, filters and fitted parents.
    pub fn data(&self) -> &'static MockData {
        self.data
    }

    /// Number of distinct usable parents (galaxies with a good fit).
    pub fn parent_count(&self) -> usize {
        self.parents.len()
    }

    /// The per-object random stream: ChaCha8 keyed by the seed, stream = index, so
    /// an object's content does not depend on threads or on other objects.
    fn rng(&self, index: usize) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::seed_from_u64(self.config.seed);
        rng.set_stream(index as u64);
        rng
    }

    fn galaxy_with_rng(&self, index: usize, rng: &mut ChaCha8Rng) -> Galaxy {
        let np = self.parents.len();
        let (parent, perturb) = if index < np {
            (self.parents[index], false)
        } else {
            use rand::Rng;
            (self.parents[rng.random_range(0..np)], true)
        };
        galaxy::build(self.data, &self.data.fitted[parent], perturb, rng)
    }

    /// The physical description of object `index` (no pixels; cheap).
    pub fn galaxy(&self, index: usize) -> Galaxy {
        let mut rng = self.rng(index);
        self.galaxy_with_rng(index, &mut rng)
    }

    /// Generates object `index` (0-based) in full.
    pub fn row(&self, index: usize) -> MockRow {
        let mut rng = self.rng(index);
        let g = self.galaxy_with_rng(index, &mut rng);
        let rendered = image::render(&g, self.config.noise, self.config.neighbours, &mut rng);
        let spec = spectrum::build(
            self.data,
            &g,
            rendered.fiber_fraction_r,
            self.config.noise,
            &mut rng,
        );
        debug_assert_eq!(rendered.image.len(), 3 * SIZE * SIZE);
        debug_assert_eq!(spec.flux.len(), NPIX);
        let bt = g.bulge_fraction[1];
        MockRow {
            targetid: self.config.first_targetid + index as i64,
            ra: g.ra,
            dec: g.dec,
            labels: Labels {
                redshift: g.z,
                parent_index: g.parent as i32,
                perturbed: g.perturbed,
                flux_grz: g.flux_nmgy,
                mag_grz: g.flux_nmgy.map(super::filters::nanomaggies_to_mag),
                log_stellar_mass: g.log_mass,
                log_sfr: g.sfr.max(1e-10).log10(),
                log_ssfr: g.log_ssfr,
                metallicity: g.metallicity,
                age_gyr: g.age_gyr,
                halpha_flux: g.halpha_flux * 1e17,
                star_forming: g.star_forming,
                featured: g.featured,
                edge_on: g.edge_on,
                spiral_arms: g.arms.is_some(),
                arm_count: g.arms.map_or(0, |a| a.count as i32),
                pitch_angle_deg: g.arms.map_or(0.0, |a| a.pitch_deg),
                bulge_fraction: bt,
                inclination_deg: g.inclination_deg,
                axis_ratio: bt * g.q_bulge + (1.0 - bt) * g.q_disk,
                position_angle_deg: g.pa_deg,
                half_light_radius_arcsec: g.half_light_arcsec,
                half_light_radius_kpc: g.half_light_arcsec / g.arcsec_per_kpc,
                fiber_fraction_r: rendered.fiber_fraction_r,
            },
            image: rendered.image,
            spectrum: spec.flux,
            spectrum_ivar: spec.ivar,
        }
    }

    /// Generates a range of objects in parallel (rayon), in index order.
    pub fn rows(&self, range: Range<usize>) -> Vec<MockRow> {
        use rayon::prelude::*;
        range.into_par_iter().map(|i| self.row(i)).collect()
    }

    /// Iterates over all objects in batches of `batch_size` (each batch generated in
    /// parallel). Memory stays at one batch (~300 KB per object).
    pub fn batches(&self, batch_size: usize) -> impl Iterator<Item = Vec<MockRow>> + '_ {
        let step = batch_size.max(1);
        (0..self.len())
            .step_by(step)
            .map(move |start| self.rows(start..(start + step).min(self.len())))
    }
}
