//! One module per subcommand: argument types (clap) and the glue that turns them
//! into calls on the library crates.

pub mod collection;
pub mod demo;
pub mod embed;
pub mod eval;
pub mod ingest;
pub mod merge;
pub mod mock;
pub mod serve;
pub mod train;

use std::path::Path;

use anyhow::{bail, Result};
use astrovec_indexer::ingest::Image;

/// A catalog row's image as the model's input (the preparation every path shares).
pub(crate) fn model_image(img: &Image, size: usize) -> Result<Vec<f32>> {
    Ok(img.model_input("image", size)?)
}

/// Fails, naming the file and the object, when a spectrum's length is not the model's.
pub(crate) fn check_spectrum_length(path: &Path, id: u64, got: usize, want: usize) -> Result<()> {
    if got != want {
        bail!(
            "{}: object {id} has a spectrum of {got} pixels, the model takes {want}",
            path.display()
        );
    }
    Ok(())
}
