//! The three stages of an ingest and the channels between them (two batches in
//! flight each): the reader cuts validated rows into batches, the encoder embeds
//! them and makes the picture blobs, and the writer commits each batch, appends its
//! rejects and moves the progress marker.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::time::Instant;

use astrovec_encoders::AnyEncoder;
use astrovec_engine::layout::encoder_dir;
use astrovec_engine::{blobs, Collection, Object};
use indicatif::ProgressBar;
use rayon::prelude::*;

use super::model::load_encoder;
use super::report::reject_kind;
use super::{Embedder, IngestOptions};
use crate::ingest::error::{IngestError, Result};
use crate::ingest::progress::Progress;
use crate::ingest::read::Source;
use crate::ingest::row::{check_finite, Reject, Row, RowOutcome, SPECTRUM_LEN};
use crate::ingest::shard::Shard;
use crate::ingest::thumb::{
    image_and_thumbnail_png, image_png, thumbnail_png, IMAGE_PNG, THUMB_PNG,
};

/// Which picture/preview blobs the encode stage makes.
#[derive(Debug, Clone, Copy)]
struct Pictures {
    thumbnails: bool,
    previews: bool,
}

/// A batch cut by the reader.
struct Chunk {
    file: usize,
    end_row: u64,
    rows: Vec<Row>,
    rejects: Vec<Reject>,
    read: u64,
    other_shards: u64,
    seconds: f64,
}

/// A batch ready to write.
struct Ready {
    chunk: Chunk,
    objects: Vec<Object>,
    seconds: f64,
}

/// Runs the three stages over `sources` from the progress marker's position until
/// every row is written, or until the first error (committed batches stay).
pub(super) fn run_stages(
    opts: &IngestOptions,
    sources: Vec<Box<dyn Source>>,
    collection: &Collection,
    progress: &mut Progress,
    rejects_path: &Path,
    bar: &ProgressBar,
) -> Result<()> {
    let (chunk_tx, chunk_rx) = sync_channel::<Result<Chunk>>(2);
    let (ready_tx, ready_rx) = sync_channel::<Result<Ready>>(2);
    let start = (progress.file, progress.row);
    let batch = opts.batch_size;
    let shard = opts.shard;
    let embedder = opts.embedder.clone();
    let pictures = Pictures {
        thumbnails: opts.thumbnails,
        previews: opts.previews,
    };
    std::thread::scope(|s| -> Result<()> {
        let reader = s.spawn(move || read_stage(sources, start, batch, shard, chunk_tx));
        let model_dir = encoder_dir(collection.dir());
        let encoder =
            s.spawn(move || encode_stage(model_dir, embedder, pictures, chunk_rx, ready_tx));
        let written = write_stage(collection, progress, rejects_path, ready_rx, bar);
        // On a write error, dropping the receiver above stops the other stages.
        let enc = encoder.join().map_err(|_| IngestError::Stage("encoder"))?;
        let rd = reader.join().map_err(|_| IngestError::Stage("reader"))?;
        written?;
        enc?;
        rd?;
        Ok(())
    })
}

fn read_stage(
    sources: Vec<Box<dyn Source>>,
    start: (usize, u64),
    batch: usize,
    shard: Option<Shard>,
    tx: SyncSender<Result<Chunk>>,
) -> Result<()> {
    let run = || -> Result<()> {
        let mut seen: HashSet<u64> = HashSet::new();
        let in_shard = |id: Option<u64>| match (shard, id) {
            (None, _) => true,
            (Some(s), Some(id)) => s.contains(id),
            // Rows without a valid id are reported by shard 0 only.
            (Some(s), None) => s.index == 0,
        };
        for (fi, src) in sources.iter().enumerate().skip(start.0) {
            let first = if fi == start.0 { start.1 } else { 0 };
            if first > 0 {
                // Rebuild the duplicate-id set from the rows already done.
                for id in src.ids(first)?.into_iter().flatten() {
                    if in_shard(Some(id)) {
                        seen.insert(id);
                    }
                }
            }
            let file = src.path().display().to_string();
            let mut pending: Vec<RowOutcome> = Vec::new();
            let mut t = Instant::now();
            let mut next = first;
            let mut emit = |outcomes: Vec<RowOutcome>, t: &mut Instant| -> bool {
                let mut chunk = Chunk {
                    file: fi,
                    end_row: outcomes.last().map_or(next, |o| o.row + 1),
                    rows: Vec::with_capacity(outcomes.len()),
                    rejects: Vec::new(),
                    read: outcomes.len() as u64,
                    other_shards: 0,
                    seconds: 0.0,
                };
                next = chunk.end_row;
                for o in outcomes {
                    if !in_shard(o.id) {
                        chunk.other_shards += 1;
                        continue;
                    }
                    let dup = o.id.is_some_and(|id| !seen.insert(id));
                    let reason = if dup {
                        Some(format!(
                            "duplicate id {} (an earlier row has it)",
                            o.id.unwrap_or_default()
                        ))
                    } else {
                        o.result.as_ref().err().cloned()
                    };
                    match (reason, o.result) {
                        (Some(reason), _) => chunk.rejects.push(Reject {
                            file: file.clone(),
                            row: o.row,
                            id: o.id,
                            reason,
                        }),
                        (None, Ok(row)) => chunk.rows.push(row),
                        (None, Err(_)) => unreachable!("errors carry a reason"),
                    }
                }
                chunk.seconds = t.elapsed().as_secs_f64();
                *t = Instant::now();
                tx.send(Ok(chunk)).is_ok()
            };
            for outcomes in src.read_from(first, batch)? {
                pending.extend(outcomes?);
                // Batches are aligned on multiples of `batch` rows of the file.
                while let Some(last) = pending.first().map(|o| o.row) {
                    let boundary = (last / batch as u64 + 1) * batch as u64;
                    let n = pending.iter().take_while(|o| o.row < boundary).count();
                    if n == pending.len() && pending.last().is_some_and(|o| o.row + 1 < boundary) {
                        break; // wait for more rows of this batch
                    }
                    let rest = pending.split_off(n);
                    let full = std::mem::replace(&mut pending, rest);
                    if !emit(full, &mut t) {
                        return Ok(());
                    }
                }
            }
            if !pending.is_empty() && !emit(std::mem::take(&mut pending), &mut t) {
                return Ok(());
            }
            if src.is_empty() {
                // An empty input: one empty batch marks it done.
                let c = Chunk {
                    file: fi,
                    end_row: 0,
                    rows: Vec::new(),
                    rejects: Vec::new(),
                    read: 0,
                    other_shards: 0,
                    seconds: 0.0,
                };
                if tx.send(Ok(c)).is_err() {
                    return Ok(());
                }
            }
        }
        Ok(())
    };
    match run() {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = tx.send(Err(e));
            Ok(())
        }
    }
}

fn encode_stage(
    model_dir: PathBuf,
    embedder: Embedder,
    pictures: Pictures,
    rx: Receiver<Result<Chunk>>,
    tx: SyncSender<Result<Ready>>,
) -> Result<()> {
    let encoder = match &embedder {
        Embedder::Precomputed => None,
        Embedder::Model {
            config,
            weights,
            backend,
            batch_size,
            name,
        } => {
            let e = load_encoder(config, weights.as_deref(), name, *backend, &model_dir);
            match e {
                Ok(e) => Some(e.with_batch_size(*batch_size)),
                Err(e) => {
                    let _ = tx.send(Err(e.into()));
                    return Ok(());
                }
            }
        }
    };
    for chunk in rx {
        let result = chunk.and_then(|c| encode_chunk(encoder.as_ref(), pictures, c));
        let failed = result.is_err();
        if tx.send(result).is_err() || failed {
            break;
        }
    }
    Ok(())
}

fn encode_chunk(
    encoder: Option<&AnyEncoder>,
    pictures: Pictures,
    mut chunk: Chunk,
) -> Result<Ready> {
    let t = Instant::now();
    let rows = std::mem::take(&mut chunk.rows);
    let mut embeddings: Vec<BTreeMap<String, Vec<f32>>> =
        rows.iter().map(|r| r.embeddings.clone()).collect();
    if let Some(enc) = encoder {
        // Images: every kind through the one preparation uploads and `embed` use
        // (`Image::model_input`), then one batch.
        let size = enc.config().image_backbone.image_size;
        let idx: Vec<usize> = (0..rows.len())
            .filter(|&i| rows[i].image.is_some())
            .collect();
        if !idx.is_empty() {
            let prepared: Vec<Vec<f32>> = idx
                .par_iter()
                .map(|&i| {
                    let img = rows[i].image.as_ref().expect("filtered");
                    img.model_input(&format!("object {} image", rows[i].id), size)
                        .map_err(IngestError::from)
                })
                .collect::<Result<_>>()?;
            let flat: Vec<f32> = prepared.concat();
            for (&i, v) in idx.iter().zip(enc.embed_images(&flat)?) {
                embeddings[i].insert("image".into(), v);
            }
        }
        let idx: Vec<usize> = (0..rows.len())
            .filter(|&i| rows[i].spectrum.is_some())
            .collect();
        if !idx.is_empty() {
            let mut flat = Vec::with_capacity(idx.len() * SPECTRUM_LEN);
            for &i in &idx {
                flat.extend_from_slice(rows[i].spectrum.as_ref().expect("filtered"));
            }
            for (&i, v) in idx.iter().zip(enc.embed_spectra(&flat)?) {
                embeddings[i].insert("spectrum".into(), v);
            }
        }
    }
    let built: Vec<std::result::Result<Object, Reject>> = rows
        .into_par_iter()
        .zip(embeddings.into_par_iter())
        .map(|(row, emb)| {
            for (m, v) in &emb {
                check_finite(&format!("{m} embedding"), v)?;
                if v.iter().all(|x| *x == 0.0) {
                    return Err(format!("{m} embedding is all zeros"));
                }
            }
            let mut o = Object::new(row.id, row.ra, row.dec);
            for (name, v) in row.attributes {
                o = o.attribute(&name, v);
            }
            o.embeddings = emb;
            if let Some(img) = &row.image {
                match (pictures.thumbnails, pictures.previews) {
                    (true, true) => {
                        let (full, thumb) = image_and_thumbnail_png(img)?;
                        o = o.blob(IMAGE_PNG, full).blob(THUMB_PNG, thumb);
                    }
                    (true, false) => o = o.blob(THUMB_PNG, thumbnail_png(img)?),
                    (false, true) => o = o.blob(IMAGE_PNG, image_png(img)?),
                    (false, false) => {}
                }
            }
            if pictures.previews {
                if let Some(flux) = &row.spectrum {
                    o = o.blob(blobs::SPECTRUM_F16, blobs::encode_spectrum_f16(flux));
                }
            }
            Ok(o)
        })
        .map(|r| {
            r.map_err(|reason| Reject {
                file: String::new(),
                row: 0,
                id: None,
                reason,
            })
        })
        .collect();
    let mut objects = Vec::with_capacity(built.len());
    for b in built {
        match b {
            Ok(o) => objects.push(o),
            // Encoder output problems are rare; report them with the batch's end row.
            Err(mut r) => {
                r.row = chunk.end_row.saturating_sub(1);
                chunk.rejects.push(r);
            }
        }
    }
    Ok(Ready {
        chunk,
        objects,
        seconds: t.elapsed().as_secs_f64(),
    })
}

fn write_stage(
    collection: &Collection,
    progress: &mut Progress,
    rejects_path: &Path,
    rx: Receiver<Result<Ready>>,
    bar: &ProgressBar,
) -> Result<()> {
    let dir = collection.dir().to_path_buf();
    let mut rejects_file = None;
    for ready in rx {
        let ready = ready?;
        let t = Instant::now();
        collection
            .upsert_batch(&ready.objects)
            .map_err(|e| IngestError::engine(&dir, e))?;
        let c = &ready.chunk;
        if !c.rejects.is_empty() {
            if rejects_file.is_none() {
                rejects_file = Some(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(rejects_path)
                        .map_err(|e| IngestError::io(rejects_path, e))?,
                );
            }
            let f = rejects_file.as_mut().expect("opened");
            let mut buf = Vec::new();
            for r in &c.rejects {
                let mut r = r.clone();
                if r.file.is_empty() {
                    r.file = progress.inputs[c.file].path.clone();
                }
                serde_json::to_writer(&mut buf, &r).expect("reject serialises");
                buf.push(b'\n');
            }
            f.write_all(&buf)
                .map_err(|e| IngestError::io(rejects_path, e))?;
            f.sync_data()
                .map_err(|e| IngestError::io(rejects_path, e))?;
        }
        let counts = &mut progress.counts;
        counts.read += c.read;
        counts.written += ready.objects.len() as u64;
        counts.rejected += c.rejects.len() as u64;
        counts.other_shards += c.other_shards;
        for r in &c.rejects {
            *counts
                .rejected_by_kind
                .entry(reject_kind(&r.reason).to_string())
                .or_default() += 1;
        }
        counts.read_seconds += c.seconds;
        counts.encode_seconds += ready.seconds;
        counts.write_seconds += t.elapsed().as_secs_f64();
        progress.file = c.file;
        progress.row = c.end_row;
        if c.end_row >= progress.inputs[c.file].rows {
            progress.file = c.file + 1;
            progress.row = 0;
        }
        progress.save(&dir)?;
        bar.inc(c.read);
        bar.set_message(format!(
            "written {}, rejected {}",
            progress.counts.written, progress.counts.rejected
        ));
    }
    Ok(())
}
