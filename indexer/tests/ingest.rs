//! The ingest pipeline on small files: per-row validation and the rejects file,
//! malformed inputs (errors naming file, column and row, committed batches kept),
//! the AstroCLIP mirror layout, and `--shard k/n` + merge equal to one run.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{FixedSizeListBuilder, Float32Builder, ListBuilder};
use arrow_array::{
    ArrayRef, FixedSizeListArray, Float32Array, Float64Array, Int64Array, RecordBatch, StringArray,
};
use arrow_schema::{DataType, Field, Schema};
use astrovec_encoders::model::astroclip::{CONFIG_FILE, WEIGHTS_FILE};
use astrovec_encoders::{AstroClipConfig, BackendChoice, CpuBackend, Encoder};
use astrovec_engine::layout::{encoder_dir, ENCODER_SOURCE_FILE};
use astrovec_engine::{AttrValue, Collection};
use astrovec_indexer::ingest::{
    ingest, merge, Embedder, IngestError, IngestOptions, Mapping, Reject, Shard,
};
use astrovec_indexer::mock::{MockConfig, MockSurvey};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

fn fsl(values: Vec<Option<Vec<f32>>>, len: usize) -> ArrayRef {
    let mut b = FixedSizeListBuilder::new(Float32Builder::new(), len as i32);
    for v in values {
        match v {
            Some(v) => {
                assert_eq!(v.len(), len);
                b.values().append_slice(&v);
                b.append(true);
            }
            None => {
                b.values().append_slice(&vec![0.0; len]);
                b.append(false);
            }
        }
    }
    Arc::new(b.finish())
}

fn write(path: &Path, cols: Vec<(&str, ArrayRef)>, rows_per_group: usize) {
    let fields: Vec<Field> = cols
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let batch =
        RecordBatch::try_new(schema.clone(), cols.into_iter().map(|c| c.1).collect()).unwrap();
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(rows_per_group))
        .build();
    let mut w =
        ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

fn emb(seed: usize) -> Vec<f32> {
    (0..8)
        .map(|i| ((seed * 31 + i * 7) % 13) as f32 - 6.0 + 0.5)
        .collect()
}

fn precomputed_mapping() -> Mapping {
    let mut m = Mapping::default();
    m.embeddings.insert("image".into(), "emb_image".into());
    m.embeddings
        .insert("spectrum".into(), "emb_spectrum".into());
    m
}

fn opts(input: &Path, dir: &Path, embedder: Embedder) -> IngestOptions {
    let mut o = IngestOptions::new(vec![input.to_path_buf()], dir.to_path_buf(), embedder);
    o.batch_size = 16;
    o
}

/// A tiny random model saved once, so several ingests embed with the same weights.
fn tiny(dir: &Path) -> Embedder {
    let model = dir.join("model");
    if !model.exists() {
        Encoder::<CpuBackend>::random(&AstroClipConfig::tiny(), &Default::default())
            .unwrap()
            .save_dir(&model)
            .unwrap();
    }
    Embedder::Model {
        config: Box::new(AstroClipConfig::tiny()),
        weights: Some(model.join(WEIGHTS_FILE)),
        backend: BackendChoice::Cpu,
        batch_size: 16,
        name: "tiny".into(),
    }
}

/// Eight rows: three good (one without a spectrum embedding, one without an image),
/// five bad in five different ways.
fn catalog_with_bad_rows(path: &Path) {
    let n = 8;
    let img = |k: usize| {
        Some(
            (0..3 * 16 * 16)
                .map(|i| ((i + k) % 9) as f32 * 0.02)
                .collect(),
        )
    };
    let spec = |bad: bool| {
        let mut v: Vec<f32> = (0..7781).map(|i| 1.0 + (i as f32 * 0.01).sin()).collect();
        if bad {
            v[1234] = f32::NAN;
        }
        Some(v)
    };
    let mut emb_i: Vec<Option<Vec<f32>>> = (0..n).map(|k| Some(emb(k))).collect();
    emb_i[6] = Some(vec![0.0; 8]);
    let mut emb_s: Vec<Option<Vec<f32>>> = (0..n).map(|k| Some(emb(k + 100))).collect();
    emb_s[1] = None;
    let mut images: Vec<Option<Vec<f32>>> = (0..n).map(img).collect();
    images[7] = None;
    write(
        path,
        vec![
            (
                "targetid",
                Arc::new(Int64Array::from(vec![
                    Some(1),
                    Some(2),
                    Some(3),
                    Some(2),
                    None,
                    Some(6),
                    Some(7),
                    Some(8),
                ])),
            ),
            (
                "ra",
                Arc::new(Float64Array::from(vec![
                    10.0, 11.0, 12.0, 13.0, 14.0, 400.0, 16.0, 17.0,
                ])),
            ),
            ("dec", Arc::new(Float64Array::from(vec![-5.0; 8]))),
            (
                "redshift",
                Arc::new(Float32Array::from(vec![
                    0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8,
                ])),
            ),
            (
                "survey",
                Arc::new(StringArray::from(vec![
                    "north", "south", "north", "south", "north", "south", "north", "south",
                ])),
            ),
            ("image", fsl(images, 3 * 16 * 16)),
            (
                "spectrum",
                fsl((0..n).map(|k| spec(k == 2)).collect(), 7781),
            ),
            ("emb_image", fsl(emb_i, 8)),
            ("emb_spectrum", fsl(emb_s, 8)),
        ],
        1000,
    );
}

#[test]
fn bad_rows_are_rejected_with_reasons_and_good_rows_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("cat.parquet");
    catalog_with_bad_rows(&input);
    let dir = tmp.path().join("coll");
    let mut o = opts(&input, &dir, Embedder::Precomputed);
    o.mapping = precomputed_mapping();
    let report = ingest(&o).unwrap();
    assert_eq!(
        (
            report.rows_total,
            report.rows_read,
            report.rows_written,
            report.rows_rejected
        ),
        (8, 8, 3, 5)
    );
    // Per-stage rates: rows over each stage's own seconds.
    let rates = &report.stage_objects_per_second;
    assert!(rates.read > 0.0 && rates.encode > 0.0 && rates.write > 0.0);
    assert!((rates.read - 8.0 / report.seconds.read).abs() < 1e-6 * rates.read);
    assert!(report.summary().contains("objects/s per stage"));
    let kinds = &report.rejected_by_kind;
    assert_eq!(kinds["duplicate id"], 1);
    assert_eq!(kinds["non-finite value"], 1);
    assert_eq!(kinds["missing value"], 1);
    assert_eq!(kinds["value out of range"], 1);
    assert_eq!(kinds["zero embedding"], 1);
    let lines: Vec<Reject> = std::fs::read_to_string(&report.rejects_file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines.iter().map(|r| r.row).collect::<Vec<_>>(),
        vec![2, 3, 4, 5, 6]
    );
    assert!(lines[0].reason.contains("spectrum") && lines[0].reason.contains("1234"));
    assert_eq!(lines[1].id, Some(2));
    assert!(lines.iter().all(|r| r.file == input.display().to_string()));

    let c = Collection::open(&dir).unwrap();
    let mut ids = c.ids();
    ids.sort_unstable();
    assert_eq!(ids, vec![1, 2, 8]);
    let o2 = c.get(2).unwrap();
    assert_eq!(o2.modalities, vec!["image".to_string()]);
    assert_eq!(o2.attributes["redshift"], AttrValue::Float(0.2f32 as f64));
    assert_eq!(o2.attributes["survey"], AttrValue::Category("south".into()));
    // Pictures and the spectrum preview (the server's blob contract).
    let blobs1 = c.get(1).unwrap().blobs;
    for b in ["thumb.png", "image.png", "spectrum.f16"] {
        assert!(blobs1.contains(&b.to_string()), "{b} missing: {blobs1:?}");
    }
    let full = c.get_blob(1, "image.png").unwrap().unwrap();
    let info = png::Decoder::new(std::io::Cursor::new(&full))
        .read_info()
        .unwrap()
        .info()
        .clone();
    assert_eq!((info.width, info.height), (16, 16), "full resolution");
    let preview = c.get_blob(1, "spectrum.f16").unwrap().unwrap();
    let flux = astrovec_engine::blobs::decode_spectrum_f16(&preview).unwrap();
    assert_eq!(flux.len(), 7781);
    assert!((flux[100] - (1.0 + 1.0f32.sin())).abs() < 1e-2);
    assert_eq!(
        c.get(8).unwrap().blobs,
        vec!["spectrum.f16".to_string()],
        "no image, no pictures"
    );
    // --no-previews equivalent: only thumbnails.
    let mut o_np = o.clone();
    o_np.collection = tmp.path().join("coll-np");
    o_np.previews = false;
    ingest(&o_np).unwrap();
    let c_np = Collection::open(tmp.path().join("coll-np")).unwrap();
    assert_eq!(c_np.get(1).unwrap().blobs, vec!["thumb.png".to_string()]);
    // The report on disk matches.
    let on_disk: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("ingest-report.json")).unwrap()).unwrap();
    assert_eq!(on_disk["rows_written"], 3);
    // A second ingest into the same directory without --resume is refused.
    assert!(ingest(&o).unwrap_err().to_string().contains("--resume"));
}

fn simple_catalog(path: &Path, n: usize, rows_per_group: usize) {
    write(
        path,
        vec![
            (
                "targetid",
                Arc::new(Int64Array::from_iter_values(0..n as i64)),
            ),
            (
                "ra",
                Arc::new(Float64Array::from_iter_values(
                    (0..n).map(|i| i as f64 * 0.1),
                )),
            ),
            ("dec", Arc::new(Float64Array::from(vec![1.0; n]))),
            ("emb_image", fsl((0..n).map(|k| Some(emb(k))).collect(), 8)),
            (
                "emb_spectrum",
                fsl((0..n).map(|k| Some(emb(k + 1))).collect(), 8),
            ),
        ],
        rows_per_group,
    );
}

#[test]
fn malformed_files_are_errors_naming_file_column_and_row() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |input: &PathBuf, name: &str| -> IngestError {
        let mut o = opts(input, &tmp.path().join(name), Embedder::Precomputed);
        o.mapping = precomputed_mapping();
        ingest(&o).unwrap_err()
    };
    // Missing column.
    let p = tmp.path().join("no_ra.parquet");
    write(
        &p,
        vec![
            ("targetid", Arc::new(Int64Array::from(vec![1]))),
            ("dec", Arc::new(Float64Array::from(vec![1.0]))),
            ("emb_image", fsl(vec![Some(emb(1))], 8)),
            ("emb_spectrum", fsl(vec![Some(emb(1))], 8)),
        ],
        10,
    );
    let e = run(&p, "c1").to_string();
    assert!(
        e.contains("no_ra.parquet") && e.contains("`ra`") && e.contains("missing"),
        "{e}"
    );
    // Wrong dtype.
    let p = tmp.path().join("str_id.parquet");
    write(
        &p,
        vec![
            ("targetid", Arc::new(StringArray::from(vec!["a"]))),
            ("ra", Arc::new(Float64Array::from(vec![1.0]))),
            ("dec", Arc::new(Float64Array::from(vec![1.0]))),
            ("emb_image", fsl(vec![Some(emb(1))], 8)),
            ("emb_spectrum", fsl(vec![Some(emb(1))], 8)),
        ],
        10,
    );
    let e = run(&p, "c2").to_string();
    assert!(
        e.contains("str_id.parquet") && e.contains("`targetid`") && e.contains("Utf8"),
        "{e}"
    );
    // Truncated file.
    let good = tmp.path().join("good.parquet");
    simple_catalog(&good, 64, 16);
    let bytes = std::fs::read(&good).unwrap();
    let p = tmp.path().join("truncated.parquet");
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    let e = run(&p, "c3").to_string();
    assert!(
        e.contains("truncated.parquet") && e.contains("Parquet"),
        "{e}"
    );

    // A corrupt page in the third row group: the first two batches are committed and
    // stay; the error names the first row that could not be decoded.
    let meta = parquet::file::reader::FileReader::metadata(
        &parquet::file::serialized_reader::SerializedFileReader::new(
            std::fs::File::open(&good).unwrap(),
        )
        .unwrap(),
    )
    .clone();
    let off = meta.row_group(2).column(3).data_page_offset() as usize;
    let mut corrupt = bytes.clone();
    for b in &mut corrupt[off..off + 12] {
        *b = 0xff;
    }
    let p = tmp.path().join("corrupt.parquet");
    std::fs::write(&p, &corrupt).unwrap();
    let e = run(&p, "c4").to_string();
    assert!(e.contains("corrupt.parquet") && e.contains("row 32"), "{e}");
    let c = Collection::open(tmp.path().join("c4")).unwrap();
    assert_eq!(
        c.len(),
        32,
        "batches committed before the bad page are kept"
    );
}

#[test]
fn astroclip_mirror_layout_reads_like_the_planar_one() {
    // Same cutouts as planar [3,H,W] fixed-size lists and as nested [H][W][3] lists
    // (spectra as [7781][1]); the thumbnails made from them must be identical.
    let tmp = tempfile::tempdir().unwrap();
    let (n, s) = (3usize, 152usize);
    let planar: Vec<Vec<f32>> = (0..n)
        .map(|k| {
            (0..3 * s * s)
                .map(|i| ((i * (k + 3)) % 101) as f32 * 0.003)
                .collect()
        })
        .collect();
    let spectra: Vec<Vec<f32>> = (0..n)
        .map(|k| {
            (0..7781)
                .map(|i| (i as f32 * 0.001 * (k + 1) as f32).cos())
                .collect()
        })
        .collect();
    let base = |dir: &Path| -> Vec<(&'static str, ArrayRef)> {
        let _ = dir;
        vec![
            (
                "targetid",
                Arc::new(Int64Array::from_iter_values(10..10 + n as i64)),
            ),
            ("ra", Arc::new(Float64Array::from(vec![1.0; n]))),
            ("dec", Arc::new(Float64Array::from(vec![1.0; n]))),
            ("emb_image", fsl((0..n).map(|k| Some(emb(k))).collect(), 8)),
            (
                "emb_spectrum",
                fsl((0..n).map(|k| Some(emb(k))).collect(), 8),
            ),
        ]
    };
    let a = tmp.path().join("planar.parquet");
    let mut cols = base(tmp.path());
    cols.push((
        "image",
        fsl(planar.iter().cloned().map(Some).collect(), 3 * s * s),
    ));
    cols.push((
        "spectrum",
        fsl(spectra.iter().cloned().map(Some).collect(), 7781),
    ));
    write(&a, cols, 100);

    let mut img = ListBuilder::new(ListBuilder::new(ListBuilder::new(Float32Builder::new())));
    for p in &planar {
        for y in 0..s {
            for x in 0..s {
                for b in 0..3 {
                    img.values()
                        .values()
                        .values()
                        .append_value(p[b * s * s + y * s + x]);
                }
                img.values().values().append(true);
            }
            img.values().append(true);
        }
        img.append(true);
    }
    let mut spec = ListBuilder::new(ListBuilder::new(Float32Builder::new()));
    for v in &spectra {
        for x in v {
            spec.values().values().append_value(*x);
            spec.values().append(true);
        }
        spec.append(true);
    }
    let b = tmp.path().join("mirror.parquet");
    let mut cols = base(tmp.path());
    cols.push(("image", Arc::new(img.finish())));
    cols.push(("spectrum", Arc::new(spec.finish())));
    write(&b, cols, 100);

    let mut thumbs = Vec::new();
    for (input, name) in [(&a, "ca"), (&b, "cb")] {
        let mut o = opts(input, &tmp.path().join(name), Embedder::Precomputed);
        o.mapping = precomputed_mapping();
        let r = ingest(&o).unwrap();
        assert_eq!((r.rows_written, r.rows_rejected), (3, 0));
        let c = Collection::open(tmp.path().join(name)).unwrap();
        thumbs.push(
            (10..13u64)
                .map(|id| c.get_blob(id, "thumb.png").unwrap().unwrap())
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(thumbs[0], thumbs[1]);
    // Wrong lengths in the mirror layout are rejected, not fatal.
    let _ = FixedSizeListArray::try_new(
        Arc::new(Field::new("item", DataType::Float32, true)),
        1,
        Arc::new(Float32Array::from(vec![1.0])),
        None,
    );
}

fn collection_vectors(dir: &Path) -> Vec<(u64, Vec<f32>, Vec<f32>)> {
    let c = Collection::open(dir).unwrap();
    let mut ids = c.ids();
    ids.sort_unstable();
    ids.into_iter()
        .map(|id| {
            (
                id,
                c.get_embedding(id, "image").unwrap(),
                c.get_embedding(id, "spectrum").unwrap(),
            )
        })
        .collect()
}

#[test]
fn three_shards_merged_equal_one_run() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("mock.parquet");
    MockSurvey::new(MockConfig {
        count: 150,
        seed: 3,
        ..Default::default()
    })
    .unwrap()
    .write_parquet(&input, false)
    .unwrap();
    let mut one = opts(&input, &tmp.path().join("one"), tiny(tmp.path()));
    one.mapping.ignore.push("spectrum_ivar".into());
    let whole = ingest(&one).unwrap();
    assert_eq!(whole.rows_written, 150);
    // The collection carries the model it was embedded with, as given.
    for f in [CONFIG_FILE, WEIGHTS_FILE] {
        assert_eq!(
            std::fs::read(encoder_dir(&tmp.path().join("one")).join(f)).unwrap(),
            std::fs::read(tmp.path().join("model").join(f)).unwrap(),
            "{f}"
        );
    }
    let source_file = encoder_dir(&tmp.path().join("one")).join(ENCODER_SOURCE_FILE);
    let source: serde_json::Value =
        serde_json::from_slice(&std::fs::read(source_file).unwrap()).unwrap();
    assert_eq!(source["name"], "tiny");
    assert_eq!(
        source["weights"],
        tmp.path().join("model").display().to_string()
    );
    let mut shards = Vec::new();
    let mut written = 0;
    for k in 0..3 {
        let mut o = one.clone();
        o.collection = tmp.path().join(format!("shard{k}"));
        o.shard = Some(format!("{k}/3").parse::<Shard>().unwrap());
        let r = ingest(&o).unwrap();
        assert_eq!(r.rows_read, 150);
        assert_eq!(r.rows_written + r.rows_other_shards, 150);
        written += r.rows_written;
        shards.push(o.collection);
    }
    assert_eq!(written, 150);
    let merged = tmp.path().join("merged");
    let m = merge(&shards, &merged, 64).unwrap();
    assert_eq!((m.objects, m.duplicates), (150, 0));
    assert!(encoder_dir(&merged).join(WEIGHTS_FILE).is_file());
    let a = collection_vectors(&tmp.path().join("one"));
    let b = collection_vectors(&merged);
    assert_eq!(a.len(), b.len());
    let mut worst = 0.0f32;
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.0, y.0);
        for (u, v) in x.1.iter().chain(&x.2).zip(y.1.iter().chain(&y.2)) {
            worst = worst.max((u - v).abs());
        }
    }
    assert!(worst < 1e-4, "largest vector difference {worst}");
    let c1 = Collection::open(tmp.path().join("one")).unwrap();
    let c2 = Collection::open(&merged).unwrap();
    for id in [a[0].0, a[77].0] {
        assert_eq!(c1.get(id).unwrap(), c2.get(id).unwrap());
    }
}

#[test]
fn npy_embeddings_attach_to_the_rows_of_several_inputs_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a.parquet"), tmp.path().join("b.parquet"));
    simple_catalog(&a, 5, 2);
    simple_catalog(&b, 3, 2); // ids 0..3 again: duplicates of a's rows, rejected
                              // Row i of the files belongs to input row i (a's 5 rows, then b's 3).
    let img = ndarray::Array2::from_shape_fn((8, 6), |(i, j)| (i * 10 + j) as f32 + 0.5);
    let mut spec = ndarray::Array2::from_shape_fn((8, 4), |(i, j)| (i + j) as f64 - 1.5);
    spec[[3, 2]] = f64::NAN;
    let (pi, ps) = (tmp.path().join("img.npy"), tmp.path().join("spec.npy"));
    ndarray_npy::write_npy(&pi, &img).unwrap();
    ndarray_npy::write_npy(&ps, &spec).unwrap();
    let mut m = Mapping::default();
    m.embeddings
        .insert("image".into(), pi.display().to_string());
    m.embeddings
        .insert("spectrum".into(), ps.display().to_string());
    let dir = tmp.path().join("coll");
    let mut o = IngestOptions::new(
        vec![a.clone(), b.clone()],
        dir.clone(),
        Embedder::Precomputed,
    );
    o.mapping = m.clone();
    o.batch_size = 2;
    let r = ingest(&o).unwrap();
    assert_eq!((r.rows_total, r.rows_written, r.rows_rejected), (8, 4, 4));
    assert_eq!(r.rejected_by_kind["non-finite value"], 1);
    assert_eq!(r.rejected_by_kind["duplicate id"], 3);
    let dims: Vec<(String, usize)> = r
        .modalities
        .iter()
        .map(|m| (m.name.clone(), m.dim))
        .collect();
    assert_eq!(dims, vec![("image".into(), 6), ("spectrum".into(), 4)]);
    let c = Collection::open(&dir).unwrap();
    let mut ids = c.ids();
    ids.sort_unstable();
    assert_eq!(ids, vec![0, 1, 2, 4]);
    // Stored vectors are normalised: compare directions.
    let mut want: Vec<f32> = img.row(4).to_vec();
    astrovec_engine::normalize(&mut want);
    let got = c.get_embedding(4, "image").unwrap();
    assert!(got.iter().zip(&want).all(|(x, y)| (x - y).abs() < 1e-6));
    // A file with the wrong number of rows is an error naming it.
    let short = tmp.path().join("short.npy");
    ndarray_npy::write_npy(&short, &ndarray::Array2::<f32>::ones((7, 6))).unwrap();
    m.embeddings
        .insert("image".into(), short.display().to_string());
    let mut o2 = IngestOptions::new(vec![a, b], tmp.path().join("c2"), Embedder::Precomputed);
    o2.mapping = m;
    let msg = ingest(&o2).unwrap_err().to_string();
    assert!(msg.contains("short.npy") && msg.contains("7 rows"), "{msg}");
}
