//! `astrovec eval`: the AstroCLIP downstream protocol on any collection with labels —
//! cross-modal retrieval, in-modal attribute agreement, zero-shot k-NN regression,
//! few-shot MLP regression, k-NN / MLP classification — next to photometry-only and
//! random-embedding baselines on the same split. Writes `evaluation.json`,
//! `evaluation.md` and PNG plots.
//!
//! Embeddings come from the collection (the engine's stored vectors), neighbours for the
//! attribute-agreement task from the engine's own search, the regressions and
//! classifiers from `astrovec_encoders::train::{metrics, mlp}`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use astrovec_encoders::train::metrics::{
    accuracy, knn_classify, knn_regress, partner_ranks, r2, weighted_f1, Retrieval,
};
use astrovec_encoders::train::mlp::{self, MlpSettings};
use astrovec_engine::{AttrValue, Collection, SearchParams};
use astrovec_indexer::ingest::shard::mix;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;

use crate::plot;

/// Arguments of `astrovec eval`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Collection directory to evaluate (embeddings and labels are read from it).
    #[arg(long, value_name = "DIR")]
    pub db: PathBuf,
    /// Output directory (evaluation.json, evaluation.md, PNG plots).
    #[arg(long)]
    pub out: PathBuf,
    /// Neighbours of the k-NN regression and classification.
    #[arg(long, default_value_t = 64)]
    pub k: usize,
    /// Fraction of objects (by a hash of the id) in the test split.
    #[arg(long, default_value_t = 0.2)]
    pub test_fraction: f64,
    /// Use N-fold cross-validation (folds by a hash of the id) instead of one split;
    /// every object is predicted once, by the model fitted on the other folds.
    #[arg(long)]
    pub folds: Option<usize>,
    /// Attributes to regress (default: those present among redshift, log_stellar_mass,
    /// metallicity, age_gyr, log_ssfr, log_sfr).
    #[arg(long, value_delimiter = ',')]
    pub targets: Vec<String>,
    /// Categorical attributes to classify (default: category attributes and 0/1 flags
    /// among star_forming, featured, edge_on, spiral_arms, spiral).
    #[arg(long, value_delimiter = ',')]
    pub classify: Vec<String>,
    /// Skip the MLP fits (k-NN only; faster).
    #[arg(long)]
    pub no_mlp: bool,
    /// Seed of the random-embedding baseline and the MLPs.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

const DEFAULT_TARGETS: [&str; 6] = [
    "redshift",
    "log_stellar_mass",
    "metallicity",
    "age_gyr",
    "log_ssfr",
    "log_sfr",
];
const DEFAULT_CLASSES: [&str; 5] = [
    "star_forming",
    "featured",
    "edge_on",
    "spiral_arms",
    "spiral",
];
const MODALITIES: [&str; 2] = ["image", "spectrum"];

/// One object as the evaluation sees it.
struct Item {
    id: u64,
    attrs: BTreeMap<String, AttrValue>,
    emb: BTreeMap<&'static str, Vec<f32>>,
}

fn numeric(v: &AttrValue) -> Option<f64> {
    match v {
        AttrValue::Float(f) if f.is_finite() => Some(*f),
        AttrValue::Int(i) => Some(*i as f64),
        _ => None,
    }
}

/// A class label: category text, or an integer-valued number.
fn class_of(v: &AttrValue) -> Option<String> {
    match v {
        AttrValue::Category(c) => Some(c.clone()),
        AttrValue::Int(i) => Some(i.to_string()),
        AttrValue::Float(f) if f.fract() == 0.0 && f.is_finite() => Some((*f as i64).to_string()),
        _ => None,
    }
}

#[derive(Debug, Clone, Serialize)]
struct Split {
    kind: String,
    train: usize,
    test: usize,
}

#[derive(Debug, Clone, Serialize)]
struct RetrievalScores {
    pairs: usize,
    image_to_spectrum: Retrieval,
    spectrum_to_image: Retrieval,
}

#[derive(Debug, Clone, Serialize)]
struct Agreement {
    mode: String,
    queries: usize,
    /// Mean over queries of the mean |Δ attribute| of the top-10 neighbours.
    mean_abs_delta: f64,
    /// The same for 10 random objects per query (the baseline).
    random_mean_abs_delta: f64,
    attribute: String,
}

#[derive(Debug, Clone, Serialize)]
struct RegressionScore {
    target: String,
    features: String,
    method: String,
    r2: f64,
    test: usize,
}

#[derive(Debug, Clone, Serialize)]
struct ClassScore {
    label: String,
    classes: Vec<String>,
    features: String,
    method: String,
    accuracy: f64,
    weighted_f1: f64,
    majority_baseline: f64,
    test: usize,
}

#[derive(Debug, Clone, Serialize)]
struct Report {
    collection: String,
    objects: usize,
    split: Split,
    k: usize,
    retrieval: Option<RetrievalScores>,
    agreement: Vec<Agreement>,
    regression: Vec<RegressionScore>,
    classification: Vec<ClassScore>,
    seconds: f64,
}

/// (training rows, test rows) of one fit.
type Fold = (Vec<usize>, Vec<usize>);

/// Train/test index pairs: one hash split, or N folds.
fn splits(items: &[Item], args: &Args) -> Result<(Vec<Fold>, Split)> {
    if let Some(n) = args.folds {
        if !(2..=20).contains(&n) {
            bail!("--folds must be between 2 and 20 (got {n})");
        }
        let folds = (0..n as u64)
            .map(|f| {
                (0..items.len()).partition::<Vec<usize>, _>(|&i| mix(items[i].id) % n as u64 != f)
            })
            .collect();
        return Ok((
            folds,
            Split {
                kind: format!("{n}-fold cross-validation by id hash"),
                train: items.len() * (n - 1) / n,
                test: items.len(),
            },
        ));
    }
    if !(0.01..0.99).contains(&args.test_fraction) {
        bail!(
            "--test-fraction must be in [0.01, 0.99) (got {})",
            args.test_fraction
        );
    }
    let cut = (args.test_fraction * 1_000_000.0) as u64;
    let (test, train): (Vec<usize>, Vec<usize>) =
        (0..items.len()).partition(|&i| mix(items[i].id) % 1_000_000 < cut);
    let split = Split {
        kind: format!("test = {:.0}% by id hash", args.test_fraction * 100.0),
        train: train.len(),
        test: test.len(),
    };
    Ok((vec![(train, test)], split))
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<()> {
    let start = Instant::now();
    let coll = Collection::open(&args.db)
        .with_context(|| format!("opening collection {}", args.db.display()))?;
    let mut ids = coll.ids();
    ids.sort_unstable();
    if ids.len() < 20 {
        bail!(
            "{}: {} objects; the evaluation needs at least 20",
            args.db.display(),
            ids.len()
        );
    }
    let modalities: Vec<&'static str> = MODALITIES
        .iter()
        .copied()
        .filter(|m| coll.config().modality_index(m).is_ok())
        .collect();
    let mut items = Vec::with_capacity(ids.len());
    for &id in &ids {
        let obj = coll.get(id)?;
        let mut emb = BTreeMap::new();
        for &m in &modalities {
            if obj.modalities.iter().any(|x| x == m) {
                emb.insert(m, coll.get_embedding(id, m)?);
            }
        }
        items.push(Item {
            id,
            attrs: obj.attributes,
            emb,
        });
    }
    let dim = items
        .iter()
        .flat_map(|i| i.emb.values())
        .map(Vec::len)
        .next()
        .context("the collection has no embeddings")?;
    eprintln!(
        "evaluating {} objects ({} modalities, {dim}-d) from {}",
        items.len(),
        modalities.join(" + "),
        args.db.display()
    );
    let (folds, split) = splits(&items, &args)?;

    // Feature sets: each modality, plus the two baselines.
    let mut features: Vec<(String, Vec<Option<Vec<f32>>>)> = modalities
        .iter()
        .map(|m| {
            (
                m.to_string(),
                items.iter().map(|i| i.emb.get(m).cloned()).collect(),
            )
        })
        .collect();
    let mags = ["mag_g", "mag_r", "mag_z"];
    let photometry: Vec<Option<Vec<f32>>> = items
        .iter()
        .map(|i| {
            mags.iter()
                .map(|m| i.attrs.get(*m).and_then(numeric).map(|v| v as f32))
                .collect::<Option<Vec<f32>>>()
        })
        .collect();
    if photometry.iter().filter(|p| p.is_some()).count() > items.len() / 2 {
        features.push(("photometry (g, r, z mag)".into(), photometry));
    }
    features.push((
        "random embeddings".into(),
        items
            .iter()
            .map(|i| {
                let mut rng = ChaCha8Rng::seed_from_u64(args.seed ^ mix(i.id));
                Some((0..dim).map(|_| StandardNormal.sample(&mut rng)).collect())
            })
            .collect(),
    ));

    let retrieval = if modalities.len() == 2 {
        Some(cross_modal(&items, &folds[0].1, &args.out)?)
    } else {
        None
    };
    let agreement = agreement(&coll, &items, &folds[0].1, &modalities)?;

    // Regression.
    let targets: Vec<String> = if args.targets.is_empty() {
        DEFAULT_TARGETS
            .iter()
            .filter(|t| {
                items
                    .iter()
                    .any(|i| i.attrs.get(**t).and_then(numeric).is_some())
            })
            .map(|t| t.to_string())
            .collect()
    } else {
        args.targets.clone()
    };
    let mut regression = Vec::new();
    let mut scatter = Vec::new();
    for target in &targets {
        let y: Vec<Option<f64>> = items
            .iter()
            .map(|i| i.attrs.get(target).and_then(numeric))
            .collect();
        if y.iter().all(Option::is_none) {
            bail!("--targets: no object has a numeric attribute {target:?}");
        }
        for (name, x) in &features {
            let (truth, pred) = cross_fit(&folds, x, &y, |tx, ty, qx| {
                Ok(knn_regress(tx, ty, qx, args.k))
            })?;
            if truth.is_empty() {
                continue;
            }
            let score = r2(&truth, &pred);
            if target == "redshift" && modalities.contains(&name.as_str()) {
                scatter.push((
                    format!("{name} embeddings, k-NN"),
                    truth.clone(),
                    pred,
                    score,
                ));
            }
            regression.push(RegressionScore {
                target: target.clone(),
                features: name.clone(),
                method: format!("zero-shot k-NN (k = {})", args.k),
                r2: score,
                test: truth.len(),
            });
            if !args.no_mlp && name != "random embeddings" {
                let hidden = if target == "redshift" && name == "image" {
                    vec![32]
                } else {
                    vec![64, 64]
                };
                let settings = MlpSettings {
                    seed: args.seed,
                    ..MlpSettings::few_shot(hidden.clone())
                };
                let (truth, pred) = cross_fit(&folds, x, &y, |tx, ty, qx| {
                    Ok(mlp::regress(tx, ty, qx, &settings)?)
                })?;
                regression.push(RegressionScore {
                    target: target.clone(),
                    features: name.clone(),
                    method: format!("few-shot MLP {hidden:?}"),
                    r2: r2(&truth, &pred),
                    test: truth.len(),
                });
            }
        }
    }

    // Classification.
    let labels: Vec<String> = if args.classify.is_empty() {
        let mut l: Vec<String> = DEFAULT_CLASSES
            .iter()
            .filter(|t| {
                items
                    .iter()
                    .any(|i| i.attrs.get(**t).and_then(class_of).is_some())
            })
            .map(|t| t.to_string())
            .collect();
        for def in &coll.config().attributes {
            if matches!(def.kind, astrovec_engine::AttributeKind::Category)
                && !l.contains(&def.name)
            {
                l.push(def.name.clone());
            }
        }
        l
    } else {
        args.classify.clone()
    };
    let mut classification = Vec::new();
    for label in &labels {
        let raw: Vec<Option<String>> = items
            .iter()
            .map(|i| i.attrs.get(label).and_then(class_of))
            .collect();
        let mut names: Vec<String> = raw.iter().flatten().cloned().collect();
        names.sort();
        names.dedup();
        if names.len() < 2 {
            if !args.classify.is_empty() {
                bail!(
                    "--classify: {label:?} has {} class(es); need at least 2",
                    names.len()
                );
            }
            continue;
        }
        if names.len() > 50 {
            bail!(
                "--classify: {label:?} has {} distinct values; is it really a class label?",
                names.len()
            );
        }
        let y: Vec<Option<usize>> = raw
            .iter()
            .map(|r| {
                r.as_ref()
                    .map(|v| names.iter().position(|n| n == v).expect("listed"))
            })
            .collect();
        for (name, x) in &features {
            let (truth, pred) = cross_fit(&folds, x, &y, |tx, ty, qx| {
                Ok(knn_classify(tx, ty, qx, args.k))
            })?;
            if truth.is_empty() {
                continue;
            }
            let majority = majority_share(&truth);
            classification.push(ClassScore {
                label: label.clone(),
                classes: names.clone(),
                features: name.clone(),
                method: format!("k-NN (k = {})", args.k),
                accuracy: accuracy(&truth, &pred),
                weighted_f1: weighted_f1(&truth, &pred),
                majority_baseline: majority,
                test: truth.len(),
            });
            if !args.no_mlp && name != "random embeddings" {
                // The reference morphology classifier: 3 × 256, dropout 0.2, 25 epochs.
                let settings = MlpSettings {
                    dropout: 0.2,
                    epochs: 25,
                    seed: args.seed,
                    ..MlpSettings::few_shot(vec![256, 256, 256])
                };
                let classes = names.len();
                let (truth, pred) = cross_fit(&folds, x, &y, |tx, ty, qx| {
                    Ok(mlp::classify(tx, ty, classes, qx, &settings)?)
                })?;
                classification.push(ClassScore {
                    label: label.clone(),
                    classes: names.clone(),
                    features: name.clone(),
                    method: "MLP 3 × 256".into(),
                    accuracy: accuracy(&truth, &pred),
                    weighted_f1: weighted_f1(&truth, &pred),
                    majority_baseline: majority,
                    test: truth.len(),
                });
            }
        }
    }

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    if !scatter.is_empty() {
        plot::pred_vs_true(&args.out.join("redshift_knn.png"), "redshift", &scatter)?;
    }
    let report = Report {
        collection: args.db.display().to_string(),
        objects: items.len(),
        split,
        k: args.k,
        retrieval,
        agreement,
        regression,
        classification,
        seconds: start.elapsed().as_secs_f64(),
    };
    std::fs::write(
        args.out.join("evaluation.json"),
        serde_json::to_vec_pretty(&report)?,
    )?;
    let md = markdown(&report, !scatter.is_empty());
    std::fs::write(args.out.join("evaluation.md"), &md)?;
    println!("{md}");
    eprintln!(
        "wrote {} ({:.0} s)",
        args.out.join("evaluation.md").display(),
        report.seconds
    );
    Ok(())
}

/// Share of the most common class (the accuracy of always guessing it).
fn majority_share(truth: &[usize]) -> f64 {
    let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
    for &t in truth {
        *counts.entry(t).or_default() += 1;
    }
    counts.values().max().copied().unwrap_or(0) as f64 / truth.len().max(1) as f64
}

/// Fits on each split's training rows and predicts its test rows (rows without features
/// or target are left out), returning (truth, prediction) over all test rows.
fn cross_fit<T: Clone, P>(
    folds: &[Fold],
    x: &[Option<Vec<f32>>],
    y: &[Option<T>],
    fit: impl Fn(&[Vec<f32>], &[T], &[Vec<f32>]) -> Result<Vec<P>>,
) -> Result<(Vec<T>, Vec<P>)> {
    let (mut truth, mut pred) = (Vec::new(), Vec::new());
    for (train, test) in folds {
        let usable = |idx: &[usize]| -> (Vec<Vec<f32>>, Vec<T>) {
            idx.iter()
                .filter_map(|&i| Some((x[i].clone()?, y[i].clone()?)))
                .unzip()
        };
        let (tx, ty) = usable(train);
        let (qx, qy) = usable(test);
        if tx.len() < 2 || qx.is_empty() {
            continue;
        }
        pred.extend(fit(&tx, &ty, &qx)?);
        truth.extend(qy);
    }
    Ok((truth, pred))
}

/// Cross-modal retrieval among the test split's pairs, with rank histograms.
fn cross_modal(items: &[Item], test: &[usize], out: &Path) -> Result<RetrievalScores> {
    let (img, spec): (Vec<Vec<f32>>, Vec<Vec<f32>>) = test
        .iter()
        .filter_map(|&i| {
            Some((
                items[i].emb.get("image")?.clone(),
                items[i].emb.get("spectrum")?.clone(),
            ))
        })
        .unzip();
    if img.len() < 2 {
        bail!("fewer than 2 test objects have both an image and a spectrum embedding");
    }
    let i2s = partner_ranks(&img, &spec);
    let s2i = partner_ranks(&spec, &img);
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    plot::rank_histograms(
        &out.join("retrieval_ranks.png"),
        &[
            ("image → spectrum".to_string(), i2s.clone()),
            ("spectrum → image".to_string(), s2i.clone()),
        ],
        img.len(),
    )?;
    Ok(RetrievalScores {
        pairs: img.len(),
        image_to_spectrum: Retrieval::from_ranks(&i2s),
        spectrum_to_image: Retrieval::from_ranks(&s2i),
    })
}

/// In-modal (and cross-modal) search through the engine: how close the top-10
/// neighbours' redshifts are to the query's, against random objects.
fn agreement(
    coll: &Collection,
    items: &[Item],
    test: &[usize],
    modalities: &[&'static str],
) -> Result<Vec<Agreement>> {
    let attribute = "redshift";
    let z: BTreeMap<u64, f64> = items
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
            let (mut sum, mut rand_sum, mut n) = (0.0, 0.0, 0usize);
            for &i in test {
                let item = &items[i];
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
                let random: f64 = (0..10)
                    .map(|_| {
                        let j = rand::Rng::random_range(&mut rng, 0..all.len());
                        (all[j] - zq).abs()
                    })
                    .sum::<f64>()
                    / 10.0;
                rand_sum += random;
                n += 1;
            }
            if n > 0 {
                out.push(Agreement {
                    mode: format!("{from} → {to}"),
                    queries: n,
                    mean_abs_delta: sum / n as f64,
                    random_mean_abs_delta: rand_sum / n as f64,
                    attribute: attribute.into(),
                });
            }
        }
    }
    Ok(out)
}

fn markdown(r: &Report, scatter: bool) -> String {
    let mut s = format!(
        "# Evaluation of `{}`\n\n{} objects; split: {} ({} train / {} test); k = {}.\n\n",
        r.collection, r.objects, r.split.kind, r.split.train, r.split.test, r.k
    );
    if let Some(x) = &r.retrieval {
        s += &format!(
            "## Cross-modal retrieval\n\nAmong the {} test pairs (chance: top-1 {:.4}, top-10 {:.4}).\n\n\
             | direction | top-1 | top-10 | median rank |\n|---|---|---|---|\n\
             | image → spectrum | {:.3} | {:.3} | {} |\n| spectrum → image | {:.3} | {:.3} | {} |\n\n\
             ![retrieval ranks](retrieval_ranks.png)\n\n",
            x.pairs,
            1.0 / x.pairs as f64,
            (10.0 / x.pairs as f64).min(1.0),
            x.image_to_spectrum.top1,
            x.image_to_spectrum.top10,
            x.image_to_spectrum.median_rank,
            x.spectrum_to_image.top1,
            x.spectrum_to_image.top10,
            x.spectrum_to_image.median_rank
        );
    }
    if !r.agreement.is_empty() {
        s += "## Search quality: redshift agreement of the top 10 (engine search)\n\n\
              | mode | queries | mean \\|Δz\\| of top 10 | random objects |\n|---|---|---|---|\n";
        for a in &r.agreement {
            s += &format!(
                "| {} | {} | {:.4} | {:.4} |\n",
                a.mode, a.queries, a.mean_abs_delta, a.random_mean_abs_delta
            );
        }
        s += "\n";
    }
    if !r.regression.is_empty() {
        s += "## Regression (R² on the test objects)\n\n| target | features | method | R² | test |\n|---|---|---|---|---|\n";
        for x in &r.regression {
            s += &format!(
                "| {} | {} | {} | {:.3} | {} |\n",
                x.target, x.features, x.method, x.r2, x.test
            );
        }
        s += "\n";
        if scatter {
            s += "![redshift: k-NN prediction vs truth](redshift_knn.png)\n\n";
        }
    }
    if !r.classification.is_empty() {
        s += "## Classification\n\n| label | features | method | accuracy | weighted F1 | majority class | test |\n|---|---|---|---|---|---|---|\n";
        for x in &r.classification {
            s += &format!(
                "| {} ({}) | {} | {} | {:.3} | {:.3} | {:.3} | {} |\n",
                x.label,
                x.classes.join("/"),
                x.features,
                x.method,
                x.accuracy,
                x.weighted_f1,
                x.majority_baseline,
                x.test
            );
        }
        s += "\n";
    }
    s += &format!("Computed in {:.0} s.\n", r.seconds);
    s
}
