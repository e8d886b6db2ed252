//! The ingest pipeline's error type: every variant that concerns an input file
//! names it, and the column and row where that is known.

use std::path::PathBuf;

/// Everything that stops an ingest (rows that are merely bad are *rejected* and
/// reported instead, see [`super::Reject`]).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// An input file cannot be read as what it claims to be (truncated, corrupt,
    /// wrong dtype, missing column).
    #[error(
        "{}: {}{}{reason}",
        .path.display(),
        .column.as_deref().map(|c| format!("column `{c}`: ")).unwrap_or_default(),
        .row.map(|r| format!("row {r}: ")).unwrap_or_default()
    )]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The column involved, if any.
        column: Option<String>,
        /// The row (0-based, within the file) involved, if known.
        row: Option<u64>,
        /// What is wrong.
        reason: String,
    },
    /// A FITS input cannot be read as required (the error names the file, the
    /// HDU and the column).
    #[error(transparent)]
    Fits(#[from] crate::fits::FitsError),
    /// A command-line or mapping setting is invalid.
    #[error("invalid {name}: {reason}")]
    InvalidArgument {
        /// The setting (flag or mapping key).
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// `--resume` found progress that does not belong to this ingest.
    #[error("cannot resume into {}: {reason}", .path.display())]
    ResumeMismatch {
        /// The collection directory.
        path: PathBuf,
        /// What differs.
        reason: String,
    },
    /// Reading or writing a file failed.
    #[error("I/O error on {}: {source}", .path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The engine refused a write or could not open a collection.
    #[error("collection {}: {source}", .path.display())]
    Engine {
        /// The collection directory.
        path: PathBuf,
        /// The engine's error.
        #[source]
        source: astrovec_engine::Error,
    },
    /// The encoders failed (model loading or a forward pass).
    #[error("encoder: {0}")]
    Encoder(#[from] astrovec_encoders::EncoderError),
    /// A validated row the encoder's input preparation still refused.
    #[error(transparent)]
    Input(#[from] astrovec_encoders::input::InputError),
    /// A pipeline thread panicked or hung up (a bug).
    #[error("pipeline stage `{0}` stopped unexpectedly")]
    Stage(&'static str),
}

impl IngestError {
    /// A malformed-file error.
    pub fn malformed(
        path: impl Into<PathBuf>,
        column: Option<&str>,
        row: Option<u64>,
        reason: impl Into<String>,
    ) -> Self {
        IngestError::Malformed {
            path: path.into(),
            column: column.map(str::to_string),
            row,
            reason: reason.into(),
        }
    }

    /// An invalid-setting error.
    pub fn invalid(name: impl Into<String>, reason: impl Into<String>) -> Self {
        IngestError::InvalidArgument {
            name: name.into(),
            reason: reason.into(),
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        IngestError::Io {
            path: path.into(),
            source,
        }
    }

    /// An engine error on the collection at `path`.
    pub fn engine(path: impl Into<PathBuf>, source: astrovec_engine::Error) -> Self {
        IngestError::Engine {
            path: path.into(),
            source,
        }
    }
}

/// Result alias of the ingest module.
pub type Result<T, E = IngestError> = std::result::Result<T, E>;
