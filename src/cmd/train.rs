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

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use astrovec_encoders::model::astroclip::{CONFIG_FILE, WEIGHTS_FILE};
use astrovec_encoders::train::metrics::{knn_regress, partner_ranks, r2, Retrieval};
use astrovec_encoders::train::{step_rng, Augment, Batch, Objective, TrainConfig, Trainer};
use astrovec_encoders::{AstroClipConfig, BackendChoice, CpuBackend, Encoder};
use astrovec_engine::AttrValue;
use astrovec_indexer::ingest::mapping::Mapping;
use astrovec_indexer::ingest::shard::mix;
use astrovec_indexer::ingest::source::open_sources;
use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::plot;

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

/// Images and spectra prepared for the model, with ids and redshifts.
struct Dataset {
    ids: Vec<u64>,
    /// `[n, 3, size, size]`, model-ready (empty rows for pre-training data without images).
    images: Vec<f32>,
    /// `[n, spectrum_length]`.
    spectra: Vec<f32>,
    /// Redshift per object (NaN where the catalog has none).
    redshift: Vec<f64>,
    /// Source group per object: the --group-column value's key, else the id.
    groups: Vec<u64>,
    image_len: usize,
    spectrum_len: usize,
}

impl Dataset {
    fn len(&self) -> usize {
        self.ids.len()
    }

    fn subset(&self, idx: &[usize]) -> Dataset {
        let mut out = Dataset {
            ids: Vec::with_capacity(idx.len()),
            images: Vec::with_capacity(idx.len() * self.image_len),
            spectra: Vec::with_capacity(idx.len() * self.spectrum_len),
            redshift: Vec::with_capacity(idx.len()),
            groups: Vec::with_capacity(idx.len()),
            image_len: self.image_len,
            spectrum_len: self.spectrum_len,
        };
        for &i in idx {
            out.ids.push(self.ids[i]);
            if self.image_len > 0 && !self.images.is_empty() {
                out.images
                    .extend_from_slice(&self.images[i * self.image_len..(i + 1) * self.image_len]);
            }
            out.spectra.extend_from_slice(
                &self.spectra[i * self.spectrum_len..(i + 1) * self.spectrum_len],
            );
            out.redshift.push(self.redshift[i]);
            out.groups.push(self.groups[i]);
        }
        out
    }

    /// A batch of items `idx`, augmented with `rng` when `augment` is given.
    fn batch(
        &self,
        idx: &[usize],
        augment: Option<(&Augment, &mut ChaCha8Rng)>,
        size: usize,
    ) -> Batch {
        let mut b = Batch {
            len: idx.len(),
            images: Vec::with_capacity(idx.len() * self.image_len),
            spectra: Vec::with_capacity(idx.len() * self.spectrum_len),
        };
        for &i in idx {
            if !self.images.is_empty() {
                b.images
                    .extend_from_slice(&self.images[i * self.image_len..(i + 1) * self.image_len]);
            }
            b.spectra.extend_from_slice(
                &self.spectra[i * self.spectrum_len..(i + 1) * self.spectrum_len],
            );
        }
        if let Some((aug, rng)) = augment {
            if !b.images.is_empty() {
                for img in b.images.chunks_mut(self.image_len) {
                    aug.image(rng, img, 3, size);
                }
            }
            for s in b.spectra.chunks_mut(self.spectrum_len) {
                aug.spectrum(rng, s);
            }
        }
        b
    }
}

/// Which rows [`load`] reads and how it groups them.
#[derive(Default)]
struct Selection<'a> {
    /// Rows skipped at the start of the inputs.
    skip: usize,
    /// Most objects read.
    max: Option<usize>,
    /// Column whose value is each object's group (else the id).
    group_column: Option<&'a str>,
    /// Groups whose objects are left out (counted and reported).
    exclude: Option<&'a HashSet<u64>>,
}

/// A group key for an attribute value: integers as themselves, floats by their bits,
/// categories by a stable (FNV-1a) hash, so splits repeat across builds and machines.
fn group_key(value: &AttrValue) -> u64 {
    match value {
        AttrValue::Int(i) => *i as u64,
        AttrValue::Float(f) => f.to_bits(),
        AttrValue::Category(c) => c.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
        }),
    }
}

/// Splits object positions into (validation, training) by a hash of each object's group,
/// so every object of a group lands on the same side and the split repeats across runs
/// and machines whatever the row order.
fn split_by_group(groups: &[u64], val_fraction: f64) -> (Vec<usize>, Vec<usize>) {
    let cut = (val_fraction * 1_000_000.0) as u64;
    (0..groups.len()).partition(|&i| mix(groups[i]) % 1_000_000 < cut)
}

/// Reads every row with the modalities the objective needs; rows without them are
/// counted and skipped (reported), rejected rows are reported by the reader's reason.
fn load(
    inputs: &[PathBuf],
    mc: &AstroClipConfig,
    need_images: bool,
    select: &Selection,
    quiet: bool,
) -> Result<Dataset> {
    let (skip, max) = (select.skip, select.max);
    let size = mc.image_backbone.image_size;
    let sl = mc.spectrum_backbone.spectrum_length;
    let (sources, _plan) =
        open_sources(inputs, &Mapping::default(), size).context("opening the training catalog")?;
    let total: u64 = sources.iter().map(|s| s.len()).sum();
    let limit = max.unwrap_or(usize::MAX);
    let bar = progress(quiet, total.min(limit as u64), "reading");
    let mut data = Dataset {
        ids: Vec::new(),
        images: Vec::new(),
        spectra: Vec::new(),
        redshift: Vec::new(),
        groups: Vec::new(),
        image_len: if need_images { 3 * size * size } else { 0 },
        spectrum_len: sl,
    };
    let (mut rejected, mut incomplete, mut excluded) = (0usize, 0usize, 0usize);
    let mut to_skip = skip as u64;
    'files: for source in &sources {
        let start = to_skip.min(source.len());
        to_skip -= start;
        for batch in source.read_from(start, 256)? {
            for outcome in batch? {
                if data.len() >= limit {
                    break 'files;
                }
                bar.inc(1);
                let row = match outcome.result {
                    Ok(r) => r,
                    Err(_) => {
                        rejected += 1;
                        continue;
                    }
                };
                let group = match select.group_column {
                    None => row.id,
                    Some(column) => row
                        .attributes
                        .iter()
                        .find(|(k, _)| k == column)
                        .map(|(_, v)| group_key(v))
                        .with_context(|| {
                            format!(
                                "{}: object {} has no value in the --group-column {column:?}",
                                source.path().display(),
                                row.id
                            )
                        })?,
                };
                if select.exclude.is_some_and(|ex| ex.contains(&group)) {
                    excluded += 1;
                    continue;
                }
                let Some(spectrum) = row.spectrum else {
                    incomplete += 1;
                    continue;
                };
                super::check_spectrum_length(source.path(), row.id, spectrum.len(), sl)?;
                if need_images {
                    let Some(img) = row.image else {
                        incomplete += 1;
                        continue;
                    };
                    data.images.extend(super::model_image(&img, size)?);
                }
                data.spectra.extend(spectrum);
                data.ids.push(row.id);
                let z = row
                    .attributes
                    .iter()
                    .find(|(k, _)| k == "redshift")
                    .and_then(|(_, v)| match v {
                        AttrValue::Float(f) => Some(*f),
                        AttrValue::Int(i) => Some(*i as f64),
                        AttrValue::Category(_) => None,
                    })
                    .unwrap_or(f64::NAN);
                data.redshift.push(z);
                data.groups.push(group);
            }
        }
    }
    bar.finish_and_clear();
    tracing::info!(
        objects = data.len(),
        rejected,
        without_needed_modality = incomplete,
        excluded_by_group = excluded,
        "catalog read"
    );
    if data.len() < 4 {
        bail!(
            "only {} usable objects in the inputs (need images and spectra for alignment, \
             spectra for pre-training); {rejected} rows rejected, {incomplete} lacked a modality",
            data.len()
        );
    }
    Ok(data)
}

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

/// One epoch's numbers, as recorded in `training.json` and plotted.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct EpochRecord {
    epoch: usize,
    step: usize,
    train_loss: f64,
    val_loss: f64,
    /// Cross-modal retrieval on the validation split (empty for pre-training).
    image_to_spectrum: Option<Retrieval>,
    spectrum_to_image: Option<Retrieval>,
    seconds: f64,
}

/// What is kept beside the checkpoint so a resumed run reports its whole history.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct History {
    /// Every invocation that worked on this run (the first, then any resumes).
    #[serde(default)]
    commands: Vec<String>,
    epochs: Vec<EpochRecord>,
    /// Mean training loss per logging interval: (step, loss).
    steps: Vec<(usize, f64)>,
    seconds: f64,
}

/// Scores of the final model on a held-out catalog.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct HeldoutScores {
    file: String,
    /// Rows of the file skipped before the held-out objects.
    skipped_rows: usize,
    pairs: usize,
    image_to_spectrum: Retrieval,
    spectrum_to_image: Retrieval,
    knn_k: usize,
    /// k-NN cross-validation folds inside the held-out set.
    knn_folds: usize,
    redshift_r2_from_image: f64,
    redshift_r2_from_spectrum: f64,
}

/// Everything about a finished run, written as `training.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TrainingRecord {
    command: String,
    data_note: Option<String>,
    inputs: Vec<String>,
    objects: usize,
    train_objects: usize,
    val_objects: usize,
    val_fraction: f64,
    /// Column grouping objects of one source (split and held-out exclusion), if any.
    #[serde(default)]
    group_column: Option<String>,
    train: TrainConfig,
    model: serde_json::Value,
    parameters: usize,
    wall_seconds: f64,
    machine: String,
    history: History,
    heldout: Option<HeldoutScores>,
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<()> {
    let backend: BackendChoice = args
        .backend
        .parse()
        .with_context(|| format!("--backend {}", args.backend))?;
    match backend {
        BackendChoice::Cpu => train::<CpuBackend>(args, Default::default()),
        #[cfg(feature = "cuda")]
        BackendChoice::Cuda(i) => {
            train::<astrovec_encoders::CudaBackend>(args, burn::backend::cuda::CudaDevice::new(i))
        }
        #[cfg(not(feature = "cuda"))]
        BackendChoice::Cuda(_) => bail!("--backend cuda needs a build with `--features cuda`"),
    }
}

fn train<I: Backend>(args: Args, device: I::Device) -> Result<()> {
    let start = Instant::now();
    let ckpt_dir = args.out.join("checkpoints").join("last");
    let history_path = args.out.join("checkpoints").join("history.json");
    if !(0.0..0.9).contains(&args.val_fraction) {
        bail!(
            "--val-fraction must be in [0, 0.9) (got {})",
            args.val_fraction
        );
    }
    let resuming = args.resume && ckpt_dir.join("trainer.json").exists();
    if args.resume && !resuming {
        tracing::warn!(dir = %ckpt_dir.display(), "no checkpoint to resume from; starting afresh");
    }
    if !resuming && args.out.join(WEIGHTS_FILE).exists() {
        bail!(
            "{} already holds a model; choose another --out, or pass --resume to continue its run",
            args.out.display()
        );
    }
    <Autodiff<I> as Backend>::seed(&device, args.seed);

    // The model and its settings (from the checkpoint when resuming).
    let mut trainer: Trainer<I> = if resuming {
        Trainer::resume(&ckpt_dir, device.clone())
            .with_context(|| format!("resuming from {}", ckpt_dir.display()))?
    } else {
        let (model, mc) = match &args.init {
            Some(dir) => {
                let mc = AstroClipConfig::load_json(dir.join(CONFIG_FILE))?;
                let model =
                    astrovec_encoders::AstroClip::load(&mc, dir.join(WEIGHTS_FILE), &device)?;
                (model, mc)
            }
            None => {
                let mc = AstroClipConfig::preset(&args.preset)?;
                (mc.init::<Autodiff<I>>(&device)?, mc)
            }
        };
        let tokens = mc.spectrum_backbone.num_tokens();
        let cfg = TrainConfig {
            objective: match args.objective {
                ObjectiveArg::Align => Objective::Align,
                ObjectiveArg::PretrainSpectrum => Objective::PretrainSpectrum,
            },
            epochs: args.epochs,
            batch_size: args.batch_size,
            learning_rate: args.lr,
            weight_decay: args.weight_decay,
            warmup_steps: args.warmup_steps,
            final_lr_ratio: args.final_lr_ratio,
            grad_clip_norm: (args.grad_clip > 0.0).then_some(args.grad_clip),
            logit_scale: args.logit_scale,
            freeze_image_backbone: args.freeze_image_backbone,
            freeze_spectrum_backbone: args.freeze_spectrum_backbone,
            augment: if args.no_augment {
                Augment::NONE
            } else {
                Augment::DEFAULT
            },
            mask_chunks: args.mask_chunks,
            mask_chunk_tokens: args
                .mask_chunk_tokens
                .unwrap_or_else(|| ((50 * tokens) as f64 / 778.0).round().max(1.0) as usize),
            seed: args.seed,
        };
        // The schedule's length is set once the split size is known (below).
        Trainer::new(model, mc, cfg, 1, device.clone())?
    };
    let cfg = trainer.config().clone();
    let mc = trainer.model_config().clone();
    let align = cfg.objective == Objective::Align;
    let size = mc.image_backbone.image_size;

    // Sources of held-out objects are kept out of training (and validation) entirely.
    let heldout_groups: Option<HashSet<u64>> = match (&args.heldout, &args.group_column) {
        (Some(path), Some(column)) => {
            let select = Selection {
                skip: args.heldout_skip,
                group_column: Some(column),
                ..Default::default()
            };
            let held = load(std::slice::from_ref(path), &mc, false, &select, args.quiet)
                .with_context(|| format!("reading the held-out groups of {}", path.display()))?;
            Some(held.groups.into_iter().collect())
        }
        _ => None,
    };
    let select = Selection {
        max: args.max_objects,
        group_column: args.group_column.as_deref(),
        exclude: heldout_groups.as_ref(),
        ..Default::default()
    };
    let data = load(&args.inputs, &mc, align, &select, args.quiet)?;
    let (val_idx, train_idx) = split_by_group(&data.groups, args.val_fraction);
    if train_idx.len() < cfg.batch_size {
        bail!(
            "the training split has {} objects, fewer than one batch ({})",
            train_idx.len(),
            cfg.batch_size
        );
    }
    let steps_per_epoch = train_idx.len() / cfg.batch_size;
    let total_steps = steps_per_epoch * cfg.epochs;
    if resuming && trainer.total_steps() != total_steps {
        bail!(
            "the checkpoint's run has {} steps but this data gives {total_steps}; resume with the \
             same inputs and --max-objects",
            trainer.total_steps()
        );
    }
    trainer.set_total_steps(total_steps);
    tracing::info!(
        train = train_idx.len(),
        val = val_idx.len(),
        steps_per_epoch,
        total_steps,
        parameters = parameter_count(&trainer),
        "training"
    );
    let train_set = data.subset(&train_idx);
    let val_set = data.subset(&val_idx);
    drop(data);

    let mut history: History = if resuming && history_path.exists() {
        serde_json::from_slice(&std::fs::read(&history_path)?)
            .with_context(|| format!("reading {}", history_path.display()))?
    } else {
        History::default()
    };
    history.commands.push(command_line());
    let first_epoch = trainer.step() / steps_per_epoch.max(1);
    let log_every = (steps_per_epoch / 10).max(1);
    for epoch in first_epoch..cfg.epochs {
        let epoch_start = Instant::now();
        let mut order: Vec<usize> = (0..train_set.len()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(
            cfg.seed.wrapping_add(epoch as u64),
        ));
        let bar = progress(
            args.quiet,
            steps_per_epoch as u64,
            &format!("epoch {}", epoch + 1),
        );
        let skip = trainer.step() - epoch * steps_per_epoch;
        bar.set_position(skip as u64);
        let (mut sum, mut count, mut window, mut wcount) = (0.0f64, 0usize, 0.0f64, 0usize);
        for b in skip..steps_per_epoch {
            let idx = &order[b * cfg.batch_size..(b + 1) * cfg.batch_size];
            let mut rng = step_rng(cfg.seed, trainer.step());
            let batch = train_set.batch(idx, Some((&cfg.augment, &mut rng)), size);
            let loss = trainer.train_step(&batch)? as f64;
            if !loss.is_finite() {
                bail!(
                    "the training loss became {loss} at step {}; lower --lr or check the data",
                    trainer.step()
                );
            }
            sum += loss;
            count += 1;
            window += loss;
            wcount += 1;
            if wcount == log_every {
                history.steps.push((trainer.step(), window / wcount as f64));
                (window, wcount) = (0.0, 0);
            }
            bar.set_message(format!(
                "loss {:.4} lr {:.2e}",
                sum / count as f64,
                trainer.learning_rate()
            ));
            bar.inc(1);
        }
        bar.finish_and_clear();
        let record = evaluate_epoch(&trainer, &val_set, epoch, sum / count.max(1) as f64, size)?;
        let seconds = epoch_start.elapsed().as_secs_f64();
        history.seconds += seconds;
        let record = EpochRecord { seconds, ..record };
        eprintln!("{}", describe(&record));
        history.epochs.push(record);
        save_checkpoint(&trainer, &ckpt_dir, &history, &history_path)?;
        if !args.quiet {
            plot::loss_curves(&args.out.join("loss.png"), &history_points(&history))?;
        }
    }

    // The deliverable: a model directory the encoders load.
    let encoder = trainer.encoder();
    encoder.save_dir(&args.out)?;
    let heldout = match &args.heldout {
        Some(path) if align => Some(score_heldout(
            &encoder,
            path,
            args.heldout_skip,
            &mc,
            args.quiet,
        )?),
        Some(_) => {
            tracing::warn!("--heldout is scored only for alignment runs");
            None
        }
        None => None,
    };
    let record = TrainingRecord {
        command: command_line(),
        data_note: args.data_note.clone(),
        inputs: args
            .inputs
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        objects: train_set.len() + val_set.len(),
        train_objects: train_set.len(),
        val_objects: val_set.len(),
        val_fraction: args.val_fraction,
        group_column: args.group_column.clone(),
        train: cfg.clone(),
        model: serde_json::from_str(&mc.to_json())?,
        parameters: parameter_count(&trainer),
        wall_seconds: start.elapsed().as_secs_f64(),
        machine: machine(),
        history: history.clone(),
        heldout,
    };
    std::fs::write(
        args.out.join("training.json"),
        serde_json::to_vec_pretty(&record)?,
    )?;
    plot::loss_curves(&args.out.join("loss.png"), &history_points(&history))?;
    std::fs::write(args.out.join("MODEL_CARD.md"), model_card(&record))?;
    eprintln!(
        "model written to {} ({:.0} s of training, {:.0} s in all)",
        args.out.display(),
        history.seconds,
        record.wall_seconds
    );
    Ok(())
}

/// Writes the checkpoint to a new directory and swaps it in, so a crash mid-write leaves
/// the previous checkpoint intact.
fn save_checkpoint<I: Backend>(
    trainer: &Trainer<I>,
    dir: &Path,
    history: &History,
    history_path: &Path,
) -> Result<()> {
    let parent = dir.parent().expect("checkpoint dir has a parent");
    std::fs::create_dir_all(parent)?;
    let tmp = parent.join(".last.tmp");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    trainer.save_checkpoint(&tmp)?;
    let old = parent.join(".last.old");
    if dir.exists() {
        if old.exists() {
            std::fs::remove_dir_all(&old)?;
        }
        std::fs::rename(dir, &old)?;
    }
    std::fs::rename(&tmp, dir)?;
    if old.exists() {
        std::fs::remove_dir_all(&old)?;
    }
    std::fs::write(history_path, serde_json::to_vec_pretty(history)?)?;
    Ok(())
}

fn parameter_count<I: Backend>(trainer: &Trainer<I>) -> usize {
    use burn::module::Module;
    trainer.encoder().model().num_params()
}

/// Image and spectrum embeddings, one row per object.
type Embeddings = (Vec<Vec<f32>>, Vec<Vec<f32>>);

fn embed_all<I: Backend>(enc: &Encoder<I>, data: &Dataset) -> Result<Embeddings> {
    let images = if data.images.is_empty() {
        Vec::new()
    } else {
        enc.embed_images(&data.images)?
    };
    let spectra = enc.embed_spectra(&data.spectra)?;
    Ok((images, spectra))
}

fn evaluate_epoch<I: Backend>(
    trainer: &Trainer<I>,
    val: &Dataset,
    epoch: usize,
    train_loss: f64,
    size: usize,
) -> Result<EpochRecord> {
    let bs = trainer.config().batch_size;
    let (mut sum, mut n) = (0.0f64, 0usize);
    let all: Vec<usize> = (0..val.len()).collect();
    for chunk in all.chunks(bs) {
        if chunk.len() < 2 {
            continue;
        }
        let batch = val.batch(chunk, None, size);
        sum += trainer.eval_loss(&batch)? as f64 * chunk.len() as f64;
        n += chunk.len();
    }
    let (i2s, s2i) = if trainer.config().objective == Objective::Align && val.len() > 1 {
        let enc = trainer.encoder().with_batch_size(32);
        let (img, spec) = embed_all(&enc, val)?;
        (
            Some(Retrieval::from_ranks(&partner_ranks(&img, &spec))),
            Some(Retrieval::from_ranks(&partner_ranks(&spec, &img))),
        )
    } else {
        (None, None)
    };
    Ok(EpochRecord {
        epoch: epoch + 1,
        step: trainer.step(),
        train_loss,
        val_loss: if n > 0 { sum / n as f64 } else { f64::NAN },
        image_to_spectrum: i2s,
        spectrum_to_image: s2i,
        seconds: 0.0,
    })
}

fn describe(r: &EpochRecord) -> String {
    let mut s = format!(
        "epoch {:>3}  step {:>6}  train loss {:.4}  val loss {:.4}",
        r.epoch, r.step, r.train_loss, r.val_loss
    );
    if let (Some(a), Some(b)) = (&r.image_to_spectrum, &r.spectrum_to_image) {
        s += &format!(
            "  img→spec top-1 {:.3} top-10 {:.3}  spec→img top-1 {:.3} top-10 {:.3} (of {})",
            a.top1, a.top10, b.top1, b.top10, a.queries
        );
    }
    s
}

fn history_points(h: &History) -> plot::LossCurves {
    plot::LossCurves {
        train_steps: h.steps.iter().map(|&(s, l)| (s as f64, l)).collect(),
        val_epochs: h
            .epochs
            .iter()
            .map(|e| (e.step as f64, e.val_loss))
            .collect(),
        retrieval_top10: h
            .epochs
            .iter()
            .filter_map(|e| {
                Some((
                    e.step as f64,
                    e.image_to_spectrum?.top10,
                    e.spectrum_to_image?.top10,
                ))
            })
            .collect(),
    }
}

/// Scores the final model on a held-out catalog: cross-modal retrieval among all its
/// pairs, and k-NN redshift R² with 5-fold cross-validation inside the held-out set (so
/// no training object serves as a neighbour).
fn score_heldout<I: Backend>(
    enc: &Encoder<I>,
    path: &Path,
    skip: usize,
    mc: &AstroClipConfig,
    quiet: bool,
) -> Result<HeldoutScores> {
    let select = Selection {
        skip,
        ..Default::default()
    };
    let held = load(&[path.to_path_buf()], mc, true, &select, quiet)?;
    let (img, spec) = embed_all(enc, &held)?;
    let k = 64;
    let folds = 5u64;
    let r2_of = |emb: &[Vec<f32>]| {
        let (mut truth, mut pred) = (Vec::new(), Vec::new());
        for f in 0..folds {
            let (test, train): (Vec<usize>, Vec<usize>) = (0..held.len())
                .filter(|&i| held.redshift[i].is_finite())
                .partition(|&i| mix(held.ids[i]) % folds == f);
            let pick = |idx: &[usize]| idx.iter().map(|&i| emb[i].clone()).collect::<Vec<_>>();
            let ty: Vec<f64> = train.iter().map(|&i| held.redshift[i]).collect();
            pred.extend(knn_regress(&pick(&train), &ty, &pick(&test), k));
            truth.extend(test.iter().map(|&i| held.redshift[i]));
        }
        r2(&truth, &pred)
    };
    Ok(HeldoutScores {
        file: path.display().to_string(),
        skipped_rows: skip,
        pairs: held.len(),
        image_to_spectrum: Retrieval::from_ranks(&partner_ranks(&img, &spec)),
        spectrum_to_image: Retrieval::from_ranks(&partner_ranks(&spec, &img)),
        knn_k: k,
        knn_folds: folds as usize,
        redshift_r2_from_image: r2_of(&img),
        redshift_r2_from_spectrum: r2_of(&spec),
    })
}

/// This invocation as a command line. The program's own path varies by machine; the
/// arguments are what reproduce the run.
fn command_line() -> String {
    std::iter::once("astrovec".to_string())
        .chain(std::env::args().skip(1).map(|a| {
            if a.contains(|c: char| c.is_whitespace() || c == '\'' || c == '`') {
                format!("'{}'", a.replace('\'', r"'\''"))
            } else {
                a
            }
        }))
        .collect::<Vec<_>>()
        .join(" ")
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cpus} CPU threads ({model}), CPU backend (Burn ndarray + OpenBLAS)")
}

fn model_card(r: &TrainingRecord) -> String {
    let mut s = String::new();
    s += "# Model card\n\n";
    s += &format!(
        "An AstroCLIP-style image + spectrum model ({} parameters, {}-d embeddings), trained \
         with `astrovec train` ({}).\n\n",
        r.parameters,
        r.model["image_head"]["embed_dim"],
        match r.train.objective {
            Objective::Align => "contrastive alignment",
            Objective::PretrainSpectrum => "masked-spectrum pre-training",
        }
    );
    s += "## Training data\n\n";
    s += &format!(
        "- Inputs: {}\n- Objects: {} ({} training, {} validation; validation = a hash of the \
         {}, fraction {})\n{}\n",
        r.inputs.join(", "),
        r.objects,
        r.train_objects,
        r.val_objects,
        r.group_column
            .as_ref()
            .map_or("id".to_string(), |c| format!(
                "`{c}` column (objects sharing it stay together; those sharing it with a \
             held-out object are not used)"
            )),
        r.val_fraction,
        r.data_note
            .as_ref()
            .map_or(String::new(), |n| format!("- {n}\n"))
    );
    s += "## Commands\n\n```\n";
    if r.history.commands.is_empty() {
        s += &r.command;
        s += "\n";
    }
    for c in &r.history.commands {
        s += c;
        s += "\n";
    }
    s += "```\n\n";
    s += &format!(
        "Wall time {:.0} s (training {:.0} s) on {}.\n\n",
        r.wall_seconds, r.history.seconds, r.machine
    );
    s += "## Settings\n\n```json\n";
    s += &serde_json::to_string_pretty(&r.train).expect("serialises");
    s += "\n```\n\n## Per epoch\n\n| epoch | step | train loss | val loss | img→spec top-1 | top-10 | spec→img top-1 | top-10 | seconds |\n|---|---|---|---|---|---|---|---|---|\n";
    for e in &r.history.epochs {
        let f = |x: Option<Retrieval>, top1: bool| {
            x.map_or("–".to_string(), |x| {
                format!("{:.3}", if top1 { x.top1 } else { x.top10 })
            })
        };
        s += &format!(
            "| {} | {} | {:.4} | {:.4} | {} | {} | {} | {} | {:.0} |\n",
            e.epoch,
            e.step,
            e.train_loss,
            e.val_loss,
            f(e.image_to_spectrum, true),
            f(e.image_to_spectrum, false),
            f(e.spectrum_to_image, true),
            f(e.spectrum_to_image, false),
            e.seconds
        );
    }
    if let Some(h) = &r.heldout {
        s += &format!(
            "\n## Held-out evaluation\n\n{} pairs from `{}` (rows after the first {}; never seen \
             in training). Chance for top-1 / top-10 is {:.4} / {:.4}.\n\n\
             | metric | image → spectrum | spectrum → image |\n|---|---|---|\n\
             | top-1 | {:.3} | {:.3} |\n| top-10 | {:.3} | {:.3} |\n| median rank | {} | {} |\n\n\
             k-NN redshift (k = {}, distance-weighted, standardised embeddings, {}-fold \
             cross-validation inside the held-out set): R² from image embeddings **{:.3}**, from \
             spectrum embeddings **{:.3}**.\n",
            h.pairs,
            h.file,
            h.skipped_rows,
            1.0 / h.pairs as f64,
            10.0 / h.pairs as f64,
            h.image_to_spectrum.top1,
            h.spectrum_to_image.top1,
            h.image_to_spectrum.top10,
            h.spectrum_to_image.top10,
            h.image_to_spectrum.median_rank,
            h.spectrum_to_image.median_rank,
            h.knn_k,
            h.knn_folds,
            h.redshift_r2_from_image,
            h.redshift_r2_from_spectrum
        );
    }
    s += "\n![loss curves](loss.png)\n";
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_split_keeps_each_group_on_one_side() {
        // 4,000 objects in 1,000 groups of four, interleaved so that a split by row or by
        // position within the group would separate them.
        let groups: Vec<u64> = (0..4000u64).map(|i| (i % 1000) * 7 + 3).collect();
        let (val, train) = split_by_group(&groups, 0.1);
        assert_eq!(val.len() + train.len(), groups.len());
        let val_groups: HashSet<u64> = val.iter().map(|&i| groups[i]).collect();
        let train_groups: HashSet<u64> = train.iter().map(|&i| groups[i]).collect();
        assert!(
            val_groups.is_disjoint(&train_groups),
            "a group was split between validation and training"
        );
        assert_eq!(val.len(), 4 * val_groups.len());
        // About a tenth of the groups go to validation (binomial sd ≈ 9.5 groups).
        assert!(
            (60..=140).contains(&val_groups.len()),
            "{} of 1000 groups in validation",
            val_groups.len()
        );
        // The same groups in another row order split the same way.
        let mut shuffled = groups.clone();
        shuffled.reverse();
        let (val2, _) = split_by_group(&shuffled, 0.1);
        let val2_groups: HashSet<u64> = val2.iter().map(|&i| shuffled[i]).collect();
        assert_eq!(val_groups, val2_groups);
    }

    #[test]
    fn group_keys_are_stable_and_distinguish_values() {
        assert_eq!(group_key(&AttrValue::Int(42)), 42);
        let a = group_key(&AttrValue::Category("parent-1".into()));
        let b = group_key(&AttrValue::Category("parent-2".into()));
        assert_ne!(a, b);
        // FNV-1a of the empty string is its offset basis: the key does not depend on the
        // build's hasher seed.
        assert_eq!(
            group_key(&AttrValue::Category(String::new())),
            0xcbf2_9ce4_8422_2325
        );
        assert_ne!(
            group_key(&AttrValue::Float(0.5)),
            group_key(&AttrValue::Float(0.25))
        );
    }
}
