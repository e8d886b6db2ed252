//! The parent catalog's columns: the bundled SDSS galaxies (positions, redshifts,
//! ugriz model fluxes, their errors and Galactic extinction) parsed from their
//! FITS binary table.

use super::error::{MockError, Result};
use crate::fits::FitsFile;

/// The SDSS catalog columns the mock needs, one entry per galaxy.
#[derive(Debug, Clone)]
pub(crate) struct Catalog {
    /// Right ascension (deg, J2000).
    pub ra: Vec<f64>,
    /// Declination (deg, J2000).
    pub dec: Vec<f64>,
    /// Spectroscopic redshift.
    pub z: Vec<f64>,
    /// ugriz model fluxes (nanomaggies, SDSS system, not extinction-corrected).
    pub modelflux: Vec<[f64; 5]>,
    /// Their inverse variances (nanomaggies⁻²).
    pub ivar: Vec<[f64; 5]>,
    /// Galactic extinction (mag) per band.
    pub extinction: Vec<[f64; 5]>,
}

impl Catalog {
    /// Parses the bundled catalog file (its bytes).
    pub fn from_fits(bytes: &[u8]) -> Result<Self> {
        const FILE: &str = "sdss_gst_10k.fits";
        let fits = FitsFile::from_bytes(FILE, bytes).map_err(MockError::fits(FILE))?;
        let table = fits
            .hdus()
            .iter()
            .find(|h| h.is_table())
            .ok_or_else(|| MockError::Fits {
                file: FILE,
                reason: "no binary table".into(),
            })?;
        let rows = table.rows().map_err(MockError::fits(FILE))?;
        // A column's values for every row, with its repeat count.
        let column = |name: &str| -> Result<(usize, Vec<f64>)> {
            let col = table.column(name).map_err(MockError::fits(FILE))?;
            let values = table
                .column_f64(&col, 0, rows)
                .map_err(MockError::fits(FILE))?;
            Ok((col.repeat, values))
        };
        let scalar = |name: &str| -> Result<Vec<f64>> {
            let (rep, v) = column(name)?;
            if rep != 1 || v.len() != rows {
                return Err(MockError::Fits {
                    file: FILE,
                    reason: format!("{name} is not a scalar column"),
                });
            }
            Ok(v)
        };
        let five = |name: &str| -> Result<Vec<[f64; 5]>> {
            let (rep, v) = column(name)?;
            if rep != 5 {
                return Err(MockError::Fits {
                    file: FILE,
                    reason: format!("{name} does not have 5 bands"),
                });
            }
            Ok(v.chunks_exact(5)
                .map(|c| [c[0], c[1], c[2], c[3], c[4]])
                .collect())
        };
        Ok(Self {
            ra: scalar("RA")?,
            dec: scalar("DEC")?,
            z: scalar("Z")?,
            modelflux: five("MODELFLUX")?,
            ivar: five("MODELFLUX_IVAR")?,
            extinction: five("EXTINCTION")?,
        })
    }

    /// Galaxies in the catalog.
    pub fn len(&self) -> usize {
        self.z.len()
    }
}
