//! `astrovec ingest`: bulk-loads catalog files into a collection — validation,
//! batched encoding (or precomputed embeddings), resumable and sharded builds. The
//! pipeline lives in `astrovec_indexer::ingest`; this module turns flags into its
//! options and prints the report.

use std::path::PathBuf;

use anyhow::{bail, Context};
use astrovec_encoders::model::astroclip::{CONFIG_FILE, WEIGHTS_FILE};
use astrovec_encoders::{AstroClipConfig, BackendChoice};
use astrovec_engine::HnswConfig;
use astrovec_indexer::ingest::{ingest, Embedder, IngestOptions, Mapping, Shard};

/// Arguments of `astrovec ingest`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Inputs, read in this order (one kind per ingest): Parquet catalogs; HDF5
    /// catalogs (.h5/.hdf5: AstroCLIP groups "0".."9" or Multimodal-Universe root
    /// datasets object_id/ra/dec/image_array/spectrum_flux); DESI
    /// coadd FITS spectra (b/r/z arms combined on the 7,781-pixel 3600–9824 Å
    /// grid), with their redrock FITS files to join redshifts by TARGETID; image
    /// cutouts (JPEG/PNG RGB or FITS g, r, z planes in nanomaggies), as files or
    /// directories, with an optional sidecar .csv of ids, ra/dec (degrees) and
    /// labels; ids of images otherwise come from the digits of their file names.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Collection directory to create (or to continue with --resume).
    #[arg(long = "db", short = 'c', alias = "collection", value_name = "DIR")]
    pub db: PathBuf,
    /// Column mapping (TOML or JSON): id/ra/dec/image/spectrum columns, attributes,
    /// precomputed embedding columns, what to do with unknown columns.
    #[arg(long, value_name = "FILE")]
    pub mapping: Option<PathBuf>,
    /// Model sizes: astroclip, small or tiny.
    #[arg(long, default_value = "small")]
    pub preset: String,
    /// Encoder weights (safetensors, Lightning .ckpt or a model directory). Without
    /// them the encoders are randomly initialised (tests and demos only).
    #[arg(long, value_name = "PATH")]
    pub weights: Option<PathBuf>,
    /// Use the precomputed embeddings of the mapping's [embeddings] table (columns,
    /// HDF5 datasets, or .npy files of [rows, d] aligned with the input rows)
    /// instead of running the encoders.
    #[arg(long)]
    pub precomputed: bool,
    /// Backend: cpu, or cuda / cuda:N when built with the `cuda` feature.
    #[arg(long, default_value = "cpu")]
    pub backend: String,
    /// Rows per batch (one atomic write each).
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Items per encoder forward pass.
    #[arg(long, default_value_t = 16)]
    pub encode_batch: usize,
    /// Continue an interrupted ingest into the existing collection.
    #[arg(long)]
    pub resume: bool,
    /// Process only shard k of n (by a hash of the id), e.g. 0/3.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<Shard>,
    /// Rejected rows with reasons, one JSON object per line (default
    /// DIR/ingest-rejects.jsonl).
    #[arg(long, value_name = "FILE")]
    pub rejects: Option<PathBuf>,
    /// Report (JSON; default DIR/ingest-report.json).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Do not build the HNSW indexes at the end (searches scan exactly until
    /// `astrovec collection build-index`).
    #[arg(long)]
    pub no_index: bool,
    /// Do not store thumb.png blobs.
    #[arg(long)]
    pub no_thumbnails: bool,
    /// Do not store the full-resolution image.png and the spectrum.f16 blobs (the
    /// server's image and spectrum previews).
    #[arg(long)]
    pub no_previews: bool,
    /// HNSW M of a new collection.
    #[arg(long, default_value_t = 16)]
    pub hnsw_m: usize,
    /// HNSW ef_construction of a new collection.
    #[arg(long, default_value_t = 200)]
    pub ef_construction: usize,
    /// Hide the progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<()> {
    let mapping = match &args.mapping {
        Some(p) => Mapping::load(p)?,
        None => Mapping::default(),
    };
    if args.batch_size == 0 || args.encode_batch == 0 {
        bail!("invalid --batch-size / --encode-batch: must be at least 1");
    }
    let embedder = if args.precomputed {
        if args.weights.is_some() {
            bail!("--precomputed and --weights exclude each other");
        }
        Embedder::Precomputed
    } else {
        if !mapping.embeddings.is_empty() {
            bail!(
                "the mapping names precomputed embedding columns; pass --precomputed to use them"
            );
        }
        let backend: BackendChoice = args.backend.parse()?;
        // A model directory names the model; otherwise the preset does.
        let (config, weights, name) = match &args.weights {
            Some(w) if w.is_dir() => (
                AstroClipConfig::load_json(w.join(CONFIG_FILE))
                    .with_context(|| format!("reading {}/{CONFIG_FILE}", w.display()))?,
                Some(w.join(WEIGHTS_FILE)),
                w.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| args.preset.clone()),
            ),
            w => (
                AstroClipConfig::preset(&args.preset)?,
                w.clone(),
                args.preset.clone(),
            ),
        };
        if args.weights.is_none() {
            tracing::warn!(
                preset = %args.preset,
                "no --weights: the encoders are randomly initialised (fine for tests, useless for science)"
            );
        }
        Embedder::Model {
            config: Box::new(config),
            weights,
            backend,
            batch_size: args.encode_batch,
            name,
        }
    };
    let mut opts = IngestOptions::new(args.inputs.clone(), args.db.clone(), embedder);
    opts.mapping = mapping;
    opts.batch_size = args.batch_size;
    opts.resume = args.resume;
    opts.shard = args.shard;
    opts.rejects = args.rejects.clone();
    opts.report = args.report.clone();
    opts.build_index = !args.no_index;
    opts.thumbnails = !args.no_thumbnails;
    opts.previews = !args.no_previews;
    opts.progress = !args.quiet;
    opts.hnsw = HnswConfig {
        m: args.hnsw_m,
        ef_construction: args.ef_construction,
        ..HnswConfig::default()
    };
    let report = ingest(&opts)?;
    eprint!("{}", report.summary());
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
