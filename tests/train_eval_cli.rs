//! The README's training, embedding and evaluation commands, run against the real
//! binary on a small mock catalog: contrastive training, an interrupted run resumed,
//! SpecFormer pre-training and alignment from it, `embed` on `.npy` inputs and on a
//! catalog, ingest with the trained model and `eval` with its default 5 folds and with 3.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use astrovec_encoders::model::astroclip::{CONFIG_FILE, WEIGHTS_FILE};
use ndarray::{Array1, Array2, Array4};

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

fn json(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Training flags shared by every run here: the `small` preset (the default model's
/// size, faster than `tiny`, whose SpecFormer reads 778 tokens), small batches.
const FAST: [&str; 8] = [
    "--preset",
    "small",
    "--batch-size",
    "8",
    "--warmup-steps",
    "2",
    "--seed",
    "3",
];

/// `train CAT -o OUT --epochs 1 --quiet`, then `extra`, then [`FAST`].
fn one_epoch<'a>(cat: &'a Path, out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["train", s(cat), "-o", s(out), "--epochs", "1", "--quiet"];
    args.extend_from_slice(extra);
    args.extend(FAST);
    args
}

#[test]
fn train_resume_pretrain_embed_ingest_eval() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cat = d.join("train.parquet");
    common::run_ok(&["mock", "-n", "48", "--seed", "5", "-o", s(&cat)]);

    // 1. Contrastive alignment from scratch: a model directory the encoders load.
    let model = d.join("my-model");
    let args = one_epoch(&cat, &model, &[]);
    common::run_ok(&args);
    for f in [
        CONFIG_FILE,
        WEIGHTS_FILE,
        "MODEL_CARD.md",
        "training.json",
        "loss.png",
    ] {
        assert!(
            model.join(f).is_file(),
            "{f} missing from the model directory"
        );
    }
    let record = json(&model.join("training.json"));
    let epochs = record["history"]["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 1);
    let loss = epochs[0]["train_loss"].as_f64().unwrap();
    assert!(loss.is_finite() && loss > 0.0, "train loss {loss}");
    let top10 = epochs[0]["image_to_spectrum"]["top10"].as_f64();
    assert!(top10.is_some_and(|t| (0.0..=1.0).contains(&t)), "{record}");
    // A second run into the same directory must not overwrite the model.
    let again = Command::new(env!("CARGO_BIN_EXE_astrovec"))
        .args(&args)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--resume"));

    // 1b. Grouped sources: no object sharing a `parent_index` with a held-out object is
    // trained on. The held-out file re-observes galaxies 40–47 (same seed and rows, so the
    // same parents) under other target ids: excluding by the column leaves exactly 40 of
    // the 48 objects, where excluding by id would leave all 48.
    let reobserved = d.join("reobserved.parquet");
    common::run_ok(&[
        "mock",
        "-n",
        "8",
        "--start",
        "40",
        "--seed",
        "5",
        "--first-targetid",
        "1000",
        "-o",
        s(&reobserved),
    ]);
    let grouped = d.join("grouped");
    common::run_ok(&one_epoch(
        &cat,
        &grouped,
        &[
            "--group-column",
            "parent_index",
            "--heldout",
            s(&reobserved),
        ],
    ));
    let record = json(&grouped.join("training.json"));
    assert_eq!(record["objects"], 40, "{record}");
    assert_eq!(record["group_column"], "parent_index");
    assert_eq!(record["heldout"]["pairs"], 8);
    // The held-out k-NN R² is kept per fold (5 folds by a hash of the group column).
    let heldout = &record["heldout"];
    assert_eq!(heldout["knn_folds"], 5);
    assert_eq!(heldout["knn_fold_key"], "group column parent_index");
    let folds = heldout["redshift_r2_from_image"]["folds"]
        .as_array()
        .unwrap();
    assert_eq!(folds.len(), heldout["knn_test"].as_array().unwrap().len());
    let card = std::fs::read_to_string(grouped.join("MODEL_CARD.md")).unwrap();
    assert!(card.contains("`parent_index` column"), "{card}");
    let unused = d.join("no-such-column");
    let bad = Command::new(env!("CARGO_BIN_EXE_astrovec"))
        .args(one_epoch(
            &cat,
            &unused,
            &["--group-column", "no_such_column"],
        ))
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("no_such_column") && err.contains("train.parquet"),
        "{err}"
    );

    // 2. An interrupted run, resumed: stop it once its first epoch is checkpointed.
    let run = d.join("interrupted");
    let mut args = vec!["train", s(&cat), "-o", s(&run), "--epochs", "4", "--quiet"];
    args.extend(FAST);
    let mut child = Command::new(env!("CARGO_BIN_EXE_astrovec"))
        .args(&args)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let checkpoint = run.join("checkpoints/last/trainer.json");
    let deadline = Instant::now() + Duration::from_secs(600);
    while !checkpoint.exists() && Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(checkpoint.exists(), "no checkpoint after the first epoch");
    let _ = child.kill();
    let _ = child.wait();
    let mut args = vec!["train", s(&cat), "-o", s(&run), "--resume", "--quiet"];
    args.extend(["--seed", "3"]);
    common::run_ok(&args);
    let record = json(&run.join("training.json"));
    let epochs: Vec<u64> = record["history"]["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["epoch"].as_u64().unwrap())
        .collect();
    assert_eq!(
        epochs,
        vec![1, 2, 3, 4],
        "every epoch once, across both runs"
    );
    let commands = record["history"]["commands"].as_array().unwrap();
    assert!(commands.len() >= 2, "the resume is recorded: {commands:?}");

    // 3. SpecFormer pre-training, then alignment starting from it.
    let spec = d.join("specformer");
    let mut args = vec![
        "train",
        s(&cat),
        "-o",
        s(&spec),
        "--objective",
        "pretrain-spectrum",
        "--epochs",
        "1",
        "--quiet",
    ];
    args.extend(FAST);
    common::run_ok(&args);
    let record = json(&spec.join("training.json"));
    assert_eq!(
        record["train"]["objective"], "pretrain-spectrum",
        "{record}"
    );
    let aligned = d.join("aligned");
    common::run_ok(&[
        "train",
        s(&cat),
        "-o",
        s(&aligned),
        "--init",
        s(&spec),
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--quiet",
    ]);
    assert_eq!(
        std::fs::read(spec.join(CONFIG_FILE)).unwrap(),
        std::fs::read(aligned.join(CONFIG_FILE)).unwrap(),
        "--init keeps the pre-trained model's architecture"
    );

    // 4. `embed` on .npy inputs with the trained model: one finite, non-zero
    // embedding per row (not normalised), different for different inputs.
    let cfg = json(&model.join(CONFIG_FILE));
    let size = cfg["image_backbone"]["image_size"].as_u64().unwrap() as usize;
    let len = cfg["spectrum_backbone"]["spectrum_length"]
        .as_u64()
        .unwrap() as usize;
    let dim = cfg["image_head"]["embed_dim"].as_u64().unwrap() as usize;
    let images = Array4::<f32>::from_shape_fn((3, 3, size + 8, size + 8), |(n, c, y, x)| {
        0.01 * ((n + 2 * c + y * x) % 7) as f32
    });
    let spectra = Array2::<f32>::from_shape_fn((3, len), |(n, i)| {
        1.0 + 0.1 * ((i as f32) * 0.01 + n as f32).sin()
    });
    ndarray_npy::write_npy(d.join("cutouts.npy"), &images).unwrap();
    ndarray_npy::write_npy(d.join("spectra.npy"), &spectra).unwrap();
    for (flag, input, out) in [
        ("--image", "cutouts.npy", "image_emb.npy"),
        ("--spectrum", "spectra.npy", "spec_emb.npy"),
    ] {
        common::run_ok(&[
            "embed",
            "--weights",
            s(&model),
            flag,
            s(&d.join(input)),
            "--out",
            s(&d.join(out)),
        ]);
        let emb: Array2<f32> = ndarray_npy::read_npy(d.join(out)).unwrap();
        assert_eq!(emb.dim(), (3, dim), "{out}");
        for row in emb.rows() {
            let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!(norm.is_finite() && norm > 1e-6, "{out}: norm {norm}");
        }
        assert_ne!(
            emb.row(0),
            emb.row(1),
            "{out}: inputs differ, embeddings must too"
        );
    }

    // `embed --catalog`: one modality of every object in the catalog, ids alongside.
    for modality in ["image", "spectrum"] {
        let out = d.join(format!("catalog_{modality}.npy"));
        let ids_out = d.join(format!("catalog_{modality}_ids.npy"));
        common::run_ok(&[
            "embed",
            "--weights",
            s(&model),
            "--catalog",
            s(&cat),
            "--modality",
            modality,
            "--ids",
            s(&ids_out),
            "--out",
            s(&out),
        ]);
        let emb: Array2<f32> = ndarray_npy::read_npy(&out).unwrap();
        let ids: Array1<u64> = ndarray_npy::read_npy(&ids_out).unwrap();
        assert_eq!(emb.dim(), (48, dim), "{modality}");
        let mut unique = ids.to_vec();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 48, "{modality}: one id per object");
        assert_ne!(emb.row(0), emb.row(1), "{modality}");
    }

    // 5. Ingest with the trained model, then the evaluation protocol.
    let coll = d.join("galaxies");
    common::run_ok(&[
        "ingest",
        s(&cat),
        "-c",
        s(&coll),
        "--weights",
        s(&model),
        "--quiet",
    ]);
    let ev = d.join("eval");
    common::run_ok(&["eval", "--db", s(&coll), "--out", s(&ev), "--no-mlp"]);
    let ev2 = d.join("eval-folds");
    common::run_ok(&[
        "eval",
        "--db",
        s(&coll),
        "--out",
        s(&ev2),
        "--folds",
        "3",
        "--no-mlp",
    ]);
    for (out, folds) in [(&ev, 5), (&ev2, 3)] {
        assert!(out.join("evaluation.md").is_file());
        let report = json(&out.join("evaluation.json"));
        assert_eq!(report["protocol"]["folds"], folds, "{report}");
        let knn = report["regression"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["target"] == "redshift" && r["features"] == "image")
            .unwrap_or_else(|| panic!("{}: no redshift from image", out.display()));
        let per_fold = knn["r2"]["folds"].as_array().unwrap();
        assert_eq!(per_fold.len(), folds, "{knn}");
        let tested: u64 = knn["test"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_u64().unwrap())
            .sum();
        assert_eq!(tested, 48, "every object is tested once: {knn}");
    }
}
