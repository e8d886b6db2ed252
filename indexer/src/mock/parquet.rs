//! Parquet output of a mock survey.
//!
//! One row per object; `image` and `spectrum` are fixed-size lists of f32 so readers
//! (pyarrow, polars, DuckDB) get dense `[3·152·152]` / `[7781]` vectors. Each field
//! carries a `unit` metadata entry. The writer uses fixed settings and no
//! time stamps, so the same survey always produces the same bytes.
//!
//! | column | type | unit / meaning |
//! |---|---|---|
//! | `targetid` | int64 | object id (`first_targetid + index`) |
//! | `ra`, `dec` | f64 | degrees (J2000/ICRS) |
//! | `redshift` | f32 | spectroscopic redshift |
//! | `parent_index` | i32 | row of the parent in `sdss_gst_10k.fits` |
//! | `perturbed` | bool | resampled with perturbations (objects beyond the 10,000 parents) |
//! | `flux_g`, `flux_r`, `flux_z` | f32 | total DECam flux, nanomaggies (noise-free) |
//! | `mag_g`, `mag_r`, `mag_z` | f32 | AB mag, `22.5 − 2.5 log10(flux)` |
//! | `log_stellar_mass` | f32 | log10 M⊙ (H0 = 70) |
//! | `log_sfr` | f32 | log10 M⊙ yr⁻¹, mean over the last 300 Myr (floored at −10) |
//! | `log_ssfr` | f32 | log10 yr⁻¹ (floored at −14) |
//! | `metallicity` | f32 | mass-weighted stellar Z (mass fraction; solar ≈ 0.019) |
//! | `age_gyr` | f32 | mass-weighted stellar age, Gyr |
//! | `halpha_flux` | f32 | observed Hα line flux, 1e-17 erg s⁻¹ cm⁻² |
//! | `star_forming` | bool | `log_ssfr > −11` |
//! | `featured` | bool | Galaxy Zoo "features or disk" (false = smooth) |
//! | `edge_on` | bool | disk-dominated and inclination > 75° |
//! | `spiral_arms` | bool | spiral arms drawn |
//! | `arm_count` | i32 | number of arms (0 if none) |
//! | `pitch_angle_deg` | f32 | spiral pitch angle, degrees (0 if none) |
//! | `bulge_fraction` | f32 | r-band bulge-to-total flux ratio |
//! | `inclination_deg` | f32 | disk inclination, degrees (0 = face-on) |
//! | `axis_ratio` | f32 | light-weighted projected b/a (r band) |
//! | `position_angle_deg` | f32 | major axis, degrees from +y (north) towards −x (east) |
//! | `half_light_radius_arcsec` | f32 | r-band half-light semi-major axis before PSF, arcsec |
//! | `half_light_radius_kpc` | f32 | the same, proper kpc |
//! | `fiber_fraction_r` | f32 | fraction of r-band light in a 1.5″ DESI fibre |
//! | `image` | `fixed_size_list<f32>[69312]` | planar `[3,152,152]` g, r, z, nanomaggies, 0.262″/px; row 0 = south |
//! | `spectrum` | `fixed_size_list<f32>[7781]` | f_λ, 1e-17 erg s⁻¹ cm⁻² Å⁻¹ at `3600 + 0.8 i` Å (vacuum) |
//! | `spectrum_ivar` | `fixed_size_list<f32>[7781]` | inverse variance of `spectrum`, (1e-17 erg s⁻¹ cm⁻² Å⁻¹)⁻² |

use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, FixedSizeListArray, Float32Array, Float64Array, Int32Array, Int64Array,
    RecordBatch,
};
use arrow_schema::{DataType, Field, Schema};
use indicatif::{ProgressBar, ProgressStyle};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::error::{MockError, Result};
use super::image::SIZE;
use super::spectrum::NPIX;
use super::survey::{MockRow, MockSurvey};

/// Objects per Parquet row group (~80 MB): big enough for efficient scans, small
/// enough that a batch is held in memory once.
pub const ROWS_PER_GROUP: usize = 256;

/// The scalar columns: name, type, unit (the `unit` metadata), getter.
type Getter = fn(&MockRow) -> Scalar;
enum Scalar {
    F64(f64),
    F32(f32),
    I64(i64),
    I32(i32),
    Bool(bool),
}

/// Arrow type of a scalar column.
#[derive(Clone, Copy)]
enum Kind {
    F64,
    F32,
    I64,
    I32,
    Bool,
}

const SCALARS: &[(&str, &str, Kind, Getter)] = &[
    ("targetid", "", Kind::I64, |r| Scalar::I64(r.targetid)),
    ("ra", "deg", Kind::F64, |r| Scalar::F64(r.ra)),
    ("dec", "deg", Kind::F64, |r| Scalar::F64(r.dec)),
    ("redshift", "", Kind::F32, |r| {
        Scalar::F32(r.labels.redshift as f32)
    }),
    ("parent_index", "", Kind::I32, |r| {
        Scalar::I32(r.labels.parent_index)
    }),
    ("perturbed", "", Kind::Bool, |r| {
        Scalar::Bool(r.labels.perturbed)
    }),
    ("flux_g", "nanomaggy", Kind::F32, |r| {
        Scalar::F32(r.labels.flux_grz[0] as f32)
    }),
    ("flux_r", "nanomaggy", Kind::F32, |r| {
        Scalar::F32(r.labels.flux_grz[1] as f32)
    }),
    ("flux_z", "nanomaggy", Kind::F32, |r| {
        Scalar::F32(r.labels.flux_grz[2] as f32)
    }),
    ("mag_g", "mag(AB)", Kind::F32, |r| {
        Scalar::F32(r.labels.mag_grz[0] as f32)
    }),
    ("mag_r", "mag(AB)", Kind::F32, |r| {
        Scalar::F32(r.labels.mag_grz[1] as f32)
    }),
    ("mag_z", "mag(AB)", Kind::F32, |r| {
        Scalar::F32(r.labels.mag_grz[2] as f32)
    }),
    ("log_stellar_mass", "log10(Msun)", Kind::F32, |r| {
        Scalar::F32(r.labels.log_stellar_mass as f32)
    }),
    ("log_sfr", "log10(Msun/yr)", Kind::F32, |r| {
        Scalar::F32(r.labels.log_sfr as f32)
    }),
    ("log_ssfr", "log10(1/yr)", Kind::F32, |r| {
        Scalar::F32(r.labels.log_ssfr as f32)
    }),
    ("metallicity", "mass fraction Z", Kind::F32, |r| {
        Scalar::F32(r.labels.metallicity as f32)
    }),
    ("age_gyr", "Gyr", Kind::F32, |r| {
        Scalar::F32(r.labels.age_gyr as f32)
    }),
    ("halpha_flux", "1e-17 erg/s/cm2", Kind::F32, |r| {
        Scalar::F32(r.labels.halpha_flux as f32)
    }),
    ("star_forming", "", Kind::Bool, |r| {
        Scalar::Bool(r.labels.star_forming)
    }),
    ("featured", "", Kind::Bool, |r| {
        Scalar::Bool(r.labels.featured)
    }),
    ("edge_on", "", Kind::Bool, |r| {
        Scalar::Bool(r.labels.edge_on)
    }),
    ("spiral_arms", "", Kind::Bool, |r| {
        Scalar::Bool(r.labels.spiral_arms)
    }),
    ("arm_count", "", Kind::I32, |r| {
        Scalar::I32(r.labels.arm_count)
    }),
    ("pitch_angle_deg", "deg", Kind::F32, |r| {
        Scalar::F32(r.labels.pitch_angle_deg as f32)
    }),
    ("bulge_fraction", "", Kind::F32, |r| {
        Scalar::F32(r.labels.bulge_fraction as f32)
    }),
    ("inclination_deg", "deg", Kind::F32, |r| {
        Scalar::F32(r.labels.inclination_deg as f32)
    }),
    ("axis_ratio", "", Kind::F32, |r| {
        Scalar::F32(r.labels.axis_ratio as f32)
    }),
    ("position_angle_deg", "deg", Kind::F32, |r| {
        Scalar::F32(r.labels.position_angle_deg as f32)
    }),
    ("half_light_radius_arcsec", "arcsec", Kind::F32, |r| {
        Scalar::F32(r.labels.half_light_radius_arcsec as f32)
    }),
    ("half_light_radius_kpc", "kpc", Kind::F32, |r| {
        Scalar::F32(r.labels.half_light_radius_kpc as f32)
    }),
    ("fiber_fraction_r", "", Kind::F32, |r| {
        Scalar::F32(r.labels.fiber_fraction_r as f32)
    }),
];

fn field(name: &str, dt: DataType, unit: &str) -> Field {
    let f = Field::new(name, dt, false);
    if unit.is_empty() {
        f
    } else {
        // A single entry, so the serialised metadata has no hash-order dependence.
        f.with_metadata(HashMap::from([("unit".to_string(), unit.to_string())]))
    }
}

fn list_type(len: usize) -> DataType {
    DataType::FixedSizeList(
        Arc::new(Field::new("item", DataType::Float32, false)),
        len as i32,
    )
}

/// The Arrow schema of the mock catalog (units in each field's `unit` metadata).
pub fn schema() -> Schema {
    let mut fields: Vec<Field> = SCALARS
        .iter()
        .map(|(name, unit, kind, _)| {
            let dt = match kind {
                Kind::F64 => DataType::Float64,
                Kind::F32 => DataType::Float32,
                Kind::I64 => DataType::Int64,
                Kind::I32 => DataType::Int32,
                Kind::Bool => DataType::Boolean,
            };
            field(name, dt, unit)
        })
        .collect();
    fields.push(field(
        "image",
        list_type(3 * SIZE * SIZE),
        "nanomaggy; planar [3,152,152] g,r,z; 0.262 arcsec/px",
    ));
    fields.push(field(
        "spectrum",
        list_type(NPIX),
        "1e-17 erg/s/cm2/A; 3600 + 0.8 i A, i < 7781",
    ));
    fields.push(field(
        "spectrum_ivar",
        list_type(NPIX),
        "(1e-17 erg/s/cm2/A)^-2",
    ));
    let meta = "astrovec mock survey v1: SDSS parents fitted with kcorrect v4 templates; \
                see astrovec_indexer::mock docs";
    Schema::new(fields).with_metadata(HashMap::from([(
        "astrovec.mock".to_string(),
        meta.to_string(),
    )]))
}

/// Converts rows to an Arrow record batch with [`schema`].
pub fn to_record_batch(
    rows: &[MockRow],
    schema: &Arc<Schema>,
) -> std::result::Result<RecordBatch, String> {
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for (_, _, kind, get) in SCALARS {
        let vals: Vec<Scalar> = rows.iter().map(get).collect();
        let arr: ArrayRef = match kind {
            Kind::F64 => Arc::new(Float64Array::from_iter_values(vals.iter().map(
                |v| match v {
                    Scalar::F64(x) => *x,
                    _ => f64::NAN,
                },
            ))),
            Kind::F32 => Arc::new(Float32Array::from_iter_values(vals.iter().map(
                |v| match v {
                    Scalar::F32(x) => *x,
                    _ => f32::NAN,
                },
            ))),
            Kind::I64 => Arc::new(Int64Array::from_iter_values(vals.iter().map(|v| match v {
                Scalar::I64(x) => *x,
                _ => 0,
            }))),
            Kind::I32 => Arc::new(Int32Array::from_iter_values(vals.iter().map(|v| match v {
                Scalar::I32(x) => *x,
                _ => 0,
            }))),
            Kind::Bool => Arc::new(BooleanArray::from(
                vals.iter()
                    .map(|v| matches!(v, Scalar::Bool(true)))
                    .collect::<Vec<bool>>(),
            )),
        };
        cols.push(arr);
    }
    let list = |len: usize, get: fn(&MockRow) -> &[f32]| -> std::result::Result<ArrayRef, String> {
        let mut flat = Vec::with_capacity(rows.len() * len);
        for r in rows {
            let v = get(r);
            if v.len() != len {
                return Err(format!(
                    "row {} has {} values, expected {len}",
                    r.targetid,
                    v.len()
                ));
            }
            flat.extend_from_slice(v);
        }
        let item = Arc::new(Field::new("item", DataType::Float32, false));
        FixedSizeListArray::try_new(item, len as i32, Arc::new(Float32Array::from(flat)), None)
            .map(|a| Arc::new(a) as ArrayRef)
            .map_err(|e| e.to_string())
    };
    cols.push(list(3 * SIZE * SIZE, |r| &r.image)?);
    cols.push(list(NPIX, |r| &r.spectrum)?);
    cols.push(list(NPIX, |r| &r.spectrum_ivar)?);
    RecordBatch::try_new(schema.clone(), cols).map_err(|e| e.to_string())
}

impl MockSurvey {
    /// Generates every object and writes them to `path` as Parquet, with a progress
    /// bar on stderr when `progress` is true. Same config ⇒ same bytes.
    pub fn write_parquet(&self, path: &Path, progress: bool) -> Result<()> {
        self.write_parquet_range(path, 0..self.len(), progress)
    }

    /// Writes objects `range` only (one shard of a split build: objects are
    /// independent, so shards written on different machines concatenate to the
    /// same catalog as one run).
    pub fn write_parquet_range(
        &self,
        path: &Path,
        range: std::ops::Range<usize>,
        progress: bool,
    ) -> Result<()> {
        if range.start > range.end || range.end > self.len() {
            return Err(MockError::InvalidArgument {
                name: "range",
                reason: format!("{range:?} is not within 0..{}", self.len()),
            });
        }
        let perr = |e: String| MockError::Parquet {
            path: path.to_path_buf(),
            reason: e,
        };
        let file = File::create(path).map_err(|source| MockError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let schema = Arc::new(schema());
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            // Noisy floats don't repeat: dictionaries would only cost time.
            .set_dictionary_enabled(false)
            .set_max_row_group_row_count(Some(ROWS_PER_GROUP))
            .set_created_by("astrovec mock".to_string())
            .build();
        let mut writer = ArrowWriter::try_new(BufWriter::new(file), schema.clone(), Some(props))
            .map_err(|e| perr(e.to_string()))?;
        let bar = if progress {
            let b = ProgressBar::new(range.len() as u64);
            if let Ok(style) = ProgressStyle::with_template(
                "{spinner} mock {bar:40} {pos}/{len} objects [{elapsed_precise} < {eta}]",
            ) {
                b.set_style(style);
            }
            b
        } else {
            ProgressBar::hidden()
        };
        for start in range.clone().step_by(ROWS_PER_GROUP) {
            let rows = self.rows(start..(start + ROWS_PER_GROUP).min(range.end));
            let batch = to_record_batch(&rows, &schema).map_err(perr)?;
            writer.write(&batch).map_err(|e| perr(e.to_string()))?;
            bar.inc(rows.len() as u64);
        }
        writer.close().map_err(|e| perr(e.to_string()))?;
        bar.finish_and_clear();
        Ok(())
    }
}
