//! The training loop's state: the model under training, AdamW, the schedule and
//! checkpoints that resume exactly.

use std::path::{Path, PathBuf};

use burn::backend::Autodiff;
use burn::grad_clipping::GradientClippingConfig;
use burn::module::{AutodiffModule, Module};
use burn::nn::{Linear, LinearConfig};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, AdamWConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::record::{BinFileRecorder, FullPrecisionSettings, Recorder};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_xoshiro::SplitMix64;
use serde::{Deserialize, Serialize};

use super::augment::Augment;
use super::loss::{clip_loss, masked_mse};
use super::schedule::WarmupCosine;
use crate::encoder::Encoder;
use crate::error::{EncoderError, Result};
use crate::model::astroclip::{AstroClip, AstroClipConfig};

/// What a run optimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Objective {
    /// The AstroCLIP contrastive alignment of image and spectrum embeddings.
    Align,
    /// SpecFormer masked-spectrum pre-training (reconstruct zeroed chunks of tokens).
    PretrainSpectrum,
}

/// Every setting of a training run; saved beside each checkpoint and in the model card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// What is optimised.
    pub objective: Objective,
    /// Passes over the training split.
    pub epochs: usize,
    /// Pairs (or spectra) per optimiser step.
    pub batch_size: usize,
    /// Peak learning rate (AdamW).
    pub learning_rate: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// Linear warm-up steps.
    pub warmup_steps: usize,
    /// Learning rate at the end of the cosine, as a fraction of the peak.
    pub final_lr_ratio: f64,
    /// Gradient clipping: each parameter tensor's gradient is scaled to at most this L2
    /// norm (`None`: no clipping).
    pub grad_clip_norm: Option<f32>,
    /// The fixed multiplier of the contrastive logits (15.5 in AstroCLIP).
    pub logit_scale: f64,
    /// Keep the image backbone's weights fixed (only the head trains).
    pub freeze_image_backbone: bool,
    /// Keep the spectrum backbone's weights fixed (only the head trains).
    pub freeze_spectrum_backbone: bool,
    /// Augmentations of the training batches.
    pub augment: Augment,
    /// Pre-training: chunks of consecutive tokens masked per spectrum.
    pub mask_chunks: usize,
    /// Pre-training: tokens per masked chunk.
    pub mask_chunk_tokens: usize,
    /// Seed of the data order, augmentations and masks.
    pub seed: u64,
}

impl Default for TrainConfig {
    /// The reference alignment recipe (AdamW 1e-4, weight decay 0.05, 1k warm-up, cosine,
    /// batch 256, clip 1, logit scale 15.5) and masking scheme (6 chunks of 50 tokens).
    fn default() -> Self {
        TrainConfig {
            objective: Objective::Align,
            epochs: 10,
            batch_size: 256,
            learning_rate: 1e-4,
            weight_decay: 0.05,
            warmup_steps: 1000,
            final_lr_ratio: 0.0,
            grad_clip_norm: Some(1.0),
            logit_scale: 15.5,
            freeze_image_backbone: false,
            freeze_spectrum_backbone: false,
            augment: Augment::DEFAULT,
            mask_chunks: 6,
            mask_chunk_tokens: 50,
            seed: 0,
        }
    }
}

impl TrainConfig {
    /// Checks the settings make sense for a model with `tokens` spectrum tokens.
    pub fn validate(&self, spectrum_tokens: usize) -> Result<()> {
        let bad = |m: String| Err(EncoderError::Config(format!("training: {m}")));
        if self.batch_size < 2 {
            return bad(format!(
                "batch_size must be at least 2 (got {}): the contrastive loss needs negatives",
                self.batch_size
            ));
        }
        if self.epochs == 0 {
            return bad("epochs must be at least 1".into());
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad(format!(
                "learning_rate must be positive (got {})",
                self.learning_rate
            ));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(format!(
                "weight_decay must be ≥ 0 (got {})",
                self.weight_decay
            ));
        }
        if !(0.0..=1.0).contains(&self.final_lr_ratio) {
            return bad(format!(
                "final_lr_ratio must be in [0, 1] (got {})",
                self.final_lr_ratio
            ));
        }
        if !(self.logit_scale.is_finite() && self.logit_scale > 0.0) {
            return bad(format!(
                "logit_scale must be positive (got {})",
                self.logit_scale
            ));
        }
        if let Some(c) = self.grad_clip_norm {
            if !(c.is_finite() && c > 0.0) {
                return bad(format!("grad_clip_norm must be positive (got {c})"));
            }
        }
        if self.objective == Objective::PretrainSpectrum {
            let data_tokens = spectrum_tokens.saturating_sub(1);
            if self.mask_chunks == 0 || self.mask_chunk_tokens == 0 {
                return bad("mask_chunks and mask_chunk_tokens must be at least 1".into());
            }
            if self.mask_chunk_tokens >= data_tokens {
                return bad(format!(
                    "mask_chunk_tokens {} does not fit in the model's {data_tokens} spectrum tokens",
                    self.mask_chunk_tokens
                ));
            }
        }
        Ok(())
    }
}

/// What is trained: the AstroCLIP model plus SpecFormer's pre-training head (token
/// embedding → token values; the reference's `spectrum_encoder.backbone.head`).
#[derive(Module, Debug)]
pub struct TrainModel<B: Backend> {
    /// The model.
    pub model: AstroClip<B>,
    /// `Linear(d → slice_length + 2)`, used only by masked pre-training.
    pub spectrum_head: Linear<B>,
}

/// One batch of model-ready inputs.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// Items in the batch.
    pub len: usize,
    /// Planar images `[len, 3, size, size]` (z, r, g in [0, 1]); empty for pre-training.
    pub images: Vec<f32>,
    /// Spectra `[len, spectrum_length]`.
    pub spectra: Vec<f32>,
}

/// File names inside a checkpoint directory.
const MODEL_DIR: &str = "model";
const WEIGHTS_RECORD: &str = "train-model";
const OPTIM_RECORD: &str = "optimizer";
const STATE_FILE: &str = "trainer.json";

/// The part of the trainer's state kept as JSON in a checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TrainerState {
    step: usize,
    total_steps: usize,
    train: TrainConfig,
    model: serde_json::Value,
}

type Ad<I> = Autodiff<I>;

/// A model under training on backend `I` (with autodiff), its optimiser and schedule.
pub struct Trainer<I: Backend> {
    module: Option<TrainModel<Ad<I>>>,
    optim: OptimizerAdaptor<AdamW, TrainModel<Ad<I>>, Ad<I>>,
    model_config: AstroClipConfig,
    config: TrainConfig,
    schedule: WarmupCosine,
    step: usize,
    device: I::Device,
}

fn adamw<I: Backend>(cfg: &TrainConfig) -> OptimizerAdaptor<AdamW, TrainModel<Ad<I>>, Ad<I>> {
    AdamWConfig::new()
        .with_weight_decay(cfg.weight_decay as f32)
        .with_epsilon(1e-8)
        .with_grad_clipping(cfg.grad_clip_norm.map(GradientClippingConfig::Norm))
        .init()
}

fn record_error(path: &Path, e: impl std::fmt::Display) -> EncoderError {
    EncoderError::format(path, e.to_string())
}

impl<I: Backend> Trainer<I> {
    /// Starts training `model` (random or loaded) for `total_steps` optimiser steps.
    pub fn new(
        model: AstroClip<Ad<I>>,
        model_config: AstroClipConfig,
        config: TrainConfig,
        total_steps: usize,
        device: I::Device,
    ) -> Result<Self> {
        config.validate(model_config.spectrum_backbone.num_tokens())?;
        let sb = &model_config.spectrum_backbone;
        let spectrum_head = LinearConfig::new(sb.embed_dim, sb.token_dim()).init(&device);
        let module = TrainModel {
            model,
            spectrum_head,
        };
        let module = freeze(module, &config);
        Ok(Trainer {
            module: Some(module),
            optim: adamw::<I>(&config),
            schedule: WarmupCosine {
                peak: config.learning_rate,
                warmup: config.warmup_steps,
                total: total_steps,
                final_ratio: config.final_lr_ratio,
            },
            model_config,
            config,
            step: 0,
            device,
        })
    }

    /// Optimiser steps taken so far.
    pub fn step(&self) -> usize {
        self.step
    }

    /// The settings of the run.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The model's configuration.
    pub fn model_config(&self) -> &AstroClipConfig {
        &self.model_config
    }

    /// Optimiser steps the schedule spans.
    pub fn total_steps(&self) -> usize {
        self.schedule.total
    }

    /// Sets the schedule's length (once the data size is known; before the first step
    /// of a fresh run, or to the same value when resuming).
    pub fn set_total_steps(&mut self, total: usize) {
        self.schedule.total = total;
    }

    /// The learning rate the next step uses.
    pub fn learning_rate(&self) -> f64 {
        self.schedule.at(self.step)
    }

    fn module(&self) -> &TrainModel<Ad<I>> {
        self.module
            .as_ref()
            .expect("module is only taken inside a step")
    }

    /// The loss of `batch` under the current weights (a graph for backward when `B`
    /// tracks gradients). `step` seeds the pre-training masks.
    fn loss<B: Backend>(
        module: &TrainModel<B>,
        cfg: &TrainConfig,
        mc: &AstroClipConfig,
        batch: &Batch,
        mask_seed: u64,
        device: &B::Device,
    ) -> Result<Tensor<B, 1>> {
        let n = batch.len;
        let sl = mc.spectrum_backbone.spectrum_length;
        if batch.spectra.len() != n * sl {
            return Err(EncoderError::SpectrumLength {
                got: batch.spectra.len(),
                expected: sl,
            });
        }
        let spectra =
            Tensor::<B, 1>::from_floats(batch.spectra.as_slice(), device).reshape([n, sl]);
        match cfg.objective {
            Objective::Align => {
                let ib = &mc.image_backbone;
                let (c, s) = (ib.in_channels, ib.image_size);
                if batch.images.len() != n * c * s * s {
                    return Err(EncoderError::ImageSize {
                        got: batch.images.len(),
                        per_image: c * s * s,
                        channels: c,
                        height: s,
                        width: s,
                    });
                }
                let images = Tensor::<B, 1>::from_floats(batch.images.as_slice(), device)
                    .reshape([n, c, s, s]);
                let img = module.model.embed_images(images);
                let spec = module.model.embed_spectra(spectra);
                Ok(clip_loss(img, spec, cfg.logit_scale))
            }
            Objective::PretrainSpectrum => {
                let backbone = &module.model.spectrum_encoder.backbone;
                let tokens = backbone.tokenize(spectra).detach();
                let [_, t, _] = tokens.dims();
                let mask = Tensor::<B, 1>::from_floats(
                    token_mask(n, t, cfg.mask_chunks, cfg.mask_chunk_tokens, mask_seed).as_slice(),
                    device,
                )
                .reshape([n, t, 1]);
                let visible = tokens.clone() * (mask.clone().neg() + 1.0);
                let embedded = backbone.forward_tokens(visible);
                let pred = crate::model::nn::flat_linear(&module.spectrum_head, embedded);
                Ok(masked_mse(pred, tokens, mask))
            }
        }
    }

    /// One optimiser step on `batch` (already augmented); returns the batch loss.
    pub fn train_step(&mut self, batch: &Batch) -> Result<f32> {
        let module = self.module.take().expect("module present between steps");
        let seed = mix(self.config.seed, self.step as u64);
        let loss = match Self::loss(
            &module,
            &self.config,
            &self.model_config,
            batch,
            seed,
            &self.device,
        ) {
            Ok(l) => l,
            Err(e) => {
                self.module = Some(module);
                return Err(e);
            }
        };
        let value = loss.clone().into_scalar().elem::<f32>();
        let grads = GradientsParams::from_grads(loss.backward(), &module);
        let lr = self.schedule.at(self.step);
        self.module = Some(self.optim.step(lr, module, grads));
        self.step += 1;
        Ok(value)
    }

    /// The loss of `batch` without updating anything (validation); masks for
    /// pre-training come from a fixed seed so validation losses are comparable.
    pub fn eval_loss(&self, batch: &Batch) -> Result<f32> {
        let module = self.module().valid();
        let loss = Self::loss(
            &module,
            &self.config,
            &self.model_config,
            batch,
            mix(self.config.seed, u64::MAX),
            &self.device,
        )?;
        Ok(loss.into_scalar().elem::<f32>())
    }

    /// The current model as an inference [`Encoder`] (no autodiff).
    pub fn encoder(&self) -> Encoder<I> {
        Encoder::new(
            self.module().model.valid(),
            self.model_config.clone(),
            self.device.clone(),
        )
    }

    /// Writes a checkpoint directory: the model in the directory format the encoders
    /// load (`model/`), the full training state (weights with the pre-training head, and
    /// AdamW's moments) and the settings, so [`Trainer::resume`] continues exactly.
    pub fn save_checkpoint(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| EncoderError::io(dir, e))?;
        self.encoder().save_dir(dir.join(MODEL_DIR))?;
        let recorder = BinFileRecorder::<FullPrecisionSettings>::new();
        let weights = dir.join(WEIGHTS_RECORD);
        recorder
            .record(self.module().clone().into_record(), weights.clone())
            .map_err(|e| record_error(&weights, e))?;
        let optim = dir.join(OPTIM_RECORD);
        recorder
            .record(self.optim.to_record(), optim.clone())
            .map_err(|e| record_error(&optim, e))?;
        let state = TrainerState {
            step: self.step,
            total_steps: self.schedule.total,
            train: self.config.clone(),
            model: serde_json::from_str(&self.model_config.to_json())
                .expect("config JSON round-trips"),
        };
        let path = dir.join(STATE_FILE);
        std::fs::write(
            &path,
            serde_json::to_vec_pretty(&state).expect("state serialises"),
        )
        .map_err(|e| EncoderError::io(&path, e))
    }

    /// Reopens a checkpoint written by [`Trainer::save_checkpoint`]: same weights, same
    /// optimiser moments, same step, same settings.
    pub fn resume(dir: &Path, device: I::Device) -> Result<Self> {
        let path = dir.join(STATE_FILE);
        let bytes = std::fs::read(&path).map_err(|e| EncoderError::io(&path, e))?;
        let state: TrainerState =
            serde_json::from_slice(&bytes).map_err(|e| record_error(&path, e))?;
        let model_config = AstroClipConfig::from_json(&state.model.to_string())
            .map_err(|m| record_error(&path, m))?;
        let model = model_config.init::<Ad<I>>(&device)?;
        let mut trainer = Trainer::new(
            model,
            model_config,
            state.train,
            state.total_steps,
            device.clone(),
        )?;
        let recorder = BinFileRecorder::<FullPrecisionSettings>::new();
        let weights: PathBuf = dir.join(WEIGHTS_RECORD);
        let record = recorder
            .load(weights.clone(), &device)
            .map_err(|e| record_error(&weights, e))?;
        let module = trainer
            .module
            .take()
            .expect("fresh trainer")
            .load_record(record);
        trainer.module = Some(freeze(module, &trainer.config));
        let optim = dir.join(OPTIM_RECORD);
        let record = recorder
            .load(optim.clone(), &device)
            .map_err(|e| record_error(&optim, e))?;
        trainer.optim = adamw::<I>(&trainer.config).load_record(record);
        trainer.step = state.step;
        Ok(trainer)
    }
}

/// Applies the run's freezing (backbones whose weights must not change get no gradient).
fn freeze<B: burn::tensor::backend::AutodiffBackend>(
    mut m: TrainModel<B>,
    cfg: &TrainConfig,
) -> TrainModel<B> {
    if cfg.freeze_image_backbone {
        m.model.image_encoder.backbone = m.model.image_encoder.backbone.no_grad();
    }
    if cfg.freeze_spectrum_backbone {
        m.model.spectrum_encoder.backbone = m.model.spectrum_encoder.backbone.no_grad();
    }
    m
}

/// A 64-bit mix of two values, for per-step seeds: the first output of a SplitMix64
/// generator seeded with both.
fn mix(a: u64, b: u64) -> u64 {
    SplitMix64::seed_from_u64(a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15)).next_u64()
}

/// The pre-training mask, `[n, tokens]` flattened, 1 on masked tokens: for each
/// spectrum, `chunks` runs of `chunk` consecutive tokens at random starts among the
/// data tokens (token 0, the statistics token, is never masked; runs may overlap, as in
/// the reference).
pub fn token_mask(n: usize, tokens: usize, chunks: usize, chunk: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut mask = vec![0.0f32; n * tokens];
    if tokens < 2 {
        return mask;
    }
    let chunk = chunk.min(tokens - 1);
    for row in mask.chunks_mut(tokens) {
        for _ in 0..chunks {
            let start = rng.random_range(1..=tokens - chunk);
            row[start..start + chunk].iter_mut().for_each(|v| *v = 1.0);
        }
    }
    mask
}

/// Seeds of a run's per-step randomness (augmentations), so resumed runs repeat them.
pub fn step_rng(seed: u64, step: usize) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(mix(seed ^ 0xA5A5_A5A5, step as u64))
}
