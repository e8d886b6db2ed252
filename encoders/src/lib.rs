//! AstroCLIP image and spectrum encoders in Burn.
//!
//! A faithful port of the published AstroCLIP model (Parker et al. 2024), specified in
//! `shared/docs/ASTROCLIP_REFERENCE.md`: a DINOv2 ViT image backbone and a SpecFormer spectrum
//! backbone, each followed by a cross-attention head, embedding into one space.
//!
//! - [`model`]: the Burn modules, each a `Config` + `Module` pair; [`AstroClipConfig`] holds
//!   every size, with presets `astroclip` (published), `small` and `tiny`.
//! - [`weights`]: strict loading from safetensors or a Lightning `.ckpt` (`state_dict` only)
//!   under the reference's checkpoint keys, and saving back to safetensors.
//! - [`encoder`]: [`Encoder`] / [`AnyEncoder`]: flat `f32` buffers in, embedding rows out,
//!   with input checks; the backend (CPU, or CUDA with the `cuda` feature) chosen at run time.
//! - [`preprocess`]: the Legacy Survey g, r, z → RGB mapping and centre crop.
//! - [`input`]: from a file (JPEG, PNG, FITS, `.npy`, CSV, DESI coadd) to the model's
//!   input, one implementation per format for every path that reads one.
//! - [`train`]: contrastive alignment and masked-spectrum pre-training (Burn autodiff).
//!
//! The crate knows nothing of ids, storage or HTTP: files and arrays in, embeddings out.

#![warn(missing_docs)]

mod backend;
pub mod ckpt;
pub mod encoder;
pub mod error;
pub mod input;
pub mod model;
pub mod preprocess;
mod tensors;
pub mod train;
pub mod weights;

#[cfg(feature = "cuda")]
pub use backend::CudaBackend;
pub use backend::{BackendChoice, CpuBackend};
pub use encoder::{prepare_grz, AnyEncoder, Encoder};
pub use error::{EncoderError, Result};
pub use model::astroclip::{AstroClip, AstroClipConfig};
