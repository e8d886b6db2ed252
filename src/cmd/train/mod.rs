//! `astrovec train`: trains an AstroCLIP-style model on a catalog — contrastive
//! alignment of images and spectra, or SpecFormer masked-spectrum pre-training — and
//! writes a model directory the encoders load (`config.json`, `model.safetensors`) with
//! its model card, training record and loss curves.
//!
//! The catalog is read with the ingest readers, prepared once (images mapped to the
//! model's RGB input and centre-cropped; spectra as given) and held in memory. Objects
//! are split into training and validation sets by a hash of their id (or of their
//! `--group-column` value, so that rows of one source never straddle the split), so the
//! split is the same whatever the file order.
//!
//! `data` reads and splits the catalog, `run` drives the epochs and checkpoints,
//! `card` holds what a run records and the model card written from it.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use astrovec_encoders::{BackendChoice, CpuBackend};
use indicatif::{ProgressBar, ProgressStyle};

mod card;
mod data;
mod run;

/// The training objective on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ObjectiveArg {
    /// Contrastive image–spectrum alignment (the AstroCLIP loss).
    Align,
    /// SpecFormer masked-spectrum pre-training.
    PretrainSpectrum,
}

/// Arguments of `astrovec train`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Catalog files (Parquet, in the mock survey or AstroCLIP layout) with images and
    /// spectra.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output model directory (config.json, model.safetensors, MODEL_CARD.md,
    /// training.json, loss.png, checkpoints/).
    #[arg(short, long)]
    pub out: PathBuf,
    /// What to optimise.
    #[arg(long, value_enum, default_value_t = ObjectiveArg::Align)]
    pub objective: ObjectiveArg,
    /// Model sizes by preset (astroclip, small, tiny) for a model trained from scratch.
    #[arg(long, default_value = "small", conflicts_with = "init")]
    pub preset: String,
    /// Start from this model directory (config.json + model.safetensors), e.g. a
    /// pre-trained spectrum backbone or a model to fine-tune.
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// Passes over the training split.
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Pairs per optimiser step.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Peak learning rate (AdamW).
    #[arg(long, default_value_t = 3e-4)]
    pub lr: f64,
    /// AdamW weight decay.
    #[arg(long, default_value_t = 0.05)]
    pub weight_decay: f64,
    /// Linear warm-up steps before the cosine decay.
    #[arg(long, default_value_t = 200)]
    pub warmup_steps: usize,
    /// Final learning rate as a fraction of the peak.
    #[arg(long, default_value_t = 0.02)]
    pub final_lr_ratio: f64,
    /// Largest L2 norm of each parameter's gradient (0 turns clipping off).
    #[arg(long, default_value_t = 1.0)]
    pub grad_clip: f32,
    /// Fixed multiplier of the contrastive logits.
    #[arg(long, default_value_t = 15.5)]
    pub logit_scale: f64,
    /// Keep the image backbone's weights fixed.
    #[arg(long)]
    pub freeze_image_backbone: bool,
    /// Keep the spectrum backbone's weights fixed.
    #[arg(long)]
    pub freeze_spectrum_backbone: bool,
    /// Turn off the augmentations (image flips, 90° rotations, noise; spectrum noise).
    #[arg(long)]
    pub no_augment: bool,
    /// Pre-training: masked chunks per spectrum.
    #[arg(long, default_value_t = 6)]
    pub mask_chunks: usize,
    /// Pre-training: tokens per masked chunk (default: 50 scaled by the model's token
    /// count / 778, i.e. 50 for the published sizes).
    #[arg(long)]
    pub mask_chunk_tokens: Option<usize>,
    /// Fraction of objects (by a hash of the id, or of the --group-column value) held
    /// out for validation.
    #[arg(long, default_value_t = 0.1)]
    pub val_fraction: f64,
    /// Seed of the initial weights, data order, augmentations and masks.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Use at most this many objects from the inputs (in file order).
    #[arg(long)]
    pub max_objects: Option<usize>,
    /// Continue from `OUT/checkpoints/last` (same settings, same data).
    #[arg(long)]
    pub resume: bool,
    /// A held-out catalog (Parquet) to score the final model on: cross-modal retrieval
    /// and k-NN (k = 64) redshift R² from each modality, written to the model card.
    #[arg(long)]
    pub heldout: Option<PathBuf>,
    /// Skip this many rows at the start of the held-out catalog (e.g. when the
    /// training run used the first rows of the same file through --max-objects).
    #[arg(long, default_value_t = 0)]
    pub heldout_skip: usize,
    /// A catalog column whose equal values mark the same source (e.g. the mock's
    /// `parent_index`, or a survey's object id when it was observed more than once):
    /// objects sharing a value stay on one side of the train/validation split, and with
    /// --heldout no object sharing a value with a held-out object is trained on.
    #[arg(long)]
    pub group_column: Option<String>,
    /// Free text describing the data (how the catalog was made, its seed and size),
    /// recorded in the model card.
    #[arg(long)]
    pub data_note: Option<String>,
    /// Backend: `cpu`, or `cuda` / `cuda:N` when built with the `cuda` feature.
    #[arg(long, default_value = "cpu")]
    pub backend: String,
    /// Hide progress bars.
    #[arg(long)]
    pub quiet: bool,
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<()> {
    let backend: BackendChoice = args
        .backend
        .parse()
        .with_context(|| format!("--backend {}", args.backend))?;
    match backend {
        BackendChoice::Cpu => run::train::<CpuBackend>(args, Default::default()),
        #[cfg(feature = "cuda")]
        BackendChoice::Cuda(i) => run::train::<astrovec_encoders::CudaBackend>(
            args,
            burn::backend::cuda::CudaDevice::new(i),
        ),
        #[cfg(not(feature = "cuda"))]
        BackendChoice::Cuda(_) => bail!("--backend cuda needs a build with `--features cuda`"),
    }
}

/// A progress bar on stderr titled `what` (hidden with `--quiet`).
fn progress(quiet: bool, len: u64, what: &str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>9} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec}, ETA {eta}) {msg}",
        )
        .expect("valid template"),
    );
    bar.set_prefix(what.to_string());
    bar
}
