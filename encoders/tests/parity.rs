//! Parity with a PyTorch reference written from the specification.
//!
//! Fixtures made by `tests/parity/make_fixtures.py` (see its docstring for the torch version
//! and how to regenerate): reduced sizes keeping every code path (fused and separate q/k/v,
//! both heads, chunked block keys, the std clamp, slicing), weights as safetensors and as a
//! Lightning-style `.ckpt`, inputs and float64 expected outputs for batch sizes 2 and 5.

use std::path::PathBuf;

use astrovec_encoders::weights::{RawTensor, TensorMap};
use astrovec_encoders::{
    prepare_grz, AstroClip, AstroClipConfig, CpuBackend, Encoder, EncoderError,
};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/parity")
        .join(name)
}

fn config() -> AstroClipConfig {
    AstroClipConfig::load_json(fixture("config.json")).expect("fixture config")
}

fn io() -> TensorMap {
    TensorMap::read_safetensors(fixture("io.safetensors")).expect("fixture io")
}

fn get<'a>(io: &'a TensorMap, key: &str) -> &'a RawTensor {
    io.tensors
        .get(key)
        .unwrap_or_else(|| panic!("fixture lacks {key}"))
}

/// Every row: cosine ≥ 0.99999 and max abs error ≤ 1e-4.
fn assert_close(what: &str, got: &[Vec<f32>], expected: &RawTensor) {
    let dim = expected.shape[1];
    assert_eq!(got.len(), expected.shape[0], "{what}: batch size");
    for (i, row) in got.iter().enumerate() {
        let want = &expected.data[i * dim..(i + 1) * dim];
        assert_eq!(row.len(), dim, "{what}: width");
        let (mut dot, mut na, mut nb, mut max_err) = (0f64, 0f64, 0f64, 0f32);
        for (a, b) in row.iter().zip(want) {
            dot += (*a as f64) * (*b as f64);
            na += (*a as f64).powi(2);
            nb += (*b as f64).powi(2);
            max_err = max_err.max((a - b).abs());
        }
        let cos = dot / (na.sqrt() * nb.sqrt());
        assert!(
            cos >= 0.99999 && max_err <= 1e-4,
            "{what} row {i}: cosine {cos}, max abs err {max_err}"
        );
    }
}

/// The ndarray backend with i32 ints: a different Burn backend type, so the model takes the
/// generic Burn-op path (the one CUDA runs) instead of the CPU host paths.
type GenericBackend = burn::backend::NdArray<f32, i32>;

fn check_outputs<B: burn::tensor::backend::Backend>(encoder: &Encoder<B>, label: &str) {
    let io = io();
    for b in [2, 5] {
        let images = encoder
            .embed_images(&get(&io, &format!("images_b{b}")).data)
            .unwrap();
        assert_close(
            &format!("{label} images b{b}"),
            &images,
            get(&io, &format!("image_emb_b{b}")),
        );
        let spectra = encoder
            .embed_spectra(&get(&io, &format!("spectra_b{b}")).data)
            .unwrap();
        assert_close(
            &format!("{label} spectra b{b}"),
            &spectra,
            get(&io, &format!("spectrum_emb_b{b}")),
        );
    }
}

#[test]
fn safetensors_weights_match_the_reference() {
    let encoder = Encoder::<CpuBackend>::load(
        &config(),
        fixture("weights.safetensors"),
        &Default::default(),
    )
    .unwrap();
    check_outputs(&encoder, "safetensors");
}

#[test]
fn lightning_checkpoint_matches_the_reference() {
    // The .ckpt pickles an instance of `astroclip.models.astroclip.FixtureHParams` in
    // `hyper_parameters`; only `state_dict` is read.
    let encoder =
        Encoder::<CpuBackend>::load(&config(), fixture("model.ckpt"), &Default::default()).unwrap();
    check_outputs(&encoder, "ckpt");
}

#[test]
fn generic_burn_path_matches_the_reference() {
    let encoder = Encoder::<GenericBackend>::load(
        &config(),
        fixture("weights.safetensors"),
        &Default::default(),
    )
    .unwrap();
    check_outputs(&encoder, "generic path");
}

#[test]
fn batching_does_not_change_results() {
    let encoder = Encoder::<CpuBackend>::load(
        &config(),
        fixture("weights.safetensors"),
        &Default::default(),
    )
    .unwrap()
    .with_batch_size(2);
    check_outputs(&encoder, "batch size 2");
}

#[test]
fn grz_cutouts_go_through_the_legacy_mapping_and_crop() {
    let io = io();
    let encoder = Encoder::<CpuBackend>::load(
        &config(),
        fixture("weights.safetensors"),
        &Default::default(),
    )
    .unwrap();
    let grz = get(&io, "grz_b2");
    let (h, w) = (grz.shape[2], grz.shape[3]);
    let rgb = prepare_grz(&grz.data, 3, h, w, 24).unwrap();
    let want = get(&io, "grz_rgb_b2");
    let max_err = rgb
        .iter()
        .zip(&want.data)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(max_err <= 1e-5, "rgb max abs err {max_err}");
    let emb = encoder.embed_grz(&grz.data, 3, h, w).unwrap();
    assert_close("grz images b2", &emb, get(&io, "grz_emb_b2"));
}

#[test]
fn both_formats_hold_the_same_tensors_and_saving_round_trips() {
    let st = TensorMap::read(fixture("weights.safetensors")).unwrap();
    let ckpt = TensorMap::read(fixture("model.ckpt")).unwrap();
    assert_eq!(st.tensors.len(), ckpt.tensors.len());
    for (k, t) in &st.tensors {
        let c = &ckpt.tensors[k];
        assert_eq!(t.shape, c.shape, "{k}");
        assert_eq!(t.data, c.data, "{k}");
    }
    // Export writes every used tensor back bit-for-bit under the same key and layout.
    let cfg = config();
    let device = Default::default();
    let model = AstroClip::<CpuBackend>::from_tensors(&cfg, st.clone(), &device).unwrap();
    let exported = model.to_tensors(&cfg).unwrap();
    for (k, t) in &exported.tensors {
        assert_eq!(t.shape, st.tensors[k].shape, "{k}");
        assert_eq!(t.data, st.tensors[k].data, "{k}");
    }
    let unused = st.tensors.len() - exported.tensors.len();
    assert_eq!(
        unused, 5,
        "cls_token, pos_embed, mask_token, head.weight, head.bias"
    );
    // A saved model directory loads back to the same outputs.
    let dir = std::env::temp_dir().join(format!("astrovec-enc-parity-{}", std::process::id()));
    Encoder::new(model, cfg, device).save_dir(&dir).unwrap();
    let reloaded = Encoder::<CpuBackend>::load_dir(&dir, &device).unwrap();
    check_outputs(&reloaded, "model dir");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn weight_loading_is_strict_and_names_the_key() {
    let cfg = config();
    let device = Default::default();
    let base = TensorMap::read(fixture("weights.safetensors")).unwrap();
    let load =
        |map: TensorMap| AstroClip::<CpuBackend>::from_tensors(&cfg, map, &device).map(|_| ());

    let key = "image_encoder.backbone.blocks.3.7.attn.qkv.weight";
    let mut missing = base.clone();
    missing.tensors.remove(key).unwrap();
    match load(missing) {
        Err(EncoderError::MissingTensor { key: k }) => assert_eq!(k, key),
        other => panic!("expected MissingTensor, got {other:?}"),
    }

    let mut extra = base.clone();
    let stray = "image_encoder.backbone.blocks.3.8.attn.qkv.weight";
    extra
        .tensors
        .insert(stray.into(), base.tensors[key].clone());
    match load(extra) {
        Err(EncoderError::UnexpectedTensor { key: k, count: 1 }) => assert_eq!(k, stray),
        other => panic!("expected UnexpectedTensor, got {other:?}"),
    }

    let key = "spectrum_encoder.cross_attention.multihead_attn.k_proj_weight";
    let mut reshaped = base.clone();
    reshaped.tensors.get_mut(key).unwrap().shape = vec![24, 32];
    match load(reshaped) {
        Err(EncoderError::TensorShape {
            key: k,
            got,
            expected,
        }) => {
            assert_eq!(k, key);
            assert_eq!((got, expected), (vec![24, 32], vec![32, 24]));
        }
        other => panic!("expected TensorShape, got {other:?}"),
    }

    // The image head must be stored fused, the spectrum head separately (as PyTorch does).
    let mut split = base.clone();
    let fused = split
        .tensors
        .remove("image_encoder.cross_attention.multihead_attn.in_proj_weight")
        .unwrap();
    split.tensors.insert(
        "image_encoder.cross_attention.multihead_attn.q_proj_weight".into(),
        RawTensor {
            shape: vec![32, 32],
            data: fused.data[..32 * 32].to_vec(),
        },
    );
    assert!(matches!(
        load(split),
        Err(EncoderError::MissingTensor { .. })
    ));
}
