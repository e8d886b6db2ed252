//! Training: a few steps on a tiny batch reduce the loss (both objectives), and a
//! checkpoint resumes to the same state (the next losses match a run that never stopped).

use astrovec_encoders::train::{Augment, Batch, Objective, TrainConfig, Trainer};
use astrovec_encoders::{AstroClipConfig, CpuBackend};
use burn::backend::Autodiff;

fn batch(cfg: &AstroClipConfig, n: usize, seed: u32) -> Batch {
    let ib = &cfg.image_backbone;
    let img_len = ib.in_channels * ib.image_size * ib.image_size;
    let sl = cfg.spectrum_backbone.spectrum_length;
    // Deterministic pseudo-random inputs; each item differs so pairs are distinguishable.
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state as f32 / u32::MAX as f32).clamp(0.0, 1.0)
    };
    // Each image has its own brightness and a colour (plane) tilt, plus noise: i.i.d. noise
    // alone would make every image look the same to a freshly initialised model.
    let plane = ib.image_size * ib.image_size;
    let images = (0..n * img_len)
        .map(|i| {
            let item = (i / img_len) as f32;
            let c = ((i % img_len) / plane) as f32;
            (0.1 + 0.12 * item + 0.1 * c * (item % 3.0) + 0.1 * next()).min(1.0)
        })
        .collect();
    let spectra = (0..n * sl)
        .map(|i| {
            let item = (i / sl) as f32;
            ((i % sl) as f32 * 0.01 * (1.0 + item)).sin() * (1.0 + item) + next()
        })
        .collect();
    Batch {
        len: n,
        images,
        spectra,
    }
}

fn config(objective: Objective) -> TrainConfig {
    TrainConfig {
        objective,
        epochs: 1,
        batch_size: 6,
        // From random weights the contrastive loss wants a gentle rate (1e-3 overshoots
        // into the collapsed state where every embedding is the same).
        learning_rate: match objective {
            Objective::Align => 1e-4,
            Objective::PretrainSpectrum => 1e-3,
        },
        warmup_steps: 1,
        final_lr_ratio: 1.0,
        augment: Augment::NONE,
        mask_chunks: 3,
        mask_chunk_tokens: 20,
        ..TrainConfig::default()
    }
}

fn trainer(objective: Objective) -> Trainer<CpuBackend> {
    let mc = AstroClipConfig::tiny();
    let device = Default::default();
    // Fixed initial weights, so the test is the same on every run.
    <Autodiff<CpuBackend> as burn::tensor::backend::Backend>::seed(&device, 7);
    let model = mc.init::<Autodiff<CpuBackend>>(&device).unwrap();
    Trainer::new(model, mc, config(objective), 20, device).unwrap()
}

#[test]
fn alignment_steps_reduce_the_contrastive_loss() {
    let mut t = trainer(Objective::Align);
    let b = batch(t.model_config(), 6, 1);
    let before = t.eval_loss(&b).unwrap();
    // Chance level for 6 pairs is ln 6 ≈ 1.79.
    assert!((before - 6f32.ln()).abs() < 0.6, "initial loss {before}");
    for _ in 0..14 {
        let l = t.train_step(&b).unwrap();
        assert!(l.is_finite());
    }
    let after = t.eval_loss(&b).unwrap();
    assert!(after < before - 0.1, "loss {before} → {after}");
    assert_eq!(t.step(), 14);
}

#[test]
fn pretraining_steps_reduce_the_masked_loss() {
    let mut t = trainer(Objective::PretrainSpectrum);
    let b = batch(t.model_config(), 6, 2);
    let before = t.eval_loss(&b).unwrap();
    for _ in 0..8 {
        t.train_step(&b).unwrap();
    }
    let after = t.eval_loss(&b).unwrap();
    assert!(after < before * 0.8, "loss {before} → {after}");
}

#[test]
fn a_checkpoint_resumes_to_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let batches: Vec<Batch> = (0..5)
        .map(|i| batch(&AstroClipConfig::tiny(), 6, 10 + i))
        .collect();
    let mut a = trainer(Objective::Align);
    for b in &batches[..3] {
        a.train_step(b).unwrap();
    }
    a.save_checkpoint(dir.path()).unwrap();
    let straight: Vec<f32> = batches[3..]
        .iter()
        .map(|b| a.train_step(b).unwrap())
        .collect();

    let mut r = Trainer::<CpuBackend>::resume(dir.path(), Default::default()).unwrap();
    assert_eq!(r.step(), 3);
    assert_eq!(r.config(), a.config());
    let resumed: Vec<f32> = batches[3..]
        .iter()
        .map(|b| r.train_step(b).unwrap())
        .collect();
    for (x, y) in straight.iter().zip(&resumed) {
        assert!((x - y).abs() < 1e-4, "{straight:?} vs {resumed:?}");
    }
    // The checkpoint's model directory loads as a plain encoder.
    let enc = astrovec_encoders::Encoder::<CpuBackend>::load_dir(
        dir.path().join("model"),
        &Default::default(),
    )
    .unwrap();
    assert_eq!(enc.embedding_dim(), AstroClipConfig::tiny().embedding_dim());
}

#[test]
fn bad_settings_are_rejected_with_the_field_named() {
    let mc = AstroClipConfig::tiny();
    let model = mc
        .init::<Autodiff<CpuBackend>>(&Default::default())
        .unwrap();
    let bad = TrainConfig {
        batch_size: 1,
        ..config(Objective::Align)
    };
    let err = Trainer::<CpuBackend>::new(model, mc.clone(), bad, 10, Default::default())
        .err()
        .expect("batch of one is rejected")
        .to_string();
    assert!(err.contains("batch_size"), "{err}");
    let model = mc
        .init::<Autodiff<CpuBackend>>(&Default::default())
        .unwrap();
    let bad = TrainConfig {
        mask_chunk_tokens: 10_000,
        ..config(Objective::PretrainSpectrum)
    };
    let err = Trainer::<CpuBackend>::new(model, mc, bad, 10, Default::default())
        .err()
        .expect("oversized mask is rejected")
        .to_string();
    assert!(err.contains("mask_chunk_tokens"), "{err}");
}

#[test]
fn a_random_model_its_clone_and_its_saved_copy_embed_alike() {
    // Burn initialises some parameters lazily; without care a clone or a saved copy of a
    // fresh model draws different random weights from the model that embedded a catalog.
    let mc = AstroClipConfig::tiny();
    let device = Default::default();
    let model = mc.init::<CpuBackend>(&device).unwrap();
    let twin = model.clone();
    let b = batch(&mc, 3, 4);
    let a = astrovec_encoders::Encoder::new(model, mc.clone(), device);
    let first = a.embed_spectra(&b.spectra).unwrap();
    let t = astrovec_encoders::Encoder::new(twin, mc.clone(), device);
    assert_eq!(t.embed_spectra(&b.spectra).unwrap(), first);
    let dir = tempfile::tempdir().unwrap();
    a.save_dir(dir.path()).unwrap();
    let back = astrovec_encoders::Encoder::<CpuBackend>::load_dir(dir.path(), &device).unwrap();
    let again = back.embed_spectra(&b.spectra).unwrap();
    for (x, y) in first.iter().flatten().zip(again.iter().flatten()) {
        assert!((x - y).abs() < 1e-5, "{x} vs {y}");
    }
    assert_eq!(
        back.embed_images(&b.images).unwrap(),
        a.embed_images(&b.images).unwrap()
    );
}
