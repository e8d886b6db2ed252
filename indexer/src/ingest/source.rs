//! The dispatcher of an ingest's inputs: tells each input's kind (by extension,
//! or by content for FITS), checks that one ingest reads one kind, and opens every
//! input with its reader under one plan, behind the [`Source`] trait of
//! [`super::read`]. The only module that knows every reader.

use std::path::{Path, PathBuf};

use super::desi::{self, CoaddSource};
use super::error::{IngestError, Result};
use super::hdf5::Hdf5Source;
use super::images::{self, FileModality, FileSetSource};
use super::mapping::Mapping;
use super::npy;
use super::parquet::ParquetSource;
use super::plan::{Plan, PlannedAttribute, POSITION_KNOWN};
pub use super::read::{Batches, Source};
use crate::fits::FitsFile;

impl Source for ParquetSource {
    fn path(&self) -> &Path {
        ParquetSource::path(self)
    }
    fn len(&self) -> u64 {
        ParquetSource::len(self)
    }
    fn read_from(&self, start: u64, batch: usize) -> Result<Batches<'_>> {
        Ok(Box::new(ParquetSource::read_from(self, start, batch)?))
    }
    fn ids(&self, end: u64) -> Result<Vec<Option<u64>>> {
        ParquetSource::ids(self, end)
    }
}

impl Source for CoaddSource {
    fn path(&self) -> &Path {
        CoaddSource::path(self)
    }
    fn len(&self) -> u64 {
        CoaddSource::len(self)
    }
    fn read_from(&self, start: u64, batch: usize) -> Result<Batches<'_>> {
        CoaddSource::read_from(self, start, batch)
    }
    fn ids(&self, end: u64) -> Result<Vec<Option<u64>>> {
        CoaddSource::ids(self, end)
    }
}

impl Source for FileSetSource {
    fn path(&self) -> &Path {
        FileSetSource::path(self)
    }
    fn len(&self) -> u64 {
        FileSetSource::len(self)
    }
    fn read_from(&self, start: u64, batch: usize) -> Result<Batches<'_>> {
        FileSetSource::read_from(self, start, batch)
    }
    fn ids(&self, end: u64) -> Result<Vec<Option<u64>>> {
        FileSetSource::ids(self, end)
    }
    fn bytes(&self) -> Result<u64> {
        FileSetSource::bytes(self)
    }
}

impl Source for Hdf5Source {
    fn path(&self) -> &Path {
        Hdf5Source::path(self)
    }
    fn len(&self) -> u64 {
        Hdf5Source::len(self)
    }
    fn read_from(&self, start: u64, batch: usize) -> Result<Batches<'_>> {
        Hdf5Source::read_from(self, start, batch)
    }
    fn ids(&self, end: u64) -> Result<Vec<Option<u64>>> {
        Hdf5Source::ids(self, end)
    }
}

/// What an input file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Parquet,
    /// A DESI coadd (spectra).
    Coadd,
    /// A redrock file: redshifts joined to the coadds by TARGETID, not rows.
    Redrock,
    /// A cutout file (JPEG/PNG RGB, FITS g, r, z) or a directory of them.
    Images,
    /// A spectrum file (`.npy`, FITS, TXT/TSV) or a directory of them (CSV too).
    Spectra,
    /// A sidecar CSV of ids, positions and labels for images.
    Csv,
    /// An HDF5 catalog (AstroCLIP or Multimodal-Universe layout).
    Hdf5,
}

impl Kind {
    fn describe(self) -> &'static str {
        match self {
            Kind::Parquet => "Parquet catalog",
            Kind::Coadd => "DESI coadd",
            Kind::Redrock => "redrock redshift file",
            Kind::Images => "set of image cutouts",
            Kind::Spectra => "set of spectrum files",
            Kind::Csv => "sidecar CSV",
            Kind::Hdf5 => "HDF5 catalog",
        }
    }
}

fn classify(p: &Path) -> Result<Kind> {
    if p.is_dir() {
        return Ok(match images::modality_of_dir(p)? {
            FileModality::Image => Kind::Images,
            FileModality::Spectrum => Kind::Spectra,
        });
    }
    match astrovec_encoders::input::extension(p).as_str() {
        "jpg" | "jpeg" | "png" => Ok(Kind::Images),
        "npy" | "txt" | "tsv" => Ok(Kind::Spectra),
        "csv" => Ok(Kind::Csv),
        "h5" | "hdf5" | "hdf" => Ok(Kind::Hdf5),
        "parquet" | "pq" => Ok(Kind::Parquet),
        "fits" | "fit" => {
            let f = FitsFile::open(p)?;
            if desi::is_coadd(&f) {
                Ok(Kind::Coadd)
            } else if desi::is_redrock(&f) {
                Ok(Kind::Redrock)
            } else if images::is_fits_cutout(&f) || f.hdus().iter().all(|h| h.is_table()) {
                // Cutouts; a file with no image at all is read as one too and
                // rejected with the reason.
                Ok(Kind::Images)
            } else {
                // An image HDU that is not a [3, H, W] cutout: the flux of a spectrum.
                Ok(Kind::Spectra)
            }
        }
        _ => Err(IngestError::invalid(
            "input",
            format!(
                "{}: unsupported input (expected .parquet; .h5/.hdf5; .fits DESI coadd, redrock, \
                 cutout or spectrum files; .jpg/.png cutouts; .npy/.txt/.tsv spectra; a directory \
                 of cutouts or of spectra; a .csv of labels)",
                p.display()
            ),
        )),
    }
}

/// Opens every input under one plan made from the first; precomputed embeddings
/// named as `.npy` files in the mapping are attached to the rows of any reader
/// (see [`super::npy`]).
pub fn open_sources(
    inputs: &[std::path::PathBuf],
    mapping: &Mapping,
    min_image_size: usize,
) -> Result<(Vec<Box<dyn Source>>, Plan)> {
    let npy_files: Vec<(String, String)> = mapping
        .embeddings
        .iter()
        .filter(|(_, v)| npy::is_npy(v))
        .map(|(m, v)| (m.clone(), v.clone()))
        .collect();
    if npy_files.is_empty() {
        return open_readers(inputs, mapping, min_image_size);
    }
    let mut rest = mapping.clone();
    rest.embeddings.retain(|_, v| !npy::is_npy(v));
    let (sources, mut plan) = open_readers(inputs, &rest, min_image_size)?;
    let files = npy_files
        .iter()
        .map(|(m, p)| npy::NpyEmbeddings::open(m, Path::new(p)))
        .collect::<Result<Vec<_>>>()?;
    for f in &files {
        plan.embeddings
            .push((f.modality.clone(), f.path.display().to_string(), f.dim));
    }
    Ok((npy::WithNpy::wrap(sources, files)?, plan))
}

/// Opens every input under one plan made from the first. Inputs are Parquet
/// catalogs, HDF5 catalogs, DESI coadd FITS files (with redrock files among the
/// inputs to join their redshifts) or image cutouts (with a sidecar CSV); kinds
/// cannot be mixed.
fn open_readers(
    inputs: &[std::path::PathBuf],
    mapping: &Mapping,
    min_image_size: usize,
) -> Result<(Vec<Box<dyn Source>>, Plan)> {
    if inputs.is_empty() {
        return Err(IngestError::invalid("inputs", "no input files given"));
    }
    let mut kinds = Vec::with_capacity(inputs.len());
    for p in inputs {
        if !p.exists() {
            return Err(IngestError::io(
                p,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            ));
        }
        kinds.push(classify(p)?);
    }
    let rows: Vec<(&PathBuf, Kind)> = inputs
        .iter()
        .zip(kinds.iter().copied())
        .filter(|(_, k)| !matches!(k, Kind::Redrock | Kind::Csv))
        .collect();
    let Some(&(first, kind)) = rows.first() else {
        return Err(IngestError::invalid(
            "inputs",
            "only redrock or CSV files given: add the coadds or images they describe",
        ));
    };
    let side = |k: Kind| inputs.iter().zip(&kinds).filter(move |(_, x)| **x == k);
    if kind != Kind::Coadd {
        if let Some((p, _)) = side(Kind::Redrock).next() {
            return Err(IngestError::invalid(
                "inputs",
                format!("{}: redrock files go with DESI coadds", p.display()),
            ));
        }
    }
    if kind != Kind::Images && kind != Kind::Spectra {
        if let Some((p, _)) = side(Kind::Csv).next() {
            return Err(IngestError::invalid(
                "inputs",
                format!(
                    "{}: a sidecar CSV goes with image or spectrum files",
                    p.display()
                ),
            ));
        }
    }
    if let Some((p, k)) = rows.iter().find(|(_, k)| *k != kind) {
        return Err(IngestError::invalid(
            "inputs",
            format!(
                "{} is a {}, {} a {}: one ingest reads one kind of input",
                p.display(),
                k.describe(),
                first.display(),
                kind.describe()
            ),
        ));
    }
    match kind {
        Kind::Parquet => {
            let plan = Plan::new(first, mapping, min_image_size)?;
            let sources = rows
                .iter()
                .map(|(p, _)| Ok(Box::new(ParquetSource::open(p, &plan)?) as Box<dyn Source>))
                .collect::<Result<Vec<_>>>()?;
            Ok((sources, plan))
        }
        Kind::Coadd => {
            if !mapping.embeddings.is_empty() {
                return Err(IngestError::invalid(
                    "embeddings",
                    "DESI coadds hold no embedding columns (name .npy files in [embeddings])",
                ));
            }
            let mut redshifts = desi::Redshifts::new();
            let mut any_redrock = false;
            for (p, k) in inputs.iter().zip(&kinds) {
                if *k == Kind::Redrock {
                    desi::read_redrock(p, &mut redshifts)?;
                    any_redrock = true;
                }
            }
            let redshifts = any_redrock.then(|| std::sync::Arc::new(redshifts));
            let (fibermap, ignored) = desi::fibermap_attributes(first, mapping)?;
            let mut attributes = fibermap.clone();
            if any_redrock {
                attributes.extend(desi::redrock_attributes());
            }
            let plan = Plan {
                id: "FIBERMAP.TARGETID".into(),
                ra: "FIBERMAP.TARGET_RA".into(),
                dec: "FIBERMAP.TARGET_DEC".into(),
                image: None,
                image_layout: Default::default(),
                spectrum: Some("<ARM>_FLUX/IVAR/MASK combined on the 7,781-pixel grid".into()),
                embeddings: Vec::new(),
                attributes,
                ignored,
                min_image_size,
            };
            let sources = rows
                .iter()
                .map(|(p, _)| {
                    Ok(
                        Box::new(CoaddSource::open(p, redshifts.clone(), fibermap.clone())?)
                            as Box<dyn Source>,
                    )
                })
                .collect::<Result<Vec<_>>>()?;
            Ok((sources, plan))
        }
        Kind::Images | Kind::Spectra => {
            let modality = if kind == Kind::Images {
                FileModality::Image
            } else {
                FileModality::Spectrum
            };
            if !mapping.embeddings.is_empty() {
                return Err(IngestError::invalid(
                    "embeddings",
                    "image and spectrum files hold no embedding columns (name .npy files in [embeddings])",
                ));
            }
            let csvs: Vec<&PathBuf> = side(Kind::Csv).map(|(p, _)| p).collect();
            if csvs.len() > 1 {
                return Err(IngestError::invalid(
                    "inputs",
                    format!("{} sidecar CSVs given; merge them into one", csvs.len()),
                ));
            }
            let sidecar = csvs
                .first()
                .map(|p| images::Sidecar::read(p, mapping))
                .transpose()?
                .map(std::sync::Arc::new);
            let (mut attributes, ignored) = match &sidecar {
                Some(s) => s.attributes(mapping)?,
                None => (Vec::new(), Vec::new()),
            };
            let labels = attributes.clone();
            attributes.push(PlannedAttribute {
                column: "(position source)".into(),
                def: astrovec_engine::AttributeDef {
                    name: POSITION_KNOWN.into(),
                    kind: astrovec_engine::AttributeKind::Int,
                    unit: String::new(),
                },
            });
            // Directories are one input each; loose files are grouped in order.
            let mut sources: Vec<Box<dyn Source>> = Vec::new();
            let mut loose: Vec<PathBuf> = Vec::new();
            let group = |files: Vec<PathBuf>, path: PathBuf| -> Box<dyn Source> {
                Box::new(FileSetSource::new(
                    path,
                    files,
                    modality,
                    sidecar.clone(),
                    labels.clone(),
                    min_image_size,
                ))
            };
            let parent = |f: &Path| f.parent().unwrap_or(Path::new(".")).to_path_buf();
            for (p, _) in &rows {
                if p.is_dir() {
                    if !loose.is_empty() {
                        let dir = parent(&loose[0]);
                        sources.push(group(std::mem::take(&mut loose), dir));
                    }
                    sources.push(group(images::list_files(p, modality)?, (*p).clone()));
                } else {
                    loose.push((*p).clone());
                }
            }
            if !loose.is_empty() {
                let dir = parent(&loose[0]);
                sources.push(group(loose, dir));
            }
            let plan = Plan {
                id: match &sidecar {
                    Some(_) => "sidecar CSV id, else the digits of the file name".into(),
                    None => "the digits of the file name".into(),
                },
                ra: "sidecar CSV / FITS header RA".into(),
                dec: "sidecar CSV / FITS header DEC".into(),
                image: (modality == FileModality::Image)
                    .then(|| "image files (JPEG/PNG RGB, FITS g, r, z)".into()),
                image_layout: Default::default(),
                spectrum: (modality == FileModality::Spectrum).then(|| {
                    "spectrum files (.npy, FITS, CSV/TXT/TSV on the 7,781-pixel grid)".into()
                }),
                embeddings: Vec::new(),
                attributes,
                ignored,
                min_image_size,
            };
            Ok((sources, plan))
        }
        Kind::Hdf5 => {
            let mut sources: Vec<Box<dyn Source>> = Vec::new();
            let mut plan: Option<Plan> = None;
            for (p, _) in &rows {
                let (src, pl) = Hdf5Source::open(p, mapping, min_image_size)?;
                match &plan {
                    None => plan = Some(pl),
                    Some(first_plan) => {
                        if first_plan.attributes != pl.attributes
                            || first_plan.embeddings != pl.embeddings
                            || first_plan.image.is_some() != pl.image.is_some()
                            || first_plan.spectrum.is_some() != pl.spectrum.is_some()
                        {
                            return Err(IngestError::invalid(
                                "inputs",
                                format!(
                                    "{} has other datasets than {}",
                                    p.display(),
                                    first.display()
                                ),
                            ));
                        }
                    }
                }
                sources.push(Box::new(src));
            }
            Ok((sources, plan.expect("at least one input")))
        }
        Kind::Redrock | Kind::Csv => unreachable!("filtered above"),
    }
}
