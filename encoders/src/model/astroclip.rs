//! The combined AstroCLIP model: image encoder (ViT backbone + head) and spectrum encoder
//! (SpecFormer + head) embedding into one space; presets; weight loading and saving.

use std::path::Path;

use burn::prelude::*;

use crate::error::{EncoderError, Result as EncResult};
use crate::model::head::{CrossAttentionHead, CrossAttentionHeadConfig};
use crate::model::specformer::{SpecFormer, SpecFormerConfig};
use crate::model::vit::{ImageBackbone, ImageBackboneConfig};
use crate::weights::{Exporter, Loader, ParamVisitor, TensorMap};

/// File name of the configuration inside a model directory.
pub const CONFIG_FILE: &str = "config.json";
/// File name of the weights inside a model directory.
pub const WEIGHTS_FILE: &str = "model.safetensors";

/// Names of the built-in presets.
pub const PRESETS: [&str; 3] = ["astroclip", "small", "tiny"];

/// Every size of the model. Serialises to JSON (see [`AstroClipConfig::save_json`]).
#[derive(Config, Debug, PartialEq)]
pub struct AstroClipConfig {
    /// Image backbone.
    pub image_backbone: ImageBackboneConfig,
    /// Image head (`kv_dim` = image backbone width, no residual).
    pub image_head: CrossAttentionHeadConfig,
    /// Spectrum backbone.
    pub spectrum_backbone: SpecFormerConfig,
    /// Spectrum head (`kv_dim` = SpecFormer width, residual).
    pub spectrum_head: CrossAttentionHeadConfig,
}

impl AstroClipConfig {
    /// The published AstroCLIP sizes (ViT-L/12 image backbone, 6×768 SpecFormer, 1024-d
    /// output): 370,798,358 parameters in the checkpoint, of which the forward pass uses all
    /// but the [`crate::weights::UNUSED_KEYS`].
    pub fn astroclip() -> Self {
        Self::new(
            ImageBackboneConfig::new(),
            CrossAttentionHeadConfig::new(),
            SpecFormerConfig::new(),
            CrossAttentionHeadConfig::new()
                .with_kv_dim(768)
                .with_residual(true),
        )
    }

    /// The shipped default model's sizes (`models/astrovec-small`): trainable from scratch
    /// on a 2-core CPU in about an hour, under 2 MB of weights. Same inputs as the
    /// published model (144×144×3 images, 7,781-pixel spectra): a 3-block 64-wide ViT
    /// with 16-px patches (81 tokens); a 3-block 64-wide SpecFormer over 80-pixel windows
    /// without overlap (98 tokens instead of 778); 128-d embeddings. The 80-pixel windows
    /// (64 Å) halve the tokens of 40-pixel ones and quarter the attention, which made a
    /// training step on the 2-core CPU 2.1× faster; a line still falls inside one token,
    /// whose linear embedding sees every pixel.
    pub fn small() -> Self {
        Self::new(
            ImageBackboneConfig::new()
                .with_patch_size(16)
                .with_embed_dim(64)
                .with_depth(3)
                .with_block_chunks(0)
                .with_num_heads(4)
                .with_mlp_hidden_dim(256)
                // DINOv2 starts LayerScale at 1e-5 for a 24-block network; a small
                // network trained from scratch learns faster with its blocks switched on.
                .with_layer_scale_init(0.1),
            CrossAttentionHeadConfig::new()
                .with_embed_dim(128)
                .with_kv_dim(64)
                .with_num_heads(4)
                .with_mlp_hidden_dim(256),
            SpecFormerConfig::new()
                .with_slice_length(80)
                .with_slice_overlap(0)
                .with_max_len(100)
                .with_embed_dim(64)
                .with_depth(3)
                .with_num_heads(4)
                .with_mlp_hidden_dim(256),
            CrossAttentionHeadConfig::new()
                .with_embed_dim(128)
                .with_kv_dim(64)
                .with_num_heads(4)
                .with_mlp_hidden_dim(256)
                .with_residual(true),
        )
    }

    /// A very small model for tests: same input sizes, 64-d output, runs in milliseconds.
    pub fn tiny() -> Self {
        Self::new(
            ImageBackboneConfig::new()
                .with_embed_dim(64)
                .with_depth(4)
                .with_num_heads(4)
                .with_mlp_hidden_dim(256),
            CrossAttentionHeadConfig::new()
                .with_embed_dim(64)
                .with_kv_dim(64)
                .with_num_heads(2)
                .with_mlp_hidden_dim(256),
            SpecFormerConfig::new()
                .with_embed_dim(48)
                .with_depth(2)
                .with_num_heads(2)
                .with_mlp_hidden_dim(192),
            CrossAttentionHeadConfig::new()
                .with_embed_dim(64)
                .with_kv_dim(48)
                .with_num_heads(2)
                .with_mlp_hidden_dim(256)
                .with_residual(true),
        )
    }

    /// A preset by name: `astroclip`, `small` or `tiny`.
    pub fn preset(name: &str) -> EncResult<Self> {
        match name {
            "astroclip" => Ok(Self::astroclip()),
            "small" => Ok(Self::small()),
            "tiny" => Ok(Self::tiny()),
            other => Err(EncoderError::UnknownPreset(other.to_string())),
        }
    }

    /// Width of the shared embedding space.
    pub fn embedding_dim(&self) -> usize {
        self.image_head.embed_dim
    }

    /// Checks every size and that the parts fit together.
    pub fn validate(&self) -> EncResult<()> {
        self.image_backbone.validate()?;
        self.spectrum_backbone.validate()?;
        self.image_head.validate()?;
        self.spectrum_head.validate()?;
        let bad = |m: String| Err(EncoderError::Config(m));
        if self.image_head.kv_dim != self.image_backbone.embed_dim {
            return bad(format!(
                "image_head.kv_dim {} != image_backbone.embed_dim {}",
                self.image_head.kv_dim, self.image_backbone.embed_dim
            ));
        }
        if self.spectrum_head.kv_dim != self.spectrum_backbone.embed_dim {
            return bad(format!(
                "spectrum_head.kv_dim {} != spectrum_backbone.embed_dim {}",
                self.spectrum_head.kv_dim, self.spectrum_backbone.embed_dim
            ));
        }
        if self.image_head.embed_dim != self.spectrum_head.embed_dim {
            return bad(format!(
                "image and spectrum heads embed into different widths ({} vs {})",
                self.image_head.embed_dim, self.spectrum_head.embed_dim
            ));
        }
        Ok(())
    }

    /// The configuration as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("configs always serialise")
    }

    /// Parses and validates a JSON configuration.
    pub fn from_json(json: &str) -> std::result::Result<Self, String> {
        let config: Self = serde_json::from_str(json).map_err(|e| e.to_string())?;
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }

    /// Writes the configuration as JSON.
    pub fn save_json(&self, path: impl AsRef<Path>) -> EncResult<()> {
        let path = path.as_ref();
        std::fs::write(path, self.to_json()).map_err(|e| EncoderError::io(path, e))
    }

    /// Reads and validates a JSON configuration.
    pub fn load_json(path: impl AsRef<Path>) -> EncResult<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| EncoderError::io(path, e))?;
        Self::from_json(&text).map_err(|m| EncoderError::format(path, m))
    }

    /// A randomly initialised model (for tests and benches; real use loads weights).
    pub fn init<B: Backend>(&self, device: &B::Device) -> EncResult<AstroClip<B>> {
        self.validate()?;
        let mut model = AstroClip {
            image_encoder: ImageEncoder {
                backbone: self.image_backbone.init(device),
                head: self.image_head.init(device),
            },
            spectrum_encoder: SpectrumEncoder {
                backbone: self.spectrum_backbone.init(device),
                head: self.spectrum_head.init(device),
            },
        };
        // Concrete values now, so clones and saved copies of a random model agree.
        model.visit_weights(&mut crate::weights::Materialize, self)?;
        Ok(model)
    }
}

/// Image encoder: ViT backbone + cross-attention head (checkpoint prefix `image_encoder`).
#[derive(Module, Debug)]
pub struct ImageEncoder<B: Backend> {
    /// `image_encoder.backbone.*`.
    pub backbone: ImageBackbone<B>,
    /// `image_encoder.cross_attention.*` and `image_encoder.mlp.*`.
    pub head: CrossAttentionHead<B>,
}

impl<B: Backend> ImageEncoder<B> {
    /// `[batch, 3, size, size]` (z, r, g in [0, 1]) → `[batch, E]`.
    pub fn forward(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        self.head.forward(self.backbone.forward(images))
    }
}

/// Spectrum encoder: SpecFormer + cross-attention head (checkpoint prefix `spectrum_encoder`).
#[derive(Module, Debug)]
pub struct SpectrumEncoder<B: Backend> {
    /// `spectrum_encoder.backbone.*`.
    pub backbone: SpecFormer<B>,
    /// `spectrum_encoder.cross_attention.*` and `spectrum_encoder.mlp.*`.
    pub head: CrossAttentionHead<B>,
}

impl<B: Backend> SpectrumEncoder<B> {
    /// Flux `[batch, length]` → `[batch, E]`.
    pub fn forward(&self, flux: Tensor<B, 2>) -> Tensor<B, 2> {
        self.head.forward(self.backbone.forward(flux))
    }
}

/// The AstroCLIP model. Build it with [`AstroClipConfig::init`] (random) or load it with
/// [`AstroClip::load`] / [`AstroClip::load_dir`]. Inference only: no dropout anywhere.
#[derive(Module, Debug)]
pub struct AstroClip<B: Backend> {
    /// The image encoder.
    pub image_encoder: ImageEncoder<B>,
    /// The spectrum encoder.
    pub spectrum_encoder: SpectrumEncoder<B>,
}

impl<B: Backend> AstroClip<B> {
    /// Images `[batch, 3, size, size]` (channel order z, r, g; values in [0, 1]) →
    /// embeddings `[batch, E]` (not normalised).
    pub fn embed_images(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        self.image_encoder.forward(images)
    }

    /// Flux `[batch, length]` (observed frame, DESI coadd grid) → embeddings `[batch, E]`
    /// (not normalised).
    pub fn embed_spectra(&self, flux: Tensor<B, 2>) -> Tensor<B, 2> {
        self.spectrum_encoder.forward(flux)
    }

    /// Walks every weight under its checkpoint key.
    pub(crate) fn visit_weights<V: ParamVisitor<B>>(
        &mut self,
        v: &mut V,
        config: &AstroClipConfig,
    ) -> EncResult<()> {
        let img = &mut self.image_encoder;
        img.backbone
            .visit_weights(v, "image_encoder.backbone", &config.image_backbone)?;
        img.head.visit_weights(
            v,
            "image_encoder.cross_attention",
            "image_encoder.mlp",
            &config.image_head,
        )?;
        let spec = &mut self.spectrum_encoder;
        spec.backbone
            .visit_weights(v, "spectrum_encoder.backbone", &config.spectrum_backbone)?;
        spec.head.visit_weights(
            v,
            "spectrum_encoder.cross_attention",
            "spectrum_encoder.mlp",
            &config.spectrum_head,
        )
    }

    /// Builds a model from PyTorch-layout tensors, strictly: every tensor the configuration
    /// implies must be present with its exact shape, and no other tensor may be present
    /// (except [`crate::weights::UNUSED_KEYS`]).
    pub fn from_tensors(
        config: &AstroClipConfig,
        mut tensors: TensorMap,
        device: &B::Device,
    ) -> EncResult<Self> {
        let mut model = config.init(device)?;
        let mut loader = Loader::new(&mut tensors, device);
        model.visit_weights(&mut loader, config)?;
        loader.finish()?;
        Ok(model)
    }

    /// Loads weights from a safetensors file or a PyTorch Lightning checkpoint
    /// (`astroclip.ckpt`; only its `state_dict` is read).
    pub fn load(
        config: &AstroClipConfig,
        weights: impl AsRef<Path>,
        device: &B::Device,
    ) -> EncResult<Self> {
        Self::from_tensors(config, TensorMap::read(weights)?, device)
    }

    /// Loads a model directory: [`CONFIG_FILE`] + [`WEIGHTS_FILE`].
    pub fn load_dir(
        dir: impl AsRef<Path>,
        device: &B::Device,
    ) -> EncResult<(Self, AstroClipConfig)> {
        let dir = dir.as_ref();
        let config = AstroClipConfig::load_json(dir.join(CONFIG_FILE))?;
        let model = Self::load(&config, dir.join(WEIGHTS_FILE), device)?;
        Ok((model, config))
    }

    /// The weights as PyTorch-layout tensors under the checkpoint keys.
    pub fn to_tensors(&self, config: &AstroClipConfig) -> EncResult<TensorMap> {
        let mut exporter = Exporter::default();
        self.clone().visit_weights(&mut exporter, config)?;
        Ok(exporter.map)
    }

    /// Writes the weights as safetensors (checkpoint keys, PyTorch layout, f32).
    pub fn save_safetensors(
        &self,
        config: &AstroClipConfig,
        path: impl AsRef<Path>,
    ) -> EncResult<()> {
        self.to_tensors(config)?.write_safetensors(path)
    }

    /// Writes a model directory ([`CONFIG_FILE`] + [`WEIGHTS_FILE`]), creating it if needed.
    pub fn save_dir(&self, config: &AstroClipConfig, dir: impl AsRef<Path>) -> EncResult<()> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| EncoderError::io(dir, e))?;
        config.save_json(dir.join(CONFIG_FILE))?;
        self.save_safetensors(config, dir.join(WEIGHTS_FILE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_sizes_follow_the_reference() {
        let c = AstroClipConfig::astroclip();
        c.validate().unwrap();
        assert_eq!(c.image_backbone.num_patches(), 144);
        let s = &c.spectrum_backbone;
        // 778 starts 0..=7770, last dropped -> 777 windows + stats token = 778 tokens x 22.
        assert_eq!(s.window_starts().len(), 777);
        assert_eq!(*s.window_starts().last().unwrap(), 7760);
        assert_eq!((s.num_tokens(), s.token_dim()), (778, 22));
        assert_eq!(c.image_backbone.block_key(23), "blocks.3.23");
        assert_eq!(c.image_backbone.block_key(5), "blocks.0.5");
        assert!(c.image_head.fused_in_proj() && !c.spectrum_head.fused_in_proj());
        assert_eq!(c.embedding_dim(), 1024);
    }

    #[test]
    fn presets_validate_and_configs_round_trip_through_json() {
        for name in PRESETS {
            let c = AstroClipConfig::preset(name).unwrap();
            c.validate().unwrap();
            assert_eq!(AstroClipConfig::from_json(&c.to_json()).unwrap(), c);
        }
        assert!(matches!(
            AstroClipConfig::preset("huge"),
            Err(EncoderError::UnknownPreset(_))
        ));
        let mut bad = AstroClipConfig::tiny();
        bad.spectrum_head.kv_dim = 64;
        assert!(matches!(bad.validate(), Err(EncoderError::Config(_))));
        let mut bad = AstroClipConfig::tiny();
        bad.spectrum_backbone.max_len = 100;
        assert!(matches!(bad.validate(), Err(EncoderError::Config(_))));
    }
}
