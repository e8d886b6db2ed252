//! The training run: the model built, loaded or resumed, the data split, the
//! epochs (with per-epoch validation and atomically swapped checkpoints), and the
//! final model directory scored on a held-out catalog and described.

use std::collections::HashSet;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use astrovec_encoders::model::astroclip::{CONFIG_FILE, WEIGHTS_FILE};
use astrovec_encoders::train::metrics::{
    l2_normalise, partner_ranks, zero_shot_regression, Retrieval,
};
use astrovec_encoders::train::{step_rng, Augment, Objective, TrainConfig, Trainer};
use astrovec_encoders::{AstroClipConfig, Encoder};
use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::card::{
    command_line, history_points, machine, model_card, EpochRecord, HeldoutScores, History,
    TrainingRecord,
};
use super::data::{load, split_by_group, Dataset, Selection};
use super::{progress, Args, ObjectiveArg};
use crate::cmd::eval::fold_of;
use crate::plot;

/// Trains (or resumes) the run `args` describes on `device`, epoch by epoch, and
/// writes the model directory, its record, loss curves and model card.
pub(super) fn train<I: Backend>(args: Args, device: I::Device) -> Result<()> {
    let start = Instant::now();
    let ckpt_dir = args.out.join("checkpoints").join("last");
    let history_path = args.out.join("checkpoints").join("history.json");
    if !(0.0..0.9).contains(&args.val_fraction) {
        bail!(
            "--val-fraction must be in [0, 0.9) (got {})",
            args.val_fraction
        );
    }
    let resuming = args.resume && ckpt_dir.join("trainer.json").exists();
    if args.resume && !resuming {
        tracing::warn!(dir = %ckpt_dir.display(), "no checkpoint to resume from; starting afresh");
    }
    if !resuming && args.out.join(WEIGHTS_FILE).exists() {
        bail!(
            "{} already holds a model; choose another --out, or pass --resume to continue its run",
            args.out.display()
        );
    }
    <Autodiff<I> as Backend>::seed(&device, args.seed);

    // The model and its settings (from the checkpoint when resuming).
    let mut trainer: Trainer<I> = if resuming {
        Trainer::resume(&ckpt_dir, device.clone())
            .with_context(|| format!("resuming from {}", ckpt_dir.display()))?
    } else {
        let (model, mc) = match &args.init {
            Some(dir) => {
                let mc = AstroClipConfig::load_json(dir.join(CONFIG_FILE))?;
                let model =
                    astrovec_encoders::AstroClip::load(&mc, dir.join(WEIGHTS_FILE), &device)?;
                (model, mc)
            }
            None => {
                let mc = AstroClipConfig::preset(&args.preset)?;
                (mc.init::<Autodiff<I>>(&device)?, mc)
            }
        };
        let tokens = mc.spectrum_backbone.num_tokens();
        let cfg = TrainConfig {
            objective: match args.objective {
                ObjectiveArg::Align => Objective::Align,
                ObjectiveArg::PretrainSpectrum => Objective::PretrainSpectrum,
            },
            epochs: args.epochs,
            batch_size: args.batch_size,
            learning_rate: args.lr,
            weight_decay: args.weight_decay,
            warmup_steps: args.warmup_steps,
            final_lr_ratio: args.final_lr_ratio,
            grad_clip_norm: (args.grad_clip > 0.0).then_some(args.grad_clip),
            logit_scale: args.logit_scale,
            freeze_image_backbone: args.freeze_image_backbone,
            freeze_spectrum_backbone: args.freeze_spectrum_backbone,
            augment: if args.no_augment {
                Augment::NONE
            } else {
                Augment::DEFAULT
            },
            mask_chunks: args.mask_chunks,
            mask_chunk_tokens: args
                .mask_chunk_tokens
                .unwrap_or_else(|| ((50 * tokens) as f64 / 778.0).round().max(1.0) as usize),
            seed: args.seed,
        };
        // The schedule's length is set once the split size is known (below).
        Trainer::new(model, mc, cfg, 1, device.clone())?
    };
    let cfg = trainer.config().clone();
    let mc = trainer.model_config().clone();
    let align = cfg.objective == Objective::Align;
    let size = mc.image_backbone.image_size;

    // Sources of held-out objects are kept out of training (and validation) entirely.
    let heldout_groups: Option<HashSet<u64>> = match (&args.heldout, &args.group_column) {
        (Some(path), Some(column)) => {
            let select = Selection {
                skip: args.heldout_skip,
                group_column: Some(column),
                ..Default::default()
            };
            let held = load(std::slice::from_ref(path), &mc, false, &select, args.quiet)
                .with_context(|| format!("reading the held-out groups of {}", path.display()))?;
            Some(held.groups.into_iter().collect())
        }
        _ => None,
    };
    let select = Selection {
        max: args.max_objects,
        group_column: args.group_column.as_deref(),
        exclude: heldout_groups.as_ref(),
        ..Default::default()
    };
    let data = load(&args.inputs, &mc, align, &select, args.quiet)?;
    let (val_idx, train_idx) = split_by_group(&data.groups, args.val_fraction);
    if train_idx.len() < cfg.batch_size {
        bail!(
            "the training split has {} objects, fewer than one batch ({})",
            train_idx.len(),
            cfg.batch_size
        );
    }
    let steps_per_epoch = train_idx.len() / cfg.batch_size;
    let total_steps = steps_per_epoch * cfg.epochs;
    if resuming && trainer.total_steps() != total_steps {
        bail!(
            "the checkpoint's run has {} steps but this data gives {total_steps}; resume with the \
             same inputs and --max-objects",
            trainer.total_steps()
        );
    }
    trainer.set_total_steps(total_steps);
    tracing::info!(
        train = train_idx.len(),
        val = val_idx.len(),
        steps_per_epoch,
        total_steps,
        parameters = parameter_count(&trainer),
        "training"
    );
    let train_set = data.subset(&train_idx);
    let val_set = data.subset(&val_idx);
    drop(data);

    let mut history: History = if resuming && history_path.exists() {
        serde_json::from_slice(&std::fs::read(&history_path)?)
            .with_context(|| format!("reading {}", history_path.display()))?
    } else {
        History::default()
    };
    history.commands.push(command_line());
    let first_epoch = trainer.step() / steps_per_epoch.max(1);
    let log_every = (steps_per_epoch / 10).max(1);
    for epoch in first_epoch..cfg.epochs {
        let epoch_start = Instant::now();
        let mut order: Vec<usize> = (0..train_set.len()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(
            cfg.seed.wrapping_add(epoch as u64),
        ));
        let bar = progress(
            args.quiet,
            steps_per_epoch as u64,
            &format!("epoch {}", epoch + 1),
        );
        let skip = trainer.step() - epoch * steps_per_epoch;
        bar.set_position(skip as u64);
        let (mut sum, mut count, mut window, mut wcount) = (0.0f64, 0usize, 0.0f64, 0usize);
        for b in skip..steps_per_epoch {
            let idx = &order[b * cfg.batch_size..(b + 1) * cfg.batch_size];
            let mut rng = step_rng(cfg.seed, trainer.step());
            let batch = train_set.batch(idx, Some((&cfg.augment, &mut rng)), size);
            let loss = trainer.train_step(&batch)? as f64;
            if !loss.is_finite() {
                bail!(
                    "the training loss became {loss} at step {}; lower --lr or check the data",
                    trainer.step()
                );
            }
            sum += loss;
            count += 1;
            window += loss;
            wcount += 1;
            if wcount == log_every {
                history.steps.push((trainer.step(), window / wcount as f64));
                (window, wcount) = (0.0, 0);
            }
            bar.set_message(format!(
                "loss {:.4} lr {:.2e}",
                sum / count as f64,
                trainer.learning_rate()
            ));
            bar.inc(1);
        }
        bar.finish_and_clear();
        let record = evaluate_epoch(&trainer, &val_set, epoch, sum / count.max(1) as f64, size)?;
        let seconds = epoch_start.elapsed().as_secs_f64();
        history.seconds += seconds;
        let record = EpochRecord { seconds, ..record };
        eprintln!("{}", describe(&record));
        history.epochs.push(record);
        save_checkpoint(&trainer, &ckpt_dir, &history, &history_path)?;
        if !args.quiet {
            plot::loss_curves(&args.out.join("loss.png"), &history_points(&history))?;
        }
    }

    // The deliverable: a model directory the encoders load.
    let encoder = trainer.encoder();
    encoder.save_dir(&args.out)?;
    let heldout = match &args.heldout {
        Some(path) if align => Some(score_heldout(
            &encoder,
            path,
            args.heldout_skip,
            args.group_column.as_deref(),
            &mc,
            args.quiet,
        )?),
        Some(_) => {
            tracing::warn!("--heldout is scored only for alignment runs");
            None
        }
        None => None,
    };
    let record = TrainingRecord {
        command: command_line(),
        data_note: args.data_note.clone(),
        inputs: args
            .inputs
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        objects: train_set.len() + val_set.len(),
        train_objects: train_set.len(),
        val_objects: val_set.len(),
        val_fraction: args.val_fraction,
        group_column: args.group_column.clone(),
        train: cfg.clone(),
        model: serde_json::from_str(&mc.to_json())?,
        parameters: parameter_count(&trainer),
        wall_seconds: start.elapsed().as_secs_f64(),
        machine: machine(),
        history: history.clone(),
        heldout,
    };
    std::fs::write(
        args.out.join("training.json"),
        serde_json::to_vec_pretty(&record)?,
    )?;
    plot::loss_curves(&args.out.join("loss.png"), &history_points(&history))?;
    std::fs::write(args.out.join("MODEL_CARD.md"), model_card(&record))?;
    eprintln!(
        "model written to {} ({:.0} s of training, {:.0} s in all)",
        args.out.display(),
        history.seconds,
        record.wall_seconds
    );
    Ok(())
}

/// Writes the checkpoint to a new directory and swaps it in, so a crash mid-write leaves
/// the previous checkpoint intact.
fn save_checkpoint<I: Backend>(
    trainer: &Trainer<I>,
    dir: &Path,
    history: &History,
    history_path: &Path,
) -> Result<()> {
    let parent = dir.parent().expect("checkpoint dir has a parent");
    std::fs::create_dir_all(parent)?;
    let tmp = parent.join(".last.tmp");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    trainer.save_checkpoint(&tmp)?;
    let old = parent.join(".last.old");
    if dir.exists() {
        if old.exists() {
            std::fs::remove_dir_all(&old)?;
        }
        std::fs::rename(dir, &old)?;
    }
    std::fs::rename(&tmp, dir)?;
    if old.exists() {
        std::fs::remove_dir_all(&old)?;
    }
    std::fs::write(history_path, serde_json::to_vec_pretty(history)?)?;
    Ok(())
}

fn parameter_count<I: Backend>(trainer: &Trainer<I>) -> usize {
    use burn::module::Module;
    trainer.encoder().model().num_params()
}

/// Image and spectrum embeddings, one row per object.
type Embeddings = (Vec<Vec<f32>>, Vec<Vec<f32>>);

fn embed_all<I: Backend>(enc: &Encoder<I>, data: &Dataset) -> Result<Embeddings> {
    let images = if data.images.is_empty() {
        Vec::new()
    } else {
        enc.embed_images(&data.images)?
    };
    let spectra = enc.embed_spectra(&data.spectra)?;
    Ok((images, spectra))
}

fn evaluate_epoch<I: Backend>(
    trainer: &Trainer<I>,
    val: &Dataset,
    epoch: usize,
    train_loss: f64,
    size: usize,
) -> Result<EpochRecord> {
    let bs = trainer.config().batch_size;
    let (mut sum, mut n) = (0.0f64, 0usize);
    let all: Vec<usize> = (0..val.len()).collect();
    for chunk in all.chunks(bs) {
        if chunk.len() < 2 {
            continue;
        }
        let batch = val.batch(chunk, None, size);
        sum += trainer.eval_loss(&batch)? as f64 * chunk.len() as f64;
        n += chunk.len();
    }
    let (i2s, s2i) = if trainer.config().objective == Objective::Align && val.len() > 1 {
        let enc = trainer.encoder().with_batch_size(32);
        let (img, spec) = embed_all(&enc, val)?;
        (
            Some(Retrieval::from_ranks(&partner_ranks(&img, &spec))),
            Some(Retrieval::from_ranks(&partner_ranks(&spec, &img))),
        )
    } else {
        (None, None)
    };
    Ok(EpochRecord {
        epoch: epoch + 1,
        step: trainer.step(),
        train_loss,
        val_loss: if n > 0 { sum / n as f64 } else { f64::NAN },
        image_to_spectrum: i2s,
        spectrum_to_image: s2i,
        seconds: 0.0,
    })
}

fn describe(r: &EpochRecord) -> String {
    let mut s = format!(
        "epoch {:>3}  step {:>6}  train loss {:.4}  val loss {:.4}",
        r.epoch, r.step, r.train_loss, r.val_loss
    );
    if let (Some(a), Some(b)) = (&r.image_to_spectrum, &r.spectrum_to_image) {
        s += &format!(
            "  img→spec top-1 {:.3} top-10 {:.3}  spec→img top-1 {:.3} top-10 {:.3} (of {})",
            a.top1, a.top10, b.top1, b.top10, a.queries
        );
    }
    s
}

/// Neighbours and folds of the held-out k-NN scoring (the `astrovec eval` defaults).
const HELDOUT_K: usize = 64;
const HELDOUT_FOLDS: usize = 5;

/// Scores the final model on a held-out catalog: reads and embeds it, then
/// [`score_embeddings`]. Folds are drawn by a hash of the `group_column` value when one
/// is given (the key the training split uses), else of the id.
fn score_heldout<I: Backend>(
    enc: &Encoder<I>,
    path: &Path,
    skip: usize,
    group_column: Option<&str>,
    mc: &AstroClipConfig,
    quiet: bool,
) -> Result<HeldoutScores> {
    let select = Selection {
        skip,
        group_column,
        ..Default::default()
    };
    let held = load(&[path.to_path_buf()], mc, true, &select, quiet)?;
    let (img, spec) = embed_all(enc, &held)?;
    let fold_key = group_column.map_or("id".to_string(), |c| format!("group column {c}"));
    let mut scores = score_embeddings(&held.groups, &fold_key, &img, &spec, &held.redshift);
    scores.file = path.display().to_string();
    scores.skipped_rows = skip;
    Ok(scores)
}

/// The held-out scores of a model's embeddings: cross-modal retrieval among all pairs,
/// and the zero-shot k-NN redshift R² of `astrovec eval` (L2-normalised embeddings, k =
/// 64, weights 1/distance, features standardised on the training folds) with 5-fold
/// cross-validation inside the held-out set (so no training object serves as a
/// neighbour), folds by a hash of `keys`, R² per fold, mean ± standard deviation over
/// folds. Objects without a finite redshift are left out of the regression.
fn score_embeddings(
    keys: &[u64],
    fold_key: &str,
    img: &[Vec<f32>],
    spec: &[Vec<f32>],
    redshift: &[f64],
) -> HeldoutScores {
    let rows: Vec<usize> = (0..keys.len())
        .filter(|&i| redshift[i].is_finite())
        .collect();
    let fold: Vec<usize> = rows
        .iter()
        .map(|&i| fold_of(keys[i], HELDOUT_FOLDS))
        .collect();
    let y: Vec<f64> = rows.iter().map(|&i| redshift[i]).collect();
    let score = |emb: &[Vec<f32>]| {
        let x = l2_normalise(&rows.iter().map(|&i| emb[i].clone()).collect::<Vec<_>>());
        zero_shot_regression(&x, &y, &fold, HELDOUT_FOLDS, HELDOUT_K)
    };
    let (from_img, from_spec) = (score(img), score(spec));
    HeldoutScores {
        file: String::new(),
        skipped_rows: 0,
        pairs: keys.len(),
        image_to_spectrum: Retrieval::from_ranks(&partner_ranks(img, spec)),
        spectrum_to_image: Retrieval::from_ranks(&partner_ranks(spec, img)),
        knn_k: HELDOUT_K,
        knn_folds: HELDOUT_FOLDS,
        knn_fold_key: fold_key.to_string(),
        knn_test: from_img.test,
        redshift_r2_from_image: from_img.r2,
        redshift_r2_from_spectrum: from_spec.r2,
    }
}

#[cfg(test)]
mod tests {
    //! The held-out scoring on planted embeddings whose redshift R² is known (the designs
    //! and their expected values are derived in `tests/eval_planted.rs`, which checks
    //! `astrovec eval` on the same designs). A leading 10⁶ coordinate makes every norm
    //! the same, so the scoring's L2 normalisation scales the planted coordinates
    //! uniformly.
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, StandardNormal};

    use super::*;

    const N: usize = 2000;

    fn normal(rng: &mut ChaCha8Rng) -> f32 {
        StandardNormal.sample(rng)
    }

    #[test]
    fn heldout_scoring_reports_the_planted_r2() {
        let mut rng = ChaCha8Rng::seed_from_u64(21);
        let keys: Vec<u64> = (0..N as u64).map(|i| 7000 + i).collect();

        // Two copies of g with unit noise at scales 1 and 10⁻³: R² 0.642 ± 0.03 once the
        // features are standardised (ceiling 2/3), 0.46 when they are not.
        let (mut emb, mut z) = (Vec::new(), Vec::new());
        for _ in 0..N {
            let g = normal(&mut rng);
            emb.push(vec![
                1e6,
                g + normal(&mut rng),
                1e-3 * (g + normal(&mut rng)),
            ]);
            z.push(0.3 + 0.05 * g as f64);
        }
        let s = score_embeddings(&keys, "id", &emb, &emb, &z);
        assert_eq!(s.knn_test.iter().sum::<usize>(), N);
        assert_eq!(s.redshift_r2_from_image.folds.len(), 5);
        let r2 = s.redshift_r2_from_image.mean;
        assert!((r2 - 0.642).abs() < 0.03, "{:?}", s.redshift_r2_from_image);

        // 250 clusters of 8 within 10⁻⁴ of their centres, sharing a value independent of
        // the centre: R² > 0.99 with weights 1/distance, ≈ 0.1 with equal weights.
        let (mut emb, mut z) = (Vec::new(), Vec::new());
        for _ in 0..N / 8 {
            let centre: Vec<f32> = (0..4).map(|_| normal(&mut rng)).collect();
            let value = 0.3 + 0.05 * normal(&mut rng) as f64;
            for _ in 0..8 {
                let mut v = vec![1e6];
                v.extend(centre.iter().map(|c| c + 1e-4 * normal(&mut rng)));
                emb.push(v);
                z.push(value);
            }
        }
        let s = score_embeddings(&keys, "id", &emb, &emb, &z);
        let r2 = &s.redshift_r2_from_spectrum;
        assert!(r2.folds.iter().all(|&f| f > 0.99), "{r2:?}");
    }
}
