//! The evaluation's tasks, each scored fold by fold: cross-modal retrieval, the engine's
//! attribute agreement, zero-shot k-NN and few-shot MLP regression, k-NN and MLP
//! classification.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use astrovec_encoders::train::metrics::{
    accuracy, knn_classify, partner_ranks, r2, weighted_f1, zero_shot_regression, FoldStat,
    Retrieval,
};
use astrovec_encoders::train::mlp::{self, MlpSettings};
use astrovec_engine::{Collection, SearchParams};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::folds::per_fold;
use super::report::{Agreement, ClassScore, RegressionScore, RetrievalScores, RetrievalStats};
use super::{numeric, Item};
use crate::plot;

/// What every task shares: the objects, their folds and the k-NN's k.
pub(super) struct Setup<'a> {
    pub(super) items: &'a [Item],
    pub(super) fold: &'a [usize],
    pub(super) folds: usize,
    pub(super) k: usize,
    pub(super) seed: u64,
    pub(super) mlp: bool,
}

/// The name of the random-embedding baseline (no MLP is fitted to it).
pub(super) const RANDOM: &str = "random embeddings";

/// Cross-modal retrieval among each fold's pairs, with the rank histograms of all folds.
pub(super) fn retrieval(s: &Setup, out: &Path) -> Result<Option<RetrievalScores>> {
    let (mut pairs, mut i2s_all, mut s2i_all) = (Vec::new(), Vec::new(), Vec::new());
    let (mut i2s, mut s2i) = (Vec::new(), Vec::new());
    for f in 0..s.folds {
        let (img, spec): (Vec<Vec<f32>>, Vec<Vec<f32>>) = s
            .items
            .iter()
            .zip(s.fold)
            .filter(|(_, &fi)| fi == f)
            .filter_map(|(it, _)| {
                Some((
                    it.emb.get("image")?.clone(),
                    it.emb.get("spectrum")?.clone(),
                ))
            })
            .unzip();
        if img.len() < 2 {
            continue;
        }
        let a = partner_ranks(&img, &spec);
        let b = partner_ranks(&spec, &img);
        i2s.push(Retrieval::from_ranks(&a));
        s2i.push(Retrieval::from_ranks(&b));
        i2s_all.extend(a);
        s2i_all.extend(b);
        pairs.push(img.len());
    }
    if pairs.is_empty() {
        return Ok(None);
    }
    let mean_pairs = pairs.iter().sum::<usize>() / pairs.len();
    plot::rank_histograms(
        &out.join("retrieval_ranks.png"),
        &[
            ("image → spectrum".to_string(), i2s_all),
            ("spectrum → image".to_string(), s2i_all),
        ],
        mean_pairs,
    )?;
    let stats = |r: &[Retrieval]| RetrievalStats {
        top1: FoldStat::from_folds(&r.iter().map(|x| x.top1).collect::<Vec<_>>()),
        top10: FoldStat::from_folds(&r.iter().map(|x| x.top10).collect::<Vec<_>>()),
        median_rank: FoldStat::from_folds(&r.iter().map(|x| x.median_rank).collect::<Vec<_>>()),
    };
    Ok(Some(RetrievalScores {
        pairs,
        image_to_spectrum: stats(&i2s),
        spectrum_to_image: stats(&s2i),
    }))
}

/// In-modal and cross-modal search through the engine: how close the top-10
/// neighbours' redshifts are to the query's, against random objects; each fold's objects
/// are the queries of that fold.
pub(super) fn agreement(
    s: &Setup,
    coll: &Collection,
    modalities: &[&'static str],
) -> Result<Vec<Agreement>> {
    let attribute = "redshift";
    let z: BTreeMap<u64, f64> = s
        .items
        .iter()
        .filter_map(|i| Some((i.id, i.attrs.get(attribute).and_then(numeric)?)))
        .collect();
    if z.len() < 20 {
        return Ok(Vec::new());
    }
    let all: Vec<f64> = z.values().copied().collect();
    let mut out = Vec::new();
    for &from in modalities {
        for &to in modalities {
            let mut rng = ChaCha8Rng::seed_from_u64(7);
            let (mut queries, mut near, mut random) = (Vec::new(), Vec::new(), Vec::new());
            for f in 0..s.folds {
                let (mut sum, mut rand_sum, mut n) = (0.0, 0.0, 0usize);
                for (item, _) in s.items.iter().zip(s.fold).filter(|(_, &fi)| fi == f) {
                    let Some(&zq) = z.get(&item.id) else { continue };
                    if !item.emb.contains_key(from) {
                        continue;
                    }
                    let hits = coll.search_by_id(item.id, from, to, &SearchParams::new(10))?;
                    let deltas: Vec<f64> = hits
                        .iter()
                        .filter_map(|h| z.get(&h.id))
                        .map(|zn| (zn - zq).abs())
                        .collect();
                    if deltas.is_empty() {
                        continue;
                    }
                    sum += deltas.iter().sum::<f64>() / deltas.len() as f64;
                    rand_sum += (0..10)
                        .map(|_| {
                            let j = rand::Rng::random_range(&mut rng, 0..all.len());
                            (all[j] - zq).abs()
                        })
                        .sum::<f64>()
                        / 10.0;
                    n += 1;
                }
                if n > 0 {
                    queries.push(n);
                    near.push(sum / n as f64);
                    random.push(rand_sum / n as f64);
                }
            }
            if !queries.is_empty() {
                out.push(Agreement {
                    mode: format!("{from} → {to}"),
                    attribute: attribute.into(),
                    queries,
                    mean_abs_delta: FoldStat::from_folds(&near),
                    random_mean_abs_delta: FoldStat::from_folds(&random),
                });
            }
        }
    }
    Ok(out)
}

/// A redshift scatter panel: title, truth, prediction, and the score's caption.
pub(super) type Scatter = (String, Vec<f64>, Vec<f64>, String);

/// Zero-shot k-NN and few-shot MLP regression of `target` from each feature set.
pub(super) fn regression(
    s: &Setup,
    target: &str,
    unit: &str,
    features: &[(String, Vec<Option<Vec<f32>>>)],
    scatter: &mut Vec<Scatter>,
) -> Result<Vec<RegressionScore>> {
    let y: Vec<Option<f64>> = s
        .items
        .iter()
        .map(|i| i.attrs.get(target).and_then(numeric))
        .collect();
    if y.iter().all(Option::is_none) {
        bail!("--targets: no object has a numeric attribute {target:?}");
    }
    let mut out = Vec::new();
    for (name, x) in features {
        // The zero-shot k-NN is the shared protocol function (the training run's held-out
        // scoring calls it too), on the rows that have both features and target.
        let rows: Vec<usize> = (0..s.items.len())
            .filter(|&i| x[i].is_some() && y[i].is_some())
            .collect();
        let rx: Vec<Vec<f32>> = rows.iter().map(|&i| x[i].clone().expect("kept")).collect();
        let ry: Vec<f64> = rows.iter().map(|&i| y[i].expect("kept")).collect();
        let rf: Vec<usize> = rows.iter().map(|&i| s.fold[i]).collect();
        let knn = zero_shot_regression(&rx, &ry, &rf, s.folds, s.k);
        if knn.test.is_empty() {
            continue;
        }
        if target == "redshift" && name != RANDOM && !name.starts_with("photometry") {
            let (truth, pred): (Vec<f64>, Vec<f64>) = ry
                .iter()
                .zip(&knn.predictions)
                .filter(|(_, p)| p.is_finite())
                .map(|(&t, &p)| (t, p))
                .unzip();
            scatter.push((
                format!("{name} embeddings, k-NN"),
                truth,
                pred,
                format!("R² = {:.3} ± {:.3}", knn.r2.mean, knn.r2.sd),
            ));
        }
        out.push(RegressionScore {
            target: target.into(),
            unit: unit.into(),
            features: name.clone(),
            method: format!("zero-shot k-NN (k = {})", s.k),
            r2: knn.r2,
            test: knn.test,
        });
        if s.mlp && name != RANDOM {
            // The reference's few-shot heads: [32] for image → redshift, [64, 64] otherwise.
            let hidden = if target == "redshift" && name == "image" {
                vec![32]
            } else {
                vec![64, 64]
            };
            let settings = MlpSettings {
                seed: s.seed,
                ..MlpSettings::few_shot(hidden.clone())
            };
            let fits = per_fold(s.fold, s.folds, x, &y, |tx, ty, qx| {
                Ok(mlp::regress(tx, ty, qx, &settings)?)
            })?;
            out.push(RegressionScore {
                target: target.into(),
                unit: unit.into(),
                features: name.clone(),
                method: format!("few-shot MLP {hidden:?}"),
                r2: FoldStat::from_folds(
                    &fits
                        .iter()
                        .map(|f| r2(&f.truth, &f.pred))
                        .collect::<Vec<_>>(),
                ),
                test: fits.iter().map(|f| f.truth.len()).collect(),
            });
        }
    }
    Ok(out)
}

/// k-NN and MLP classification of `label` (classes `names`, indices `y`) from each
/// feature set.
pub(super) fn classification(
    s: &Setup,
    label: &str,
    names: &[String],
    y: &[Option<usize>],
    features: &[(String, Vec<Option<Vec<f32>>>)],
) -> Result<Vec<ClassScore>> {
    let mut out = Vec::new();
    for (name, x) in features {
        let fits = per_fold(s.fold, s.folds, x, y, |tx, ty, qx| {
            Ok(knn_classify(tx, ty, qx, s.k))
        })?;
        if fits.is_empty() {
            continue;
        }
        let majority: Vec<f64> = fits.iter().map(|f| majority_share(&f.truth)).collect();
        let score = |method: String, fits: &[super::folds::FoldFit<usize, usize>]| ClassScore {
            label: label.into(),
            classes: names.to_vec(),
            features: name.clone(),
            method,
            accuracy: FoldStat::from_folds(
                &fits
                    .iter()
                    .map(|f| accuracy(&f.truth, &f.pred))
                    .collect::<Vec<_>>(),
            ),
            weighted_f1: FoldStat::from_folds(
                &fits
                    .iter()
                    .map(|f| weighted_f1(&f.truth, &f.pred))
                    .collect::<Vec<_>>(),
            ),
            majority_baseline: FoldStat::from_folds(&majority),
            test: fits.iter().map(|f| f.truth.len()).collect(),
        };
        out.push(score(format!("k-NN (k = {})", s.k), &fits));
        if s.mlp && name != RANDOM {
            // The reference morphology classifier: 3 × 256, dropout 0.2, 25 epochs,
            // cross-entropy (the labels here are hard, so soft-label and hard-label
            // cross-entropy coincide).
            let settings = MlpSettings {
                dropout: 0.2,
                epochs: 25,
                seed: s.seed,
                ..MlpSettings::few_shot(vec![256, 256, 256])
            };
            let classes = names.len();
            let fits = per_fold(s.fold, s.folds, x, y, |tx, ty, qx| {
                Ok(mlp::classify(tx, ty, classes, qx, &settings)?)
            })
            .with_context(|| format!("MLP classification of {label:?} from {name}"))?;
            out.push(score("MLP 3 × 256".into(), &fits));
        }
    }
    Ok(out)
}

/// Share of the most common class (the accuracy of always guessing it).
fn majority_share(truth: &[usize]) -> f64 {
    let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
    for &t in truth {
        *counts.entry(t).or_default() += 1;
    }
    counts.values().max().copied().unwrap_or(0) as f64 / truth.len().max(1) as f64
}
