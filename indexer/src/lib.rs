//! Catalog readers, the mock survey generator and the bulk ingest pipeline.
//!
//! For now the crate holds [`mock`]: a physically based DESI × Legacy Survey
//! stand-in catalog (images, spectra and labels) built from real SDSS photometry
//! and the kcorrect templates.

#![warn(missing_docs)]

pub mod mock;
