//! Training objectives: the AstroCLIP contrastive loss and SpecFormer's masked-token
//! reconstruction loss.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;

/// Rows of `x` divided by their L2 norm, floored at `eps` (the reference's
/// `F.normalize(x, eps = 1e-3)`).
///
/// `x: [n, d]` → `[n, d]`.
pub fn l2_normalize<B: Backend>(x: Tensor<B, 2>, eps: f64) -> Tensor<B, 2> {
    let norm = x.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(eps);
    x / norm
}

/// The AstroCLIP contrastive loss: both embeddings normalised (eps 1e-3), logits
/// `scale · img · specᵀ`, and the mean of the row-wise (image → spectrum) and
/// column-wise (spectrum → image) cross-entropies against the diagonal (pair `i` is
/// image `i` with spectrum `i`).
///
/// `img: [n, e]`, `spec: [n, e]` → scalar `[1]`.
pub fn clip_loss<B: Backend>(img: Tensor<B, 2>, spec: Tensor<B, 2>, scale: f64) -> Tensor<B, 1> {
    let [n, _] = img.dims();
    let device = img.device();
    let img = l2_normalize(img, 1e-3);
    let spec = l2_normalize(spec, 1e-3);
    let logits = img.matmul(spec.transpose()).mul_scalar(scale);
    let eye = Tensor::<B, 2>::eye(n, &device);
    let rows = (log_softmax(logits.clone(), 1) * eye.clone()).sum();
    let cols = (log_softmax(logits, 0) * eye).sum();
    (rows + cols).mul_scalar(-0.5 / n as f64)
}

/// Mean squared error of `pred` against `target` over the masked tokens only.
///
/// `pred`, `target: [batch, tokens, width]`; `mask: [batch, tokens, 1]` with 1 on masked
/// tokens and 0 elsewhere → scalar `[1]`.
pub fn masked_mse<B: Backend>(
    pred: Tensor<B, 3>,
    target: Tensor<B, 3>,
    mask: Tensor<B, 3>,
) -> Tensor<B, 1> {
    let [_, _, width] = pred.dims();
    let count = mask.clone().sum().clamp_min(1.0) * (width as f64);
    ((pred - target).powi_scalar(2) * mask).sum() / count
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::CpuBackend;

    fn t2(rows: &[[f32; 2]]) -> Tensor<CpuBackend, 2> {
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        Tensor::<CpuBackend, 1>::from_floats(flat.as_slice(), &Default::default())
            .reshape([rows.len(), 2])
    }

    #[test]
    fn clip_loss_matches_a_hand_computation() {
        // Two orthogonal pairs, perfectly aligned: logits = scale·I, so each row's
        // cross-entropy is ln(1 + e^{-scale}).
        let a = t2(&[[1.0, 0.0], [0.0, 2.0]]);
        let loss = clip_loss(a.clone(), a, 2.0).into_scalar();
        let expected = (1.0f32 + (-2.0f32).exp()).ln();
        assert!((loss - expected).abs() < 1e-6, "{loss} vs {expected}");
        // Swapped partners: every row's correct logit is 0 and the wrong one 2.
        let img = t2(&[[1.0, 0.0], [0.0, 1.0]]);
        let spec = t2(&[[0.0, 1.0], [1.0, 0.0]]);
        let loss = clip_loss(img, spec, 2.0).into_scalar();
        let expected = (1.0f32 + 2.0f32.exp()).ln();
        assert!((loss - expected).abs() < 1e-5, "{loss} vs {expected}");
    }

    #[test]
    fn masked_mse_ignores_unmasked_tokens() {
        let dev = Default::default();
        let pred =
            Tensor::<CpuBackend, 1>::from_floats([1.0, 1.0, 5.0, 5.0], &dev).reshape([1, 2, 2]);
        let target = Tensor::<CpuBackend, 3>::zeros([1, 2, 2], &dev);
        let mask = Tensor::<CpuBackend, 1>::from_floats([1.0, 0.0], &dev).reshape([1, 2, 1]);
        let loss = masked_mse(pred, target, mask).into_scalar();
        assert!((loss - 1.0).abs() < 1e-6, "{loss}");
    }
}
