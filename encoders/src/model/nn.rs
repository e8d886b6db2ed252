//! Small building blocks shared by the backbones and heads: weight-walk helpers for Burn's
//! `Linear` / `LayerNorm`, LayerScale, the two-layer MLPs and multi-head self-attention.

use burn::module::Param;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::gelu;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;

use crate::backend::{host_values, is_cpu};
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

/// Applies a `Linear` to `[.., d_in]` as one `[rows, d_in] × [d_in, d_out]` matmul.
///
/// Why: Burn 0.21's default `linear` broadcasts the weight and runs a *batched* matmul, which
/// the ndarray backend splits into one small GEMM per leading index on rayon threads, each
/// calling multi-threaded OpenBLAS. Flattening first gives OpenBLAS one large GEMM (free on
/// contiguous tensors, and harmless on GPU backends).
pub(crate) fn flat_linear<B: Backend, const D: usize>(
    layer: &Linear<B>,
    x: Tensor<B, D>,
) -> Tensor<B, D> {
    let dims = x.dims();
    let d_in = dims[D - 1];
    let rows = x.shape().num_elements() / d_in.max(1);
    let y = layer.forward(x.reshape([rows, d_in]));
    let [_, d_out] = y.dims();
    let mut out = dims;
    out[D - 1] = d_out;
    y.reshape(out)
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
        flat_linear(&self.fc2, exact_gelu(flat_linear(&self.fc1, x)))
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
        flat_linear(&self.decoder, exact_gelu(flat_linear(&self.encoder, x)))
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

/// Exact (erf) GELU, as PyTorch's `nn.GELU()`: `x · (1 + erf(x/√2)) / 2`.
///
/// On the CPU backend it runs on the host with a single-precision erf (Abramowitz & Stegun
/// 7.1.26, |error| ≤ 1.5e-7) across all cores. Why: Burn 0.21's ndarray `erf` converts every
/// element to f64 and back on one thread (measured ~20 ns per element, a quarter of a
/// SpecFormer block). Elsewhere Burn's `gelu`.
pub(crate) fn exact_gelu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    if !is_cpu::<B>() {
        return gelu(x);
    }
    let dims = x.dims();
    let device = x.device();
    let mut values = host_values(x);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = values.len().div_ceil(threads).max(4096);
    std::thread::scope(|scope| {
        for part in values.chunks_mut(chunk) {
            scope.spawn(move || part.iter_mut().for_each(|v| *v = gelu_f32(*v)));
        }
    });
    Tensor::from_data(TensorData::new(values, dims), &device)
}

/// `x · (1 + erf(x/√2)) / 2` with erf from Abramowitz & Stegun 7.1.26 (inlined so the
/// caller's loop vectorises).
#[inline(always)]
fn gelu_f32(x: f32) -> f32 {
    let z = x * std::f32::consts::FRAC_1_SQRT_2;
    let a = z.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_72 + t * (1.421_413_8 + t * (-1.453_152_1 + t * 1.061_405_4))));
    let erf = 1.0 - poly * fast_exp(-a * a);
    let erf = if z < 0.0 { -erf } else { erf };
    0.5 * x * (1.0 + erf)
}

/// Non-causal multi-head attention over already-projected tensors, scale `1/sqrt(head_dim)`.
///
/// `q: [batch, heads, n_q, head_dim]`, `k, v: [batch, heads, n_k, head_dim]` →
/// `[batch, heads, n_q, head_dim]`.
///
/// Burn's `attention` op (fused kernels on CUDA); the CPU backend uses [`host_attention`].
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

/// Where one operand of [`host_attention`] sits in a row-major buffer: rows of `row_stride`
/// values, batches `batch_stride` apart, head `h` at columns `offset + h·head_dim ..`.
#[derive(Clone, Copy)]
pub(crate) struct HostOperand<'a> {
    pub data: &'a [f32],
    pub offset: usize,
    pub row_stride: usize,
    pub batch_stride: usize,
}

/// Multi-head attention on the host, one (batch, head) at a time: `S = QKᵀ·scale` (OpenBLAS
/// on strided views, no copies), row softmax in place while `S` is in cache, `O = SV`
/// written straight into `[batch, n_q, heads·head_dim]`.
///
/// Why: Burn 0.21's ndarray backend runs attention as the generic fallback — a batched matmul
/// then about eight whole-tensor passes for a NaN-safe softmax over `[batch, heads, n, n]` —
/// and splitting heads costs permute copies; reading a shared or strided tensor back to the
/// host (`into_data`) walks it element by element (~30 ns each). Taking the projection
/// output whole (uniquely owned, contiguous: no copy) and indexing heads by stride avoids
/// all of that. Same f32 arithmetic, so parity is unchanged.
#[allow(clippy::too_many_arguments)]
pub(crate) fn host_attention(
    q: HostOperand,
    k: HostOperand,
    v: HostOperand,
    batch: usize,
    n_q: usize,
    n_k: usize,
    heads: usize,
    head_dim: usize,
) -> Vec<f32> {
    use ndarray::linalg::general_mat_mul;
    use ndarray::{Array2, ArrayView2, ArrayViewMut2, ShapeBuilder};

    let width = heads * head_dim;
    let scale = 1.0 / (head_dim as f32).sqrt();
    let mut out = vec![0.0f32; batch * n_q * width];
    let mut scores = Array2::<f32>::zeros((n_q, n_k));
    fn view<'a>(
        op: &HostOperand<'a>,
        b: usize,
        h: usize,
        rows: usize,
        hd: usize,
    ) -> ArrayView2<'a, f32> {
        let start = op.offset + b * op.batch_stride + h * hd;
        let end = start + (rows - 1) * op.row_stride + hd;
        ArrayView2::from_shape((rows, hd).strides((op.row_stride, 1)), &op.data[start..end])
            .expect("operand view")
    }
    for b in 0..batch {
        for h in 0..heads {
            let (qm, km, vm) = (
                view(&q, b, h, n_q, head_dim),
                view(&k, b, h, n_k, head_dim),
                view(&v, b, h, n_k, head_dim),
            );
            general_mat_mul(scale, &qm, &km.t(), 0.0, &mut scores);
            // Serial on purpose: splitting rows over threads measured no faster, because
            // OpenBLAS's worker threads spin (sched_yield) between GEMMs on the same cores.
            for row in scores.rows_mut() {
                softmax_in_place(row.into_slice().expect("contiguous row"));
            }
            let start = b * n_q * width + h * head_dim;
            let end = start + (n_q - 1) * width + head_dim;
            let mut om = ArrayViewMut2::from_shape(
                (n_q, head_dim).strides((width, 1)),
                &mut out[start..end],
            )
            .expect("output view");
            general_mat_mul(1.0, &scores, &vm, 0.0, &mut om);
        }
    }
    out
}

/// Softmax of one row, in place, written so LLVM vectorises it: lane-wise max and sum over
/// 8 accumulators and [`fast_exp`] (the scalar `f32::exp` call was most of the softmax time).
fn softmax_in_place(row: &mut [f32]) {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let mut chunks = row.chunks_exact(8);
    for c in &mut chunks {
        for (l, x) in lanes.iter_mut().zip(c) {
            *l = if *x > *l { *x } else { *l };
        }
    }
    let max = chunks
        .remainder()
        .iter()
        .chain(&lanes)
        .fold(f32::NEG_INFINITY, |m, x| if *x > m { *x } else { m });
    row.iter_mut().for_each(|x| *x = fast_exp(*x - max));
    let mut sums = [0.0f32; 8];
    let mut chunks = row.chunks_exact(8);
    for c in &mut chunks {
        for (s, x) in sums.iter_mut().zip(c) {
            *s += *x;
        }
    }
    let sum: f32 = sums.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>();
    let inv = 1.0 / sum;
    row.iter_mut().for_each(|x| *x *= inv);
}

/// `e^x` in f32 without a libm call, so loops over it vectorise: `x = n·ln2 + r`
/// (Cody–Waite split, `n` rounded with the 1.5·2²³ trick), `e^r` by its degree-6 Taylor
/// polynomial on |r| ≤ ln2/2 (relative error ≤ 2e-7), `2^n` built in the exponent bits.
/// Inputs are clamped to [-87, 88] (results below e^-87 flush towards 0; softmax and GELU
/// never need more).
#[inline(always)]
pub(crate) fn fast_exp(x: f32) -> f32 {
    const SHIFTER: f32 = 12_582_912.0; // 1.5 · 2^23
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E + SHIFTER) - SHIFTER;
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// Self-attention from a fused `qkv` projection, as DINOv2 and SpecFormer both lay it out:
/// the last dimension is `[q | k | v]`, each split into `heads × head_dim`.
///
/// `qkv: [batch, tokens, 3·d]` → `[batch, tokens, d]` (before the output projection).
pub(crate) fn fused_self_attention<B: Backend>(qkv: Tensor<B, 3>, heads: usize) -> Tensor<B, 3> {
    let [batch, tokens, three_d] = qkv.dims();
    let d = three_d / 3;
    let head_dim = d / heads;
    if is_cpu::<B>() {
        let device = qkv.device();
        let data = host_values(qkv);
        let operand = |offset| HostOperand {
            data: &data,
            offset,
            row_stride: three_d,
            batch_stride: tokens * three_d,
        };
        let out = host_attention(
            operand(0),
            operand(d),
            operand(2 * d),
            batch,
            tokens,
            tokens,
            heads,
            head_dim,
        );
        return Tensor::from_data(TensorData::new(out, [batch, tokens, d]), &device);
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::CpuBackend;

    #[test]
    fn fast_exp_is_accurate() {
        let mut worst = 0f64;
        for i in -86_990..88_000 {
            let x = i as f32 * 1e-3;
            let (got, want) = (fast_exp(x) as f64, (x as f64).exp());
            worst = worst.max(((got - want) / want).abs());
        }
        // Below -87 the input is clamped, by design.
        assert!(worst < 5e-7, "max relative error {worst}");
        let mut row = vec![1.0f32, 2.0, 3.0, -1.0, 0.5, 7.0, 2.0, 2.0, 1.0, -30.0];
        let want: Vec<f32> = {
            let e: Vec<f64> = row.iter().map(|x| (*x as f64 - 7.0).exp()).collect();
            let s: f64 = e.iter().sum();
            e.iter().map(|v| (v / s) as f32).collect()
        };
        softmax_in_place(&mut row);
        for (a, b) in row.iter().zip(&want) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }

    #[test]
    fn host_gelu_matches_burn_erf_gelu() {
        let device = Default::default();
        let xs: Vec<f32> = (-4000..4000).map(|i| i as f32 * 0.0025).collect();
        let x =
            Tensor::<CpuBackend, 1>::from_data(TensorData::new(xs.clone(), [xs.len()]), &device);
        let fast = exact_gelu(x.clone()).into_data().into_vec::<f32>().unwrap();
        let reference = gelu(x).into_data().into_vec::<f32>().unwrap();
        let worst = fast
            .iter()
            .zip(&reference)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-6, "max abs diff {worst}");
    }
}
