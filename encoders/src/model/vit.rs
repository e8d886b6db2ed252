//! The image backbone: DINOv2's ViT as AstroCLIP runs it (AstroDINO, ViT-L/12 when published).
//!
//! Departures from the DINOv2 module, all faithful to AstroCLIP's forward pass:
//! - no CLS token, positional embedding, mask token or registers: the reference image head calls
//!   `patch_embed → blocks → norm` directly, so those tensors are never read (they may sit in a
//!   checkpoint; see [`crate::weights::UNUSED_KEYS`]);
//! - the patch embedding `Conv2d(kernel = stride = patch)` runs as one matmul over flattened
//!   patches (identical arithmetic, no im2col); its weight is stored `[c·p·p, d]`.

use burn::module::Param;
use burn::nn::{LayerNorm, Linear};
use burn::prelude::*;

use crate::error::{EncoderError, Result as EncResult};
use crate::model::nn::{
    flat_linear, fused_self_attention, layer_norm, linear, visit_layer_norm, visit_linear,
    LayerScale, VitMlp,
};
use crate::weights::{Layout, ParamVisitor};

/// Sizes of the image backbone. Defaults are the published AstroDINO ViT-L/12.
#[derive(Config, Debug, PartialEq)]
pub struct ImageBackboneConfig {
    /// Input channels (3: z, r, g).
    #[config(default = 3)]
    pub in_channels: usize,
    /// Input height and width in pixels (square images).
    #[config(default = 144)]
    pub image_size: usize,
    /// Patch side in pixels (the patch embedding's kernel and stride).
    #[config(default = 12)]
    pub patch_size: usize,
    /// Token width.
    #[config(default = 1024)]
    pub embed_dim: usize,
    /// Number of transformer blocks.
    #[config(default = 24)]
    pub depth: usize,
    /// Attention heads per block.
    #[config(default = 16)]
    pub num_heads: usize,
    /// Hidden width of each block's MLP.
    #[config(default = 4096)]
    pub mlp_hidden_dim: usize,
    /// LayerNorm epsilon.
    #[config(default = 1e-6)]
    pub layer_norm_eps: f64,
    /// DINOv2 stores blocks in this many chunks: key `blocks.{c}.{i}` with
    /// `c = i / (depth / block_chunks)`; 0 means flat keys `blocks.{i}`.
    #[config(default = 4)]
    pub block_chunks: usize,
    /// Initial LayerScale value for freshly initialised (random) models.
    #[config(default = 1e-5)]
    pub layer_scale_init: f64,
}

impl ImageBackboneConfig {
    /// Tokens per image: `(image_size / patch_size)²`.
    pub fn num_patches(&self) -> usize {
        let side = self.image_size / self.patch_size.max(1);
        side * side
    }

    /// Checks the sizes fit together.
    pub fn validate(&self) -> EncResult<()> {
        let bad = |m: String| Err(EncoderError::Config(format!("image backbone: {m}")));
        if self.patch_size == 0 || !self.image_size.is_multiple_of(self.patch_size) {
            return bad(format!(
                "image_size {} is not a multiple of patch_size {}",
                self.image_size, self.patch_size
            ));
        }
        if self.num_heads == 0 || !self.embed_dim.is_multiple_of(self.num_heads) {
            return bad(format!(
                "embed_dim {} is not a multiple of num_heads {}",
                self.embed_dim, self.num_heads
            ));
        }
        if self.block_chunks > 0 && !self.depth.is_multiple_of(self.block_chunks) {
            return bad(format!(
                "depth {} is not a multiple of block_chunks {}",
                self.depth, self.block_chunks
            ));
        }
        if self.in_channels == 0 || self.depth == 0 || self.mlp_hidden_dim == 0 {
            return bad("in_channels, depth and mlp_hidden_dim must be positive".into());
        }
        Ok(())
    }

    /// Checkpoint key prefix of block `i` (relative to the backbone).
    pub fn block_key(&self, i: usize) -> String {
        match self.depth.checked_div(self.block_chunks) {
            None | Some(0) => format!("blocks.{i}"),
            Some(chunk) => format!("blocks.{}.{i}", i / chunk),
        }
    }

    /// A randomly initialised backbone.
    pub fn init<B: Backend>(&self, device: &B::Device) -> ImageBackbone<B> {
        let (d, h) = (self.embed_dim, self.mlp_hidden_dim);
        let k = self.in_channels * self.patch_size * self.patch_size;
        let bound = 1.0 / (k as f64).sqrt();
        let patch_embed = PatchEmbed {
            weight: Param::from_tensor(Tensor::random(
                [k, d],
                burn::tensor::Distribution::Uniform(-bound, bound),
                device,
            )),
            bias: Param::from_tensor(Tensor::zeros([d], device)),
            patch_size: self.patch_size,
        };
        let blocks = (0..self.depth)
            .map(|_| VitBlock {
                norm1: layer_norm(d, self.layer_norm_eps, device),
                attn: VitAttention {
                    qkv: linear(d, 3 * d, device),
                    proj: linear(d, d, device),
                    num_heads: self.num_heads,
                },
                ls1: LayerScale::new(d, self.layer_scale_init, device),
                norm2: layer_norm(d, self.layer_norm_eps, device),
                mlp: VitMlp {
                    fc1: linear(d, h, device),
                    fc2: linear(h, d, device),
                },
                ls2: LayerScale::new(d, self.layer_scale_init, device),
            })
            .collect();
        ImageBackbone {
            patch_embed,
            blocks,
            norm: layer_norm(d, self.layer_norm_eps, device),
        }
    }
}

/// Patch embedding: a `Conv2d(c → d, kernel = stride = patch)` run as a matmul.
#[derive(Module, Debug)]
pub struct PatchEmbed<B: Backend> {
    /// `[c·p·p, d]` (PyTorch `proj.weight [d, c, p, p]`, flattened and transposed).
    pub weight: Param<Tensor<B, 2>>,
    /// `[d]`.
    pub bias: Param<Tensor<B, 1>>,
    /// Patch side.
    pub patch_size: usize,
}

impl<B: Backend> PatchEmbed<B> {
    /// `[batch, c, h, w] → [batch, (h/p)·(w/p), d]`, patches in row-major order.
    pub fn forward(&self, images: Tensor<B, 4>) -> Tensor<B, 3> {
        let [batch, channels, height, width] = images.dims();
        let p = self.patch_size;
        let (gh, gw) = (height / p, width / p);
        let patches = images
            .reshape([batch, channels, gh, p, gw, p])
            .permute([0, 2, 4, 1, 3, 5])
            .reshape([batch, gh * gw, channels * p * p]);
        let y = burn::tensor::module::linear(
            patches.reshape([batch * gh * gw, channels * p * p]),
            self.weight.val(),
            Some(self.bias.val()),
        );
        let [_, d] = y.dims();
        y.reshape([batch, gh * gw, d])
    }
}

/// DINOv2 attention: fused `qkv` then `proj`.
#[derive(Module, Debug)]
pub struct VitAttention<B: Backend> {
    /// `Linear(d → 3d)`, output laid out `[q | k | v]`.
    pub qkv: Linear<B>,
    /// `Linear(d → d)`.
    pub proj: Linear<B>,
    /// Heads.
    pub num_heads: usize,
}

impl<B: Backend> VitAttention<B> {
    /// `[batch, tokens, d] → [batch, tokens, d]`.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let y = fused_self_attention(flat_linear(&self.qkv, x), self.num_heads);
        flat_linear(&self.proj, y)
    }
}

/// A pre-norm DINOv2 block with LayerScale:
/// `x += ls1(attn(norm1(x)))`, `x += ls2(mlp(norm2(x)))`.
#[derive(Module, Debug)]
pub struct VitBlock<B: Backend> {
    /// LayerNorm before attention.
    pub norm1: LayerNorm<B>,
    /// Self-attention.
    pub attn: VitAttention<B>,
    /// LayerScale on the attention branch.
    pub ls1: LayerScale<B>,
    /// LayerNorm before the MLP.
    pub norm2: LayerNorm<B>,
    /// MLP.
    pub mlp: VitMlp<B>,
    /// LayerScale on the MLP branch.
    pub ls2: LayerScale<B>,
}

impl<B: Backend> VitBlock<B> {
    /// `[batch, tokens, d] → [batch, tokens, d]`.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let x = x.clone() + self.ls1.forward(self.attn.forward(self.norm1.forward(x)));
        x.clone() + self.ls2.forward(self.mlp.forward(self.norm2.forward(x)))
    }
}

/// The image backbone: `patch_embed → blocks → norm`.
#[derive(Module, Debug)]
pub struct ImageBackbone<B: Backend> {
    /// Patch embedding.
    pub patch_embed: PatchEmbed<B>,
    /// Transformer blocks.
    pub blocks: Vec<VitBlock<B>>,
    /// Final LayerNorm.
    pub norm: LayerNorm<B>,
}

impl<B: Backend> ImageBackbone<B> {
    /// `[batch, channels, size, size]` in [0, 1] → token embeddings `[batch, patches, d]`.
    pub fn forward(&self, images: Tensor<B, 4>) -> Tensor<B, 3> {
        let mut x = self.patch_embed.forward(images);
        for block in &self.blocks {
            x = block.forward(x);
        }
        self.norm.forward(x)
    }

    pub(crate) fn visit_weights<V: ParamVisitor<B>>(
        &mut self,
        v: &mut V,
        prefix: &str,
        config: &ImageBackboneConfig,
    ) -> EncResult<()> {
        let (c, p, d, h) = (
            config.in_channels,
            config.patch_size,
            config.embed_dim,
            config.mlp_hidden_dim,
        );
        v.visit(
            &format!("{prefix}.patch_embed.proj.weight"),
            &[d, c, p, p],
            Layout::PatchConv,
            &mut self.patch_embed.weight,
        )?;
        v.visit(
            &format!("{prefix}.patch_embed.proj.bias"),
            &[d],
            Layout::Same,
            &mut self.patch_embed.bias,
        )?;
        for (i, block) in self.blocks.iter_mut().enumerate() {
            let k = format!("{prefix}.{}", config.block_key(i));
            visit_layer_norm(v, &format!("{k}.norm1"), &mut block.norm1, d)?;
            visit_linear(v, &format!("{k}.attn.qkv"), &mut block.attn.qkv, d, 3 * d)?;
            visit_linear(v, &format!("{k}.attn.proj"), &mut block.attn.proj, d, d)?;
            v.visit(
                &format!("{k}.ls1.gamma"),
                &[d],
                Layout::Same,
                &mut block.ls1.gamma,
            )?;
            visit_layer_norm(v, &format!("{k}.norm2"), &mut block.norm2, d)?;
            visit_linear(v, &format!("{k}.mlp.fc1"), &mut block.mlp.fc1, d, h)?;
            visit_linear(v, &format!("{k}.mlp.fc2"), &mut block.mlp.fc2, h, d)?;
            v.visit(
                &format!("{k}.ls2.gamma"),
                &[d],
                Layout::Same,
                &mut block.ls2.gamma,
            )?;
        }
        visit_layer_norm(v, &format!("{prefix}.norm"), &mut self.norm, d)
    }
}
