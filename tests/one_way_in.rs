//! One file, one embedding, whichever way it comes in. For every input format, a few
//! files are ingested with `astrovec ingest`, then each same file is uploaded to
//! `astrovec serve` (base64 in the search body, as the web page and scripts send it)
//! and embedded with `astrovec embed`. The upload must find the object itself first
//! with cosine ≥ 0.9999, and `embed` must reproduce the stored (unit-norm) vector within
//! 1e-5 per component once normalised.
//!
//! Formats: JPEG (real Galaxy Zoo cutouts from `$ASTROVEC_DATA`), PNG (the same
//! pictures re-encoded), FITS g, r, z cutouts, `.npy` and JSON-values cutouts (from a
//! mock Parquet catalog), spectra as JSON values (the catalog) and as `.npy`, FITS and
//! CSV files (each format ingested as a directory of files, and checked against the
//! catalog too), and real DESI coadds (uploaded whole, one spectrum picked by TARGETID).

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use astrovec_encoders::input::desi::{grid_wavelength, Coadd};
use astrovec_encoders::input::fits::{write::primary_image_f32, FitsFile};
use astrovec_encoders::input::npy;
use astrovec_encoders::input::raster::{self, Picture};
use astrovec_engine::Collection;
use astrovec_indexer::mock::{MockConfig, MockSurvey};
use base64::Engine as _;
use serde_json::{json, Value};

const COSINE: f64 = 0.9999;
const EMBED_TOLERANCE: f32 = 1e-5;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Everything the checks need: the served address, the collections and the model.
struct Setup {
    addr: String,
    /// Stored unit-norm vectors by (collection, modality, id), read before serving (the
    /// server holds the collections' locks).
    stored: HashMap<(String, String, u64), Vec<f32>>,
    model: PathBuf,
    tmp: PathBuf,
}

impl Setup {
    /// Uploads `query` (an `image` or `spectrum` object) to collection `coll` and checks
    /// that object `id` comes back first with cosine ≥ 0.9999.
    fn upload_finds_itself(&self, coll: &str, modality: &str, query: Value, id: u64, label: &str) {
        let r = common::post(
            &self.addr,
            &format!("/v1/collections/{coll}/search"),
            json!({modality: query, "to": modality, "k": 5}),
        );
        let first = &r["results"][0];
        assert_eq!(
            first["id"].as_u64(),
            Some(id),
            "{label}: the upload's nearest object is not itself: {r}"
        );
        let score = first["score"].as_f64().unwrap();
        assert!(score >= COSINE, "{label}: cosine to itself {score}");
    }

    /// Runs `astrovec embed --<modality> FILES…` and checks each output row against the
    /// stored vector of the matching id.
    fn embed_matches(
        &self,
        coll: &str,
        modality: &str,
        files: &[PathBuf],
        ids: &[u64],
        label: &str,
    ) {
        let out = self.tmp.join(format!("{label}.npy"));
        let mut args = vec!["embed", "--weights", s(&self.model), "--out", s(&out)];
        let flag = format!("--{modality}");
        args.push(&flag);
        args.extend(files.iter().map(|f| s(f)));
        common::run_ok(&args);
        let array = npy::read(label, &std::fs::read(&out).unwrap(), usize::MAX).unwrap();
        assert_eq!(array.shape[0], ids.len(), "{label}: rows of `embed`");
        let dim = array.shape[1];
        for (row, &id) in array.data.chunks(dim).zip(ids) {
            if id == u64::MAX {
                continue;
            }
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            let stored = &self.stored[&(coll.to_string(), modality.to_string(), id)];
            let worst = row
                .iter()
                .zip(stored)
                .map(|(a, b)| (a / norm - b).abs())
                .fold(0.0f32, f32::max);
            assert!(
                worst <= EMBED_TOLERANCE,
                "{label}: `embed` differs from the stored vector of {id} by {worst}"
            );
        }
    }
}

fn ingest(inputs: &[&Path], db: &Path, model: &Path) {
    let mut args = vec!["ingest"];
    args.extend(inputs.iter().map(|p| s(p)));
    args.extend(["--db", s(db), "--weights", s(model), "--quiet"]);
    common::run_ok(&args);
}

#[test]
fn every_format_gives_one_embedding_through_ingest_upload_and_embed() {
    let data = common::data_dir();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let model = t.join("model");
    common::save_random_model(&model);
    let db = t.join("db");

    // Pictures: five Galaxy Zoo JPEGs, and the same pictures as PNG.
    let gz = data.join("images/gz2_spirals/train/spirals");
    let mut jpegs: Vec<PathBuf> = std::fs::read_dir(&gz)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    jpegs.sort();
    jpegs.truncate(5);
    let (jpeg_dir, png_dir) = (t.join("jpeg"), t.join("png"));
    std::fs::create_dir_all(&jpeg_dir).unwrap();
    std::fs::create_dir_all(&png_dir).unwrap();
    let mut pngs = Vec::new();
    for j in &jpegs {
        let bytes = std::fs::read(j).unwrap();
        std::fs::write(jpeg_dir.join(j.file_name().unwrap()), &bytes).unwrap();
        let img = raster::decode("jpeg", &bytes, Picture::Jpeg, usize::MAX).unwrap();
        let plane = img.height * img.width;
        let px: Vec<u8> = (0..plane)
            .flat_map(|p| (0..3).map(move |c| (c, p)))
            .map(|(c, p)| (img.data[c * plane + p] * 255.0).round() as u8)
            .collect();
        let path = png_dir.join(j.file_name().unwrap()).with_extension("png");
        let mut enc = png::Encoder::new(
            std::fs::File::create(&path).unwrap(),
            img.width as u32,
            img.height as u32,
        );
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().unwrap();
        w.write_image_data(&px).unwrap();
        w.finish().unwrap();
        pngs.push(path);
    }
    let id_of = |p: &Path| -> u64 { p.file_stem().unwrap().to_str().unwrap().parse().unwrap() };
    ingest(&[&jpeg_dir], &db.join("jpeg"), &model);
    ingest(&[&png_dir], &db.join("png"), &model);

    // A mock catalog (g, r, z cutouts and spectra), and three of its cutouts as FITS.
    let (count, seed) = (40usize, 5u64);
    let mock = t.join("mock.parquet");
    common::run_ok(&[
        "mock",
        "-n",
        &count.to_string(),
        "--seed",
        &seed.to_string(),
        "-o",
        s(&mock),
        "--quiet",
    ]);
    ingest(&[&mock], &db.join("mock"), &model);
    let survey = MockSurvey::new(MockConfig {
        count,
        seed,
        ..MockConfig::default()
    })
    .unwrap();
    let probes: Vec<_> = [0usize, 13, 27].iter().map(|&i| survey.row(i)).collect();
    // One file per probe, named `<kind>_<targetid>.<ext>` (the ingest takes the id from
    // the file name's last digits), in a directory `<kind>-<ext>` of its own.
    let files = |kind: &str,
                 ext: &str,
                 make: &dyn Fn(&astrovec_indexer::mock::MockRow) -> Vec<u8>|
     -> Vec<PathBuf> {
        let dir = t.join(format!("{kind}-{ext}"));
        std::fs::create_dir_all(&dir).unwrap();
        probes
            .iter()
            .map(|r| {
                let p = dir.join(format!("{kind}_{}.{ext}", r.targetid));
                std::fs::write(&p, make(r)).unwrap();
                p
            })
            .collect()
    };
    let cutout_fits = files("cutout", "fits", &|r| {
        primary_image_f32(&[3, 152, 152], &r.image, &[])
    });
    ingest(&[&t.join("cutout-fits")], &db.join("fits"), &model);
    // The mock's spectra as files, one directory (and collection) per format.
    let spec_npy = files("spectrum", "npy", &|r| {
        npy::write_f32(&[r.spectrum.len()], &r.spectrum)
    });
    let spec_fits = files("spectrum", "fits", &|r| {
        primary_image_f32(&[r.spectrum.len()], &r.spectrum, &[])
    });
    let spec_csv = files("spectrum", "csv", &|r| {
        let mut text = String::from("# wavelength_A,flux_1e-17_erg_s_cm2_A\nwavelength,flux\n");
        for (i, f) in r.spectrum.iter().enumerate() {
            text += &format!("{},{f}\n", grid_wavelength(i));
        }
        text.into_bytes()
    });
    for ext in ["npy", "fits", "csv"] {
        let dir = t.join(format!("spectrum-{ext}"));
        ingest(&[&dir], &db.join(format!("spec-{ext}")), &model);
    }

    // Real DESI coadds with their redshifts.
    let desi = data.join("spectra/desi");
    let coadds = [
        desi.join("coadd-4-80613-thru20210324.fits"),
        desi.join("coadd-special-dark-27247.fits"),
    ];
    ingest(
        &[
            &coadds[0],
            &coadds[1],
            &desi.join("redrock-4-80613-thru20210324.fits"),
            &desi.join("redrock-special-dark-27247.fits"),
        ],
        &db.join("desi"),
        &model,
    );

    let mut stored = HashMap::new();
    let mut desi_ids = Vec::new();
    for coll in [
        "jpeg",
        "png",
        "mock",
        "fits",
        "desi",
        "spec-npy",
        "spec-fits",
        "spec-csv",
    ] {
        let c = Collection::open(db.join(coll)).unwrap();
        for m in &c.config().modalities {
            for id in c.ids() {
                let v = c.get_embedding(id, &m.name).unwrap();
                stored.insert((coll.to_string(), m.name.clone(), id), v);
            }
        }
        if coll == "desi" {
            desi_ids = c.ids();
        }
    }
    let (_server, v) = common::serve(&db);
    let setup = Setup {
        addr: v["listening"].as_str().unwrap().to_string(),
        stored,
        model: model.clone(),
        tmp: t.to_path_buf(),
    };

    // JPEG and PNG pictures, uploaded and embedded file by file.
    for (coll, key, list) in [("jpeg", "jpeg", &jpegs), ("png", "png", &pngs)] {
        let ids: Vec<u64> = list.iter().map(|p| id_of(p)).collect();
        for (p, &id) in list.iter().zip(&ids) {
            let q = json!({ key: b64(&std::fs::read(p).unwrap()) });
            setup.upload_finds_itself(coll, "image", q, id, &format!("{coll} {}", p.display()));
        }
        setup.embed_matches(coll, "image", list, &ids, coll);
    }
    // A directory given to `embed` is read like the ingest reads it (sorted by path).
    let ids: Vec<u64> = jpegs.iter().map(|p| id_of(p)).collect();
    setup.embed_matches(
        "jpeg",
        "image",
        std::slice::from_ref(&jpeg_dir),
        &ids,
        "jpeg-directory",
    );

    // g, r, z cutouts: FITS files, `.npy` and JSON values of the mock's cutouts.
    let mock_ids: Vec<u64> = probes.iter().map(|r| r.targetid as u64).collect();
    for (p, &id) in cutout_fits.iter().zip(&mock_ids) {
        let q = json!({"fits": b64(&std::fs::read(p).unwrap())});
        setup.upload_finds_itself("fits", "image", q, id, "FITS cutout");
    }
    setup.embed_matches("fits", "image", &cutout_fits, &mock_ids, "fits");
    let cutout_npy = files("cutout", "npy", &|r| {
        npy::write_f32(&[3, 152, 152], &r.image)
    });
    for ((p, r), &id) in cutout_npy.iter().zip(&probes).zip(&mock_ids) {
        let q = json!({"npy": b64(&std::fs::read(p).unwrap())});
        setup.upload_finds_itself("mock", "image", q, id, "npy cutout");
        let q = json!({"values": r.image, "shape": [3, 152, 152]});
        setup.upload_finds_itself("mock", "image", q, id, "JSON cutout");
    }
    setup.embed_matches("mock", "image", &cutout_npy, &mock_ids, "npy-cutouts");

    // Spectra: JSON values against the catalog; each `.npy`, FITS and CSV file against
    // the collection ingested from those files and against the catalog.
    for (i, (r, &id)) in probes.iter().zip(&mock_ids).enumerate() {
        let q = json!({"values": r.spectrum});
        setup.upload_finds_itself("mock", "spectrum", q, id, "JSON spectrum");
        for coll in ["spec-npy", "mock"] {
            let q = json!({"npy": b64(&std::fs::read(&spec_npy[i]).unwrap())});
            setup.upload_finds_itself(coll, "spectrum", q, id, "npy spectrum");
        }
        for coll in ["spec-fits", "mock"] {
            let q = json!({"fits": b64(&std::fs::read(&spec_fits[i]).unwrap())});
            setup.upload_finds_itself(coll, "spectrum", q, id, "FITS spectrum");
        }
        for coll in ["spec-csv", "mock"] {
            let q = json!({"csv": std::fs::read_to_string(&spec_csv[i]).unwrap()});
            setup.upload_finds_itself(coll, "spectrum", q, id, "CSV spectrum");
        }
    }
    for (coll, list) in [
        ("spec-npy", &spec_npy),
        ("spec-fits", &spec_fits),
        ("spec-csv", &spec_csv),
    ] {
        setup.embed_matches(coll, "spectrum", list, &mock_ids, coll);
        let label = format!("{coll}-against-the-catalog");
        setup.embed_matches("mock", "spectrum", list, &mock_ids, &label);
    }

    // DESI coadds: the whole file uploaded, the spectrum picked by TARGETID (which may
    // be left out when the file holds one); `embed` embeds every spectrum of each file,
    // in FIBERMAP order.
    let mut expected = Vec::new();
    for path in &coadds {
        let fits = FitsFile::open(path).unwrap();
        let coadd = Coadd::open(&fits).unwrap();
        let row_ids = coadd.ids(0, coadd.rows()).unwrap();
        let bytes = b64(&std::fs::read(path).unwrap());
        for id in row_ids.iter().flatten().filter(|i| desi_ids.contains(i)) {
            let q = json!({"fits": bytes, "targetid": id});
            setup.upload_finds_itself("desi", "spectrum", q, *id, "DESI coadd");
            if row_ids.len() == 1 {
                let q = json!({"fits": bytes});
                setup.upload_finds_itself("desi", "spectrum", q, *id, "DESI coadd, one spectrum");
            }
        }
        // Rows the ingest skipped (sky fibres) are not compared.
        expected.extend(
            row_ids
                .iter()
                .map(|i| i.filter(|i| desi_ids.contains(i)).unwrap_or(u64::MAX)),
        );
    }
    assert!(
        expected.iter().filter(|&&i| i != u64::MAX).count() >= 2,
        "the coadds ingest spectra"
    );
    setup.embed_matches("desi", "spectrum", &coadds, &expected, "desi-coadds");
}
