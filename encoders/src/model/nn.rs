//! Small building blocks shared by the backbones and heads: weight-walk helpers for Burn's
//! `Linear` / `LayerNorm`, LayerScale, the two-layer MLPs and multi-head self-attention.

use burn::module::Param;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::gelu;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;

use crate::error::Result;
use crate::weights::{Layout, ParamVisitor};

/// Walks a Burn `Linear(d_in → d_out)` stored as PyTorch `{key}.weight [d_out, d_in]` and
/// `{key}.bias [d_out]`.
pub(crate) fn visit_linear<B: Backend, V: ParamVisitor<B>>(
    v: &mut V,
    key: &str,
    linear: &mut Linear<B>,
    d_in: usize,
    d_out: usize,
) -> Result<()> {
    v.visit(
        &format!("{key}.weight"),
        &[d_out, d_in],
        Layout::Linear,
        &mut linear.weight,
    )?;
    if let Some(bias) = linear.bias.as_mut() {
        v.visit(&format!("{key}.bias"), &[d_out], Layout::Same, bias)?;
    }
    Ok(())
}

/// Walks a Burn `LayerNorm(d)` stored as PyTorch `{key}.weight` / `{key}.bias`.
pub(crate) fn visit_layer_norm<B: Backend, V: ParamVisitor<B>>(
    v: &mut V,
    key: &str,
    norm: &mut LayerNorm<B>,
    d: usize,
) -> Result<()> {
    v.visit(
        &format!("{key}.weight"),
        &[d],
        Layout::Same,
        &mut norm.gamma,
    )?;
    if let Some(beta) = norm.beta.as_mut() {
        v.visit(&format!("{key}.bias"), &[d], Layout::Same, beta)?;
    }
    Ok(())
}

/// A `LayerNorm(d, eps)` with bias.
pub(crate) fn layer_norm<B: Backend>(d: usize, eps: f64, device: &B::Device) -> LayerNorm<B> {
    LayerNormConfig::new(d).with_epsilon(eps).init(device)
}

/// A `Linear(d_in → d_out)` with bias.
pub(crate) fn linear<B: Backend>(d_in: usize, d_out: usize, device: &B::Device) -> Linear<B> {
    LinearConfig::new(d_in, d_out).init(device)
}

/// DINOv2's LayerScale: a learned per-channel multiplier (`gamma`).
#[derive(Module, Debug)]
pub struct LayerScale<B: Backend> {
    /// Scale per channel, `[d]`.
    pub gamma: Param<Tensor<B, 1>>,
}

impl<B: Backend> LayerScale<B> {
    pub(crate) fn new(d: usize, init: f64, device: &B::Device) -> Self {
        Self {
            gamma: Param::from_tensor(Tensor::full([d], init, device)),
        }
    }

    /// `[batch, tokens, d] → [batch, tokens, d]`, `x · gamma`.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        x * self.gamma.val().unsqueeze::<3>()
    }
}

/// DINOv2's block MLP: `fc1 → GELU (erf) → fc2`.
#[derive(Module, Debug)]
pub struct VitMlp<B: Backend> {
    /// `Linear(d → hidden)`.
    pub fc1: Linear<B>,
    /// `Linear(hidden → d)`.
    pub fc2: Linear<B>,
}

impl<B: Backend> VitMlp<B> {
    /// `[.., d] → [.., d]`.
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        self.fc2.forward(gelu(self.fc1.forward(x)))
    }
}

/// AstroCLIP's MLP (SpecFormer blocks and both heads): `encoder → GELU (erf) → decoder`
/// (dropout is off at inference).
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    /// `Linear(d → hidden)`.
    pub encoder: Linear<B>,
    /// `Linear(hidden → d)`.
    pub decoder: Linear<B>,
}

impl<B: Backend> Mlp<B> {
    pub(crate) fn new(d: usize, hidden: usize, device: &B::Device) -> Self {
        Self {
            encoder: linear(d, hidden, device),
            decoder: linear(hidden, d, device),
        }
    }

    /// `[.., d] → [.., d]`.
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        self.decoder.forward(gelu(self.encoder.forward(x)))
    }

    pub(crate) fn visit_weights<V: ParamVisitor<B>>(
        &mut self,
        v: &mut V,
        key: &str,
        d: usize,
        hidden: usize,
    ) -> Result<()> {
        visit_linear(v, &format!("{key}.encoder"), &mut self.encoder, d, hidden)?;
        visit_linear(v, &format!("{key}.decoder"), &mut self.decoder, hidden, d)
    }
}

/// Non-causal multi-head attention over already-projected tensors, scale `1/sqrt(head_dim)`.
///
/// `q: [batch, heads, n_q, head_dim]`, `k, v: [batch, heads, n_k, head_dim]` →
/// `[batch, heads, n_q, head_dim]`.
pub(crate) fn scaled_attention<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
) -> Tensor<B, 4> {
    let [_, _, _, head_dim] = q.dims();
    let options = AttentionModuleOptions {
        scale: Some(1.0 / (head_dim as f64).sqrt()),
        softcap: None,
        is_causal: false,
    };
    attention(q, k, v, None, None, options)
}

/// Self-attention from a fused `qkv` projection, as DINOv2 and SpecFormer both lay it out:
/// the last dimension is `[q | k | v]`, each split into `heads × head_dim`.
///
/// `qkv: [batch, tokens, 3·d]` → `[batch, tokens, d]` (before the output projection).
pub(crate) fn fused_self_attention<B: Backend>(qkv: Tensor<B, 3>, heads: usize) -> Tensor<B, 3> {
    let [batch, tokens, three_d] = qkv.dims();
    let d = three_d / 3;
    let head_dim = d / heads;
    // [B, N, 3, H, hd] → [3, B, H, N, hd]
    let qkv = qkv
        .reshape([batch, tokens, 3, heads, head_dim])
        .permute([2, 0, 3, 1, 4]);
    let part = |i: usize| {
        qkv.clone()
            .narrow(0, i, 1)
            .reshape([batch, heads, tokens, head_dim])
    };
    let out = scaled_attention(part(0), part(1), part(2));
    out.swap_dims(1, 2).reshape([batch, tokens, d])
}
