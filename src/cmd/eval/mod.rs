//! `astrovec eval`: the AstroCLIP downstream protocol on any collection with labels —
//! cross-modal retrieval, in-modal attribute agreement, zero-shot k-NN regression,
//! few-shot MLP regression, k-NN / MLP classification — next to photometry-only and
//! random-embedding baselines on the same folds. Writes `evaluation.json`,
//! `evaluation.md` and PNG plots.
//!
//! Every score is computed per cross-validation fold (folds by a hash of the id, or of a
//! group column) and reported as the mean over folds ± the standard deviation over folds.
//! Embeddings come from the collection (the engine's stored, L2-normalised vectors),
//! neighbours for the attribute-agreement task from the engine's own search, the
//! regressions and classifiers from `astrovec_encoders::train::{metrics, mlp}`.

mod folds;
mod report;
mod tasks;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use astrovec_engine::{AttrValue, Collection};
use astrovec_indexer::ingest::shard::mix;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

pub(crate) use folds::fold_of;
use report::{markdown, Protocol, Report};
use tasks::{Setup, RANDOM};

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
    /// Cross-validation folds (2–20), drawn by a hash of the id (or of --group-column):
    /// every object is predicted once, by the fits on the other folds, and every score is
    /// the mean over folds ± the standard deviation over folds.
    #[arg(long, default_value_t = 5)]
    pub folds: usize,
    /// Attribute whose value groups objects (e.g. a parent galaxy): the folds are drawn by
    /// a hash of it, so no group is split between a fit and its test.
    #[arg(long, value_name = "NAME")]
    pub group_column: Option<String>,
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
pub(super) struct Item {
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

/// Every object of the collection with its attributes and embeddings, in id order.
fn read_items(coll: &Collection, modalities: &[&'static str]) -> Result<Vec<Item>> {
    let mut ids = coll.ids();
    ids.sort_unstable();
    let mut items = Vec::with_capacity(ids.len());
    for id in ids {
        let obj = coll.get(id)?;
        let mut emb = BTreeMap::new();
        for &m in modalities {
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
    Ok(items)
}

/// The fold of every item, and the name of what the folds are drawn from.
fn assign_folds(items: &[Item], args: &Args) -> Result<(Vec<usize>, String)> {
    if !(2..=20).contains(&args.folds) {
        bail!("--folds must be between 2 and 20 (got {})", args.folds);
    }
    match &args.group_column {
        None => Ok((
            items.iter().map(|i| fold_of(i.id, args.folds)).collect(),
            "id".into(),
        )),
        Some(column) => {
            let fold = items
                .iter()
                .map(|i| {
                    let v = i.attrs.get(column).with_context(|| {
                        format!(
                            "--group-column: object {} has no attribute {column:?}",
                            i.id
                        )
                    })?;
                    Ok(fold_of(folds::group_key(v), args.folds))
                })
                .collect::<Result<Vec<usize>>>()?;
            Ok((fold, format!("group column {column}")))
        }
    }
}

/// The feature sets: each modality's embeddings, the photometry baseline (g, r, z
/// magnitudes, where most objects have them) and random embeddings.
fn feature_sets(
    items: &[Item],
    modalities: &[&'static str],
    dim: usize,
    seed: u64,
) -> Vec<(String, Vec<Option<Vec<f32>>>)> {
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
        RANDOM.into(),
        items
            .iter()
            .map(|i| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed ^ mix(i.id));
                Some((0..dim).map(|_| StandardNormal.sample(&mut rng)).collect())
            })
            .collect(),
    ));
    features
}

/// The labels to classify: the ones asked for, or the default flags and every category
/// attribute.
fn class_labels(coll: &Collection, items: &[Item], args: &Args) -> Vec<String> {
    if !args.classify.is_empty() {
        return args.classify.clone();
    }
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
        if matches!(def.kind, astrovec_engine::AttributeKind::Category) && !l.contains(&def.name) {
            l.push(def.name.clone());
        }
    }
    l
}

/// The class names of a label, and each object's class index (`None`: no label).
type Classes = (Vec<String>, Vec<Option<usize>>);

/// Class names and each object's class index for `label`, or `None` when it has fewer
/// than two classes and was not asked for explicitly.
fn class_indices(items: &[Item], label: &str, asked: bool) -> Result<Option<Classes>> {
    let raw: Vec<Option<String>> = items
        .iter()
        .map(|i| i.attrs.get(label).and_then(class_of))
        .collect();
    let mut names: Vec<String> = raw.iter().flatten().cloned().collect();
    names.sort();
    names.dedup();
    if names.len() < 2 {
        if asked {
            bail!(
                "--classify: {label:?} has {} class(es); need at least 2",
                names.len()
            );
        }
        return Ok(None);
    }
    if names.len() > 50 {
        bail!(
            "--classify: {label:?} has {} distinct values; is it really a class label?",
            names.len()
        );
    }
    let y = raw
        .iter()
        .map(|r| {
            r.as_ref()
                .map(|v| names.iter().position(|n| n == v).expect("listed"))
        })
        .collect();
    Ok(Some((names, y)))
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<()> {
    let start = Instant::now();
    let coll = Collection::open(&args.db)
        .with_context(|| format!("opening collection {}", args.db.display()))?;
    if coll.ids().len() < 20 {
        bail!(
            "{}: {} objects; the evaluation needs at least 20",
            args.db.display(),
            coll.ids().len()
        );
    }
    let modalities: Vec<&'static str> = MODALITIES
        .iter()
        .copied()
        .filter(|m| coll.config().modality_index(m).is_ok())
        .collect();
    let items = read_items(&coll, &modalities)?;
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
    let (fold, fold_key) = assign_folds(&items, &args)?;
    let setup = Setup {
        items: &items,
        fold: &fold,
        folds: args.folds,
        k: args.k,
        seed: args.seed,
        mlp: !args.no_mlp,
    };
    let features = feature_sets(&items, &modalities, dim, args.seed);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;

    let retrieval = if modalities.len() == 2 {
        tasks::retrieval(&setup, &args.out)?
    } else {
        None
    };
    let agreement = tasks::agreement(&setup, &coll, &modalities)?;

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
    let (mut regression, mut scatter) = (Vec::new(), Vec::new());
    for target in &targets {
        let unit = coll
            .config()
            .attributes
            .iter()
            .find(|a| &a.name == target)
            .map_or(String::new(), |a| a.unit.clone());
        regression.extend(tasks::regression(
            &setup,
            target,
            &unit,
            &features,
            &mut scatter,
        )?);
    }

    let mut classification = Vec::new();
    for label in class_labels(&coll, &items, &args) {
        let Some((names, y)) = class_indices(&items, &label, !args.classify.is_empty())? else {
            continue;
        };
        classification.extend(tasks::classification(
            &setup, &label, &names, &y, &features,
        )?);
    }

    if !scatter.is_empty() {
        plot::pred_vs_true(&args.out.join("redshift_knn.png"), "redshift", &scatter)?;
    }
    let report = Report {
        collection: args.db.display().to_string(),
        objects: items.len(),
        protocol: Protocol {
            folds: args.folds,
            fold_key,
            fold_sizes: (0..args.folds)
                .map(|f| fold.iter().filter(|&&x| x == f).count())
                .collect(),
            k: args.k,
            features: "embeddings as the collection stores them (L2-normalised), each feature \
                       standardised with the mean and standard deviation of the training folds; \
                       baselines (photometry, random) standardised the same way"
                .into(),
            neighbour_weights: "1 / Euclidean distance (an exact match takes the match's value)"
                .into(),
            spread: "sample standard deviation over folds, divisor n − 1".into(),
        },
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
