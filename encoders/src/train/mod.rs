//! Training: the AstroCLIP contrastive alignment and SpecFormer masked-spectrum
//! pre-training, with AdamW, a warm-up + cosine schedule, gradient clipping,
//! augmentations, exact-resume checkpoints and the metrics reported per epoch.
//!
//! The loop itself (data order, epochs, progress) belongs to the caller; a [`Trainer`]
//! takes batches of model-ready inputs. Gradients come from Burn's autodiff on the same
//! backend that runs inference (the CPU backend by default).

pub mod augment;
pub mod loss;
pub mod metrics;
pub mod mlp;
pub mod schedule;
mod trainer;

pub use augment::Augment;
pub use trainer::{step_rng, token_mask, Batch, Objective, TrainConfig, TrainModel, Trainer};
