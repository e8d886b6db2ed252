//! Small multi-layer perceptrons for the few-shot evaluation protocol: a regressor (MSE)
//! and a classifier (cross-entropy) trained on frozen embeddings with Adam. Inputs and
//! regression targets are standardised on the training rows; predictions come back in
//! the original units.

use burn::backend::Autodiff;
use burn::module::AutodiffModule;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig, Relu};
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::backend::CpuBackend;
use crate::error::{EncoderError, Result};

type Ad = Autodiff<CpuBackend>;

/// Settings of one MLP fit.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MlpSettings {
    /// Widths of the hidden layers (ReLU after each).
    pub hidden: Vec<usize>,
    /// Dropout after each hidden layer while training.
    pub dropout: f64,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Rows per step.
    pub batch_size: usize,
    /// Passes over the training rows.
    pub epochs: usize,
    /// Seed of the initial weights, order and dropout.
    pub seed: u64,
}

impl MlpSettings {
    /// The AstroCLIP few-shot recipe: ReLU, dropout 0.1, Adam 1e-3, batch 64, 10 epochs.
    pub fn few_shot(hidden: Vec<usize>) -> Self {
        MlpSettings {
            hidden,
            dropout: 0.1,
            learning_rate: 1e-3,
            batch_size: 64,
            epochs: 10,
            seed: 0,
        }
    }
}

#[derive(Module, Debug)]
struct Net<B: Backend> {
    layers: Vec<Linear<B>>,
    dropout: Dropout,
    relu: Relu,
}

impl<B: Backend> Net<B> {
    fn new(d_in: usize, hidden: &[usize], d_out: usize, dropout: f64, device: &B::Device) -> Self {
        let mut widths = vec![d_in];
        widths.extend_from_slice(hidden);
        widths.push(d_out);
        Net {
            layers: widths
                .windows(2)
                .map(|w| LinearConfig::new(w[0], w[1]).init(device))
                .collect(),
            dropout: DropoutConfig::new(dropout).init(),
            relu: Relu::new(),
        }
    }

    /// `[n, d_in]` → `[n, d_out]`.
    fn forward(&self, mut x: Tensor<B, 2>) -> Tensor<B, 2> {
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(x);
            if i < last {
                x = self.dropout.forward(self.relu.forward(x));
            }
        }
        x
    }
}

/// Column means and standard deviations of `rows` (the k-NN metrics' standardiser, with
/// the std floored so a near-constant feature is not blown up), as f32.
fn moments(rows: &[Vec<f32>]) -> (Vec<f32>, Vec<f32>) {
    let (mean, std) = super::metrics::standardiser(rows);
    (
        mean.iter().map(|&m| m as f32).collect(),
        std.iter().map(|&s| s.max(1e-6) as f32).collect(),
    )
}

fn to_tensor<B: Backend>(
    rows: &[Vec<f32>],
    idx: &[usize],
    mean: &[f32],
    std: &[f32],
    device: &B::Device,
) -> Tensor<B, 2> {
    let d = mean.len();
    let mut flat = Vec::with_capacity(idx.len() * d);
    for &i in idx {
        flat.extend(
            rows[i]
                .iter()
                .zip(mean)
                .zip(std)
                .map(|((v, m), s)| (v - m) / s),
        );
    }
    Tensor::<B, 1>::from_floats(flat.as_slice(), device).reshape([idx.len(), d])
}

fn check(x: &[Vec<f32>], n_targets: usize) -> Result<usize> {
    let d = x.first().map_or(0, Vec::len);
    if x.len() < 2 || d == 0 {
        return Err(EncoderError::Config(format!(
            "MLP: need at least 2 rows of at least 1 feature (got {} rows of {d})",
            x.len()
        )));
    }
    if n_targets != x.len() {
        return Err(EncoderError::Config(format!(
            "MLP: {} feature rows but {n_targets} targets",
            x.len()
        )));
    }
    if let Some(r) = x.iter().position(|r| r.len() != d) {
        return Err(EncoderError::Config(format!(
            "MLP: row {r} has {} features, the first has {d}",
            x[r].len()
        )));
    }
    Ok(d)
}

/// Fits a regressor on `(x, y)` and predicts `test` (same units as `y`).
pub fn regress(x: &[Vec<f32>], y: &[f64], test: &[Vec<f32>], s: &MlpSettings) -> Result<Vec<f64>> {
    let d = check(x, y.len())?;
    let device = Default::default();
    Ad::seed(&device, s.seed);
    let (mean, std) = moments(x);
    let ym = y.iter().sum::<f64>() / y.len() as f64;
    let ys = (y.iter().map(|v| (v - ym).powi(2)).sum::<f64>() / y.len() as f64)
        .sqrt()
        .max(1e-12);
    let mut net: Net<Ad> = Net::new(d, &s.hidden, 1, s.dropout, &device);
    let mut optim = AdamConfig::new().init();
    let mut order: Vec<usize> = (0..x.len()).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(s.seed);
    for _ in 0..s.epochs {
        order.shuffle(&mut rng);
        for idx in order.chunks(s.batch_size.max(1)) {
            let xb = to_tensor::<Ad>(x, idx, &mean, &std, &device);
            let yb: Vec<f32> = idx.iter().map(|&i| ((y[i] - ym) / ys) as f32).collect();
            let yb = Tensor::<Ad, 1>::from_floats(yb.as_slice(), &device).reshape([idx.len(), 1]);
            let loss = (net.forward(xb) - yb).powi_scalar(2).mean();
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            net = optim.step(s.learning_rate, net, grads);
        }
    }
    let net = net.valid();
    let all: Vec<usize> = (0..test.len()).collect();
    if test.is_empty() {
        return Ok(Vec::new());
    }
    let out = net.forward(to_tensor::<CpuBackend>(test, &all, &mean, &std, &device));
    let values = out
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .map_err(|e| EncoderError::Config(format!("MLP output: {e:?}")))?;
    Ok(values.iter().map(|&v| v as f64 * ys + ym).collect())
}

/// Fits a classifier on `(x, labels)` (labels in `0..classes`) and predicts `test`.
pub fn classify(
    x: &[Vec<f32>],
    labels: &[usize],
    classes: usize,
    test: &[Vec<f32>],
    s: &MlpSettings,
) -> Result<Vec<usize>> {
    let d = check(x, labels.len())?;
    if let Some(&bad) = labels.iter().find(|&&l| l >= classes) {
        return Err(EncoderError::Config(format!(
            "MLP: label {bad} is not below the class count {classes}"
        )));
    }
    let device = Default::default();
    Ad::seed(&device, s.seed);
    let (mean, std) = moments(x);
    let mut net: Net<Ad> = Net::new(d, &s.hidden, classes, s.dropout, &device);
    let mut optim = AdamConfig::new().init();
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let mut order: Vec<usize> = (0..x.len()).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(s.seed);
    for _ in 0..s.epochs {
        order.shuffle(&mut rng);
        for idx in order.chunks(s.batch_size.max(1)) {
            let xb = to_tensor::<Ad>(x, idx, &mean, &std, &device);
            let yb: Vec<i64> = idx.iter().map(|&i| labels[i] as i64).collect();
            let yb = Tensor::<Ad, 1, Int>::from_ints(yb.as_slice(), &device);
            let loss = loss_fn.forward(net.forward(xb), yb);
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            net = optim.step(s.learning_rate, net, grads);
        }
    }
    if test.is_empty() {
        return Ok(Vec::new());
    }
    let net = net.valid();
    let all: Vec<usize> = (0..test.len()).collect();
    let out = net
        .forward(to_tensor::<CpuBackend>(test, &all, &mean, &std, &device))
        .argmax(1);
    let values = out
        .into_data()
        .convert::<i64>()
        .into_vec::<i64>()
        .map_err(|e| EncoderError::Config(format!("MLP output: {e:?}")))?;
    Ok(values.iter().map(|&v| v as usize).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::metrics::r2;

    #[test]
    fn learns_a_smooth_function_and_a_separable_class() {
        let x: Vec<Vec<f32>> = (0..400)
            .map(|i| {
                let a = (i as f32 * 0.37).sin();
                let b = (i as f32 * 0.11).cos();
                vec![a, b]
            })
            .collect();
        let y: Vec<f64> = x.iter().map(|r| (2.0 * r[0] - r[1]) as f64 + 5.0).collect();
        let s = MlpSettings {
            epochs: 60,
            ..MlpSettings::few_shot(vec![32])
        };
        let pred = regress(&x[..300], &y[..300], &x[300..], &s).unwrap();
        let score = r2(&y[300..], &pred);
        assert!(score > 0.9, "R² {score}");
        let labels: Vec<usize> = x.iter().map(|r| usize::from(r[0] > r[1])).collect();
        let pred = classify(&x[..300], &labels[..300], 2, &x[300..], &s).unwrap();
        let acc = pred
            .iter()
            .zip(&labels[300..])
            .filter(|(a, b)| a == b)
            .count() as f64
            / 100.0;
        assert!(acc > 0.9, "accuracy {acc}");
        assert!(classify(&x[..3], &[0, 5, 1], 2, &x[..1], &s).is_err());
    }
}
