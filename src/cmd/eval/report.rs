//! What `astrovec eval` reports: the `evaluation.json` record (every score as its
//! per-fold values, mean and standard deviation, with the test objects of each fold)
//! and the `evaluation.md` written from it.

use astrovec_encoders::train::metrics::FoldStat;
use serde::Serialize;

/// How the numbers were computed, recorded beside them.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Protocol {
    /// Cross-validation folds.
    pub(super) folds: usize,
    /// What the folds are drawn from: `"id"` or `"group column NAME"`.
    pub(super) fold_key: String,
    /// Objects in each fold.
    pub(super) fold_sizes: Vec<usize>,
    /// Neighbours of the k-NN regression and classification.
    pub(super) k: usize,
    /// What the k-NN and MLP fits see.
    pub(super) features: String,
    /// How the neighbours' values are combined.
    pub(super) neighbour_weights: String,
    /// What the ± after each mean is.
    pub(super) spread: String,
}

/// Retrieval scores of one direction over folds.
#[derive(Debug, Clone, Serialize)]
pub(super) struct RetrievalStats {
    pub(super) top1: FoldStat,
    pub(super) top10: FoldStat,
    /// 1-based rank of the partner among the fold's pairs.
    pub(super) median_rank: FoldStat,
}

/// Cross-modal retrieval among each fold's pairs.
#[derive(Debug, Clone, Serialize)]
pub(super) struct RetrievalScores {
    /// Pairs (objects with both embeddings) of each fold.
    pub(super) pairs: Vec<usize>,
    pub(super) image_to_spectrum: RetrievalStats,
    pub(super) spectrum_to_image: RetrievalStats,
}

/// Attribute agreement of the engine's top 10 for one search mode.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Agreement {
    pub(super) mode: String,
    pub(super) attribute: String,
    /// Queries of each fold.
    pub(super) queries: Vec<usize>,
    /// Per fold, the mean over its queries of the mean |Δ attribute| of the top 10.
    pub(super) mean_abs_delta: FoldStat,
    /// The same for 10 random objects per query (the baseline).
    pub(super) random_mean_abs_delta: FoldStat,
}

/// One regression (target × features × method).
#[derive(Debug, Clone, Serialize)]
pub(super) struct RegressionScore {
    pub(super) target: String,
    /// Unit of the target, as declared in the collection ("" when it has none).
    pub(super) unit: String,
    pub(super) features: String,
    pub(super) method: String,
    pub(super) r2: FoldStat,
    /// Test objects of each fold.
    pub(super) test: Vec<usize>,
}

/// One classification (label × features × method).
#[derive(Debug, Clone, Serialize)]
pub(super) struct ClassScore {
    pub(super) label: String,
    pub(super) classes: Vec<String>,
    pub(super) features: String,
    pub(super) method: String,
    pub(super) accuracy: FoldStat,
    pub(super) weighted_f1: FoldStat,
    /// Accuracy of always answering the fold's most common class.
    pub(super) majority_baseline: FoldStat,
    /// Test objects of each fold.
    pub(super) test: Vec<usize>,
}

/// Everything `evaluation.json` holds.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Report {
    pub(super) collection: String,
    pub(super) objects: usize,
    pub(super) protocol: Protocol,
    pub(super) retrieval: Option<RetrievalScores>,
    pub(super) agreement: Vec<Agreement>,
    pub(super) regression: Vec<RegressionScore>,
    pub(super) classification: Vec<ClassScore>,
    /// Wall-clock time of the evaluation, seconds.
    pub(super) seconds: f64,
}

/// `mean ± sd` with `digits` decimals.
fn pm(s: &FoldStat, digits: usize) -> String {
    format!("{:.*} ± {:.*}", digits, s.mean, digits, s.sd)
}

/// Test objects per fold: one number when all folds are equal, else the range.
fn sizes(n: &[usize]) -> String {
    match (n.iter().min(), n.iter().max()) {
        (Some(lo), Some(hi)) if lo == hi => lo.to_string(),
        (Some(lo), Some(hi)) => format!("{lo}–{hi}"),
        _ => "0".into(),
    }
}

/// The Markdown report (tables of mean ± standard deviation over folds).
pub(super) fn markdown(r: &Report, scatter: bool) -> String {
    let p = &r.protocol;
    let mut s = format!(
        "# Evaluation of `{}`\n\n{} objects in {} folds by a hash of the {} ({} objects per \
         fold); k = {}. Every number is the mean over the folds ± the standard deviation over \
         the folds ({}); each fold is scored on its own objects by a fit on the other folds.\n\n",
        r.collection,
        r.objects,
        p.folds,
        p.fold_key,
        sizes(&p.fold_sizes),
        p.k,
        p.spread
    );
    if let Some(x) = &r.retrieval {
        let mean_pairs = x.pairs.iter().sum::<usize>() as f64 / x.pairs.len().max(1) as f64;
        s += &format!(
            "## Cross-modal retrieval\n\nAmong each fold's {} pairs (cosine of L2-normalised \
             embeddings; chance: top-1 {:.4}, top-10 {:.4}).\n\n\
             | direction | top-1 | top-10 | median rank |\n|---|---|---|---|\n\
             | image → spectrum | {} | {} | {} |\n| spectrum → image | {} | {} | {} |\n\n\
             ![retrieval ranks](retrieval_ranks.png)\n\n",
            sizes(&x.pairs),
            1.0 / mean_pairs,
            (10.0 / mean_pairs).min(1.0),
            pm(&x.image_to_spectrum.top1, 3),
            pm(&x.image_to_spectrum.top10, 3),
            pm(&x.image_to_spectrum.median_rank, 1),
            pm(&x.spectrum_to_image.top1, 3),
            pm(&x.spectrum_to_image.top10, 3),
            pm(&x.spectrum_to_image.median_rank, 1),
        );
    }
    if !r.agreement.is_empty() {
        s += "## Search quality: redshift agreement of the top 10 (engine search)\n\n\
              | mode | queries per fold | mean \\|Δz\\| of top 10 | random objects |\n\
              |---|---|---|---|\n";
        for a in &r.agreement {
            s += &format!(
                "| {} | {} | {} | {} |\n",
                a.mode,
                sizes(&a.queries),
                pm(&a.mean_abs_delta, 4),
                pm(&a.random_mean_abs_delta, 4)
            );
        }
        s += "\n";
    }
    if !r.regression.is_empty() {
        s += "## Regression (R² per fold)\n\n\
              | target | features | method | R² | test per fold |\n|---|---|---|---|---|\n";
        for x in &r.regression {
            let target = if x.unit.is_empty() {
                x.target.clone()
            } else {
                format!("{} ({})", x.target, x.unit)
            };
            s += &format!(
                "| {target} | {} | {} | {} | {} |\n",
                x.features,
                x.method,
                pm(&x.r2, 3),
                sizes(&x.test)
            );
        }
        s += "\n";
        if scatter {
            s += "![redshift: k-NN prediction vs truth](redshift_knn.png)\n\n";
        }
    }
    if !r.classification.is_empty() {
        s += "## Classification\n\n\
              | label | features | method | accuracy | weighted F1 | majority class | test per fold |\n\
              |---|---|---|---|---|---|---|\n";
        for x in &r.classification {
            s += &format!(
                "| {} ({}) | {} | {} | {} | {} | {} | {} |\n",
                x.label,
                x.classes.join("/"),
                x.features,
                x.method,
                pm(&x.accuracy, 3),
                pm(&x.weighted_f1, 3),
                pm(&x.majority_baseline, 3),
                sizes(&x.test)
            );
        }
        s += "\n";
    }
    s += &format!("Computed in {:.0} s.\n", r.seconds);
    s
}
