//! `astrovec merge`: combines shard collections (from `--shard k/n` runs) into one.
//! Objects, attributes, blobs and the stored embeddings are re-upserted in
//! batches, in id order, then the indexes are built once over the result.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use astrovec_engine::layout::encoder_dir;
use astrovec_engine::{Collection, IndexReport, Object};
use serde::{Deserialize, Serialize};

use super::error::{IngestError, Result};

/// What a merge did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergeReport {
    /// The shard collections read.
    pub inputs: Vec<String>,
    /// The merged collection.
    pub output: String,
    /// Objects written.
    pub objects: u64,
    /// Ids found in more than one input (the later input's copy is kept).
    pub duplicates: u64,
    /// Seconds copying.
    pub copy_seconds: f64,
    /// The index builds.
    pub index: Vec<IndexReport>,
}

/// Merges `inputs` into a new collection at `output` (which must not exist).
/// All inputs must have the same modalities and attributes.
pub fn merge(inputs: &[PathBuf], output: &Path, batch_size: usize) -> Result<MergeReport> {
    if inputs.is_empty() {
        return Err(IngestError::invalid("inputs", "no shard collections given"));
    }
    let open = |p: &Path| Collection::open(p).map_err(|e| IngestError::engine(p, e));
    let sources = inputs.iter().map(|p| open(p)).collect::<Result<Vec<_>>>()?;
    let config = sources[0].config().clone();
    for (s, p) in sources.iter().zip(inputs).skip(1) {
        if s.config().modalities != config.modalities || s.config().attributes != config.attributes
        {
            return Err(IngestError::invalid(
                "inputs",
                format!(
                    "{} has other modalities or attributes than {}",
                    p.display(),
                    inputs[0].display()
                ),
            ));
        }
    }
    let out =
        Collection::create(output, config.clone()).map_err(|e| IngestError::engine(output, e))?;
    let t = Instant::now();
    let mut seen = HashSet::new();
    let mut duplicates = 0;
    for (src, path) in sources.iter().zip(inputs) {
        let mut ids = src.ids();
        ids.sort_unstable();
        for chunk in ids.chunks(batch_size.max(1)) {
            let mut objects = Vec::with_capacity(chunk.len());
            for &id in chunk {
                if !seen.insert(id) {
                    duplicates += 1;
                }
                let err = |e| IngestError::engine(path, e);
                let stored = src.get(id).map_err(err)?;
                let mut o = Object::new(id, stored.ra, stored.dec);
                o.attributes = stored.attributes.into_iter().collect();
                for m in &stored.modalities {
                    o.embeddings
                        .insert(m.clone(), src.get_embedding(id, m).map_err(err)?);
                }
                for b in &stored.blobs {
                    if let Some(bytes) = src.get_blob(id, b).map_err(err)? {
                        o.blobs.insert(b.clone(), bytes);
                    }
                }
                objects.push(o);
            }
            out.upsert_batch(&objects)
                .map_err(|e| IngestError::engine(output, e))?;
        }
    }
    copy_model(&inputs[0], output)?;
    let copy_seconds = t.elapsed().as_secs_f64();
    let index = out
        .build_index()
        .map_err(|e| IngestError::engine(output, e))?;
    Ok(MergeReport {
        inputs: inputs.iter().map(|p| p.display().to_string()).collect(),
        output: output.display().to_string(),
        objects: out.len(),
        duplicates,
        copy_seconds,
        index,
    })
}

/// Copies the model the shards were embedded with (`encoder/`, written by the
/// pipeline's model directory step) so the merged collection can encode queries too.
/// Every shard must use the same `--weights`, so the first shard's copy serves.
fn copy_model(shard: &Path, output: &Path) -> Result<()> {
    let src = encoder_dir(shard);
    let Ok(entries) = std::fs::read_dir(&src) else {
        return Ok(()); // precomputed embeddings: no model
    };
    let dst = encoder_dir(output);
    std::fs::create_dir_all(&dst).map_err(|e| IngestError::io(&dst, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| IngestError::io(&src, e))?;
        if entry.path().is_file() {
            std::fs::copy(entry.path(), dst.join(entry.file_name()))
                .map_err(|e| IngestError::io(entry.path(), e))?;
        }
    }
    Ok(())
}
