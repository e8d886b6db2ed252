//! The spectrum backbone: SpecFormer, with the reference's in-model preprocessing.
//!
//! Preprocessing (inside `forward`, as in the reference):
//! `mean`, unbiased `std` over the spectrum, `std = max(std, std_min)`, `x = (x − mean)/std`;
//! windows of `slice_length` values every `slice_length − slice_overlap` pixels, starts
//! `0, stride, … < length − overlap`, **the last start always dropped** (quirk: the reference's
//! length check looks at the wrong axis); each window left-padded with 2 zeros; one statistics
//! token `[(mean − 2)/2, (std − 2)/8, 0, …]` prepended. For 7,781 pixels: 777 windows + 1 =
//! 778 tokens × 22.

use burn::module::Param;
use burn::nn::{LayerNorm, Linear};
use burn::prelude::*;

use crate::error::{EncoderError, Result as EncResult};
use crate::model::nn::{
    flat_linear, fused_self_attention, layer_norm, linear, visit_layer_norm, visit_linear, Mlp,
};
use crate::weights::{Layout, ParamVisitor};

/// Zeros padded on the left of each window (fixed in the reference).
pub const WINDOW_PAD: usize = 2;

/// Sizes of SpecFormer. Defaults are the published model.
#[derive(Config, Debug, PartialEq)]
pub struct SpecFormerConfig {
    /// Pixels per spectrum (7781: DESI coadd grid 3600–9824 Å, 0.8 Å).
    #[config(default = 7781)]
    pub spectrum_length: usize,
    /// Values per window.
    #[config(default = 20)]
    pub slice_length: usize,
    /// Overlap of consecutive windows (stride = `slice_length − slice_overlap`).
    #[config(default = 10)]
    pub slice_overlap: usize,
    /// Token width.
    #[config(default = 768)]
    pub embed_dim: usize,
    /// Number of transformer blocks.
    #[config(default = 6)]
    pub depth: usize,
    /// Attention heads per block.
    #[config(default = 6)]
    pub num_heads: usize,
    /// Hidden width of each block's MLP.
    #[config(default = 3072)]
    pub mlp_hidden_dim: usize,
    /// Rows of the learned position table (must be ≥ the token count).
    #[config(default = 800)]
    pub max_len: usize,
    /// LayerNorm epsilon.
    #[config(default = 1e-5)]
    pub layer_norm_eps: f64,
    /// Lower clamp on the per-spectrum standard deviation.
    #[config(default = 0.2)]
    pub std_min: f64,
}

impl SpecFormerConfig {
    /// Width of a token: `slice_length + 2`.
    pub fn token_dim(&self) -> usize {
        self.slice_length + WINDOW_PAD
    }

    /// Window starts kept (the reference's `arange(0, L − overlap, stride)` minus its last).
    pub fn window_starts(&self) -> Vec<usize> {
        let stride = self.slice_length.saturating_sub(self.slice_overlap).max(1);
        let end = self.spectrum_length.saturating_sub(self.slice_overlap);
        let mut starts: Vec<usize> = (0..end).step_by(stride).collect();
        starts.pop();
        starts
    }

    /// Tokens per spectrum: windows + 1 statistics token (778 for the published sizes).
    pub fn num_tokens(&self) -> usize {
        self.window_starts().len() + 1
    }

    /// Checks the sizes fit together.
    pub fn validate(&self) -> EncResult<()> {
        let bad = |m: String| Err(EncoderError::Config(format!("specformer: {m}")));
        if self.slice_overlap >= self.slice_length {
            return bad("slice_overlap must be smaller than slice_length".into());
        }
        let starts = self.window_starts();
        match starts.last() {
            None => return bad("spectrum_length too short for one window".into()),
            // The reference concatenates the kept windows, which must all be full.
            Some(&s) if s + self.slice_length > self.spectrum_length => {
                return bad(format!(
                    "the last kept window ({s}..{}) runs past spectrum_length {}",
                    s + self.slice_length,
                    self.spectrum_length
                ))
            }
            _ => {}
        }
        if self.num_tokens() > self.max_len {
            return bad(format!(
                "{} tokens exceed max_len {}",
                self.num_tokens(),
                self.max_len
            ));
        }
        if self.num_heads == 0 || !self.embed_dim.is_multiple_of(self.num_heads) {
            return bad(format!(
                "embed_dim {} is not a multiple of num_heads {}",
                self.embed_dim, self.num_heads
            ));
        }
        if self.std_min.is_nan() || self.std_min <= 0.0 {
            return bad("std_min must be positive".into());
        }
        Ok(())
    }

    /// A randomly initialised SpecFormer.
    pub fn init<B: Backend>(&self, device: &B::Device) -> SpecFormer<B> {
        let (d, h) = (self.embed_dim, self.mlp_hidden_dim);
        let indices: Vec<i64> = self
            .window_starts()
            .iter()
            .flat_map(|&s| (s..s + self.slice_length).map(|i| i as i64))
            .collect();
        SpecFormer {
            data_embed: linear(self.token_dim(), d, device),
            position_embed: Param::from_tensor(Tensor::random(
                [self.max_len, d],
                burn::tensor::Distribution::Normal(0.0, 0.02),
                device,
            )),
            blocks: (0..self.depth)
                .map(|_| SpecFormerBlock {
                    layernorm1: layer_norm(d, self.layer_norm_eps, device),
                    attention: SelfAttention {
                        attention: linear(d, 3 * d, device),
                        projection: linear(d, d, device),
                        num_heads: self.num_heads,
                    },
                    layernorm2: layer_norm(d, self.layer_norm_eps, device),
                    mlp: Mlp::new(d, h, device),
                })
                .collect(),
            final_layernorm: layer_norm(d, self.layer_norm_eps, device),
            window_index: Tensor::from_data(
                TensorData::new(indices.clone(), [indices.len()]),
                device,
            ),
            slice_length: self.slice_length,
            std_min: self.std_min,
        }
    }
}

/// SpecFormer self-attention: fused `attention` Linear split into q, k, v, then `projection`.
#[derive(Module, Debug)]
pub struct SelfAttention<B: Backend> {
    /// `Linear(d → 3d)`, output laid out `[q | k | v]`.
    pub attention: Linear<B>,
    /// `Linear(d → d)`.
    pub projection: Linear<B>,
    /// Heads.
    pub num_heads: usize,
}

/// A pre-norm SpecFormer block: `x += attention(layernorm1(x))`, `x += mlp(layernorm2(x))`.
#[derive(Module, Debug)]
pub struct SpecFormerBlock<B: Backend> {
    /// LayerNorm before attention.
    pub layernorm1: LayerNorm<B>,
    /// Self-attention.
    pub attention: SelfAttention<B>,
    /// LayerNorm before the MLP.
    pub layernorm2: LayerNorm<B>,
    /// MLP.
    pub mlp: Mlp<B>,
}

impl<B: Backend> SpecFormerBlock<B> {
    /// `[batch, tokens, d] → [batch, tokens, d]`.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let a = flat_linear(
            &self.attention.attention,
            self.layernorm1.forward(x.clone()),
        );
        let a = fused_self_attention(a, self.attention.num_heads);
        let x = x + flat_linear(&self.attention.projection, a);
        x.clone() + self.mlp.forward(self.layernorm2.forward(x))
    }
}

/// SpecFormer: preprocessing, `data_embed` + learned positions, blocks, `final_layernorm`.
#[derive(Module, Debug)]
pub struct SpecFormer<B: Backend> {
    /// `Linear(token_dim → d)`.
    pub data_embed: Linear<B>,
    /// Learned positions `[max_len, d]` (PyTorch `Embedding.weight`).
    pub position_embed: Param<Tensor<B, 2>>,
    /// Transformer blocks.
    pub blocks: Vec<SpecFormerBlock<B>>,
    /// Final LayerNorm.
    pub final_layernorm: LayerNorm<B>,
    /// Flat pixel indices of all kept windows, `[windows · slice_length]` (not a weight).
    pub window_index: Tensor<B, 1, Int>,
    /// Values per window.
    pub slice_length: usize,
    /// Lower clamp on the standard deviation.
    pub std_min: f64,
}

impl<B: Backend> SpecFormer<B> {
    /// The reference's `preprocess`: flux `[batch, length]` → tokens `[batch, windows + 1,
    /// slice_length + 2]`.
    pub fn tokenize(&self, flux: Tensor<B, 2>) -> Tensor<B, 3> {
        let [batch, _] = flux.dims();
        let device = flux.device();
        let mean = flux.clone().mean_dim(1); // [B, 1]
        let std = flux.clone().var(1).sqrt().clamp_min(self.std_min); // unbiased, [B, 1]
        let normalised = (flux - mean.clone()) / std.clone();
        let [n_index] = self.window_index.dims();
        let n_windows = n_index / self.slice_length;
        let windows = normalised.select(1, self.window_index.clone()).reshape([
            batch,
            n_windows,
            self.slice_length,
        ]);
        let pad = Tensor::zeros([batch, n_windows, WINDOW_PAD], &device);
        let tokens = Tensor::cat(vec![pad, windows], 2);
        let stats = Tensor::cat(
            vec![
                (mean - 2.0) / 2.0,
                (std - 2.0) / 8.0,
                Tensor::zeros([batch, self.slice_length], &device),
            ],
            1,
        )
        .reshape([batch, 1, self.slice_length + WINDOW_PAD]);
        Tensor::cat(vec![stats, tokens], 1)
    }

    /// Flux `[batch, length]` → token embeddings `[batch, windows + 1, d]`.
    pub fn forward(&self, flux: Tensor<B, 2>) -> Tensor<B, 3> {
        self.forward_tokens(self.tokenize(flux))
    }

    /// Tokens from [`SpecFormer::tokenize`] `[batch, windows + 1, slice_length + 2]` →
    /// token embeddings `[batch, windows + 1, d]`. Masked pre-training calls this with
    /// some tokens zeroed.
    pub fn forward_tokens(&self, tokens: Tensor<B, 3>) -> Tensor<B, 3> {
        let [_, n, _] = tokens.dims();
        let positions = self.position_embed.val().narrow(0, 0, n).unsqueeze::<3>();
        let mut x = flat_linear(&self.data_embed, tokens) + positions;
        for block in &self.blocks {
            x = block.forward(x);
        }
        self.final_layernorm.forward(x)
    }

    pub(crate) fn visit_weights<V: ParamVisitor<B>>(
        &mut self,
        v: &mut V,
        prefix: &str,
        config: &SpecFormerConfig,
    ) -> EncResult<()> {
        let (d, h) = (config.embed_dim, config.mlp_hidden_dim);
        visit_linear(
            v,
            &format!("{prefix}.data_embed"),
            &mut self.data_embed,
            config.token_dim(),
            d,
        )?;
        v.visit(
            &format!("{prefix}.position_embed.weight"),
            &[config.max_len, d],
            Layout::Same,
            &mut self.position_embed,
        )?;
        for (i, block) in self.blocks.iter_mut().enumerate() {
            let k = format!("{prefix}.blocks.{i}");
            visit_layer_norm(v, &format!("{k}.layernorm1"), &mut block.layernorm1, d)?;
            let attn = &mut block.attention;
            visit_linear(
                v,
                &format!("{k}.attention.attention"),
                &mut attn.attention,
                d,
                3 * d,
            )?;
            visit_linear(
                v,
                &format!("{k}.attention.projection"),
                &mut attn.projection,
                d,
                d,
            )?;
            visit_layer_norm(v, &format!("{k}.layernorm2"), &mut block.layernorm2, d)?;
            block.mlp.visit_weights(v, &format!("{k}.mlp"), d, h)?;
        }
        visit_layer_norm(
            v,
            &format!("{prefix}.final_layernorm"),
            &mut self.final_layernorm,
            d,
        )
    }
}
