//! The ingest pipeline: read → validate → batch → encode → write → build indexes.
//!
//! Three stages run at once, joined by bounded channels (two batches in flight
//! each, so memory stays at a handful of batches whatever the catalog size):
//!
//! 1. a **reader** thread reads the inputs in order, validates rows (in parallel
//!    with rayon), drops rows of other shards, rejects duplicate ids and cuts
//!    batches aligned on `batch_size` rows of each input;
//! 2. an **encoder** thread embeds images and spectra (or takes precomputed
//!    embeddings) and makes the thumbnails;
//! 3. the calling thread **writes** each batch with one atomic `upsert_batch`,
//!    appends its rejects to the rejects file and then saves the progress marker.
//!
//! After the last batch the HNSW indexes are built and the report is written.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::time::Instant;

use astrovec_encoders::{AnyEncoder, AstroClipConfig, BackendChoice};
use astrovec_engine::{
    blobs, AttributeDef, Collection, CollectionConfig, HnswConfig, IndexReport, ModalityConfig,
    Object,
};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::error::{IngestError, Result};
use super::images::fit_rgb;
use super::mapping::Mapping;
use super::progress::{Counts, InputId, Progress};
use super::row::{check_finite, ImageKind, Reject, Row, RowOutcome};
use super::shard::Shard;
use super::source::{open_sources, Source};
use super::thumb::{image_and_thumbnail_png, image_png, thumbnail_png, IMAGE_PNG, THUMB_PNG};

/// How embeddings are obtained.
#[derive(Debug, Clone)]
pub enum Embedder {
    /// Read from the columns named in the mapping's `[embeddings]`.
    Precomputed,
    /// Run the AstroCLIP encoders.
    Model {
        /// Model sizes (boxed: the config is large and `Precomputed` carries nothing).
        config: Box<AstroClipConfig>,
        /// Weights (safetensors / `.ckpt`); `None` = random initialisation (tests, demos).
        weights: Option<PathBuf>,
        /// CPU or CUDA.
        backend: BackendChoice,
        /// Items per forward pass.
        batch_size: usize,
        /// Label for the report and the collection's `model` field (e.g. `tiny`).
        name: String,
    },
}

impl Embedder {
    fn describe(&self) -> String {
        match self {
            Embedder::Precomputed => "precomputed".into(),
            Embedder::Model { name, weights, .. } => match weights {
                Some(w) => format!("encoder {name} ({})", w.display()),
                None => format!("encoder {name} (random weights)"),
            },
        }
    }
}

/// Everything an ingest needs.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Catalog files, read in this order (Parquet; see [`super::source`] for others).
    pub inputs: Vec<PathBuf>,
    /// Collection directory (created unless resuming).
    pub collection: PathBuf,
    /// Column roles and attributes.
    pub mapping: Mapping,
    /// Encoders or precomputed embeddings.
    pub embedder: Embedder,
    /// Rows per batch (one atomic write each).
    pub batch_size: usize,
    /// Continue an interrupted ingest into an existing collection.
    pub resume: bool,
    /// Process only this shard of the ids.
    pub shard: Option<Shard>,
    /// Rejects file (JSON lines); default `<collection>/ingest-rejects.jsonl`.
    pub rejects: Option<PathBuf>,
    /// Report file (JSON); default `<collection>/ingest-report.json`.
    pub report: Option<PathBuf>,
    /// Build the HNSW indexes at the end.
    pub build_index: bool,
    /// Store a `thumb.png` blob per object with an image.
    pub thumbnails: bool,
    /// Store the full-resolution `image.png` and the `spectrum.f16` blobs (the
    /// server's previews; see `astrovec_engine::blobs`).
    pub previews: bool,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// HNSW parameters of a new collection.
    pub hnsw: HnswConfig,
}

impl IngestOptions {
    /// Options with defaults for everything but the inputs and the collection.
    pub fn new(inputs: Vec<PathBuf>, collection: PathBuf, embedder: Embedder) -> Self {
        IngestOptions {
            inputs,
            collection,
            mapping: Mapping::default(),
            embedder,
            batch_size: 64,
            resume: false,
            shard: None,
            rejects: None,
            report: None,
            build_index: true,
            thumbnails: true,
            previews: true,
            progress: false,
            hnsw: HnswConfig::default(),
        }
    }

    fn rejects_path(&self) -> PathBuf {
        self.rejects
            .clone()
            .unwrap_or_else(|| self.collection.join("ingest-rejects.jsonl"))
    }

    fn report_path(&self) -> PathBuf {
        self.report
            .clone()
            .unwrap_or_else(|| self.collection.join("ingest-report.json"))
    }
}

/// Where each modality's embeddings come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModalitySource {
    /// Modality name.
    pub name: String,
    /// Embedding dimension.
    pub dim: usize,
    /// `encoder <preset>` or `column <name>`.
    pub source: String,
}

/// Seconds per stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageSeconds {
    /// Reading and validating.
    pub read: f64,
    /// Encoding and thumbnails.
    pub encode: f64,
    /// Writing to the collection.
    pub write: f64,
    /// Building the indexes.
    pub index: f64,
    /// Wall-clock time of this run.
    pub wall: f64,
}

/// Objects per second of each stage's own time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageRates {
    /// Reading and validating.
    pub read: f64,
    /// Encoding (or taking precomputed embeddings) and making the picture blobs.
    pub encode: f64,
    /// Writing to the collection.
    pub write: f64,
}

fn rate(n: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        n as f64 / seconds
    } else {
        0.0
    }
}

/// The final report (printed and written as JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestReport {
    /// The inputs.
    pub inputs: Vec<InputId>,
    /// The collection directory.
    pub collection: String,
    /// `k/n` when sharded.
    pub shard: Option<String>,
    /// Rows in the inputs.
    pub rows_total: u64,
    /// Rows looked at (all shards).
    pub rows_read: u64,
    /// Objects written.
    pub rows_written: u64,
    /// Rows rejected (see `rejects_file`).
    pub rows_rejected: u64,
    /// Rows left to other shards.
    pub rows_other_shards: u64,
    /// Rejections by kind.
    pub rejected_by_kind: BTreeMap<String, u64>,
    /// Where the rejected rows and their reasons are.
    pub rejects_file: String,
    /// Live objects in the collection afterwards.
    pub collection_objects: u64,
    /// Modalities and where their embeddings came from.
    pub modalities: Vec<ModalitySource>,
    /// Attributes read, as `column → attribute`.
    pub attributes: Vec<(String, String)>,
    /// Columns not read, with the reason.
    pub ignored_columns: Vec<(String, String)>,
    /// Seconds per stage (read/encode/write cumulative over resumed runs).
    pub seconds: StageSeconds,
    /// Objects written per second of wall time in this run.
    pub objects_per_second: f64,
    /// Throughput of each stage on its own: rows per second of that stage's busy
    /// time (read: rows read; encode and write: objects written), cumulative over
    /// resumed runs. The slowest stage bounds the pipeline.
    pub stage_objects_per_second: StageRates,
    /// True when this run continued an interrupted one.
    pub resumed: bool,
    /// What each index build did.
    pub index: Vec<IndexReport>,
}

impl IngestReport {
    /// A short human-readable summary.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "ingest into {}{}: {} rows read, {} written, {} rejected, {} in other shards; {} objects in the collection\n",
            self.collection,
            self.shard.as_deref().map(|k| format!(" (shard {k})")).unwrap_or_default(),
            self.rows_read,
            self.rows_written,
            self.rows_rejected,
            self.rows_other_shards,
            self.collection_objects
        );
        for (k, n) in &self.rejected_by_kind {
            s += &format!("  rejected, {k}: {n}\n");
        }
        if self.rows_rejected > 0 {
            s += &format!("  reasons per row: {}\n", self.rejects_file);
        }
        s += &format!(
            "  objects/s per stage: read {:.1}, encode {:.1}, write {:.1}\n",
            self.stage_objects_per_second.read,
            self.stage_objects_per_second.encode,
            self.stage_objects_per_second.write
        );
        s += &format!(
            "  seconds: read {:.2}, encode {:.2}, write {:.2}, index {:.2}, wall {:.2}; {:.1} objects/s\n",
            self.seconds.read,
            self.seconds.encode,
            self.seconds.write,
            self.seconds.index,
            self.seconds.wall,
            self.objects_per_second
        );
        s
    }
}

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

/// Sorts a rejection reason into a kind for the report.
pub fn reject_kind(reason: &str) -> &'static str {
    if reason.contains("duplicate id") {
        "duplicate id"
    } else if reason.contains("non-finite") {
        "non-finite value"
    } else if reason.contains("null") {
        "missing value"
    } else if reason.contains("outside") || reason.contains("negative") {
        "value out of range"
    } else if reason.contains("all zeros") {
        "zero embedding"
    } else {
        "wrong shape"
    }
}

fn input_ids(sources: &[Box<dyn Source>]) -> Result<Vec<InputId>> {
    sources
        .iter()
        .map(|s| {
            let bytes = s.bytes()?;
            Ok(InputId {
                path: s.path().display().to_string(),
                rows: s.len(),
                bytes,
            })
        })
        .collect()
}

/// Runs an ingest to completion (or to the first error; committed batches stay
/// committed and `--resume` continues from them).
pub fn ingest(opts: &IngestOptions) -> Result<IngestReport> {
    let wall = Instant::now();
    if opts.inputs.is_empty() {
        return Err(IngestError::invalid("inputs", "no input files given"));
    }
    if opts.batch_size == 0 {
        return Err(IngestError::invalid("batch-size", "must be at least 1"));
    }
    opts.mapping.validate()?;
    let precomputed = matches!(opts.embedder, Embedder::Precomputed);
    if precomputed && opts.mapping.embeddings.is_empty() {
        return Err(IngestError::invalid(
            "embeddings",
            "precomputed embeddings need an [embeddings] table in the mapping (modality = column)",
        ));
    }
    let min_image = match &opts.embedder {
        Embedder::Model { config, .. } => config.image_backbone.image_size,
        Embedder::Precomputed => 0,
    };
    let (sources, plan) = open_sources(&opts.inputs, &opts.mapping, min_image)?;
    let inputs = input_ids(&sources)?;
    let rows_total: u64 = inputs.iter().map(|i| i.rows).sum();

    // Modalities of the collection.
    let modalities: Vec<ModalitySource> = match &opts.embedder {
        Embedder::Precomputed => plan
            .embeddings
            .iter()
            .map(|(m, c, d)| ModalitySource {
                name: m.clone(),
                dim: *d,
                source: format!("column {c}"),
            })
            .collect(),
        Embedder::Model { config, name, .. } => ["image", "spectrum"]
            .iter()
            .filter(|m| match **m {
                "image" => plan.image.is_some(),
                _ => plan.spectrum.is_some(),
            })
            .map(|m| ModalitySource {
                name: m.to_string(),
                dim: config.embedding_dim(),
                source: format!("encoder {name}"),
            })
            .collect(),
    };
    let mut config = CollectionConfig::astroclip();
    config.modalities = modalities
        .iter()
        .map(|m| ModalityConfig {
            name: m.name.clone(),
            dim: m.dim,
        })
        .collect();
    config.attributes = plan
        .attributes
        .iter()
        .map(|a| a.def.clone())
        .collect::<Vec<AttributeDef>>();
    config.hnsw = opts.hnsw;
    config.model = opts.embedder.describe();

    let dir = &opts.collection;
    let mut progress = Progress {
        version: 1,
        inputs: inputs.clone(),
        shard: opts.shard.map(|s| (s.index, s.count)),
        batch_size: opts.batch_size,
        embedder: opts.embedder.describe(),
        file: 0,
        row: 0,
        counts: Counts::default(),
        rows_done: false,
        complete: false,
    };
    let rejects_path = opts.rejects_path();
    let mut resumed = false;
    let collection = if dir.join("db").exists() {
        if !opts.resume {
            return Err(IngestError::invalid(
                "collection",
                format!(
                    "{} already exists; pass --resume to continue an interrupted ingest into it",
                    dir.display()
                ),
            ));
        }
        let c = Collection::open(dir).map_err(|e| IngestError::engine(dir, e))?;
        if c.config().modalities != config.modalities || c.config().attributes != config.attributes
        {
            return Err(IngestError::ResumeMismatch {
                path: dir.clone(),
                reason: "the collection's modalities or attributes differ from what these inputs and mapping produce".into(),
            });
        }
        if let Some(old) = Progress::load(dir)? {
            let same = old.inputs == progress.inputs
                && old.shard == progress.shard
                && old.batch_size == progress.batch_size
                && old.embedder == progress.embedder;
            if !same {
                return Err(IngestError::ResumeMismatch {
                    path: dir.clone(),
                    reason: format!(
                        "it was started with other inputs, shard, batch size or embedder \
                         (recorded: {} input(s), shard {:?}, batch size {}, {})",
                        old.inputs.len(),
                        old.shard,
                        old.batch_size,
                        old.embedder
                    ),
                });
            }
            progress = old;
            resumed = true;
        }
        c
    } else {
        // Create beside the target and rename, so a crash never leaves a
        // half-created collection under the final name.
        let tmp = creating_path(dir);
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| IngestError::io(&tmp, e))?;
        }
        if dir.exists()
            && std::fs::read_dir(dir)
                .map_err(|e| IngestError::io(dir, e))?
                .next()
                .is_some()
        {
            return Err(IngestError::invalid(
                "collection",
                format!("{} exists and is not an empty directory", dir.display()),
            ));
        }
        let c =
            Collection::create(&tmp, config.clone()).map_err(|e| IngestError::engine(&tmp, e))?;
        drop(c);
        if dir.exists() {
            std::fs::remove_dir(dir).map_err(|e| IngestError::io(dir, e))?;
        }
        std::fs::rename(&tmp, dir).map_err(|e| IngestError::io(dir, e))?;
        progress.save(dir)?;
        Collection::open(dir).map_err(|e| IngestError::engine(dir, e))?
    };
    // Rejects written after the last committed batch belong to batches that will be redone.
    truncate_rejects(&rejects_path, &progress)?;

    let bar = if opts.progress {
        let b = ProgressBar::new(rows_total);
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} ingest {bar:40} {pos}/{len} rows {per_sec} [{elapsed_precise} < {eta}] {msg}",
        ) {
            b.set_style(style);
        }
        b
    } else {
        ProgressBar::hidden()
    };
    let done_before: u64 = inputs[..progress.file.min(inputs.len())]
        .iter()
        .map(|i| i.rows)
        .sum::<u64>()
        + progress.row;
    bar.set_position(done_before);
    let run_written_before = progress.counts.written;

    if !progress.rows_done {
        run_stages(
            opts,
            sources,
            &collection,
            &mut progress,
            &rejects_path,
            &bar,
        )?;
        progress.rows_done = true;
        progress.save(dir)?;
    }
    bar.finish_and_clear();
    let mut index = Vec::new();
    let mut index_seconds = 0.0;
    if opts.build_index && !progress.complete {
        let t = Instant::now();
        index = collection
            .build_index()
            .map_err(|e| IngestError::engine(dir, e))?;
        index_seconds = t.elapsed().as_secs_f64();
    }
    progress.complete = true;
    progress.save(dir)?;
    let c = &progress.counts;
    let wall_s = wall.elapsed().as_secs_f64();
    let report = IngestReport {
        inputs,
        collection: dir.display().to_string(),
        shard: opts.shard.map(|s| s.to_string()),
        rows_total,
        rows_read: c.read,
        rows_written: c.written,
        rows_rejected: c.rejected,
        rows_other_shards: c.other_shards,
        rejected_by_kind: c.rejected_by_kind.clone(),
        rejects_file: rejects_path.display().to_string(),
        collection_objects: collection.len(),
        modalities,
        attributes: plan
            .attributes
            .iter()
            .map(|a| (a.column.clone(), a.def.name.clone()))
            .collect(),
        ignored_columns: plan.ignored.clone(),
        seconds: StageSeconds {
            read: c.read_seconds,
            encode: c.encode_seconds,
            write: c.write_seconds,
            index: index_seconds,
            wall: wall_s,
        },
        objects_per_second: (c.written - run_written_before) as f64 / wall_s.max(1e-9),
        stage_objects_per_second: StageRates {
            read: rate(c.read, c.read_seconds),
            encode: rate(c.written, c.encode_seconds),
            write: rate(c.written, c.write_seconds),
        },
        resumed,
        index,
    };
    let json = serde_json::to_vec_pretty(&report).expect("report serialises");
    super::progress::write_atomic(&opts.report_path(), &json)?;
    Ok(report)
}

fn creating_path(dir: &Path) -> PathBuf {
    let mut name = dir
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".creating");
    dir.with_file_name(name)
}

/// Keeps only the rejects of rows before the marker's position.
fn truncate_rejects(path: &Path, progress: &Progress) -> Result<()> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(IngestError::io(path, e)),
    };
    let index_of = |file: &str| progress.inputs.iter().position(|i| i.path == file);
    let mut kept = String::new();
    for line in text.lines() {
        let Ok(r) = serde_json::from_str::<Reject>(line) else {
            continue; // a torn last line
        };
        let keep = match index_of(&r.file) {
            Some(f) => f < progress.file || (f == progress.file && r.row < progress.row),
            None => false,
        };
        if keep {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    if kept.len() != text.len() {
        super::progress::write_atomic(path, kept.as_bytes())?;
    }
    Ok(())
}

fn run_stages(
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
        let model_dir = collection.dir().join("encoder");
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

/// What `encoder/source.json` records: where the collection's model came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSource {
    /// The preset or model name (e.g. `astroclip`, `tiny`).
    pub name: String,
    /// The weights file or model directory given, or `None` for a random model.
    pub weights: Option<String>,
}

/// File of [`ModelSource`] in the collection's `encoder/` directory.
pub const MODEL_SOURCE_FILE: &str = "source.json";

fn encoder_io(path: &Path, source: std::io::Error) -> astrovec_encoders::EncoderError {
    astrovec_encoders::EncoderError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Loads the encoder and makes sure the collection carries the model it embeds
/// with (`encoder/config.json` + `encoder/model.safetensors`, the format of
/// `Encoder::save_dir`, plus [`MODEL_SOURCE_FILE`]), so the server can encode
/// uploads and a resumed run embeds with the same weights.
///
/// - No weights: the first run saves a random model, later runs load it (the
///   backends seed their generators from OS entropy, so a fresh one would differ).
/// - A model directory (`…/model.safetensors` next to `config.json`): its two
///   files are copied as they are.
/// - Any other weights file (safetensors, Lightning `.ckpt`): the loaded model is
///   written with `save_dir` (on CUDA, from a CPU copy of the weights).
fn load_encoder(
    config: &AstroClipConfig,
    weights: Option<&Path>,
    name: &str,
    backend: BackendChoice,
    model_dir: &Path,
) -> astrovec_encoders::Result<AnyEncoder> {
    let saved = model_dir.join("model.safetensors");
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
        (w.file_name()? == "model.safetensors" && dir.join("config.json").is_file()).then_some(dir)
    });
    if let Some(src) = model_files {
        std::fs::create_dir_all(&tmp).map_err(|e| encoder_io(&tmp, e))?;
        for f in ["config.json", "model.safetensors"] {
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
    let f = tmp.join(MODEL_SOURCE_FILE);
    std::fs::write(&f, json).map_err(|e| encoder_io(&f, e))?;
    std::fs::rename(&tmp, model_dir).map_err(|e| encoder_io(model_dir, e))?;
    Ok(encoder)
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
        // Images, grouped by kind and size (one batch per group). RGB pictures
        // of any size are brought to the model's input size first (see
        // `images::fit_rgb`), so they form one group.
        let size = enc.config().image_backbone.image_size;
        let mut groups: BTreeMap<(bool, usize, usize), Vec<usize>> = BTreeMap::new();
        for (i, r) in rows.iter().enumerate() {
            if let Some(img) = &r.image {
                let key = match img.kind {
                    ImageKind::Rgb => (true, size, size),
                    ImageKind::Grz => (false, img.height, img.width),
                };
                groups.entry(key).or_default().push(i);
            }
        }
        for ((rgb, h, w), idx) in groups {
            let mut flat = Vec::with_capacity(idx.len() * 3 * h * w);
            if rgb {
                let fitted: Vec<Vec<f32>> = idx
                    .par_iter()
                    .map(|&i| fit_rgb(rows[i].image.as_ref().expect("grouped"), size))
                    .collect();
                fitted.iter().for_each(|v| flat.extend_from_slice(v));
            } else {
                for &i in &idx {
                    flat.extend_from_slice(&rows[i].image.as_ref().expect("grouped").data);
                }
            }
            let out = if rgb {
                enc.embed_images(&flat)?
            } else {
                enc.embed_grz(&flat, 3, h, w)?
            };
            for (&i, v) in idx.iter().zip(out) {
                embeddings[i].insert("image".into(), v);
            }
        }
        let idx: Vec<usize> = (0..rows.len())
            .filter(|&i| rows[i].spectrum.is_some())
            .collect();
        if !idx.is_empty() {
            let mut flat = Vec::with_capacity(idx.len() * super::row::SPECTRUM_LEN);
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
