//! HDF5 catalogs, in two layouts (told apart by their datasets):
//!
//! - **AstroCLIP** (the reference training data): groups `"0"`…`"9"`, each with
//!   `images` `[n, 152, 152, 3]` (g, r, z nanomaggies), `spectra` `[n, 7781, 1]`
//!   or `[n, 7781]`, `redshifts` `[n]` and `targetids` `[n]` (int64). Rows are the
//!   groups' rows in numeric group order. Those files carry no sky position:
//!   objects get `ra`/`dec` datasets when a group has them, else (0°, 0°) with
//!   the attribute `position_known = 0`. `redshifts` becomes `redshift`.
//! - **Multimodal-Universe style**: datasets at the root, one row per object: the
//!   id (the mapping's `id` if present, else `object_id`), `ra`/`dec` (degrees),
//!   an image (the mapping's `image`, else `image_array`; `[n, 3, H, W]` or
//!   `[n, H, W, 3]` g, r, z nanomaggies), a spectrum (the mapping's `spectrum`,
//!   else `spectrum_flux`; 7,781 pixels on the DESI grid), precomputed embeddings
//!   (the mapping's `[embeddings]`, `[n, d]`) and label columns: every other
//!   numeric `[n]` dataset becomes an attribute (kept or ignored as the mapping
//!   says; named ones renamed/retyped by `[attributes]`).
//!
//! Rows are read as hyperslabs of the pipeline's batch size, so memory stays
//! bounded however large the file.

use std::path::{Path, PathBuf};

use astrovec_engine::{AttrValue, AttributeDef, AttributeKind};
use hdf5_metno as h5;
use rayon::prelude::*;

use super::error::{IngestError, Result};
use super::mapping::{attribute_name_for, ImageLayout, Mapping, UnknownColumns};
use super::plan::{to_image, to_spectrum, Ignored, Plan, PlannedAttribute, POSITION_KNOWN};
use super::read::Batches;
use super::row::{check_finite, check_position, Row, RowOutcome};

/// Which layout a file has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Groups "0"…"9" with images/spectra/redshifts/targetids.
    AstroClip,
    /// Root datasets, one row per object.
    Mmu,
}

/// Datasets of one block of rows (a group, or the root).
#[derive(Debug, Clone, Default)]
struct Block {
    /// Group name ("" for the root).
    group: String,
    rows: usize,
    id: String,
    ra: Option<String>,
    dec: Option<String>,
    image: Option<String>,
    spectrum: Option<String>,
}

/// An HDF5 catalog being read.
pub struct Hdf5Source {
    path: PathBuf,
    layout: Layout,
    blocks: Vec<Block>,
    attributes: Vec<PlannedAttribute>,
    embeddings: Vec<(String, String, usize)>,
    min_image_size: usize,
    /// Whether rows carry `position_known` (some block lacks ra/dec).
    position_attr: bool,
}

fn h5err(path: &Path, what: &str, e: impl std::fmt::Display) -> IngestError {
    IngestError::malformed(path, Some(what), None, e.to_string())
}

fn open_file(path: &Path) -> Result<h5::File> {
    h5::File::open(path).map_err(|e| {
        IngestError::malformed(path, None, None, format!("not a readable HDF5 file: {e}"))
    })
}

/// Rows `a..b` of a dataset (first axis) as `T` (HDF5 converts the stored type),
/// with the shape of one row.
fn read_rows<T: h5::H5Type + Copy>(
    ds: &h5::Dataset,
    a: usize,
    b: usize,
) -> h5::Result<(Vec<usize>, Vec<T>)> {
    let shape = ds.shape();
    let mut sel = vec![h5::SliceOrIndex::from(a..b)];
    sel.extend(shape[1..].iter().map(|_| h5::SliceOrIndex::from(..)));
    let arr: ndarray::ArrayD<T> = ds.read_slice(h5::Hyperslab::from(sel))?;
    Ok((shape[1..].to_vec(), arr.iter().copied().collect()))
}

fn is_numeric(ds: &h5::Dataset) -> bool {
    use h5::types::TypeDescriptor as T;
    matches!(
        ds.dtype().and_then(|t| t.to_descriptor()),
        Ok(T::Integer(_) | T::Unsigned(_) | T::Float(_) | T::Boolean)
    )
}

fn is_float(ds: &h5::Dataset) -> bool {
    matches!(
        ds.dtype().and_then(|t| t.to_descriptor()),
        Ok(h5::types::TypeDescriptor::Float(_))
    )
}

impl Hdf5Source {
    /// Opens `path`, detects its layout and checks the datasets the mapping
    /// names; returns the source and the plan (attributes, ignored datasets).
    pub fn open(path: &Path, mapping: &Mapping, min_image_size: usize) -> Result<(Self, Plan)> {
        let f = open_file(path)?;
        let names = f.member_names().map_err(|e| h5err(path, "/", e))?;
        let groups: Vec<String> = {
            let mut g: Vec<(u64, String)> = names
                .iter()
                .filter_map(|n| Some((n.parse::<u64>().ok()?, n.clone())))
                .filter(|(_, n)| f.group(n).is_ok_and(|g| g.link_exists("images")))
                .collect();
            g.sort();
            g.into_iter().map(|(_, n)| n).collect()
        };
        let has = |g: &h5::Group, n: &str| g.link_exists(n) && g.dataset(n).is_ok();
        let mut ignored: Vec<Ignored> = Vec::new();
        let mut attributes = Vec::new();
        let mut embeddings = Vec::new();
        let (layout, blocks) = if !groups.is_empty() {
            let mut blocks = Vec::new();
            for name in &groups {
                let g = f.group(name).map_err(|e| h5err(path, name, e))?;
                for d in ["images", "spectra", "redshifts", "targetids"] {
                    if !has(&g, d) {
                        return Err(IngestError::malformed(
                            path,
                            Some(&format!("{name}/{d}")),
                            None,
                            "missing dataset (AstroCLIP layout: images, spectra, redshifts, targetids)",
                        ));
                    }
                }
                let rows = g
                    .dataset("targetids")
                    .map_err(|e| h5err(path, name, e))?
                    .shape();
                let n = rows.first().copied().unwrap_or(0);
                for d in ["images", "spectra", "redshifts"] {
                    let s = g.dataset(d).map_err(|e| h5err(path, d, e))?.shape();
                    if s.first() != Some(&n) {
                        return Err(IngestError::malformed(
                            path,
                            Some(&format!("{name}/{d}")),
                            None,
                            format!("has {:?} rows, targetids has {n}", s.first()),
                        ));
                    }
                }
                blocks.push(Block {
                    group: name.clone(),
                    rows: n,
                    id: "targetids".into(),
                    ra: has(&g, "ra").then(|| "ra".into()),
                    dec: has(&g, "dec").then(|| "dec".into()),
                    image: Some("images".into()),
                    spectrum: Some("spectra".into()),
                });
            }
            attributes.push(PlannedAttribute {
                column: "redshifts".into(),
                def: AttributeDef {
                    name: "redshift".into(),
                    kind: AttributeKind::Float,
                    unit: String::new(),
                },
            });
            (Layout::AstroClip, blocks)
        } else {
            let root: &h5::Group = &f;
            let pick = |want: &str, fallback: &str| -> Option<String> {
                [want, fallback]
                    .into_iter()
                    .find(|&n| has(root, n))
                    .map(str::to_string)
            };
            let id = pick(&mapping.id, "object_id").ok_or_else(|| {
                IngestError::malformed(
                    path,
                    Some(&mapping.id),
                    None,
                    "missing id dataset (neither the mapping's id nor object_id), and no AstroCLIP groups \"0\"…\"9\"",
                )
            })?;
            let n = root
                .dataset(&id)
                .map_err(|e| h5err(path, &id, e))?
                .shape()
                .first()
                .copied()
                .unwrap_or(0);
            let ra = pick(&mapping.ra, "ra");
            let dec = pick(&mapping.dec, "dec");
            let image = pick(mapping.image.as_deref().unwrap_or("image"), "image_array");
            let spectrum = pick(
                mapping.spectrum.as_deref().unwrap_or("spectrum"),
                "spectrum_flux",
            );
            for (m, c) in &mapping.embeddings {
                let ds = root.dataset(c).map_err(|e| h5err(path, c, e))?;
                let s = ds.shape();
                if s.len() != 2 || s[0] != n || !is_float(&ds) {
                    return Err(IngestError::malformed(
                        path,
                        Some(c),
                        None,
                        format!("embeddings must be float [{n}, d], found shape {s:?}"),
                    ));
                }
                embeddings.push((m.clone(), c.clone(), s[1]));
            }
            let roles: Vec<&str> = [
                Some(&id),
                ra.as_ref(),
                dec.as_ref(),
                image.as_ref(),
                spectrum.as_ref(),
            ]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .chain(mapping.embeddings.values().map(String::as_str))
            .collect();
            for c in mapping.attributes.keys() {
                if !has(root, c) {
                    return Err(IngestError::malformed(
                        path,
                        Some(c),
                        None,
                        "missing dataset (named in the mapping's attributes)",
                    ));
                }
            }
            for name in &names {
                if roles.contains(&name.as_str()) {
                    continue;
                }
                let Ok(ds) = root.dataset(name) else {
                    ignored.push((name.clone(), "a group, not a dataset".into()));
                    continue;
                };
                let scalar = ds.shape() == vec![n] && is_numeric(&ds);
                let spec = mapping.attributes.get(name);
                let why = if !scalar {
                    Some(format!(
                        "shape {:?} / type is not a numeric [{n}] label",
                        ds.shape()
                    ))
                } else if spec.is_none() && mapping.ignore.contains(name) {
                    Some("listed in the mapping's `ignore`".into())
                } else if spec.is_none() && mapping.unknown_columns == UnknownColumns::Ignore {
                    Some("not named in the mapping (unknown_columns = \"ignore\")".into())
                } else {
                    None
                };
                if let Some(why) = why {
                    if spec.is_some() {
                        return Err(IngestError::malformed(path, Some(name), None, why));
                    }
                    ignored.push((name.clone(), why));
                    continue;
                }
                let natural = if is_float(&ds) {
                    AttributeKind::Float
                } else {
                    AttributeKind::Int
                };
                let def = match spec {
                    Some(s) => AttributeDef {
                        name: s.name().to_string(),
                        kind: s.kind().unwrap_or(natural),
                        unit: s.unit().to_string(),
                    },
                    None => match attribute_name_for(name) {
                        Some(a) if a != POSITION_KNOWN => AttributeDef {
                            name: a,
                            kind: natural,
                            unit: String::new(),
                        },
                        _ => {
                            ignored.push((name.clone(), "no valid attribute name".into()));
                            continue;
                        }
                    },
                };
                attributes.push(PlannedAttribute {
                    column: name.clone(),
                    def,
                });
            }
            let block = Block {
                group: String::new(),
                rows: n,
                id,
                ra,
                dec,
                image,
                spectrum,
            };
            (Layout::Mmu, vec![block])
        };
        let blocks_unpositioned = blocks.iter().any(|b| b.ra.is_none() || b.dec.is_none());
        let src = Hdf5Source {
            path: path.to_path_buf(),
            layout,
            blocks,
            attributes: attributes.clone(),
            embeddings: embeddings.clone(),
            min_image_size,
            position_attr: blocks_unpositioned,
        };
        let b0 = &src.blocks[0];
        if src.position_attr {
            attributes.push(PlannedAttribute {
                column: "(ra/dec datasets)".into(),
                def: AttributeDef {
                    name: POSITION_KNOWN.into(),
                    kind: AttributeKind::Int,
                    unit: String::new(),
                },
            });
        }
        let plan = Plan {
            id: b0.id.clone(),
            ra: b0.ra.clone().unwrap_or_else(|| "(none: 0°)".into()),
            dec: b0.dec.clone().unwrap_or_else(|| "(none: 0°)".into()),
            image: b0.image.clone(),
            image_layout: mapping.image_layout,
            spectrum: b0.spectrum.clone(),
            embeddings,
            attributes,
            ignored,
            min_image_size,
        };
        Ok((src, plan))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rows over all blocks.
    pub fn len(&self) -> u64 {
        self.blocks.iter().map(|b| b.rows as u64).sum()
    }

    /// True without rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn group(&self, f: &h5::File, b: &Block) -> Result<h5::Group> {
        if b.group.is_empty() {
            f.group("/").map_err(|e| h5err(&self.path, "/", e))
        } else {
            f.group(&b.group)
                .map_err(|e| h5err(&self.path, &b.group, e))
        }
    }

    /// Ids of rows `0..end`.
    pub fn ids(&self, end: u64) -> Result<Vec<Option<u64>>> {
        let f = open_file(&self.path)?;
        let mut out = Vec::new();
        for b in &self.blocks {
            let left = (end as usize).saturating_sub(out.len()).min(b.rows);
            if left == 0 {
                break;
            }
            let g = self.group(&f, b)?;
            let ds = g.dataset(&b.id).map_err(|e| h5err(&self.path, &b.id, e))?;
            let (_, v) = read_rows::<i64>(&ds, 0, left).map_err(|e| h5err(&self.path, &b.id, e))?;
            out.extend(v.into_iter().map(|x| u64::try_from(x).ok()));
        }
        Ok(out)
    }

    /// Rows from `start` on, in batches of at most `batch` (never crossing a group).
    pub fn read_from(&self, start: u64, batch: usize) -> Result<Batches<'_>> {
        let f = open_file(&self.path)?;
        let mut spans = Vec::new();
        let mut offset = 0usize;
        for (bi, b) in self.blocks.iter().enumerate() {
            let mut a = (start as usize).max(offset) - offset;
            while a < b.rows {
                let e = (a + batch.max(1)).min(b.rows);
                spans.push((bi, offset, a, e));
                a = e;
            }
            offset += b.rows;
        }
        Ok(Box::new(spans.into_iter().map(
            move |(bi, offset, a, e)| self.read_span(&f, &self.blocks[bi], offset, a, e),
        )))
    }

    fn read_span(
        &self,
        f: &h5::File,
        b: &Block,
        offset: usize,
        a: usize,
        e: usize,
    ) -> Result<Vec<RowOutcome>> {
        let g = self.group(f, b)?;
        let p = &self.path;
        let ds = |n: &str| g.dataset(n).map_err(|err| h5err(p, n, err));
        let rows_f32 = |n: &str| -> Result<(Vec<usize>, Vec<f32>)> {
            read_rows::<f32>(&ds(n)?, a, e).map_err(|err| h5err(p, n, err))
        };
        let rows_f64 = |n: &str| -> Result<Vec<f64>> {
            Ok(read_rows::<f64>(&ds(n)?, a, e)
                .map_err(|err| h5err(p, n, err))?
                .1)
        };
        let ids = read_rows::<i64>(&ds(&b.id)?, a, e)
            .map_err(|err| h5err(p, &b.id, err))?
            .1;
        let ra = b.ra.as_deref().map(rows_f64).transpose()?;
        let dec = b.dec.as_deref().map(rows_f64).transpose()?;
        let image = b.image.as_deref().map(rows_f32).transpose()?;
        let spectrum = b.spectrum.as_deref().map(rows_f32).transpose()?;
        let attrs = self
            .attributes
            .iter()
            .map(|a| rows_f64(&a.column))
            .collect::<Result<Vec<_>>>()?;
        let embs = self
            .embeddings
            .iter()
            .map(|(_, c, _)| rows_f32(c))
            .collect::<Result<Vec<_>>>()?;
        let layout = if self.layout == Layout::AstroClip {
            ImageLayout::Hwc
        } else {
            ImageLayout::Auto
        };
        let n = e - a;
        let cell = |(shape, v): &(Vec<usize>, Vec<f32>), r: usize| -> (Vec<usize>, Vec<f32>) {
            let per: usize = shape.iter().product();
            (shape.clone(), v[r * per..(r + 1) * per].to_vec())
        };
        Ok((0..n)
            .into_par_iter()
            .map(|r| {
                let row = (offset + a + r) as u64;
                let Ok(id) = u64::try_from(ids[r]) else {
                    return RowOutcome {
                        row,
                        id: None,
                        result: Err(format!("{}: id {} is negative", b.id, ids[r])),
                    };
                };
                let result = (|| -> std::result::Result<Row, String> {
                    let pos = ra.as_ref().zip(dec.as_ref()).map(|(x, y)| (x[r], y[r]));
                    if let Some((x, y)) = pos {
                        check_position("ra", x, "dec", y)?;
                    }
                    let img = match (&image, &b.image) {
                        (Some(d), Some(name)) => {
                            let (shape, v) = cell(d, r);
                            Some(
                                to_image(&shape, v, layout, self.min_image_size)
                                    .map_err(|err| format!("{name}: {err}"))?,
                            )
                        }
                        _ => None,
                    };
                    let spec = match (&spectrum, &b.spectrum) {
                        (Some(d), Some(name)) => {
                            let (shape, v) = cell(d, r);
                            Some(to_spectrum(&shape, v).map_err(|err| format!("{name}: {err}"))?)
                        }
                        _ => None,
                    };
                    let mut attributes: Vec<(String, AttrValue)> = self
                        .attributes
                        .iter()
                        .zip(&attrs)
                        .filter(|(_, v)| v[r].is_finite())
                        .map(|(a, v)| {
                            let x = v[r];
                            let value = match a.def.kind {
                                AttributeKind::Float => AttrValue::Float(x),
                                AttributeKind::Int => AttrValue::Int(x as i64),
                                AttributeKind::Category => AttrValue::Category(x.to_string()),
                            };
                            (a.def.name.clone(), value)
                        })
                        .collect();
                    if self.position_attr {
                        attributes
                            .push((POSITION_KNOWN.into(), AttrValue::Int(pos.is_some() as i64)));
                    }
                    let mut embeddings = std::collections::BTreeMap::new();
                    for ((m, c, _), d) in self.embeddings.iter().zip(&embs) {
                        let (_, v) = cell(d, r);
                        check_finite(c, &v)?;
                        if v.iter().all(|x| *x == 0.0) {
                            return Err(format!("{c}: embedding is all zeros"));
                        }
                        embeddings.insert(m.clone(), v);
                    }
                    let (ra, dec) = pos.unwrap_or((0.0, 0.0));
                    Ok(Row {
                        id,
                        ra,
                        dec,
                        attributes,
                        image: img,
                        spectrum: spec,
                        embeddings,
                    })
                })();
                RowOutcome {
                    row,
                    id: Some(id),
                    result,
                }
            })
            .collect())
    }
}
