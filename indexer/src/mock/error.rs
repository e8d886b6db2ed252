//! The mock survey's error type.

use std::path::PathBuf;

impl MockError {
    /// A reader error about the bundled FITS file `file`.
    pub(crate) fn fits(file: &'static str) -> impl Fn(crate::fits::FitsError) -> MockError {
        move |e| MockError::Fits {
            file,
            reason: e.to_string(),
        }
    }
}

/// Everything that can go wrong while building or writing a mock survey.
#[derive(Debug, thiserror::Error)]
pub enum MockError {
    /// A configuration value is out of range; `name` is the field (and CLI flag) at fault.
    #[error("invalid {name}: {reason}")]
    InvalidArgument {
        /// Name of the offending field, e.g. `count`.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A bundled FITS file could not be parsed (a corrupt or unexpected data file).
    #[error("bad FITS data in {file}: {reason}")]
    Fits {
        /// Which bundled file.
        file: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// A bundled filter curve could not be parsed.
    #[error("bad filter curve {file}: {reason}")]
    Filter {
        /// Which bundled file.
        file: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// Reading or writing a file failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The Parquet/Arrow writer failed.
    #[error("Parquet error on {path}: {reason}")]
    Parquet {
        /// The file being written.
        path: PathBuf,
        /// The writer's message.
        reason: String,
    },
    /// Encoding the PNG preview failed.
    #[error("PNG error on {path}: {reason}")]
    Png {
        /// The file being written.
        path: PathBuf,
        /// The encoder's message.
        reason: String,
    },
    /// The RGB mapping of a cutout failed (should not happen for finite images).
    #[error("colour mapping failed: {0}")]
    Rgb(#[from] astrovec_encoders::preprocess::PreprocessError),
}

/// Result alias of the mock module.
pub type Result<T> = std::result::Result<T, MockError>;
