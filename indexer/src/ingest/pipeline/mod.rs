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
//!
//! This module is the front door (the options, the collection created or resumed,
//! the report assembled); `stages` holds the three stages and their channels,
//! `model` the collection's model directory and `report` the report's types.

use std::path::{Path, PathBuf};
use std::time::Instant;

use astrovec_encoders::{AstroClipConfig, BackendChoice};
use astrovec_engine::layout::DB_DIR;
use astrovec_engine::{AttributeDef, Collection, CollectionConfig, HnswConfig, ModalityConfig};
use indicatif::{ProgressBar, ProgressStyle};

use super::error::{IngestError, Result};
use super::mapping::Mapping;
use super::progress::{Counts, InputId, Progress};
use super::read::Source;
use super::row::Reject;
use super::shard::Shard;
use super::source::open_sources;

mod model;
mod report;
mod stages;

pub use model::ModelSource;
pub use report::{reject_kind, IngestReport, ModalitySource, StageRates, StageSeconds};

use report::rate;
use stages::run_stages;

/// The report's default file in the collection directory; written last, so its
/// presence marks a finished ingest.
pub const REPORT_FILE: &str = "ingest-report.json";
/// The rejects' default file in the collection directory.
pub const REJECTS_FILE: &str = "ingest-rejects.jsonl";

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
    /// Rejects file (JSON lines); default [`REJECTS_FILE`] in the collection.
    pub rejects: Option<PathBuf>,
    /// Report file (JSON); default [`REPORT_FILE`] in the collection.
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
            .unwrap_or_else(|| self.collection.join(REJECTS_FILE))
    }

    fn report_path(&self) -> PathBuf {
        self.report
            .clone()
            .unwrap_or_else(|| self.collection.join(REPORT_FILE))
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
    let collection = if dir.join(DB_DIR).exists() {
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
