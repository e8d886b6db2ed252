//! The crate's one error type.

use std::path::PathBuf;

use crate::preprocess::PreprocessError;

/// Convenience alias used throughout the crate.
pub type Result<T> = std::result::Result<T, EncoderError>;

/// Everything that can go wrong while building, loading or running the encoders.
///
/// Input errors (`Image*`, `Spectrum*`, `NonFinite`, `Preprocess`, `EmptyBatch`) are the
/// caller's fault; weight errors name the offending tensor key; I/O errors carry the path.
#[derive(Debug, thiserror::Error)]
pub enum EncoderError {
    /// The image mapping (`legacy_rgb`, `center_crop`) rejected its input.
    #[error(transparent)]
    Preprocess(#[from] PreprocessError),
    /// An image batch buffer does not hold a whole number of images of the expected size.
    #[error(
        "image buffer has {got} values, not a multiple of {channels} × {height} × {width} = {per_image} \
         (one image of the model's size)"
    )]
    ImageSize {
        /// Values supplied.
        got: usize,
        /// Values per image the model expects.
        per_image: usize,
        /// Channels the model expects.
        channels: usize,
        /// Rows the model expects.
        height: usize,
        /// Columns the model expects.
        width: usize,
    },
    /// An image has the wrong number of bands (the model wants 3: g, r, z or z, r, g).
    #[error("image has {got} bands, expected {expected}")]
    BandCount {
        /// Bands supplied.
        got: usize,
        /// Bands expected.
        expected: usize,
    },
    /// A raw cutout is smaller than the model's input (it is centre-cropped, never padded).
    #[error("cutout is {height} × {width}, smaller than the model's {size} × {size} input")]
    CutoutTooSmall {
        /// Rows supplied.
        height: usize,
        /// Columns supplied.
        width: usize,
        /// The model's image size.
        size: usize,
    },
    /// A spectrum batch buffer does not hold a whole number of spectra of the expected length.
    #[error("spectrum buffer has {got} values, not a multiple of the model's spectrum length {expected}")]
    SpectrumLength {
        /// Values supplied.
        got: usize,
        /// Pixels per spectrum the model expects.
        expected: usize,
    },
    /// An input batch is empty.
    #[error("empty {what} batch")]
    EmptyBatch {
        /// `"image"` or `"spectrum"`.
        what: &'static str,
    },
    /// An input value is NaN or infinite.
    #[error("{what} {item} has a non-finite value at index {index}")]
    NonFinite {
        /// `"image"` or `"spectrum"`.
        what: &'static str,
        /// Position of the item in the batch.
        item: usize,
        /// Flat index of the value inside the item.
        index: usize,
    },
    /// A configuration is inconsistent (e.g. width not divisible by the head count).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A preset name is not known.
    #[error("unknown preset {0:?} (known: astroclip, small, tiny)")]
    UnknownPreset(String),
    /// A backend name is not known or not compiled in.
    #[error("backend {0:?} is not available (known: cpu; cuda[:N] with the `cuda` feature)")]
    UnknownBackend(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A weight or configuration file is malformed.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The weights lack a tensor the model needs.
    #[error("missing tensor {key:?} in the weights")]
    MissingTensor {
        /// Checkpoint key.
        key: String,
    },
    /// The weights hold a tensor the model does not know (never silently ignored).
    #[error("unexpected tensor {key:?} in the weights ({count} unexpected in all)")]
    UnexpectedTensor {
        /// The first unexpected checkpoint key, in sorted order.
        key: String,
        /// How many keys were unexpected.
        count: usize,
    },
    /// A tensor's shape differs from the one the configuration implies.
    #[error("tensor {key:?} has shape {got:?}, expected {expected:?}")]
    TensorShape {
        /// Checkpoint key.
        key: String,
        /// Shape in the file.
        got: Vec<usize>,
        /// Shape the configuration implies (PyTorch layout).
        expected: Vec<usize>,
    },
    /// A tensor has a dtype that cannot be converted to f32.
    #[error("tensor {key:?} has unsupported dtype {dtype}")]
    TensorDtype {
        /// Checkpoint key.
        key: String,
        /// The dtype found.
        dtype: String,
    },
}

impl EncoderError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Format {
            path: path.into(),
            message: message.into(),
        }
    }
}
