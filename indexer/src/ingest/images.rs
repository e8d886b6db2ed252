//! One object per file: image cutouts (JPEG/PNG RGB, FITS g, r, z planes) or
//! spectra (`.npy`, FITS, CSV/TXT/TSV on or resampled onto the model's grid), in
//! directories or listed one by one, with an optional sidecar CSV of ids,
//! positions and labels. Such a collection has one modality, `image` or
//! `spectrum`; every file is read by the encoders' `input` module, as uploads
//! and `astrovec embed` read it.
//!
//! - **Ids**: from the CSV when it has a `file` column (file name → row) and an
//!   id column (the mapping's `id`, else `id`); otherwise the last run of digits
//!   in the file name (`101654.jpg` → 101654, `gal_00042.png` → 42). A file
//!   without one is rejected.
//! - **Positions**: the CSV's `ra`/`dec` columns (the mapping's names, ICRS
//!   degrees), else a FITS header's `RA`/`DEC` or `CRVAL1`/`CRVAL2`; an image
//!   without a position is placed at (0°, 0°) and gets `position_known = 0`
//!   (1 otherwise), so cone searches can exclude it.
//! - **Labels**: the CSV's other columns become attributes (types inferred:
//!   integer, float or category; the mapping's `[attributes]` renames/retypes
//!   them, `unknown_columns = "ignore"` keeps only those named). CSV rows are
//!   joined by file name when there is a `file` column, else by id.
//! - **RGB** (JPEG/PNG, 8 or 16 bit, grey or RGB(A)): planes R, G, B in [0, 1],
//!   kept at full resolution (for the `image.png` blob). For the encoder, which
//!   expects the Legacy Survey viewer colours in channel order (z, r, g) — that
//!   is (R, G, B) for display — the picture is centre-cropped to a square and
//!   area-resampled to the model's input size ([`fit_rgb`]); its colours are
//!   taken as they are (an SDSS gri composite is not re-mapped, and its pixel
//!   scale is not matched to 0.262″).
//! - **FITS**: the first HDU holding a `[3, H, W]` image, bands g, r, z in
//!   nanomaggies (reordered by `BAND0..2`/`BANDS` keywords when present); these
//!   go through `legacy_rgb` and the centre crop like the catalog cutouts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use astrovec_engine::{AttrValue, AttributeDef, AttributeKind};
use rayon::prelude::*;

use super::error::{IngestError, Result};
use super::mapping::{attribute_name_for, Mapping, UnknownColumns};
use super::plan::{Ignored, PlannedAttribute, POSITION_KNOWN};
use super::read::Batches;
use super::row::{check_position, Image, ImageKind, Row, RowOutcome, SPECTRUM_LEN};
use astrovec_encoders::input;

use crate::fits::FitsFile;

/// Extensions read as image files.
pub const IMAGE_EXTENSIONS: [&str; 5] = ["jpg", "jpeg", "png", "fits", "fit"];
/// Extensions read as spectrum files.
pub const SPECTRUM_EXTENSIONS: [&str; 6] = ["npy", "csv", "txt", "tsv", "fits", "fit"];

/// What a set of files holds, one object per file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileModality {
    /// Image cutouts.
    Image,
    /// Spectra.
    Spectrum,
}

impl FileModality {
    fn extensions(self) -> &'static [&'static str] {
        match self {
            FileModality::Image => &IMAGE_EXTENSIONS,
            FileModality::Spectrum => &SPECTRUM_EXTENSIONS,
        }
    }
}

/// True when `p` has an image file extension.
pub fn is_image_file(p: &Path) -> bool {
    IMAGE_EXTENSIONS.contains(&input::extension(p).as_str())
}

/// What a directory's files hold: spectra when it has no JPEG/PNG picture and either
/// `.npy`/`.csv`/`.txt`/`.tsv` files or a first FITS file without a `[3, H, W]` cutout;
/// images otherwise.
pub fn modality_of_dir(dir: &Path) -> Result<FileModality> {
    // One walk over the files of either kind.
    let files = walk(dir, &|ext: &str| {
        IMAGE_EXTENSIONS.contains(&ext) || SPECTRUM_EXTENSIONS.contains(&ext)
    })?;
    let ext = |p: &PathBuf| input::extension(p);
    if files
        .iter()
        .any(|p| matches!(ext(p).as_str(), "jpg" | "jpeg" | "png"))
    {
        return Ok(FileModality::Image);
    }
    if files
        .iter()
        .any(|p| !matches!(ext(p).as_str(), "fits" | "fit"))
    {
        return Ok(FileModality::Spectrum);
    }
    let spectra = match files.first() {
        Some(f) => !is_fits_cutout(&FitsFile::open(f)?),
        None => false,
    };
    Ok(if spectra {
        FileModality::Spectrum
    } else {
        FileModality::Image
    })
}

/// True when a FITS file holds a `[3, H, W]` image (a g, r, z cutout).
pub fn is_fits_cutout(fits: &FitsFile) -> bool {
    fits.hdus()
        .iter()
        .any(|h| !h.is_table() && h.shape().is_ok_and(|s| s.len() == 3 && s[0] == 3))
}

/// Every image file under `dir` (recursively), sorted by path.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    list_files(dir, FileModality::Image)
}

/// Every file of `modality`'s extensions under `dir` (recursively), sorted by path.
pub fn list_files(dir: &Path, modality: FileModality) -> Result<Vec<PathBuf>> {
    walk(dir, &|ext: &str| modality.extensions().contains(&ext))
}

/// Every file under `dir` (recursively) whose lower-case extension `keep` accepts,
/// sorted by path.
fn walk(dir: &Path, keep: &dyn Fn(&str) -> bool) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(|e| IngestError::io(&d, e))? {
            let p = entry.map_err(|e| IngestError::io(&d, e))?.path();
            if p.is_dir() {
                stack.push(p);
            } else if keep(&input::extension(&p)) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The last run of ASCII digits in the file stem, as an id.
pub fn id_from_file_name(p: &Path) -> Option<u64> {
    let stem = p.file_stem()?.to_str()?;
    let end = stem.rfind(|c: char| c.is_ascii_digit())? + 1;
    let start = stem[..end]
        .rfind(|c: char| !c.is_ascii_digit())
        .map_or(0, |i| i + 1);
    stem[start..end].parse().ok()
}

/// Splits one CSV line (RFC 4180 quoting: `"a, b"`, `""` for a quote).
fn csv_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter().map(|f| f.trim().to_string()).collect()
}

/// A sidecar CSV: header and rows of cells.
#[derive(Debug, Clone)]
pub struct Sidecar {
    path: PathBuf,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    /// Column joined on the file name, if any.
    file_col: Option<usize>,
    /// Id column, if any.
    id_col: Option<usize>,
    ra_col: Option<usize>,
    dec_col: Option<usize>,
    /// Row index by file name, or by id.
    by_file: HashMap<String, usize>,
    by_id: HashMap<u64, usize>,
}

impl Sidecar {
    /// Reads `path` (first line = header). Errors name the file, line and column.
    pub fn read(path: &Path, mapping: &Mapping) -> Result<Sidecar> {
        let text = std::fs::read_to_string(path).map_err(|e| IngestError::io(path, e))?;
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let header = csv_fields(
            lines
                .next()
                .ok_or_else(|| IngestError::malformed(path, None, Some(0), "empty CSV"))?,
        );
        let mut rows = Vec::new();
        for (k, l) in lines.enumerate() {
            let f = csv_fields(l);
            if f.len() != header.len() {
                return Err(IngestError::malformed(
                    path,
                    None,
                    Some(k as u64 + 1),
                    format!("{} fields, the header has {}", f.len(), header.len()),
                ));
            }
            rows.push(f);
        }
        let col = |names: &[&str]| {
            header
                .iter()
                .position(|h| names.iter().any(|n| h.eq_ignore_ascii_case(n)))
        };
        let file_col = col(&["file", "filename", "path"]);
        let id_col = col(&[mapping.id.as_str(), "id"]);
        let (ra_col, dec_col) = (col(&[mapping.ra.as_str()]), col(&[mapping.dec.as_str()]));
        if file_col.is_none() && id_col.is_none() {
            return Err(IngestError::malformed(
                path,
                Some(&mapping.id),
                None,
                "the CSV needs a `file` column or an id column (`id` or the mapping's id) to join images",
            ));
        }
        let mut s = Sidecar {
            path: path.to_path_buf(),
            header,
            rows,
            file_col,
            id_col,
            ra_col,
            dec_col,
            by_file: HashMap::new(),
            by_id: HashMap::new(),
        };
        for (r, row) in s.rows.iter().enumerate() {
            if let Some(c) = file_col {
                let name = Path::new(&row[c])
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                s.by_file.insert(name, r);
            } else if let Some(c) = id_col {
                let id = row[c].parse::<u64>().map_err(|_| {
                    IngestError::malformed(
                        path,
                        Some(&s.header[c]),
                        Some(r as u64 + 1),
                        format!("`{}` is not an id (an integer ≥ 0)", row[c]),
                    )
                })?;
                s.by_id.insert(id, r);
            }
        }
        Ok(s)
    }

    /// The attributes its label columns give, and the columns not used.
    pub fn attributes(&self, mapping: &Mapping) -> Result<(Vec<PlannedAttribute>, Vec<Ignored>)> {
        let roles = [self.file_col, self.id_col, self.ra_col, self.dec_col];
        let mut attrs = Vec::new();
        let mut ignored = Vec::new();
        for name in mapping.attributes.keys() {
            if !self.header.iter().any(|h| h == name) {
                return Err(IngestError::malformed(
                    &self.path,
                    Some(name),
                    None,
                    "missing column (named in the mapping's attributes)",
                ));
            }
        }
        for (c, h) in self.header.iter().enumerate() {
            if roles.contains(&Some(c)) {
                continue;
            }
            let values = self
                .rows
                .iter()
                .map(|r| r[c].as_str())
                .filter(|v| !v.is_empty());
            let inferred = if values.clone().all(|v| v.parse::<i64>().is_ok()) {
                AttributeKind::Int
            } else if values.clone().all(|v| v.parse::<f64>().is_ok()) {
                AttributeKind::Float
            } else {
                AttributeKind::Category
            };
            let def = match mapping.attributes.get(h) {
                Some(spec) => AttributeDef {
                    name: spec.name().to_string(),
                    kind: spec.kind().unwrap_or(inferred),
                    unit: spec.unit().to_string(),
                },
                None if mapping.ignore.contains(h) => {
                    ignored.push((h.clone(), "listed in the mapping's `ignore`".into()));
                    continue;
                }
                None if mapping.unknown_columns == UnknownColumns::Ignore => {
                    ignored.push((
                        h.clone(),
                        "not named in the mapping (unknown_columns = \"ignore\")".into(),
                    ));
                    continue;
                }
                None => match attribute_name_for(h) {
                    Some(name) if name != POSITION_KNOWN => AttributeDef {
                        name,
                        kind: inferred,
                        unit: String::new(),
                    },
                    _ => {
                        ignored.push((h.clone(), "no valid attribute name".into()));
                        continue;
                    }
                },
            };
            attrs.push(PlannedAttribute {
                column: h.clone(),
                def,
            });
        }
        Ok((attrs, ignored))
    }

    fn row_for(&self, file: &Path, id: Option<u64>) -> Option<&[String]> {
        let r = if self.file_col.is_some() {
            let name = file.file_name()?.to_string_lossy();
            self.by_file.get(name.as_ref())
        } else {
            self.by_id.get(&id?)
        };
        r.map(|&r| self.rows[r].as_slice())
    }
}

/// A set of files, one object each, read as one input.
pub struct FileSetSource {
    path: PathBuf,
    files: Vec<PathBuf>,
    modality: FileModality,
    sidecar: Option<std::sync::Arc<Sidecar>>,
    attributes: Vec<PlannedAttribute>,
    min_image_size: usize,
}

impl FileSetSource {
    /// A source over `files` (in this order) holding `modality`, identified by
    /// `path` (the directory they were listed from). `attributes` come from
    /// [`Sidecar::attributes`]; `min_image_size` is the smallest cutout side
    /// accepted (the encoder's crop).
    pub fn new(
        path: PathBuf,
        files: Vec<PathBuf>,
        modality: FileModality,
        sidecar: Option<std::sync::Arc<Sidecar>>,
        attributes: Vec<PlannedAttribute>,
        min_image_size: usize,
    ) -> Self {
        FileSetSource {
            path,
            files,
            modality,
            sidecar,
            attributes,
            min_image_size,
        }
    }

    /// The directory (or first file's directory).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of files.
    pub fn len(&self) -> u64 {
        self.files.len() as u64
    }

    /// True without files.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Total size of the files, bytes (identifies the input on `--resume`).
    pub fn bytes(&self) -> Result<u64> {
        self.files.iter().try_fold(0u64, |acc, f| {
            Ok(acc
                + std::fs::metadata(f)
                    .map_err(|e| IngestError::io(f, e))?
                    .len())
        })
    }

    fn id_of(&self, file: &Path) -> Option<u64> {
        if let Some(s) = &self.sidecar {
            if let (Some(_), Some(c)) = (s.file_col, s.id_col) {
                // The CSV's id for this file, else the file name's digits.
                let csv_id = s
                    .row_for(file, None)
                    .and_then(|row| row.get(c)?.parse().ok());
                return csv_id.or_else(|| id_from_file_name(file));
            }
        }
        id_from_file_name(file)
    }

    /// Ids of files `0..end`.
    pub fn ids(&self, end: u64) -> Result<Vec<Option<u64>>> {
        Ok(self.files[..(end as usize).min(self.files.len())]
            .iter()
            .map(|f| self.id_of(f))
            .collect())
    }

    /// Images from `start` on, in batches of `batch`.
    pub fn read_from(&self, start: u64, batch: usize) -> Result<Batches<'_>> {
        let starts: Vec<usize> = (start as usize..self.files.len())
            .step_by(batch.max(1))
            .collect();
        Ok(Box::new(starts.into_iter().map(move |s| {
            let end = (s + batch.max(1)).min(self.files.len());
            Ok((s..end).into_par_iter().map(|i| self.read_one(i)).collect())
        })))
    }

    fn read_one(&self, i: usize) -> RowOutcome {
        let file = &self.files[i];
        let name = file.display();
        let id = self.id_of(file);
        let result = (|| -> std::result::Result<Row, String> {
            let (image, spectrum, header_pos) = match self.modality {
                FileModality::Image => {
                    let (image, pos) = read_image(file, self.min_image_size)?;
                    (Some(image), None, pos)
                }
                FileModality::Spectrum => {
                    let flux = input::spectrum::read_file(file, None, SPECTRUM_LEN)
                        .map_err(|e| e.to_string())?;
                    (None, Some(flux), None)
                }
            };
            let id = id.ok_or_else(|| {
                format!("{name}: no id (no digits in the file name and no CSV row with one)")
            })?;
            let csv = self
                .sidecar
                .as_ref()
                .and_then(|s| s.row_for(file, Some(id)));
            let sidecar = self.sidecar.as_deref();
            let num = |col: Option<usize>| -> std::result::Result<Option<f64>, String> {
                match (csv, col) {
                    (Some(row), Some(c)) if !row[c].is_empty() => {
                        row[c].parse::<f64>().map(Some).map_err(|_| {
                            format!(
                                "CSV column {}: `{}` is not a number",
                                sidecar.expect("row").header[c],
                                row[c]
                            )
                        })
                    }
                    _ => Ok(None),
                }
            };
            let csv_pos = match (
                num(sidecar.and_then(|s| s.ra_col))?,
                num(sidecar.and_then(|s| s.dec_col))?,
            ) {
                (Some(ra), Some(dec)) => Some((ra, dec)),
                _ => None,
            };
            let pos = csv_pos.or(header_pos);
            if let Some((ra, dec)) = pos {
                check_position("ra", ra, "dec", dec)?;
            }
            let (ra, dec) = pos.unwrap_or((0.0, 0.0));
            let mut attributes = vec![(
                POSITION_KNOWN.to_string(),
                AttrValue::Int(pos.is_some() as i64),
            )];
            if let (Some(row), Some(s)) = (csv, sidecar) {
                for a in &self.attributes {
                    let c = s
                        .header
                        .iter()
                        .position(|h| *h == a.column)
                        .expect("planned");
                    let v = &row[c];
                    if v.is_empty() {
                        continue;
                    }
                    let value = match a.def.kind {
                        AttributeKind::Int => v.parse().map(AttrValue::Int).ok(),
                        AttributeKind::Float => v
                            .parse::<f64>()
                            .ok()
                            .filter(|x| x.is_finite())
                            .map(AttrValue::Float),
                        AttributeKind::Category => Some(AttrValue::Category(v.clone())),
                    };
                    match value {
                        Some(v) => attributes.push((a.def.name.clone(), v)),
                        None => {
                            return Err(format!(
                                "CSV column {}: `{v}` is not a valid {:?}",
                                a.column, a.def.kind
                            ))
                        }
                    }
                }
            }
            Ok(Row {
                id,
                ra,
                dec,
                attributes,
                image,
                spectrum,
                embeddings: Default::default(),
            })
        })();
        RowOutcome {
            row: i as u64,
            id,
            result,
        }
    }
}

/// Reads one cutout file (through the encoders' [`input::image::read_file`], as uploads
/// and `astrovec embed` do): the image and, for FITS, the header position. An image the
/// model would refuse (too small, a non-finite pixel) is refused here, so the row is
/// rejected rather than failing its batch.
pub fn read_image(
    file: &Path,
    min_size: usize,
) -> std::result::Result<(Image, Option<(f64, f64)>), String> {
    let decoded = input::image::read_file(file, ImageKind::Grz, input::MAX_PIXELS)
        .map_err(|e| e.to_string())?;
    let img = decoded.image;
    // The model's own requirements, so an image it would refuse is a rejected row.
    img.check_for_model(&file.display().to_string(), min_size)
        .map_err(|e| e.to_string())?;
    Ok((img, decoded.position))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_from_the_last_digits_of_the_file_name() {
        assert_eq!(id_from_file_name(Path::new("a/101654.jpg")), Some(101654));
        assert_eq!(id_from_file_name(Path::new("gal_00042.png")), Some(42));
        assert_eq!(id_from_file_name(Path::new("dr9_3_x17b.fits")), Some(17));
        assert_eq!(id_from_file_name(Path::new("galaxy.png")), None);
        assert_eq!(csv_fields(r#"1,"a, ""b""",x "#), vec!["1", "a, \"b\"", "x"]);
    }
}
