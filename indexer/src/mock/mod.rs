//! A physically based mock DESI × Legacy Survey catalog: paired g, r, z cutouts and
//! optical spectra with physical labels, shaped like the AstroCLIP training set.
//!
//! # How a mock galaxy is made
//!
//! 1. **Parents.** The 10,000 real SDSS galaxies of `sdss_gst_10k.fits` (ugriz model
//!    fluxes, spectroscopic z) are each fitted by non-negative least squares with the
//!    five kcorrect v4 templates redshifted to their z and integrated through the
//!    SDSS filter curves ([`FittedGalaxy`]). Up to the number of usable parents,
//!    object *i* is parent *perm(i)* as fitted; beyond, parents are resampled with
//!    ±15 % log-normal changes of each template's mass and σ_z = 0.01 (1+z), so the
//!    redshift–colour–type correlations are those of the real sample.
//! 2. **Labels** follow from the coefficients (Blanton & Roweis 2007): stellar mass
//!    = Σ c_k MREMAIN_k (D_L/10 pc)² (flat ΛCDM, H0 = 70, Ωm = 0.3), metallicity
//!    = MREMAIN-weighted METS, SFR = Σ c_k M300_k / 300 Myr, sSFR = SFR/mass,
//!    mass-weighted age from M300/M1000 ([`galaxy::mass_weighted_age_gyr`]).
//!    Morphology (B/T, featured/smooth, arms, inclination) is drawn from sSFR and
//!    mass with scatter; sizes from the Shen et al. (2003) size–mass relations.
//! 3. **Spectrum** ([`spectrum`]): template mix + emission lines scaled with SFR
//!    ([`sed::emission_lines`]) on the DESI grid, noise from a fibre sky model.
//! 4. **Image** ([`image`]): de Vaucouleurs bulge + exponential disk (+ log spiral
//!    arms) whose g, r, z totals are the SED's synthetic DECam photometry, PSF of DR9
//!    FWHM, neighbours, sky and Poisson noise.
//!
//! # Using it
//!
//! ```no_run
//! use astrovec_indexer::mock::{MockConfig, MockSurvey};
//! let survey = MockSurvey::new(MockConfig { count: 100, seed: 7, ..Default::default() })?;
//! for batch in survey.batches(32) {
//!     for row in batch {
//!         // row.targetid, row.ra, row.dec, row.labels, row.image, row.spectrum
//!     }
//! }
//! survey.write_parquet(std::path::Path::new("mock.parquet"), true)?;
//! # Ok::<(), astrovec_indexer::mock::MockError>(())
//! ```

mod catalog;
pub mod cosmology;
mod data;
mod error;
pub mod filters;
mod fit;
pub mod galaxy;
pub mod image;
mod parquet;
mod preview;
pub mod profiles;
pub mod sed;
pub mod spectrum;
mod survey;

pub use data::MockData;
pub use error::{MockError, Result};
pub use fit::FittedGalaxy;
pub use galaxy::Galaxy;
pub use parquet::{schema, to_record_batch, ROWS_PER_GROUP};
pub use survey::{Labels, MockConfig, MockRow, MockSurvey, MAX_COUNT};
