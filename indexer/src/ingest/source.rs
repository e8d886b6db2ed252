//! Inputs of an ingest behind one trait, so the pipeline reads any of them the same
//! way: rows in file order, from any starting row, plus the ids alone (to rebuild
//! the duplicate check on `--resume`).

use std::path::Path;

use std::path::PathBuf;

use super::desi::{self, CoaddSource};
use super::error::{IngestError, Result};
use super::mapping::Mapping;
use super::parquet::{ParquetSource, Plan};
use super::row::RowOutcome;
use crate::fits::FitsFile;

/// Batches of row outcomes.
pub type Batches<'a> = Box<dyn Iterator<Item = Result<Vec<RowOutcome>>> + 'a>;

/// A catalog input.
pub trait Source: Send {
    /// The file (or directory) read.
    fn path(&self) -> &Path;
    /// Number of rows.
    fn len(&self) -> u64;
    /// True when there are no rows.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Rows from `start` on, in batches of about `batch` rows.
    fn read_from(&self, start: u64, batch: usize) -> Result<Batches<'_>>;
    /// The ids of rows `0..end` (`None` where a row has no valid id).
    fn ids(&self, end: u64) -> Result<Vec<Option<u64>>>;
}

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

/// What an input file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Parquet,
    /// A DESI coadd (spectra).
    Coadd,
    /// A redrock file: redshifts joined to the coadds by TARGETID, not rows.
    Redrock,
}

impl Kind {
    fn describe(self) -> &'static str {
        match self {
            Kind::Parquet => "Parquet catalog",
            Kind::Coadd => "DESI coadd",
            Kind::Redrock => "redrock redshift file",
        }
    }
}

fn extension(p: &Path) -> String {
    p.extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}

fn classify(p: &Path) -> Result<Kind> {
    match extension(p).as_str() {
        "parquet" | "pq" => Ok(Kind::Parquet),
        "fits" | "fit" => {
            let f = FitsFile::open(p)?;
            if desi::is_coadd(&f) {
                Ok(Kind::Coadd)
            } else if desi::is_redrock(&f) {
                Ok(Kind::Redrock)
            } else {
                Err(IngestError::invalid(
                    "input",
                    format!(
                        "{}: a FITS file that is neither a DESI coadd (FIBERMAP + <ARM>_FLUX HDUs) \
                         nor a redrock file (REDSHIFTS table)",
                        p.display()
                    ),
                ))
            }
        }
        _ => Err(IngestError::invalid(
            "input",
            format!(
                "{}: unsupported input (expected .parquet, or .fits DESI coadd/redrock files)",
                p.display()
            ),
        )),
    }
}

/// Opens every input under one plan made from the first. Inputs are Parquet
/// catalogs, or DESI coadd FITS files (with redrock files among the inputs to
/// join their redshifts); kinds cannot be mixed.
pub fn open_sources(
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
        .filter(|(_, k)| *k != Kind::Redrock)
        .collect();
    let Some(&(first, kind)) = rows.first() else {
        return Err(IngestError::invalid(
            "inputs",
            "only redrock files given: add the coadd files whose redshifts they hold",
        ));
    };
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
                    "DESI coadds hold no precomputed embeddings (use a Parquet catalog)",
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
        Kind::Redrock => unreachable!("filtered above"),
    }
}
