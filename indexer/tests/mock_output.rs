//! Output contract of the mock survey: determinism,
//! the Parquet layout, and clear errors for bad arguments.

use std::fs::File;
use std::path::Path;

use astrovec_indexer::mock::{MockConfig, MockError, MockSurvey};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn write(dir: &Path, name: &str, seed: u64) -> Vec<u8> {
    let survey = MockSurvey::new(MockConfig {
        count: 5,
        seed,
        ..Default::default()
    })
    .unwrap();
    let path = dir.join(name);
    survey.write_parquet(&path, false).unwrap();
    std::fs::read(path).unwrap()
}

#[test]
fn same_seed_gives_byte_identical_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.parquet", 11);
    let b = write(dir.path(), "b.parquet", 11);
    let c = write(dir.path(), "c.parquet", 12);
    assert_eq!(a, b, "same seed must give the same bytes");
    assert_ne!(a, c, "another seed must give another catalog");
}

#[test]
fn parquet_has_the_documented_columns_and_shapes() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.parquet", 3);
    let reader =
        ParquetRecordBatchReaderBuilder::try_new(File::open(dir.path().join("a.parquet")).unwrap())
            .unwrap()
            .build()
            .unwrap();
    let mut rows = 0;
    for batch in reader {
        let batch = batch.unwrap();
        rows += batch.num_rows();
        let schema = batch.schema();
        for name in [
            "targetid",
            "ra",
            "dec",
            "redshift",
            "log_stellar_mass",
            "image",
            "spectrum",
            "bulge_fraction",
        ] {
            assert!(
                schema.field_with_name(name).is_ok(),
                "missing column {name}"
            );
        }
        let img = schema.field_with_name("image").unwrap();
        assert!(
            format!("{:?}", img.data_type()).contains("69312"),
            "image is not a 3×152×152 list: {:?}",
            img.data_type()
        );
        assert!(format!(
            "{:?}",
            schema.field_with_name("spectrum").unwrap().data_type()
        )
        .contains("7781"));
        assert_eq!(
            schema
                .field_with_name("ra")
                .unwrap()
                .metadata()
                .get("unit")
                .map(String::as_str),
            Some("deg")
        );
    }
    assert_eq!(rows, 5);
}

#[test]
fn rows_do_not_depend_on_batching_or_threads() {
    let survey = MockSurvey::new(MockConfig {
        count: 4,
        seed: 5,
        ..Default::default()
    })
    .unwrap();
    let all = survey.rows(0..4);
    let one = survey.row(2);
    assert_eq!(all[2].image, one.image);
    assert_eq!(all[2].spectrum, one.spectrum);
    assert_eq!(all[2].labels, one.labels);
    assert_eq!(one.targetid, survey.config().first_targetid + 2);
}

#[test]
fn bad_arguments_are_clear_errors() {
    let err = MockSurvey::new(MockConfig {
        count: 0,
        ..Default::default()
    })
    .unwrap_err();
    assert!(
        matches!(err, MockError::InvalidArgument { name: "count", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("count"), "{err}");
    let err = MockConfig {
        count: astrovec_indexer::mock::MAX_COUNT + 1,
        ..Default::default()
    }
    .validate()
    .unwrap_err();
    assert!(matches!(
        err,
        MockError::InvalidArgument { name: "count", .. }
    ));
    let err = MockConfig {
        first_targetid: -1,
        ..Default::default()
    }
    .validate()
    .unwrap_err();
    assert!(matches!(
        err,
        MockError::InvalidArgument {
            name: "first_targetid",
            ..
        }
    ));
    let survey = MockSurvey::new(MockConfig {
        count: 1,
        ..Default::default()
    })
    .unwrap();
    let bad = Path::new("/nonexistent-dir/mock.parquet");
    let err = survey.write_parquet(bad, false).unwrap_err();
    assert!(matches!(err, MockError::Io { .. }), "{err}");
    assert!(
        err.to_string().contains("/nonexistent-dir/mock.parquet"),
        "{err}"
    );
}

#[test]
fn shards_hold_the_same_objects_as_one_run() {
    let survey = MockSurvey::new(MockConfig {
        count: 4,
        seed: 9,
        ..Default::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ids = |name: &str| -> Vec<i64> {
        let reader =
            ParquetRecordBatchReaderBuilder::try_new(File::open(dir.path().join(name)).unwrap())
                .unwrap()
                .build()
                .unwrap();
        let mut out = Vec::new();
        for batch in reader {
            let batch = batch.unwrap();
            let col = batch.column_by_name("targetid").unwrap();
            let col = col
                .as_any()
                .downcast_ref::<arrow_array::Int64Array>()
                .unwrap();
            out.extend(col.values().iter().copied());
        }
        out
    };
    survey
        .write_parquet_range(&dir.path().join("a.parquet"), 0..1, false)
        .unwrap();
    survey
        .write_parquet_range(&dir.path().join("b.parquet"), 1..4, false)
        .unwrap();
    survey
        .write_parquet(&dir.path().join("all.parquet"), false)
        .unwrap();
    let mut shards = ids("a.parquet");
    shards.extend(ids("b.parquet"));
    assert_eq!(shards, ids("all.parquet"));
    let err = survey
        .write_parquet_range(&dir.path().join("c.parquet"), 2..9, false)
        .unwrap_err();
    assert!(
        matches!(err, MockError::InvalidArgument { name: "range", .. }),
        "{err}"
    );
}

#[test]
fn label_fields_match_the_parquet_columns() {
    let survey = MockSurvey::new(MockConfig {
        count: 1,
        ..Default::default()
    })
    .unwrap();
    let schema = astrovec_indexer::mock::schema();
    let row = survey.row(0);
    let fields = row.labels.fields();
    for (name, value) in &fields {
        assert!(
            schema.field_with_name(name).is_ok(),
            "{name} is not a Parquet column"
        );
        assert!(value.is_finite(), "{name} = {value}");
    }
    // Every Parquet column is either a label, a position/id, or a pixel array.
    for f in schema.fields() {
        let n = f.name().as_str();
        assert!(
            fields.iter().any(|(k, _)| *k == n)
                || [
                    "targetid",
                    "ra",
                    "dec",
                    "image",
                    "spectrum",
                    "spectrum_ivar"
                ]
                .contains(&n),
            "column {n} has no label field"
        );
    }
}

#[test]
fn preview_is_a_png_contact_sheet_even_for_tiny_surveys() {
    let dir = tempfile::tempdir().unwrap();
    for count in [1, 3] {
        let survey = MockSurvey::new(MockConfig {
            count,
            seed: 2,
            ..Default::default()
        })
        .unwrap();
        let path = dir.path().join(format!("p{count}.png"));
        survey.write_preview(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        // IHDR: width and height, big-endian, at bytes 16..24.
        let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
        let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
        assert_eq!(w, 5 * 152 + 6 * 4);
        assert!(h > w);
    }
    let survey = MockSurvey::new(MockConfig {
        count: 1,
        ..Default::default()
    })
    .unwrap();
    let err = survey
        .write_preview(Path::new("/nonexistent-dir/p.png"))
        .unwrap_err();
    assert!(matches!(err, MockError::Io { .. }), "{err}");
}
