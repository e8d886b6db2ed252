//! From a file to the model's input: one implementation per format, used by the ingest,
//! the server's uploads (HTTP and the web page) and `astrovec embed`, so one file gives
//! one embedding whichever way it comes in.
//!
//! - Images: JPEG and PNG pictures ([`raster`]: display colours, R, G, B), FITS g, r, z
//!   cutouts and numeric arrays ([`image`]: planar `[3, H, W]` or channel-last
//!   `[H, W, 3]`, g, r, z nanomaggies or display RGB). [`Image::model_input`] turns any of
//!   them into what the image encoder takes: pictures centre-cropped to a square and
//!   area-resampled to the model's size, g, r, z cutouts mapped with the Legacy Survey
//!   colours and centre-cropped.
//! - Spectra ([`spectrum`]): values on the model's grid, `.npy`, a FITS image HDU, a CSV
//!   (one flux column, or wavelength and flux resampled onto the grid) and DESI coadds
//!   ([`desi`]: the b, r, z arms combined onto the grid).
//! - Containers: [`npy`] (numpy arrays) and [`fits`] (headers, images, binary tables).
//!
//! Every error names the file or field (`what`) and the problem, and sizes read from a
//! header are checked (against [`MAX_PIXELS`] and with checked arithmetic) before anything
//! is allocated.

pub mod desi;
pub mod fits;
pub mod image;
pub mod npy;
pub mod raster;
pub mod spectrum;

pub use image::{Image, ImageKind};

/// The most pixels (height × width) an image may claim in its header: 4096 × 4096, far
/// above a survey cutout (152 × 152 for the reference data), low enough that decoding
/// one stays within ~200 MB.
pub const MAX_PIXELS: usize = 4096 * 4096;

/// A file or field that is not model input: `what` names it, `expected` says what was
/// wanted and `got` what was found.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{what}: expected {expected}, got {got}")]
pub struct InputError {
    /// The file (path) or request field.
    pub what: String,
    /// What the input should have been.
    pub expected: String,
    /// What it was.
    pub got: String,
}

impl InputError {
    /// An error about `what`.
    pub fn new(
        what: impl Into<String>,
        expected: impl Into<String>,
        got: impl Into<String>,
    ) -> Self {
        InputError {
            what: what.into(),
            expected: expected.into(),
            got: got.into(),
        }
    }
}

/// Result of this module.
pub type Result<T, E = InputError> = std::result::Result<T, E>;

/// An n-d array of numbers, as `.npy`, FITS or JSON give it.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    /// Shape, slowest axis first (numpy order).
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
}

impl Array {
    /// An array from values and a shape, checking that they agree.
    pub fn new(what: &str, shape: Vec<usize>, data: Vec<f32>) -> Result<Array> {
        let n = element_count(what, &shape)?;
        if n != data.len() {
            return Err(InputError::new(
                what,
                format!("{n} values for shape {shape:?}"),
                format!("{} values", data.len()),
            ));
        }
        Ok(Array { shape, data })
    }
}

/// The number of elements of `shape`, or an error when the product overflows.
pub fn element_count(what: &str, shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| {
            InputError::new(
                what,
                "a shape whose size fits in memory",
                format!("shape {shape:?}"),
            )
        })
}

/// Checks that every value is finite; the error names the first offending index.
pub fn check_finite(what: &str, values: &[f32]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(InputError::new(
            format!("{what}[{i}]"),
            "a finite number",
            "NaN or infinity",
        )),
    }
}

/// The lower-case extension of a path (`""` when it has none).
pub fn extension(path: &std::path::Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}
