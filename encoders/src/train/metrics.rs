//! Metrics of an embedding: cross-modal retrieval ranks, the AstroCLIP zero-shot k-NN
//! regression (standardised features, Euclidean, distance-weighted) with R², k-NN
//! classification, and scores summarised over cross-validation folds (mean ± standard
//! deviation over folds).

use rayon::prelude::*;

/// Cosine similarity of two vectors (0 when either is all zeros).
fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut ab, mut aa, mut bb) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    let d = (aa * bb).sqrt();
    if d > 0.0 {
        ab / d
    } else {
        0.0
    }
}

/// For each query `i`, the 0-based rank of its partner `targets[i]` among all targets by
/// cosine similarity (0 = the partner is the best match). Ties count against the query.
pub fn partner_ranks(queries: &[Vec<f32>], targets: &[Vec<f32>]) -> Vec<usize> {
    queries
        .par_iter()
        .enumerate()
        .map(|(i, q)| {
            let own = cosine(q, &targets[i]);
            targets
                .iter()
                .enumerate()
                .filter(|(j, t)| *j != i && cosine(q, t) >= own)
                .count()
        })
        .collect()
}

/// Summary of retrieval ranks.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Retrieval {
    /// Queries: pairs ranked.
    pub queries: usize,
    /// Fraction of queries whose partner ranks first.
    pub top1: f64,
    /// Fraction of queries whose partner is in the first ten.
    pub top10: f64,
    /// Median 1-based rank of the partner.
    pub median_rank: f64,
}

impl Retrieval {
    /// Summarises 0-based partner ranks.
    pub fn from_ranks(ranks: &[usize]) -> Retrieval {
        let n = ranks.len().max(1) as f64;
        let mut sorted: Vec<usize> = ranks.to_vec();
        sorted.sort_unstable();
        let median_rank = match sorted.len() {
            0 => f64::NAN,
            len if len % 2 == 1 => sorted[len / 2] as f64 + 1.0,
            len => (sorted[len / 2 - 1] + sorted[len / 2]) as f64 / 2.0 + 1.0,
        };
        Retrieval {
            queries: ranks.len(),
            top1: ranks.iter().filter(|&&r| r == 0).count() as f64 / n,
            top10: ranks.iter().filter(|&&r| r < 10).count() as f64 / n,
            median_rank,
        }
    }
}

/// Unit-length copies of `rows` (a row of zeros stays zeros). A collection stores its
/// vectors this way (cosine search), so every protocol that reads a collection sees
/// L2-normalised embeddings; the held-out scoring of a training run normalises too, so
/// both report the same number for the same embeddings.
pub fn l2_normalise(rows: &[Vec<f32>]) -> Vec<Vec<f32>> {
    rows.iter()
        .map(|r| {
            let norm = r.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt();
            if norm > 0.0 {
                r.iter().map(|&v| (v as f64 / norm) as f32).collect()
            } else {
                r.clone()
            }
        })
        .collect()
}

/// One score over cross-validation folds: the value of each fold, their mean and their
/// sample standard deviation (divisor n − 1; 0 for a single fold).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FoldStat {
    /// Mean of the per-fold values.
    pub mean: f64,
    /// Sample standard deviation of the per-fold values.
    pub sd: f64,
    /// The value of each fold, in fold order (folds without a usable value are left out).
    pub folds: Vec<f64>,
}

impl FoldStat {
    /// Summarises per-fold values; non-finite values (a fold whose targets do not vary)
    /// are left out, and with none left mean and sd are NaN.
    pub fn from_folds(values: &[f64]) -> FoldStat {
        let folds: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        let n = folds.len();
        if n == 0 {
            return FoldStat {
                mean: f64::NAN,
                sd: f64::NAN,
                folds,
            };
        }
        let mean = folds.iter().sum::<f64>() / n as f64;
        let sd = if n > 1 {
            (folds.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        } else {
            0.0
        };
        FoldStat { mean, sd, folds }
    }
}

/// The zero-shot regression scored over cross-validation folds.
#[derive(Debug, Clone, PartialEq)]
pub struct FoldRegression {
    /// R² of each fold's test rows, summarised over folds.
    pub r2: FoldStat,
    /// Test rows of each fold, in fold order (folds too small to fit are left out).
    pub test: Vec<usize>,
    /// Every row's prediction by the fit on the other folds (NaN for rows of a fold
    /// that was left out).
    pub predictions: Vec<f64>,
}

/// The AstroCLIP zero-shot regression under cross-validation: row `i` belongs to fold
/// `fold[i]` (in `0..folds`); each fold's rows are predicted by [`knn_regress`] fitted on
/// the other folds (standardiser included), R² is computed per fold on that fold's rows,
/// and the folds are summarised as mean ± standard deviation. Folds with fewer than 2
/// test rows or 2 training rows are left out.
///
/// The reference also standardises the targets; the distance-weighted mean of the
/// neighbours' targets and R² are unchanged by any affine map of the target, so the
/// target is regressed in its own units.
pub fn zero_shot_regression(
    x: &[Vec<f32>],
    y: &[f64],
    fold: &[usize],
    folds: usize,
    k: usize,
) -> FoldRegression {
    let mut predictions = vec![f64::NAN; x.len()];
    let (mut scores, mut test_sizes) = (Vec::new(), Vec::new());
    for f in 0..folds {
        let (test, train): (Vec<usize>, Vec<usize>) = (0..x.len()).partition(|&i| fold[i] == f);
        if test.len() < 2 || train.len() < 2 {
            continue;
        }
        let pick = |idx: &[usize]| idx.iter().map(|&i| x[i].clone()).collect::<Vec<_>>();
        let ty: Vec<f64> = train.iter().map(|&i| y[i]).collect();
        let pred = knn_regress(&pick(&train), &ty, &pick(&test), k);
        let truth: Vec<f64> = test.iter().map(|&i| y[i]).collect();
        scores.push(r2(&truth, &pred));
        test_sizes.push(test.len());
        for (&i, p) in test.iter().zip(pred) {
            predictions[i] = p;
        }
    }
    FoldRegression {
        r2: FoldStat::from_folds(&scores),
        test: test_sizes,
        predictions,
    }
}

/// Per-feature mean and standard deviation of `rows` (std floored so constant features
/// do not divide by zero).
pub(crate) fn standardiser(rows: &[Vec<f32>]) -> (Vec<f64>, Vec<f64>) {
    let d = rows.first().map_or(0, Vec::len);
    let n = rows.len().max(1) as f64;
    let mut mean = vec![0.0f64; d];
    for r in rows {
        for (m, &v) in mean.iter_mut().zip(r) {
            *m += v as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n);
    let mut var = vec![0.0f64; d];
    for r in rows {
        for ((s, &v), m) in var.iter_mut().zip(r).zip(&mean) {
            *s += (v as f64 - m).powi(2);
        }
    }
    let std = var.iter().map(|s| (s / n).sqrt().max(1e-12)).collect();
    (mean, std)
}

/// The AstroCLIP zero-shot regression: features standardised with the training split's
/// mean and std, the `k` nearest training rows by Euclidean distance, and their targets
/// averaged with weights 1/distance (an exact match takes the match's value).
pub fn knn_regress(
    train_x: &[Vec<f32>],
    train_y: &[f64],
    test_x: &[Vec<f32>],
    k: usize,
) -> Vec<f64> {
    let (train, test) = standardise_both(train_x, test_x);
    let k = k.clamp(1, train.len().max(1));
    test.par_iter()
        .map(|q| {
            let near = nearest(&train, q, k);
            if let Some(&(_, j)) = near.iter().find(|(dist, _)| *dist <= 1e-12) {
                return train_y[j];
            }
            let (num, den) = near.iter().fold((0.0, 0.0), |(n, w), &(dist, j)| {
                let wt = 1.0 / dist as f64;
                (n + wt * train_y[j], w + wt)
            });
            num / den
        })
        .collect()
}

/// Coefficient of determination, `1 − Σ(y − ŷ)² / Σ(y − ȳ)²`.
pub fn r2(truth: &[f64], pred: &[f64]) -> f64 {
    let n = truth.len().max(1) as f64;
    let mean = truth.iter().sum::<f64>() / n;
    let ss_tot: f64 = truth.iter().map(|y| (y - mean).powi(2)).sum();
    let ss_res: f64 = truth.iter().zip(pred).map(|(y, p)| (y - p).powi(2)).sum();
    if ss_tot == 0.0 {
        return f64::NAN;
    }
    1.0 - ss_res / ss_tot
}

/// The `k` rows of `train` nearest to `q` (Euclidean): (distance, row), unordered.
fn nearest(train: &[Vec<f32>], q: &[f32], k: usize) -> Vec<(f32, usize)> {
    let mut d: Vec<(f32, usize)> = train
        .iter()
        .enumerate()
        .map(|(j, t)| {
            let s: f32 = q.iter().zip(t).map(|(a, b)| (a - b) * (a - b)).sum();
            (s.sqrt(), j)
        })
        .collect();
    d.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0));
    d.truncate(k);
    d
}

/// Standardised copies of `train` and `test` (the training rows' mean and std).
fn standardise_both(train_x: &[Vec<f32>], test_x: &[Vec<f32>]) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let (mean, std) = standardiser(train_x);
    let scale = |r: &Vec<f32>| -> Vec<f32> {
        r.iter()
            .zip(&mean)
            .zip(&std)
            .map(|((&v, m), s)| ((v as f64 - m) / s) as f32)
            .collect()
    };
    (
        train_x.par_iter().map(scale).collect(),
        test_x.par_iter().map(scale).collect(),
    )
}

/// k-NN classification on standardised features: each of the `k` nearest training rows
/// (Euclidean) votes for its label with weight 1/distance; the heaviest label wins.
pub fn knn_classify(
    train_x: &[Vec<f32>],
    labels: &[usize],
    test_x: &[Vec<f32>],
    k: usize,
) -> Vec<usize> {
    let (train, test) = standardise_both(train_x, test_x);
    let classes = labels.iter().copied().max().map_or(1, |m| m + 1);
    let k = k.clamp(1, train.len().max(1));
    test.par_iter()
        .map(|q| {
            let mut votes = vec![0.0f64; classes];
            for &(dist, j) in &nearest(&train, q, k) {
                votes[labels[j]] += 1.0 / (dist as f64).max(1e-9);
            }
            votes
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map_or(0, |(c, _)| c)
        })
        .collect()
}

/// Fraction of predictions equal to the truth.
pub fn accuracy(truth: &[usize], pred: &[usize]) -> f64 {
    let n = truth.len().max(1) as f64;
    truth.iter().zip(pred).filter(|(a, b)| a == b).count() as f64 / n
}

/// F1 per class averaged with weights equal to each class's share of the truth
/// (scikit-learn's `average="weighted"`). A class never predicted has precision 0.
pub fn weighted_f1(truth: &[usize], pred: &[usize]) -> f64 {
    let classes = truth.iter().chain(pred).copied().max().map_or(0, |m| m + 1);
    let n = truth.len();
    if n == 0 {
        return f64::NAN;
    }
    let mut total = 0.0;
    for c in 0..classes {
        let support = truth.iter().filter(|&&t| t == c).count();
        if support == 0 {
            continue;
        }
        let tp = truth
            .iter()
            .zip(pred)
            .filter(|(&t, &p)| t == c && p == c)
            .count() as f64;
        let predicted = pred.iter().filter(|&&p| p == c).count() as f64;
        let precision = if predicted > 0.0 { tp / predicted } else { 0.0 };
        let recall = tp / support as f64;
        let f1 = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        total += f1 * support as f64;
    }
    total / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_and_summary() {
        let q = vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![1.0, 1.0]];
        let t = vec![vec![1.0, 0.1], vec![1.0, 0.0], vec![1.0, 1.0]];
        // Query 0's partner (cos 0.995) is beaten by target 1 (cos 1); query 1's partner
        // (cos 0) is beaten by targets 0 (0.0995) and 2 (0.707); query 2 matches exactly.
        let ranks = partner_ranks(&q, &t);
        assert_eq!(ranks, vec![1, 2, 0]);
        let r = Retrieval::from_ranks(&ranks);
        assert!((r.top1 - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(r.top10, 1.0);
        assert_eq!(r.median_rank, 2.0);
    }

    #[test]
    fn knn_weights_by_inverse_distance() {
        let train = vec![vec![0.0f32], vec![1.0], vec![3.0]];
        let y = vec![0.0, 10.0, 30.0];
        // Standardised scale: mean 4/3, std ≈ 1.247; distances scale equally so the
        // weights are 1/0.5 and 1/0.5 for x = 0.5 with k = 2 → mean of 0 and 10.
        let p = knn_regress(&train, &y, &[vec![0.5]], 2);
        assert!((p[0] - 5.0).abs() < 1e-5, "{p:?}");
        // x = 0.25: distances 0.25 and 0.75 → weights 4 and 4/3 → (0·4 + 10·4/3)/(16/3) = 2.5.
        let p = knn_regress(&train, &y, &[vec![0.25]], 2);
        assert!((p[0] - 2.5).abs() < 1e-6, "{p:?}");
        // An exact match returns the match's value.
        assert_eq!(knn_regress(&train, &y, &[vec![3.0]], 3), vec![30.0]);
    }

    #[test]
    fn weighted_f1_matches_a_hand_computation() {
        // Class 0: support 3, tp 2, predicted 2 → P 1, R 2/3, F1 0.8.
        // Class 1: support 1, tp 1, predicted 2 → P 0.5, R 1, F1 2/3.
        let truth = [0, 0, 0, 1];
        let pred = [0, 0, 1, 1];
        let expected = (3.0 * 0.8 + 1.0 * (2.0 / 3.0)) / 4.0;
        assert!((weighted_f1(&truth, &pred) - expected).abs() < 1e-12);
        assert_eq!(accuracy(&truth, &pred), 0.75);
        assert_eq!(weighted_f1(&truth, &truth), 1.0);
    }

    #[test]
    fn knn_vote_is_distance_weighted() {
        // Two far points of class 1 against one close point of class 0: with k = 3 the
        // close one outweighs them (1/0.1 > 2 · 1/2).
        let train = vec![
            vec![0.1f32, 0.0],
            vec![2.0, 0.0],
            vec![-2.0, 0.0],
            vec![0.0, 1.0],
        ];
        let labels = [0, 1, 1, 0];
        let p = knn_classify(&train, &labels, &[vec![0.0, 0.0]], 3);
        assert_eq!(p, vec![0]);
    }

    #[test]
    fn random_embeddings_score_near_zero_and_chance() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let n = 1500;
        let x: Vec<Vec<f32>> = (0..n)
            .map(|_| (0..16).map(|_| rng.random::<f32>() - 0.5).collect())
            .collect();
        let y: Vec<f64> = (0..n).map(|_| rng.random::<f64>()).collect();
        let labels: Vec<usize> = (0..n).map(|_| rng.random_range(0..2)).collect();
        let pred = knn_regress(&x[..1000], &y[..1000], &x[1000..], 64);
        let score = r2(&y[1000..], &pred);
        assert!(score.abs() < 0.1, "R² {score}");
        let acc = accuracy(
            &labels[1000..],
            &knn_classify(&x[..1000], &labels[..1000], &x[1000..], 64),
        );
        assert!((acc - 0.5).abs() < 0.08, "accuracy {acc}");
    }

    #[test]
    fn fold_stat_is_mean_and_sample_sd() {
        let s = FoldStat::from_folds(&[0.5, 0.7, f64::NAN, 0.6]);
        assert_eq!(s.folds, vec![0.5, 0.7, 0.6]);
        assert!((s.mean - 0.6).abs() < 1e-12);
        // Deviations ±0.1 and 0 → Σ = 0.02, / (3 − 1) → sd 0.1.
        assert!((s.sd - 0.1).abs() < 1e-12, "{s:?}");
        assert_eq!(FoldStat::from_folds(&[0.3]).sd, 0.0);
        assert!(FoldStat::from_folds(&[]).mean.is_nan());
    }

    #[test]
    fn zero_shot_regression_scores_each_fold_on_its_own() {
        // Each fold is predicted from the other one and scored on its own 20 rows; the
        // summary is the mean of the two per-fold R².
        let x: Vec<Vec<f32>> = (0..40).map(|i| vec![i as f32]).collect();
        let y: Vec<f64> = (0..40).map(|i| i as f64).collect();
        let fold: Vec<usize> = (0..40).map(|i| i % 2).collect();
        let out = zero_shot_regression(&x, &y, &fold, 2, 2);
        assert_eq!(out.test, vec![20, 20]);
        assert_eq!(out.r2.folds.len(), 2);
        let mean = (out.r2.folds[0] + out.r2.folds[1]) / 2.0;
        assert!((out.r2.mean - mean).abs() < 1e-12);
        assert!(out.predictions.iter().all(|p| p.is_finite()));
    }

    #[test]
    fn l2_normalise_gives_unit_rows_and_keeps_zeros() {
        let rows = l2_normalise(&[vec![3.0, 4.0], vec![0.0, 0.0]]);
        assert_eq!(rows[0], vec![0.6, 0.8]);
        assert_eq!(rows[1], vec![0.0, 0.0]);
    }

    #[test]
    fn r2_of_known_cases() {
        let y = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(r2(&y, &y), 1.0);
        assert!(r2(&y, &[2.5; 4]).abs() < 1e-12);
        // Residuals 0.5 each: 1 − 1/5 = 0.8.
        assert!((r2(&y, &[1.5, 2.5, 2.5, 3.5]) - 0.8).abs() < 1e-12);
    }
}
