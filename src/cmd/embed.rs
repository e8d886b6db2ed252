//! `astrovec embed`: runs the AstroCLIP encoders over image files (JPEG, PNG, FITS, `.npy`,
//! or directories of them), spectrum files (`.npy`, FITS incl. DESI coadds, CSV), or every
//! object of a catalog file, and writes the embeddings as `.npy` — the tool a user runs to
//! check an embedding outside the server, to compare with their own PyTorch numbers, or to
//! export embeddings for other software. Files are read by the encoders' `input` module, as
//! the ingest and the server's uploads read them, so all three give the same embedding.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use astrovec_encoders::input::fits::FitsFile;
use astrovec_encoders::input::image::Layout;
use astrovec_encoders::input::{self, desi, spectrum, Array, Image};
use astrovec_encoders::{AnyEncoder, AstroClipConfig, BackendChoice};
use astrovec_indexer::ingest::images::{list_files, list_images, FileModality};
use astrovec_indexer::ingest::mapping::Mapping;
use astrovec_indexer::ingest::source::open_sources;
use ndarray::{Array1, Array2};
use ndarray_npy::write_npy;

/// How numeric (`.npy`) `--image` values are to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImageKind {
    /// Legacy Survey g, r, z cutouts in nanomaggies (e.g. 152 × 152): mapped to RGB with the
    /// Legacy-viewer stretch, then centre-cropped to the model's size (144).
    Grz,
    /// Display colours in [0, 1], channels (R, G, B) = (z, r, g): centre-cropped to a square
    /// and area-resampled to the model's size (unchanged when already at that size).
    Rgb,
}

impl From<ImageKind> for input::ImageKind {
    fn from(k: ImageKind) -> Self {
        match k {
            ImageKind::Grz => input::ImageKind::Grz,
            ImageKind::Rgb => input::ImageKind::Rgb,
        }
    }
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
    /// Image files or directories (repeatable): JPEG/PNG pictures, FITS g, r, z cutouts,
    /// `.npy` arrays (`[N, 3, H, W]`, `[N, H, W, 3]` or one image). Directories are
    /// searched recursively for .jpg, .jpeg, .png, .fits and .fit files, sorted by path;
    /// output rows follow that order.
    #[arg(long, num_args = 1..)]
    pub image: Vec<PathBuf>,
    /// What `.npy` image values are.
    #[arg(long, value_enum, default_value_t = ImageKind::Grz)]
    pub image_kind: ImageKind,
    /// Spectrum files or directories (repeatable): `.npy` (`[N, 7781]`, `[N, 7781, 1]` or
    /// one spectrum), FITS (a DESI coadd: every spectrum in file order; else the first
    /// image HDU), CSV/TXT/TSV (one flux column on the grid, or wavelength in Å and flux).
    /// Directories are searched recursively, sorted by path.
    #[arg(long, num_args = 1..)]
    pub spectrum: Vec<PathBuf>,
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
    let rows = if !args.image.is_empty() {
        let size = config.image_backbone.image_size;
        let inputs = read_images(&args.image, args.image_kind.into(), size)?;
        tracing::info!(
            images = inputs.len() / (3 * size * size),
            "embedding images"
        );
        encoder.embed_images(&inputs)?
    } else if !args.spectrum.is_empty() {
        let flux = read_spectra(&args.spectrum, config.spectrum_backbone.spectrum_length)?;
        tracing::info!(
            spectra = flux.len() / config.spectrum_backbone.spectrum_length,
            "embedding spectra"
        );
        encoder.embed_spectra(&flux)?
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

/// Every image of `paths` as the model's input, `[N, 3, size, size]` flattened.
fn read_images(paths: &[PathBuf], numeric: input::ImageKind, size: usize) -> Result<Vec<f32>> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            files.extend(list_images(p)?);
        } else {
            files.push(p.clone());
        }
    }
    let mut out = Vec::new();
    for f in &files {
        let what = f.display().to_string();
        let images = if input::extension(f) == "npy" {
            // A stack of images, or one.
            let bytes = std::fs::read(f).with_context(|| format!("reading {what}"))?;
            let array = input::npy::read(&what, &bytes, usize::MAX)?;
            let per: usize = array.shape.iter().skip(1).product();
            match array.shape.len() {
                4 => array
                    .data
                    .chunks(per.max(1))
                    .map(|c| {
                        let one = Array::new(&what, array.shape[1..].to_vec(), c.to_vec())?;
                        Image::from_array(&what, one, numeric, Layout::Auto)
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                _ => vec![Image::from_array(&what, array, numeric, Layout::Auto)?],
            }
        } else {
            vec![input::image::read_file(f, numeric, input::MAX_PIXELS)?.image]
        };
        for img in images {
            out.extend(img.model_input(&what, size)?);
        }
    }
    if out.is_empty() {
        bail!("no image files among {paths:?}");
    }
    Ok(out)
}

/// Every spectrum of `paths` on the model's grid, `[N, length]` flattened.
fn read_spectra(paths: &[PathBuf], length: usize) -> Result<Vec<f32>> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            files.extend(list_files(p, FileModality::Spectrum)?);
        } else {
            files.push(p.clone());
        }
    }
    let mut out = Vec::new();
    for f in &files {
        let what = f.display().to_string();
        match input::extension(f).as_str() {
            "npy" => {
                let bytes = std::fs::read(f).with_context(|| format!("reading {what}"))?;
                let array = input::npy::read(&what, &bytes, usize::MAX)?;
                if array.data.len() % length != 0 || array.shape.first() == Some(&0) {
                    bail!(
                        "{what}: shape {:?} is not spectra of {length} pixels ([N, {length}], [N, {length}, 1] or [{length}])",
                        array.shape
                    );
                }
                for (i, s) in array.data.chunks(length).enumerate() {
                    out.extend(spectrum::from_values(
                        &format!("{what}[{i}]"),
                        s.to_vec(),
                        length,
                    )?);
                }
            }
            "fits" | "fit" => {
                let fits = FitsFile::open(f)?;
                if desi::is_coadd(&fits) {
                    // Every spectrum of the coadd, in file order.
                    let coadd = desi::Coadd::open(&fits)?;
                    for (i, c) in coadd.spectra(0, coadd.rows())?.into_iter().enumerate() {
                        let c = c.with_context(|| {
                            format!(
                                "{what}: spectrum {i} has no valid pixel (all masked or IVAR = 0)"
                            )
                        })?;
                        out.extend(spectrum::from_values(&what, c.flux, length)?);
                    }
                } else {
                    out.extend(spectrum::from_fits(&what, &fits, None, length)?);
                }
            }
            _ => out.extend(spectrum::read_file(f, None, length)?),
        }
    }
    Ok(out)
}
