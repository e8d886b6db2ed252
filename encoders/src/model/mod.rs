//! The Burn modules, each a `Config` + `Module` pair.

pub mod astroclip;
pub mod head;
pub(crate) mod nn;
pub mod specformer;
pub mod vit;

pub use nn::{LayerScale, Mlp, VitMlp};
