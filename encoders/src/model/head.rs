//! AstroCLIP's cross-attention head: one learned query attends over the backbone's tokens
//! (`nn.MultiheadAttention`, key/value width may differ from the query width), then LayerNorm,
//! then an MLP — with a residual on the spectrum side only (quirk, kept for parity).
//!
//! Checkpoint layout follows PyTorch: when the key/value width equals the query width the
//! projections are stored fused (`in_proj_weight [3E, E]`), otherwise separately
//! (`q_proj_weight [E, E]`, `k_proj_weight [E, kv]`, `v_proj_weight [E, kv]`); the bias is
//! always fused (`in_proj_bias [3E]`).

use burn::module::Param;
use burn::nn::{LayerNorm, Linear};
use burn::prelude::*;

use crate::backend::{host_values, is_cpu};
use crate::error::{EncoderError, Result as EncResult};
use crate::model::nn::{
    flat_linear, host_attention, layer_norm, linear, scaled_attention, visit_layer_norm,
    visit_linear, HostOperand, Mlp,
};
use crate::weights::{Layout, ParamVisitor};

/// Sizes of a cross-attention head. Defaults are the published image head.
#[derive(Config, Debug, PartialEq)]
pub struct CrossAttentionHeadConfig {
    /// Query and output width (the shared embedding size, 1024).
    #[config(default = 1024)]
    pub embed_dim: usize,
    /// Width of the backbone tokens it attends over (keys and values).
    #[config(default = 1024)]
    pub kv_dim: usize,
    /// Attention heads.
    #[config(default = 4)]
    pub num_heads: usize,
    /// Hidden width of the MLP.
    #[config(default = 4096)]
    pub mlp_hidden_dim: usize,
    /// LayerNorm epsilon (PyTorch's default 1e-5).
    #[config(default = 1e-5)]
    pub layer_norm_eps: f64,
    /// `x = x + mlp(x)` if true (spectrum head), `x = mlp(x)` if false (image head).
    #[config(default = false)]
    pub residual: bool,
}

impl CrossAttentionHeadConfig {
    /// Whether PyTorch stores the q/k/v projections fused (`kv_dim == embed_dim`).
    pub fn fused_in_proj(&self) -> bool {
        self.kv_dim == self.embed_dim
    }

    /// Checks the sizes fit together.
    pub fn validate(&self) -> EncResult<()> {
        if self.num_heads == 0 || !self.embed_dim.is_multiple_of(self.num_heads) {
            return Err(EncoderError::Config(format!(
                "head: embed_dim {} is not a multiple of num_heads {}",
                self.embed_dim, self.num_heads
            )));
        }
        Ok(())
    }

    /// A randomly initialised head.
    pub fn init<B: Backend>(&self, device: &B::Device) -> CrossAttentionHead<B> {
        let e = self.embed_dim;
        CrossAttentionHead {
            query: Param::from_tensor(Tensor::random(
                [1, 1, e],
                burn::tensor::Distribution::Normal(0.0, 1.0),
                device,
            )),
            multihead_attn: MultiheadAttention {
                q_proj: linear(e, e, device),
                k_proj: linear(self.kv_dim, e, device),
                v_proj: linear(self.kv_dim, e, device),
                out_proj: linear(e, e, device),
                num_heads: self.num_heads,
            },
            layernorm: layer_norm(e, self.layer_norm_eps, device),
            mlp: Mlp::new(e, self.mlp_hidden_dim, device),
            residual: self.residual,
        }
    }
}

/// `nn.MultiheadAttention` (batch first, biases on), projections held separately.
#[derive(Module, Debug)]
pub struct MultiheadAttention<B: Backend> {
    /// `Linear(E → E)`.
    pub q_proj: Linear<B>,
    /// `Linear(kv → E)`.
    pub k_proj: Linear<B>,
    /// `Linear(kv → E)`.
    pub v_proj: Linear<B>,
    /// `Linear(E → E)`.
    pub out_proj: Linear<B>,
    /// Heads.
    pub num_heads: usize,
}

impl<B: Backend> MultiheadAttention<B> {
    /// `query: [batch, n_q, E]`, `x: [batch, n_k, kv]` → `[batch, n_q, E]`.
    pub fn forward(&self, query: Tensor<B, 3>, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [batch, n_q, e] = query.dims();
        let [_, n_k, _] = x.dims();
        let h = self.num_heads;
        let hd = e / h;
        let q = flat_linear(&self.q_proj, query);
        let k = flat_linear(&self.k_proj, x.clone());
        let v = flat_linear(&self.v_proj, x);
        if is_cpu::<B>() {
            let device = q.device();
            let (q, k, v) = (host_values(q), host_values(k), host_values(v));
            let operand = |data, n: usize| HostOperand {
                data,
                offset: 0,
                row_stride: e,
                batch_stride: n * e,
            };
            let out = host_attention(
                operand(&q, n_q),
                operand(&k, n_k),
                operand(&v, n_k),
                batch,
                n_q,
                n_k,
                h,
                hd,
            );
            let out = Tensor::from_data(TensorData::new(out, [batch, n_q, e]), &device);
            return flat_linear(&self.out_proj, out);
        }
        let split = |t: Tensor<B, 3>, n: usize| t.reshape([batch, n, h, hd]).swap_dims(1, 2);
        let (q, k, v) = (split(q, n_q), split(k, n_k), split(v, n_k));
        let out = scaled_attention(q, k, v)
            .swap_dims(1, 2)
            .reshape([batch, n_q, e]);
        flat_linear(&self.out_proj, out)
    }
}

/// The head: learned query → multi-head cross-attention → LayerNorm → MLP (± residual).
#[derive(Module, Debug)]
pub struct CrossAttentionHead<B: Backend> {
    /// The learned query `[1, 1, E]`, repeated over the batch.
    pub query: Param<Tensor<B, 3>>,
    /// Cross-attention.
    pub multihead_attn: MultiheadAttention<B>,
    /// LayerNorm after attention.
    pub layernorm: LayerNorm<B>,
    /// The MLP (`encoder`, `decoder`); in the checkpoint it sits beside `cross_attention`.
    pub mlp: Mlp<B>,
    /// Residual around the MLP.
    pub residual: bool,
}

impl<B: Backend> CrossAttentionHead<B> {
    /// Backbone tokens `[batch, tokens, kv]` → embeddings `[batch, E]` (not normalised).
    pub fn forward(&self, tokens: Tensor<B, 3>) -> Tensor<B, 2> {
        let [batch, _, _] = tokens.dims();
        let query = self.query.val().repeat_dim(0, batch);
        let x = self
            .layernorm
            .forward(self.multihead_attn.forward(query, tokens));
        let x = if self.residual {
            x.clone() + self.mlp.forward(x)
        } else {
            self.mlp.forward(x)
        };
        let [_, _, e] = x.dims();
        x.reshape([batch, e])
    }

    /// Walks the weights: `{attn_prefix}.{query, multihead_attn.*, layernorm.*}` and
    /// `{mlp_prefix}.{encoder, decoder}.*`.
    pub(crate) fn visit_weights<V: ParamVisitor<B>>(
        &mut self,
        v: &mut V,
        attn_prefix: &str,
        mlp_prefix: &str,
        config: &CrossAttentionHeadConfig,
    ) -> EncResult<()> {
        let (e, kv) = (config.embed_dim, config.kv_dim);
        v.visit(
            &format!("{attn_prefix}.query"),
            &[1, 1, e],
            Layout::Same,
            &mut self.query,
        )?;
        let m = &mut self.multihead_attn;
        let p = format!("{attn_prefix}.multihead_attn");
        if config.fused_in_proj() {
            v.visit_fused(
                &format!("{p}.in_proj_weight"),
                &[e, e],
                Layout::Linear,
                [
                    &mut m.q_proj.weight,
                    &mut m.k_proj.weight,
                    &mut m.v_proj.weight,
                ],
            )?;
        } else {
            let q = &format!("{p}.q_proj_weight");
            v.visit(q, &[e, e], Layout::Linear, &mut m.q_proj.weight)?;
            let k = &format!("{p}.k_proj_weight");
            v.visit(k, &[e, kv], Layout::Linear, &mut m.k_proj.weight)?;
            let vk = &format!("{p}.v_proj_weight");
            v.visit(vk, &[e, kv], Layout::Linear, &mut m.v_proj.weight)?;
        }
        let (qb, kb, vb) = (
            m.q_proj.bias.as_mut(),
            m.k_proj.bias.as_mut(),
            m.v_proj.bias.as_mut(),
        );
        let (Some(qb), Some(kb), Some(vb)) = (qb, kb, vb) else {
            return Err(EncoderError::Config("head projections lack biases".into()));
        };
        v.visit_fused(
            &format!("{p}.in_proj_bias"),
            &[e],
            Layout::Same,
            [qb, kb, vb],
        )?;
        visit_linear(v, &format!("{p}.out_proj"), &mut m.out_proj, e, e)?;
        visit_layer_norm(
            v,
            &format!("{attn_prefix}.layernorm"),
            &mut self.layernorm,
            e,
        )?;
        self.mlp
            .visit_weights(v, mlp_prefix, e, config.mlp_hidden_dim)
    }
}
