//! DESI coadd spectra (`coadd-*.fits`) and redrock redshifts (`redrock-*.fits`).
//!
//! A coadd holds N spectra: a `FIBERMAP` table (TARGETID, TARGET_RA, TARGET_DEC in
//! degrees, …) and, per spectrograph arm (b, r, z), `<ARM>_WAVELENGTH`, `<ARM>_FLUX`,
//! `<ARM>_IVAR` and `<ARM>_MASK`. The arms are combined onto the model's grid by
//! [`astrovec_encoders::input::desi`] — the same code that reads a coadd uploaded to the
//! server — and this reader adds positions and FIBERMAP attributes.
//!
//! A redrock file's `REDSHIFTS` table (TARGETID, Z, ZERR, ZWARN, SPECTYPE) is
//! joined by TARGETID: its values become the attributes `redshift`,
//! `redshift_err`, `zwarn` and `spectype`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use astrovec_engine::{AttrValue, AttributeDef, AttributeKind};

use super::error::Result;
use super::mapping::Mapping;
use super::plan::{Ignored, PlannedAttribute};
use super::read::Batches;
use super::row::{check_position, Row, RowOutcome};
use astrovec_encoders::input::desi::{self, ids_of, Coadd};

use crate::fits::{FitsFile, Hdu};

/// A redrock fit of one target.
#[derive(Debug, Clone, PartialEq)]
pub struct Redshift {
    /// Redshift.
    pub z: f64,
    /// Its error.
    pub zerr: f64,
    /// Redrock warning bits (0 = a good fit).
    pub zwarn: i64,
    /// Best template class (GALAXY, QSO, STAR).
    pub spectype: String,
}

/// Redshifts by TARGETID, from one or more redrock files.
pub type Redshifts = HashMap<u64, Redshift>;

/// True when `fits` is a redrock output (it has a `REDSHIFTS` table).
pub fn is_redrock(fits: &FitsFile) -> bool {
    fits.find("REDSHIFTS").is_some_and(Hdu::is_table)
}

/// True when `fits` is a coadd (a `FIBERMAP` and at least one `<ARM>_FLUX` image).
pub fn is_coadd(fits: &FitsFile) -> bool {
    desi::is_coadd(fits)
}

/// Reads the `REDSHIFTS` table of a redrock file into `into`.
pub fn read_redrock(path: &Path, into: &mut Redshifts) -> Result<()> {
    let fits = FitsFile::open(path)?;
    let t = fits.hdu("REDSHIFTS")?;
    let n = t.rows()?;
    let ids = ids_of(t, &t.column("TARGETID")?, 0, n)?;
    let z = t.column_f64(&t.column("Z")?, 0, n)?;
    let zerr = t.column_f64(&t.column("ZERR")?, 0, n)?;
    let zwarn = t.column_i128(&t.column("ZWARN")?, 0, n)?;
    let spectype = t.column_str(&t.column("SPECTYPE")?, 0, n)?;
    for (k, id) in ids.into_iter().enumerate() {
        if let Some(id) = id {
            into.insert(
                id,
                Redshift {
                    z: z[k],
                    zerr: zerr[k],
                    zwarn: zwarn[k] as i64,
                    spectype: spectype[k].clone(),
                },
            );
        }
    }
    Ok(())
}

/// The attributes a redrock join adds.
pub fn redrock_attributes() -> Vec<PlannedAttribute> {
    let def = |column: &str, name: &str, kind, unit: &str| PlannedAttribute {
        column: format!("REDSHIFTS.{column}"),
        def: AttributeDef {
            name: name.into(),
            kind,
            unit: unit.into(),
        },
    };
    vec![
        def("Z", "redshift", AttributeKind::Float, ""),
        def("ZERR", "redshift_err", AttributeKind::Float, ""),
        def("ZWARN", "zwarn", AttributeKind::Int, ""),
        def("SPECTYPE", "spectype", AttributeKind::Category, ""),
    ]
}

/// FIBERMAP columns read as attributes: those named in the mapping's
/// `[attributes]` (FITS sources keep no unnamed column: a FIBERMAP has ~80).
pub fn fibermap_attributes(
    path: &Path,
    mapping: &Mapping,
) -> Result<(Vec<PlannedAttribute>, Vec<Ignored>)> {
    let fits = FitsFile::open(path)?;
    let fm = fits.hdu("FIBERMAP")?;
    let cols = fm.columns()?;
    let mut out = Vec::new();
    for (name, spec) in &mapping.attributes {
        let col = fm.column(name)?;
        let kind = spec.kind().unwrap_or(match col.code {
            'A' => AttributeKind::Category,
            'E' | 'D' => AttributeKind::Float,
            _ => AttributeKind::Int,
        });
        out.push(PlannedAttribute {
            column: col.name.clone(),
            def: AttributeDef {
                name: spec.name().to_string(),
                kind,
                unit: if spec.unit().is_empty() {
                    col.unit.clone().unwrap_or_default()
                } else {
                    spec.unit().to_string()
                },
            },
        });
    }
    let used = ["TARGETID", "TARGET_RA", "TARGET_DEC"];
    let ignored = cols
        .iter()
        .filter(|c| !used.contains(&c.name.as_str()) && !out.iter().any(|a| a.column == c.name))
        .map(|c| {
            (
                format!("FIBERMAP.{}", c.name),
                "FITS readers keep only the mapping's [attributes]".to_string(),
            )
        })
        .collect();
    Ok((out, ignored))
}

/// One coadd file being read.
pub struct CoaddSource {
    path: PathBuf,
    coadd: Coadd,
    redshifts: Option<Arc<Redshifts>>,
    attributes: Vec<PlannedAttribute>,
}

impl CoaddSource {
    /// Opens a coadd and checks its layout ([`Coadd::open`], plus FIBERMAP's
    /// TARGET_RA and TARGET_DEC). `attributes` are FIBERMAP columns (from
    /// [`fibermap_attributes`]).
    pub fn open(
        path: &Path,
        redshifts: Option<Arc<Redshifts>>,
        attributes: Vec<PlannedAttribute>,
    ) -> Result<Self> {
        let fits = FitsFile::open(path)?;
        let coadd = Coadd::open(&fits)?;
        let fm = fits.hdu("FIBERMAP")?;
        for c in ["TARGET_RA", "TARGET_DEC"] {
            fm.column(c)?;
        }
        for a in &attributes {
            fm.column(&a.column)?;
        }
        Ok(CoaddSource {
            path: path.to_path_buf(),
            coadd,
            redshifts,
            attributes,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Spectra in the file.
    pub fn len(&self) -> u64 {
        self.coadd.rows() as u64
    }

    /// True when the file has no spectra.
    pub fn is_empty(&self) -> bool {
        self.coadd.rows() == 0
    }

    /// TARGETIDs of spectra `0..end` (`None` for negative ids: sky fibres, unassigned).
    pub fn ids(&self, end: u64) -> Result<Vec<Option<u64>>> {
        let end = end.min(self.len()) as usize;
        Ok(self.coadd.ids(0, end)?)
    }

    /// Spectra from `start` on, in batches of `batch`.
    pub fn read_from(&self, start: u64, batch: usize) -> Result<Batches<'_>> {
        let batch = batch.max(1) as u64;
        let rows = self.len();
        let starts: Vec<u64> = (start..rows).step_by(batch as usize).collect();
        Ok(Box::new(starts.into_iter().map(move |s| {
            let n = batch.min(rows - s) as usize;
            self.read_rows(s as usize, n)
        })))
    }

    fn read_rows(&self, start: usize, n: usize) -> Result<Vec<RowOutcome>> {
        let fm = self.coadd.fits().hdu("FIBERMAP")?;
        let ids = self.coadd.ids(start, n)?;
        let ra = fm.column_f64(&fm.column("TARGET_RA")?, start, n)?;
        let dec = fm.column_f64(&fm.column("TARGET_DEC")?, start, n)?;
        let mut attr_values: Vec<Vec<Option<AttrValue>>> = Vec::new();
        for a in &self.attributes {
            let col = fm.column(&a.column)?;
            let vals: Vec<Option<AttrValue>> = if col.code == 'A' {
                fm.column_str(&col, start, n)?
                    .into_iter()
                    .map(|s| Some(AttrValue::Category(s)))
                    .collect()
            } else {
                let v = fm.column_f64(&col, start, n)?;
                let per = col.repeat.max(1);
                (0..n)
                    .map(|r| {
                        let x = v[r * per];
                        match a.def.kind {
                            _ if !x.is_finite() => None,
                            AttributeKind::Float => Some(AttrValue::Float(x)),
                            AttributeKind::Int => Some(AttrValue::Int(x as i64)),
                            AttributeKind::Category => Some(AttrValue::Category(x.to_string())),
                        }
                    })
                    .collect()
            };
            attr_values.push(vals);
        }
        // Combined in parallel; `spectra` keeps the order of the rows.
        let mut spectra = self.coadd.spectra(start, n)?;
        let outcomes = (0..n)
            .map(|r| {
                let row = (start + r) as u64;
                let Some(id) = ids[r] else {
                    return RowOutcome {
                        row,
                        id: None,
                        result: Err("FIBERMAP.TARGETID: id is negative (sky fibre or unassigned)".into()),
                    };
                };
                let result = (|| -> std::result::Result<Row, String> {
                    let (ra, dec) = (ra[r], dec[r]);
                    check_position("FIBERMAP.TARGET_RA", ra, "FIBERMAP.TARGET_DEC", dec)?;
                    let combined = spectra[r].take().ok_or(
                        "spectrum has no valid pixel on the 3600–9824 Å grid (all masked or IVAR = 0)",
                    )?;
                    let mut attributes: Vec<(String, AttrValue)> = self
                        .attributes
                        .iter()
                        .zip(&attr_values)
                        .filter_map(|(a, v)| v[r].clone().map(|v| (a.def.name.clone(), v)))
                        .collect();
                    if let Some(z) = self.redshifts.as_ref().and_then(|m| m.get(&id)) {
                        if z.z.is_finite() {
                            attributes.push(("redshift".into(), AttrValue::Float(z.z)));
                        }
                        if z.zerr.is_finite() {
                            attributes.push(("redshift_err".into(), AttrValue::Float(z.zerr)));
                        }
                        attributes.push(("zwarn".into(), AttrValue::Int(z.zwarn)));
                        attributes.push(("spectype".into(), AttrValue::Category(z.spectype.clone())));
                    }
                    Ok(Row {
                        id,
                        ra,
                        dec,
                        attributes,
                        image: None,
                        spectrum: Some(combined.flux),
                        embeddings: Default::default(),
                    })
                })();
                RowOutcome {
                    row,
                    id: Some(id),
                    result,
                }
            })
            .collect();
        Ok(outcomes)
    }
}
