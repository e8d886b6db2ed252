//! The bundled real inputs (see `indexer/data/NOTICE.md`), compiled into the
//! library so `astrovec mock` runs from any directory.

use std::sync::OnceLock;

use super::catalog::Catalog;
use super::error::Result;
use super::filters::Filter;
use super::fit::{fit_catalog, FittedGalaxy};
use super::sed::Templates;

const CATALOG_FITS: &[u8] = include_bytes!("../../data/sdss_gst_10k.fits");
const TEMPLATES_FITS: &[u8] = include_bytes!("../../data/kcorrect-default-v4.fits");

macro_rules! filter {
    ($name:literal, $file:literal) => {
        Filter::from_ecsv(
            $name,
            $file,
            include_str!(concat!("../../data/filters/", $file)),
        )
    };
}

/// Templates, filters and the fitted parent catalog, shared by all surveys.
#[derive(Debug)]
pub struct MockData {
    /// The kcorrect basis (emission lines masked).
    pub templates: Templates,
    /// SDSS u, g, r, i, z.
    pub sdss: [Filter; 5],
    /// DECam g, r, z (Legacy Survey DR9 south).
    pub decam: [Filter; 3],
    /// Every catalog galaxy with its fit, in catalog order.
    pub fitted: Vec<FittedGalaxy>,
}

impl MockData {
    /// Parses the bundled files and fits all 10,000 galaxies (about a second).
    pub fn load() -> Result<Self> {
        let templates = Templates::from_fits(TEMPLATES_FITS)?;
        let sdss = [
            filter!("sdss_u", "sdss2010-u.ecsv")?,
            filter!("sdss_g", "sdss2010-g.ecsv")?,
            filter!("sdss_r", "sdss2010-r.ecsv")?,
            filter!("sdss_i", "sdss2010-i.ecsv")?,
            filter!("sdss_z", "sdss2010-z.ecsv")?,
        ];
        let decam = [
            filter!("decam_g", "decam2014-g.ecsv")?,
            filter!("decam_r", "decam2014-r.ecsv")?,
            filter!("decam_z", "decam2014-z.ecsv")?,
        ];
        let catalog = Catalog::from_fits(CATALOG_FITS)?;
        let fitted = fit_catalog(&catalog, &templates, &sdss);
        Ok(Self {
            templates,
            sdss,
            decam,
            fitted,
        })
    }

    /// The process-wide copy (loaded and fitted on first use).
    pub fn shared() -> Result<&'static MockData> {
        static DATA: OnceLock<MockData> = OnceLock::new();
        if let Some(d) = DATA.get() {
            return Ok(d);
        }
        let d = Self::load()?;
        Ok(DATA.get_or_init(|| d))
    }
}
