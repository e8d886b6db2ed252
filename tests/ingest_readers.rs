//! `astrovec ingest` on the non-Parquet inputs with the real binary: the 1,400
//! Galaxy Zoo 2 JPEGs in `../shared/data/images/gz2_spirals` (or
//! `$ASTROVEC_DATA/images/gz2_spirals`; never copied into the repository) as an
//! image-only collection with spiral labels from a sidecar CSV, and the two real
//! DESI coadd spectra with their redrock redshifts.

mod common;

use astrovec_encoders::model::astroclip::WEIGHTS_FILE;
use astrovec_engine::layout::encoder_dir;
use astrovec_engine::{AttrValue, Collection, SearchParams};

fn report(out: &std::process::Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().unwrap_or("")).unwrap()
}

#[test]
fn galaxy_zoo_jpegs_ingest_as_an_image_only_collection_with_labels() {
    let gz = common::data_dir().join("images/gz2_spirals/train");
    let tmp = tempfile::tempdir().unwrap();
    // Labels from the directory names, joined to the images by id (file name).
    let mut csv = String::from("id,spiral\n");
    let mut n_spiral = 0;
    for (sub, label) in [("spirals", "yes"), ("non_spirals", "no")] {
        for e in std::fs::read_dir(gz.join(sub)).unwrap() {
            let p = e.unwrap().path();
            let id = p.file_stem().unwrap().to_str().unwrap();
            csv += &format!("{id},{label}\n");
            n_spiral += (label == "yes") as usize;
        }
    }
    let labels = tmp.path().join("labels.csv");
    std::fs::write(&labels, csv).unwrap();
    let dir = tmp.path().join("gz2");
    let out = common::run_ok(&[
        "ingest",
        gz.to_str().unwrap(),
        labels.to_str().unwrap(),
        "-c",
        dir.to_str().unwrap(),
        "--preset",
        "tiny",
        "--quiet",
    ]);
    let r = report(&out);
    assert_eq!(r["rows_total"], 1400);
    assert_eq!(r["rows_written"], 1400, "{r}");
    assert_eq!(r["rows_rejected"], 0);
    eprintln!(
        "GZ2 ingest (tiny preset, 2 cores): {} objects/s, stage seconds {}",
        r["objects_per_second"], r["seconds"]
    );
    let c = Collection::open(&dir).unwrap();
    assert_eq!(c.len(), 1400);
    let names: Vec<&str> = c
        .config()
        .modalities
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(names, vec!["image"]);
    let spirals = c
        .ids()
        .into_iter()
        .filter(|&id| {
            c.get(id).unwrap().attributes.get("spiral") == Some(&AttrValue::Category("yes".into()))
        })
        .count();
    assert_eq!(spirals, n_spiral);
    // Image → image search works and finds the query itself first.
    let id = c.ids()[17];
    let hits = c
        .search_by_id(
            id,
            "image",
            "image",
            &SearchParams {
                include_self: true,
                ..SearchParams::new(5)
            },
        )
        .unwrap();
    assert_eq!(hits.len(), 5);
    assert_eq!(hits[0].id, id);
    let o = c.get(id).unwrap();
    for b in ["thumb.png", "image.png"] {
        assert!(o.blobs.contains(&b.to_string()), "{b}");
    }
}

#[test]
fn desi_coadds_and_redrock_files_ingest_on_the_command_line() {
    let desi = common::data_dir().join("spectra/desi");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("desi");
    let p = |f: &str| desi.join(f).to_str().unwrap().to_string();
    let (a, b, ra, rb) = (
        p("coadd-4-80613-thru20210324.fits"),
        p("coadd-special-dark-27247.fits"),
        p("redrock-4-80613-thru20210324.fits"),
        p("redrock-special-dark-27247.fits"),
    );
    let out = common::run_ok(&[
        "ingest",
        &a,
        &b,
        &ra,
        &rb,
        "-c",
        dir.to_str().unwrap(),
        "--preset",
        "tiny",
        "--quiet",
    ]);
    let r = report(&out);
    assert_eq!(
        (r["rows_written"].as_u64(), r["rows_rejected"].as_u64()),
        (Some(2), Some(0))
    );
    let c = Collection::open(&dir).unwrap();
    let o = c.get(39633345008634465).unwrap();
    assert!(matches!(o.attributes["redshift"], AttrValue::Float(z) if (z - 0.3687).abs() < 1e-3));
    assert!(o.blobs.contains(&"spectrum.f16".to_string()));
    // The random model is kept with the collection for the server.
    assert!(encoder_dir(&dir).join(WEIGHTS_FILE).is_file());
    // A FITS file of another kind (a stacked spectrum on its own 11,217-pixel grid)
    // is read as a spectrum file and rejected with the reason, not silently dropped.
    let x = tmp.path().join("x");
    let out = common::run_ok(&[
        "ingest",
        &p("stack-LRG.fits"),
        "-c",
        x.to_str().unwrap(),
        "--preset",
        "tiny",
        "--quiet",
    ]);
    let r = report(&out);
    assert_eq!(
        (r["rows_written"].as_u64(), r["rows_rejected"].as_u64()),
        (Some(0), Some(1))
    );
    let rejects = std::fs::read_to_string(x.join("ingest-rejects.jsonl")).unwrap();
    assert!(
        rejects.contains("stack-LRG.fits")
            && rejects.contains("expected 7781 flux values, got an image HDU of shape [1, 11217]"),
        "{rejects}"
    );
}
