//! What a training run records: per-epoch numbers, the history kept beside the
//! checkpoint, held-out scores, the `training.json` record, the loss curves and
//! the model card written from them.

use astrovec_encoders::train::metrics::{FoldStat, Retrieval};
use astrovec_encoders::train::{Objective, TrainConfig};
use serde::{Deserialize, Serialize};

use crate::plot;

/// One epoch's numbers, as recorded in `training.json` and plotted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct EpochRecord {
    pub(super) epoch: usize,
    pub(super) step: usize,
    pub(super) train_loss: f64,
    pub(super) val_loss: f64,
    /// Cross-modal retrieval on the validation split (empty for pre-training).
    pub(super) image_to_spectrum: Option<Retrieval>,
    pub(super) spectrum_to_image: Option<Retrieval>,
    pub(super) seconds: f64,
}

/// What is kept beside the checkpoint so a resumed run reports its whole history.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct History {
    /// Every invocation that worked on this run (the first, then any resumes).
    #[serde(default)]
    pub(super) commands: Vec<String>,
    pub(super) epochs: Vec<EpochRecord>,
    /// Mean training loss per logging interval: (step, loss).
    pub(super) steps: Vec<(usize, f64)>,
    pub(super) seconds: f64,
}

/// Scores of the final model on a held-out catalog.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct HeldoutScores {
    pub(super) file: String,
    /// Rows of the file skipped before the held-out objects.
    pub(super) skipped_rows: usize,
    pub(super) pairs: usize,
    pub(super) image_to_spectrum: Retrieval,
    pub(super) spectrum_to_image: Retrieval,
    pub(super) knn_k: usize,
    /// k-NN cross-validation folds inside the held-out set.
    pub(super) knn_folds: usize,
    /// What the folds are drawn from: `"id"` or `"group column NAME"`.
    pub(super) knn_fold_key: String,
    /// Held-out objects with a redshift in each fold (each fold's test objects).
    pub(super) knn_test: Vec<usize>,
    /// Zero-shot k-NN redshift R² per fold, mean and standard deviation over folds.
    pub(super) redshift_r2_from_image: FoldStat,
    pub(super) redshift_r2_from_spectrum: FoldStat,
}

/// Everything about a finished run, written as `training.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct TrainingRecord {
    pub(super) command: String,
    pub(super) data_note: Option<String>,
    pub(super) inputs: Vec<String>,
    pub(super) objects: usize,
    pub(super) train_objects: usize,
    pub(super) val_objects: usize,
    pub(super) val_fraction: f64,
    /// Column grouping objects of one source (split and held-out exclusion), if any.
    #[serde(default)]
    pub(super) group_column: Option<String>,
    pub(super) train: TrainConfig,
    pub(super) model: serde_json::Value,
    pub(super) parameters: usize,
    pub(super) wall_seconds: f64,
    pub(super) machine: String,
    pub(super) history: History,
    pub(super) heldout: Option<HeldoutScores>,
}

/// The loss and retrieval curves of a run's history, as plotted in `loss.png`.
pub(super) fn history_points(h: &History) -> plot::LossCurves {
    plot::LossCurves {
        train_steps: h.steps.iter().map(|&(s, l)| (s as f64, l)).collect(),
        val_epochs: h
            .epochs
            .iter()
            .map(|e| (e.step as f64, e.val_loss))
            .collect(),
        retrieval_top10: h
            .epochs
            .iter()
            .filter_map(|e| {
                Some((
                    e.step as f64,
                    e.image_to_spectrum?.top10,
                    e.spectrum_to_image?.top10,
                ))
            })
            .collect(),
    }
}

/// This invocation as a command line. The program's own path varies by machine; the
/// arguments are what reproduce the run.
pub(super) fn command_line() -> String {
    std::iter::once("astrovec".to_string())
        .chain(std::env::args().skip(1).map(|a| {
            if a.contains(|c: char| c.is_whitespace() || c == '\'' || c == '`') {
                format!("'{}'", a.replace('\'', r"'\''"))
            } else {
                a
            }
        }))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The machine a run used (CPU threads and model), as recorded in the model card.
pub(super) fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cpus} CPU threads ({model}), CPU backend (Burn ndarray + OpenBLAS)")
}

/// The model card (`MODEL_CARD.md`) of a finished run.
pub(super) fn model_card(r: &TrainingRecord) -> String {
    let mut s = String::new();
    s += "# Model card\n\n";
    s += &format!(
        "An AstroCLIP-style image + spectrum model ({} parameters, {}-d embeddings), trained \
         with `astrovec train` ({}).\n\n",
        r.parameters,
        r.model["image_head"]["embed_dim"],
        match r.train.objective {
            Objective::Align => "contrastive alignment",
            Objective::PretrainSpectrum => "masked-spectrum pre-training",
        }
    );
    s += "## Training data\n\n";
    s += &format!(
        "- Inputs: {}\n- Objects: {} ({} training, {} validation; validation = a hash of the \
         {}, fraction {})\n{}\n",
        r.inputs.join(", "),
        r.objects,
        r.train_objects,
        r.val_objects,
        r.group_column
            .as_ref()
            .map_or("id".to_string(), |c| format!(
                "`{c}` column (objects sharing it stay together; those sharing it with a \
             held-out object are not used)"
            )),
        r.val_fraction,
        r.data_note
            .as_ref()
            .map_or(String::new(), |n| format!("- {n}\n"))
    );
    s += "## Commands\n\n```\n";
    if r.history.commands.is_empty() {
        s += &r.command;
        s += "\n";
    }
    for c in &r.history.commands {
        s += c;
        s += "\n";
    }
    s += "```\n\n";
    s += &format!(
        "Wall time {:.0} s (training {:.0} s) on {}.\n\n",
        r.wall_seconds, r.history.seconds, r.machine
    );
    s += "## Settings\n\n```json\n";
    s += &serde_json::to_string_pretty(&r.train).expect("serialises");
    s += "\n```\n\n## Per epoch\n\n| epoch | step | train loss | val loss | img→spec top-1 | top-10 | spec→img top-1 | top-10 | seconds |\n|---|---|---|---|---|---|---|---|---|\n";
    for e in &r.history.epochs {
        let f = |x: Option<Retrieval>, top1: bool| {
            x.map_or("–".to_string(), |x| {
                format!("{:.3}", if top1 { x.top1 } else { x.top10 })
            })
        };
        s += &format!(
            "| {} | {} | {:.4} | {:.4} | {} | {} | {} | {} | {:.0} |\n",
            e.epoch,
            e.step,
            e.train_loss,
            e.val_loss,
            f(e.image_to_spectrum, true),
            f(e.image_to_spectrum, false),
            f(e.spectrum_to_image, true),
            f(e.spectrum_to_image, false),
            e.seconds
        );
    }
    if let Some(h) = &r.heldout {
        s += &format!(
            "\n## Held-out evaluation\n\n{} pairs from `{}` (rows after the first {}; never seen \
             in training). Chance for top-1 / top-10 is {:.4} / {:.4}.\n\n\
             | metric | image → spectrum | spectrum → image |\n|---|---|---|\n\
             | top-1 | {:.3} | {:.3} |\n| top-10 | {:.3} | {:.3} |\n| median rank | {} | {} |\n\n\
             Zero-shot k-NN redshift (k = {}, weights 1/distance, L2-normalised embeddings \
             standardised on the training folds; {} folds by a hash of the {} inside the \
             held-out set, {} test objects per fold; mean ± standard deviation over folds): R² \
             from image embeddings **{:.3} ± {:.3}**, from spectrum embeddings **{:.3} ± \
             {:.3}**.\n",
            h.pairs,
            h.file,
            h.skipped_rows,
            1.0 / h.pairs as f64,
            10.0 / h.pairs as f64,
            h.image_to_spectrum.top1,
            h.spectrum_to_image.top1,
            h.image_to_spectrum.top10,
            h.spectrum_to_image.top10,
            h.image_to_spectrum.median_rank,
            h.spectrum_to_image.median_rank,
            h.knn_k,
            h.knn_folds,
            h.knn_fold_key,
            fold_sizes(&h.knn_test),
            h.redshift_r2_from_image.mean,
            h.redshift_r2_from_image.sd,
            h.redshift_r2_from_spectrum.mean,
            h.redshift_r2_from_spectrum.sd
        );
    }
    s += "\n![loss curves](loss.png)\n";
    s
}

/// Objects per fold: one number when all folds are equal, else the range.
fn fold_sizes(n: &[usize]) -> String {
    match (n.iter().min(), n.iter().max()) {
        (Some(lo), Some(hi)) if lo == hi => lo.to_string(),
        (Some(lo), Some(hi)) => format!("{lo}–{hi}"),
        _ => "0".into(),
    }
}
