//! The row plan every reader shares: which columns (or datasets, or header
//! keywords) become the id, position, image, spectrum, embeddings and attributes
//! of a row, what is left out and why, and how an image or spectrum cell of any
//! reader is checked and brought to the pipeline's layout.

use astrovec_engine::AttributeDef;

use astrovec_encoders::input::image::Layout;
use astrovec_encoders::input::Array;

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

/// Interprets an image cell (g, r, z nanomaggies): planar `[3,H,W]`, channel-last
/// `[H,W,3]`, or flat `3·H·W` values of a square image in the given layout — the
/// encoders' [`Image::from_array`], so uploads of the same array read it alike.
pub fn to_image(
    shape: &[usize],
    values: Vec<f32>,
    layout: ImageLayout,
    min_size: usize,
) -> std::result::Result<Image, String> {
    let layout = match layout {
        ImageLayout::Hwc => Layout::Hwc,
        ImageLayout::Auto | ImageLayout::Chw => Layout::Auto,
    };
    let array = Array {
        shape: shape.to_vec(),
        data: values,
    };
    let img =
        Image::from_array("image", array, ImageKind::Grz, layout).map_err(|e| e.to_string())?;
    let (h, w) = (img.height, img.width);
    if h < min_size || w < min_size {
        return Err(format!(
            "image is {h}×{w}, smaller than the encoder's {min_size}×{min_size} input"
        ));
    }
    check_finite("image", &img.data)?;
    Ok(img)
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
