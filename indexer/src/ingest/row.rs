//! What a reader hands the pipeline: validated rows, and rejected rows with the
//! reason, each tied to its file and row number.

use std::collections::BTreeMap;

use astrovec_engine::AttrValue;
use serde::{Deserialize, Serialize};

/// Pixels of the DESI coadd grid the spectrum encoder expects (3600 + 0.8 i Å).
pub const SPECTRUM_LEN: usize = astrovec_encoders::input::desi::GRID_LEN;

pub use astrovec_encoders::input::{Image, ImageKind};

/// A validated catalog row: everything finite and of the right shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Object id.
    pub id: u64,
    /// Right ascension, ICRS degrees.
    pub ra: f64,
    /// Declination, ICRS degrees.
    pub dec: f64,
    /// Attributes by name (missing values omitted).
    pub attributes: Vec<(String, AttrValue)>,
    /// The cutout, if the row has one.
    pub image: Option<Image>,
    /// The spectrum on the 7,781-pixel grid, if the row has one.
    pub spectrum: Option<Vec<f32>>,
    /// Precomputed embeddings by modality.
    pub embeddings: BTreeMap<String, Vec<f32>>,
}

/// One row as read: its position in the file, its id when it has a valid one,
/// and the row or the reason it is rejected.
#[derive(Debug, Clone)]
pub struct RowOutcome {
    /// 0-based row number within its file.
    pub row: u64,
    /// The id, when the id cell is valid (used for duplicate detection and sharding
    /// even when the row is rejected for another reason).
    pub id: Option<u64>,
    /// The row, or why it is rejected.
    pub result: Result<Row, String>,
}

/// A rejected row, as written (one JSON object per line) to the rejects file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reject {
    /// The input file.
    pub file: String,
    /// 0-based row number within the file.
    pub row: u64,
    /// The id, when valid.
    pub id: Option<u64>,
    /// Why the row was rejected.
    pub reason: String,
}

/// Checks a position: RA in [0, 360] and Dec in [-90, 90] degrees; the error
/// names the field (`ra_name` / `dec_name`).
pub fn check_position(ra_name: &str, ra: f64, dec_name: &str, dec: f64) -> Result<(), String> {
    if !(0.0..=360.0).contains(&ra) {
        return Err(format!("{ra_name}: {ra} is outside [0, 360] degrees"));
    }
    if !(-90.0..=90.0).contains(&dec) {
        return Err(format!("{dec_name}: {dec} is outside [-90, 90] degrees"));
    }
    Ok(())
}

/// Checks that every value is finite; the error names the first bad index.
pub fn check_finite(what: &str, values: &[f32]) -> Result<(), String> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(format!(
            "{what} has a non-finite value ({}) at index {i}",
            values[i]
        )),
    }
}
