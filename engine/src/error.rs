//! The engine's error type. Every variant says what went wrong and, where a file
//! is involved, which one; [`Error::is_user_error`] tells callers (the server, the
//! CLI) whether the caller or the service is at fault.

use std::path::PathBuf;

/// Result alias used throughout the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A vector's length differs from the modality's configured dimension.
    #[error("modality `{modality}` expects vectors of dimension {expected}, got {got}")]
    DimensionMismatch {
        /// Modality name.
        modality: String,
        /// Configured dimension.
        expected: usize,
        /// Supplied length.
        got: usize,
    },
    /// A vector holds NaN or an infinity.
    #[error("vector for modality `{modality}` has a non-finite component at index {index}")]
    NonFiniteVector {
        /// Modality name.
        modality: String,
        /// First offending index.
        index: usize,
    },
    /// A vector has zero length, so it has no direction for cosine similarity.
    #[error("vector for modality `{modality}` is all zeros (cosine similarity is undefined)")]
    ZeroVector {
        /// Modality name.
        modality: String,
    },
    /// The collection has no modality of that name.
    #[error("unknown modality `{name}` (the collection has: {known})")]
    UnknownModality {
        /// Requested name.
        name: String,
        /// Comma-separated list of configured modalities.
        known: String,
    },
    /// The collection has no attribute of that name.
    #[error("unknown attribute `{name}` (the collection has: {known})")]
    UnknownAttribute {
        /// Requested name.
        name: String,
        /// Comma-separated list of declared attributes.
        known: String,
    },
    /// An attribute value has the wrong type, or a filter compares it with the wrong type.
    #[error("attribute `{name}` is {expected}, got {got}")]
    AttributeType {
        /// Attribute name.
        name: String,
        /// Declared type.
        expected: String,
        /// What was supplied.
        got: String,
    },
    /// A value is outside its allowed range (e.g. dec beyond ±90°, k = 0).
    #[error("invalid {field}: {reason}")]
    InvalidArgument {
        /// Field or parameter name (with its unit where it has one).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A collection configuration is not valid.
    #[error("invalid collection configuration: {0}")]
    InvalidConfig(String),
    /// A filter expression could not be parsed.
    #[error("filter syntax error at character {position}: {message}")]
    FilterSyntax {
        /// 0-based character offset in the expression.
        position: usize,
        /// What was expected.
        message: String,
    },
    /// The object does not exist.
    #[error("object {0} not found")]
    NotFound(u64),
    /// The object exists but has no embedding for the modality.
    #[error("object {id} has no `{modality}` embedding")]
    MissingEmbedding {
        /// Object id.
        id: u64,
        /// Modality name.
        modality: String,
    },
    /// A directory is not a collection.
    #[error("{path}: not an astrovec collection ({reason})")]
    NotACollection {
        /// Directory.
        path: PathBuf,
        /// Why it was rejected.
        reason: String,
    },
    /// A collection already exists where one was to be created.
    #[error("{0}: a collection (or other files) already exists here")]
    AlreadyExists(PathBuf),
    /// A file is damaged, truncated, of another format version, or not ours.
    #[error("{path}: corrupt or foreign file: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What check failed.
        reason: String,
    },
    /// An I/O error on a file.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// RocksDB reported an error.
    #[error("storage error in {path}: {message}")]
    Storage {
        /// The collection's database directory.
        path: PathBuf,
        /// RocksDB's message.
        message: String,
    },
}

impl Error {
    /// True when the caller supplied bad input (HTTP 4xx), false for failures of
    /// the service or its files (HTTP 5xx).
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            Error::DimensionMismatch { .. }
                | Error::NonFiniteVector { .. }
                | Error::ZeroVector { .. }
                | Error::UnknownModality { .. }
                | Error::UnknownAttribute { .. }
                | Error::AttributeType { .. }
                | Error::InvalidArgument { .. }
                | Error::InvalidConfig(_)
                | Error::FilterSyntax { .. }
                | Error::NotFound(_)
                | Error::MissingEmbedding { .. }
                | Error::AlreadyExists(_)
        )
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
