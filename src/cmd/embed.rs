//! `astrovec embed`: runs the AstroCLIP encoders over images or spectra stored as `.npy`, or
//! over every object of a catalog file, and writes the embeddings as `.npy` — the tool a user
//! runs to check the encoders against their own PyTorch numbers, or to export embeddings for
//! other software.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use astrovec_encoders::{AnyEncoder, AstroClipConfig, BackendChoice};
use astrovec_indexer::ingest::mapping::Mapping;
use astrovec_indexer::ingest::source::open_sources;
use ndarray::{Array1, Array2, ArrayD};
use ndarray_npy::{read_npy, write_npy};

/// How `--image` values are to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImageKind {
    /// Legacy Survey g, r, z cutouts in nanomaggies (e.g. 152 × 152): mapped to RGB with the
    /// Legacy-viewer stretch, then centre-cropped to the model's size (144).
    Grz,
    /// Model-ready images: channels (z, r, g), values in [0, 1], at the model's size.
    Rgb,
}

/// Which modality `--catalog` embeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Modality {
    /// The image cutouts.
    Image,
    /// The spectra.
    Spectrum,
}

/// Arguments of `astrovec embed`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["image", "spectrum", "catalog"])))]
pub struct Args {
    /// Weights: a safetensors file, a Lightning checkpoint (`astroclip.ckpt`; only its
    /// state_dict is read), or a model directory (config.json + model.safetensors).
    #[arg(long)]
    pub weights: PathBuf,
    /// Model sizes by preset: astroclip (default), small or tiny.
    #[arg(long, conflicts_with = "config")]
    pub preset: Option<String>,
    /// Model sizes from a JSON file (as written in a model directory's config.json).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Images as `.npy` (f32 or f64): `[N, 3, H, W]` or `[N, H, W, 3]`, or one image.
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// How to read `--image`.
    #[arg(long, value_enum, default_value_t = ImageKind::Grz)]
    pub image_kind: ImageKind,
    /// Spectra as `.npy` (f32 or f64): `[N, 7781]` or `[N, 7781, 1]`, or one spectrum.
    #[arg(long)]
    pub spectrum: Option<PathBuf>,
    /// A catalog file (Parquet, in the mock survey or AstroCLIP layout): every object's
    /// image or spectrum (`--modality`), read in batches, in file order.
    #[arg(long)]
    pub catalog: Option<PathBuf>,
    /// With `--catalog`: which of each object's modalities to embed.
    #[arg(long, value_enum, default_value_t = Modality::Image, requires = "catalog")]
    pub modality: Modality,
    /// With `--catalog`: also write the embedded objects' ids (`[N]` uint64 `.npy`), row
    /// for row with `--out` (objects without the modality, or rejected, are skipped).
    #[arg(long, requires = "catalog")]
    pub ids: Option<PathBuf>,
    /// Output `.npy`: `[N, embedding_dim]` float32, not normalised.
    #[arg(long)]
    pub out: PathBuf,
    /// Backend: `cpu`, or `cuda` / `cuda:N` when built with the `cuda` feature.
    #[arg(long, default_value = "cpu")]
    pub backend: String,
    /// Items per forward pass.
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<()> {
    let backend: BackendChoice = args.backend.parse()?;
    let (config, weights) = resolve_model(&args)?;
    let start = Instant::now();
    let encoder = AnyEncoder::load(&config, &weights, backend)
        .with_context(|| format!("loading weights from {}", weights.display()))?
        .with_batch_size(args.batch_size);
    tracing::info!(weights = %weights.display(), elapsed = ?start.elapsed(), "model loaded");

    let start = Instant::now();
    let rows = if let Some(path) = &args.image {
        let (shape, values) = read_f32(path)?;
        let (n, h, w, values) = to_nchw(&shape, values).with_context(|| {
            format!("{}: unexpected image array shape {shape:?}", path.display())
        })?;
        tracing::info!(images = n, height = h, width = w, "embedding images");
        match args.image_kind {
            ImageKind::Grz => encoder.embed_grz(&values, 3, h, w)?,
            ImageKind::Rgb => encoder.embed_images(&values)?,
        }
    } else if let Some(path) = &args.spectrum {
        let (shape, values) = read_f32(path)?;
        let n = match shape.as_slice() {
            [_] => 1,
            [n, _] | [n, _, 1] => *n,
            _ => bail!(
                "{}: unexpected spectrum array shape {shape:?}",
                path.display()
            ),
        };
        tracing::info!(spectra = n, "embedding spectra");
        encoder.embed_spectra(&values)?
    } else if let Some(path) = &args.catalog {
        let (ids, rows) = embed_catalog(&encoder, &config, path, args.modality)?;
        if let Some(ids_path) = &args.ids {
            write_npy(ids_path, &Array1::from(ids))
                .with_context(|| format!("writing {}", ids_path.display()))?;
        }
        rows
    } else {
        bail!("one of --image, --spectrum or --catalog is required");
    };
    let dim = config.embedding_dim();
    let n = rows.len();
    let flat: Vec<f32> = rows.into_iter().flatten().collect();
    let out = Array2::from_shape_vec((n, dim), flat).context("embedding rows")?;
    write_npy(&args.out, &out).with_context(|| format!("writing {}", args.out.display()))?;
    tracing::info!(rows = n, dim, elapsed = ?start.elapsed(), out = %args.out.display(), "embeddings written");
    Ok(())
}

/// Embeds one modality of every object in a catalog file, 256 rows at a time; returns
/// the ids and embeddings of the objects that have it.
fn embed_catalog(
    encoder: &AnyEncoder,
    config: &AstroClipConfig,
    path: &Path,
    modality: Modality,
) -> Result<(Vec<u64>, Vec<Vec<f32>>)> {
    let size = config.image_backbone.image_size;
    let length = config.spectrum_backbone.spectrum_length;
    let (sources, _plan) = open_sources(&[path.to_path_buf()], &Mapping::default(), size)
        .with_context(|| format!("opening {}", path.display()))?;
    let (mut ids, mut rows) = (Vec::new(), Vec::new());
    let (mut rejected, mut without) = (0usize, 0usize);
    for source in &sources {
        for batch in source.read_from(0, 256)? {
            let (mut batch_ids, mut values) = (Vec::new(), Vec::new());
            for outcome in batch? {
                let Ok(row) = outcome.result else {
                    rejected += 1;
                    continue;
                };
                match modality {
                    Modality::Image => {
                        let Some(img) = row.image else {
                            without += 1;
                            continue;
                        };
                        values.extend(super::model_image(&img, size)?);
                    }
                    Modality::Spectrum => {
                        let Some(flux) = row.spectrum else {
                            without += 1;
                            continue;
                        };
                        super::check_spectrum_length(path, row.id, flux.len(), length)?;
                        values.extend(flux);
                    }
                }
                batch_ids.push(row.id);
            }
            if batch_ids.is_empty() {
                continue;
            }
            rows.extend(match modality {
                Modality::Image => encoder.embed_images(&values)?,
                Modality::Spectrum => encoder.embed_spectra(&values)?,
            });
            ids.extend(batch_ids);
            tracing::info!(objects = ids.len(), "embedded");
        }
    }
    tracing::info!(objects = ids.len(), rejected, without_the_modality = without, path = %path.display(), "catalog embedded");
    if ids.is_empty() {
        bail!(
            "{}: no object has the {modality:?} modality ({rejected} rows rejected)",
            path.display()
        );
    }
    Ok((ids, rows))
}

/// The configuration and weight file: a model directory carries its own config; otherwise
/// `--config`, `--preset`, or the published `astroclip` sizes.
fn resolve_model(args: &Args) -> Result<(AstroClipConfig, PathBuf)> {
    let explicit = match (&args.config, &args.preset) {
        (Some(path), _) => Some(AstroClipConfig::load_json(path)?),
        (None, Some(name)) => Some(AstroClipConfig::preset(name)?),
        (None, None) => None,
    };
    if args.weights.is_dir() {
        let dir = &args.weights;
        let config = match explicit {
            Some(c) => c,
            None => AstroClipConfig::load_json(
                dir.join(astrovec_encoders::model::astroclip::CONFIG_FILE),
            )?,
        };
        let weights = dir.join(astrovec_encoders::model::astroclip::WEIGHTS_FILE);
        return Ok((config, weights));
    }
    Ok((
        explicit.unwrap_or_else(AstroClipConfig::astroclip),
        args.weights.clone(),
    ))
}

/// Reads a float `.npy` (f32, or f64 narrowed) into its shape and C-order values.
fn read_f32(path: &Path) -> Result<(Vec<usize>, Vec<f32>)> {
    let array: ArrayD<f32> = match read_npy::<_, ArrayD<f32>>(path) {
        Ok(a) => a,
        Err(first) => read_npy::<_, ArrayD<f64>>(path)
            .map(|a| a.mapv(|v| v as f32))
            .map_err(|_| first)
            .with_context(|| {
                format!(
                    "reading {} (expected a float32/float64 .npy)",
                    path.display()
                )
            })?,
    };
    let shape = array.shape().to_vec();
    let values = array.as_standard_layout().iter().copied().collect();
    Ok((shape, values))
}

/// Normalises an image array to planar `[N, 3, H, W]`; returns `(N, H, W, values)`.
fn to_nchw(shape: &[usize], values: Vec<f32>) -> Option<(usize, usize, usize, Vec<f32>)> {
    let (n, dims) = match shape {
        [a, b, c] => (1, [*a, *b, *c]),
        [n, a, b, c] => (*n, [*a, *b, *c]),
        _ => return None,
    };
    match dims {
        [3, h, w] => Some((n, h, w, values)),
        [h, w, 3] => {
            // Channels last (as in the reference HDF5 files): transpose each image.
            let mut out = vec![0.0f32; values.len()];
            for i in 0..n {
                let (src, dst) = (&values[i * h * w * 3..], &mut out[i * 3 * h * w..]);
                for p in 0..h * w {
                    for c in 0..3 {
                        dst[c * h * w + p] = src[p * 3 + c];
                    }
                }
            }
            Some((n, h, w, out))
        }
        _ => None,
    }
}
