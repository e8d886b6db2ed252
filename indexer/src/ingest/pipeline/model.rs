//! The model directory of a collection (`encoder/`): the encoder the ingest embeds
//! with, saved beside the data (config, weights and where they came from) so the
//! server embeds uploads, and a resumed run embeds, with the very same weights.

use std::path::Path;

use astrovec_encoders::model::astroclip::{CONFIG_FILE, WEIGHTS_FILE};
use astrovec_encoders::{AnyEncoder, AstroClipConfig, BackendChoice};
use astrovec_engine::layout::ENCODER_SOURCE_FILE;
use serde::{Deserialize, Serialize};

/// What `encoder/source.json` records: where the collection's model came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSource {
    /// The preset or model name (e.g. `astroclip`, `tiny`).
    pub name: String,
    /// The weights file or model directory given, or `None` for a random model.
    pub weights: Option<String>,
}

fn encoder_io(path: &Path, source: std::io::Error) -> astrovec_encoders::EncoderError {
    astrovec_encoders::EncoderError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Loads the encoder and makes sure the collection carries the model it embeds
/// with (`encoder/config.json` + `encoder/model.safetensors`, the format of
/// `Encoder::save_dir`, plus [`ENCODER_SOURCE_FILE`]), so the server can encode
/// uploads and a resumed run embeds with the same weights.
///
/// - No weights: the first run saves a random model, later runs load it (the
///   backends seed their generators from OS entropy, so a fresh one would differ).
/// - A model directory (`…/model.safetensors` next to `config.json`): its two
///   files are copied as they are.
/// - Any other weights file (safetensors, Lightning `.ckpt`): the loaded model is
///   written with `save_dir` (on CUDA, from a CPU copy of the weights).
pub(super) fn load_encoder(
    config: &AstroClipConfig,
    weights: Option<&Path>,
    name: &str,
    backend: BackendChoice,
    model_dir: &Path,
) -> astrovec_encoders::Result<AnyEncoder> {
    let saved = model_dir.join(WEIGHTS_FILE);
    let encoder = match weights {
        Some(w) => AnyEncoder::load(config, w, backend)?,
        None if saved.exists() => return AnyEncoder::load(config, &saved, backend),
        None => AnyEncoder::random(config, backend)?,
    };
    if saved.exists() {
        return Ok(encoder);
    }
    let tmp = model_dir.with_extension("tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    let model_files = weights.and_then(|w| {
        let dir = w.parent()?;
        (w.file_name()? == WEIGHTS_FILE && dir.join(CONFIG_FILE).is_file()).then_some(dir)
    });
    if let Some(src) = model_files {
        std::fs::create_dir_all(&tmp).map_err(|e| encoder_io(&tmp, e))?;
        for f in [CONFIG_FILE, WEIGHTS_FILE] {
            std::fs::copy(src.join(f), tmp.join(f)).map_err(|e| encoder_io(&src.join(f), e))?;
        }
    } else {
        #[allow(unreachable_patterns)]
        match (&encoder, weights) {
            (AnyEncoder::Cpu(enc), _) => enc.save_dir(&tmp)?,
            (_, Some(w)) => astrovec_encoders::Encoder::<astrovec_encoders::CpuBackend>::load(
                config,
                w,
                &Default::default(),
            )?
            .save_dir(&tmp)?,
            // A random model on another backend cannot be copied to the CPU here;
            // the collection then has no saved model (documented in the README).
            _ => return Ok(encoder),
        }
    }
    let source = ModelSource {
        name: name.to_string(),
        weights: weights.map(|w| match model_files {
            Some(dir) => dir.display().to_string(),
            None => w.display().to_string(),
        }),
    };
    let json = serde_json::to_vec_pretty(&source).expect("model source serialises");
    let f = tmp.join(ENCODER_SOURCE_FILE);
    std::fs::write(&f, json).map_err(|e| encoder_io(&f, e))?;
    std::fs::rename(&tmp, model_dir).map_err(|e| encoder_io(model_dir, e))?;
    Ok(encoder)
}
