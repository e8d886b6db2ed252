//! Catalog readers, the mock survey generator and the bulk ingest pipeline.
//!
//! - [`mock`]: a physically based DESI × Legacy Survey stand-in catalog (images,
//!   spectra and labels) built from real SDSS photometry and the kcorrect templates.
//! - [`fits`]: the project's FITS reader (from the encoders' `input`), re-exported for
//!   the readers and the mock.
//! - [`ingest`]: the bulk ingest pipeline: catalog readers with per-row validation,
//!   the column → attribute mapping, batched encoding, resumable and sharded builds,
//!   and the merge of shard collections.

#![warn(missing_docs)]

pub use astrovec_encoders::input::fits;
pub mod ingest;
pub mod mock;
