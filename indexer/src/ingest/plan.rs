//! The row plan every reader shares: which columns (or datasets, or header
//! keywords) become the id, position, image, spectrum, embeddings and attributes
//! of a row, what is left out and why, and how an image or spectrum cell of any
//! reader is checked and brought to the pipeline's layout.

use astrovec_engine::AttributeDef;

use super::mapping::ImageLayout;
use super::row::{check_finite, Image, ImageKind, SPECTRUM_LEN};

/// Name of the attribute saying whether an object's sky position is known (1) or
/// was set to (0°, 0°) because the input had none (image cutouts without one,
/// HDF5 groups without `ra`/`dec`), so cone searches can exclude it.
pub const POSITION_KNOWN: &str = "position_known";

/// A column not read, with the reason (as in the report).
pub type Ignored = (String, String);

/// An attribute read from a column.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedAttribute {
    /// The column.
    pub column: String,
    /// The attribute it becomes.
    pub def: AttributeDef,
}

/// How a catalog's columns are used, decided once from the first file's schema
/// and the mapping; every further file must have the same columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Id column.
    pub id: String,
    /// RA column.
    pub ra: String,
    /// Dec column.
    pub dec: String,
    /// Image column, when present.
    pub image: Option<String>,
    /// Layout of a flat image column.
    pub image_layout: ImageLayout,
    /// Spectrum column, when present.
    pub spectrum: Option<String>,
    /// Precomputed embeddings: (modality, column, dimension).
    pub embeddings: Vec<(String, String, usize)>,
    /// Columns read as attributes.
    pub attributes: Vec<PlannedAttribute>,
    /// Columns not read, with the reason (reported).
    pub ignored: Vec<Ignored>,
    /// Smallest image side accepted (the encoder's crop size; 0 without an encoder).
    pub min_image_size: usize,
}

impl Plan {
    /// Every column the plan reads.
    pub fn columns(&self) -> Vec<&str> {
        let mut v = vec![self.id.as_str(), self.ra.as_str(), self.dec.as_str()];
        v.extend(self.image.as_deref());
        v.extend(self.spectrum.as_deref());
        v.extend(self.embeddings.iter().map(|e| e.1.as_str()));
        v.extend(self.attributes.iter().map(|a| a.column.as_str()));
        v
    }
}

/// Interprets an image cell: planar `[3,H,W]`, channel-last `[H,W,3]`, or flat
/// `3·H·W` values of a square image in the given layout.
pub fn to_image(
    shape: &[usize],
    values: Vec<f32>,
    layout: ImageLayout,
    min_size: usize,
) -> std::result::Result<Image, String> {
    let (h, w, hwc) = match shape {
        [3, h, w] if layout != ImageLayout::Hwc => (*h, *w, false),
        [h, w, 3] => (*h, *w, true),
        [n] if n % 3 == 0 => {
            let side = ((n / 3) as f64).sqrt().round() as usize;
            if side * side * 3 != *n {
                return Err(format!("{n} values are not a square 3-band image"));
            }
            (side, side, layout == ImageLayout::Hwc)
        }
        other => {
            return Err(format!(
                "shape {other:?} is not [3,H,W], [H,W,3] or flat 3·H·W"
            ))
        }
    };
    if h < min_size || w < min_size {
        return Err(format!(
            "image is {h}×{w}, smaller than the encoder's {min_size}×{min_size} input"
        ));
    }
    check_finite("image", &values)?;
    let data = if hwc {
        let plane = h * w;
        let mut out = vec![0.0f32; 3 * plane];
        for (p, px) in values.chunks_exact(3).enumerate() {
            for b in 0..3 {
                out[b * plane + p] = px[b];
            }
        }
        out
    } else {
        values
    };
    Ok(Image {
        kind: ImageKind::Grz,
        height: h,
        width: w,
        data,
    })
}

/// Interprets a spectrum cell: 7781 values, possibly with unit axes (`[7781, 1]`).
pub fn to_spectrum(shape: &[usize], values: Vec<f32>) -> std::result::Result<Vec<f32>, String> {
    if values.len() != SPECTRUM_LEN || shape.iter().any(|&d| d != 1 && d != SPECTRUM_LEN) {
        return Err(format!(
            "spectrum has shape {shape:?}, expected {SPECTRUM_LEN} pixels on the DESI grid"
        ));
    }
    check_finite("spectrum", &values)?;
    Ok(values)
}
