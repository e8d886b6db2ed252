//! The non-Parquet readers on real and hand-made files: DESI coadd spectra and
//! redrock redshifts (the two real spectra in `../shared/data/spectra/desi`,
//! or `$ASTROVEC_DATA/spectra/desi`), and malformed FITS files.

use std::path::{Path, PathBuf};

use astrovec_encoders::input::desi::grid_wavelength;
use astrovec_encoders::model::astroclip::{CONFIG_FILE, WEIGHTS_FILE};
use astrovec_encoders::{AstroClipConfig, BackendChoice, CpuBackend, Encoder};
use astrovec_engine::layout::{encoder_dir, ENCODER_SOURCE_FILE};
use astrovec_engine::{AttrValue, Collection};
use astrovec_indexer::fits::write::{self as fw, Col, Pixels};
use astrovec_indexer::fits::FitsFile;
use astrovec_indexer::ingest::desi::{read_redrock, CoaddSource, Redshifts};
use astrovec_indexer::ingest::{ingest, Embedder, IngestError, IngestOptions, Mapping};

/// The shared data directory (`$ASTROVEC_DATA`, else `../shared/data` next to the
/// repository). The real DESI files are required: they are the point of these tests.
fn data_dir() -> PathBuf {
    let dir = std::env::var_os("ASTROVEC_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"));
    assert!(
        dir.join("spectra/desi").is_dir(),
        "the real DESI test spectra are expected in {}/spectra/desi (set ASTROVEC_DATA)",
        dir.display()
    );
    dir
}

const COADD_A: &str = "spectra/desi/coadd-4-80613-thru20210324.fits";
const REDROCK_A: &str = "spectra/desi/redrock-4-80613-thru20210324.fits";
const COADD_B: &str = "spectra/desi/coadd-special-dark-27247.fits";
const REDROCK_B: &str = "spectra/desi/redrock-special-dark-27247.fits";

fn one_spectrum(path: &Path) -> (u64, f64, f64, Vec<f32>) {
    let src = CoaddSource::open(path, None, Vec::new()).unwrap();
    assert_eq!(src.len(), 1);
    let mut batches = src.read_from(0, 8).unwrap();
    let mut rows = batches.next().unwrap().unwrap();
    assert!(batches.next().is_none());
    let row = rows.remove(0).result.unwrap();
    (row.id, row.ra, row.dec, row.spectrum.unwrap())
}

/// The raw arm values of the first spectrum: (wavelengths, flux, ivar) per arm.
fn raw_arms(path: &Path) -> Vec<(Vec<f64>, Vec<f64>, Vec<f64>)> {
    let f = FitsFile::open(path).unwrap();
    ["B", "R", "Z"]
        .iter()
        .map(|a| {
            let img = |p: &str| f.hdu(&format!("{a}_{p}")).unwrap().image().unwrap().values;
            (img("WAVELENGTH"), img("FLUX"), img("IVAR"))
        })
        .collect()
}

#[test]
fn real_coadd_lands_on_the_astroclip_grid_with_weighted_overlaps() {
    let data = data_dir();
    let (id, ra, dec, flux) = one_spectrum(&data.join(COADD_A));
    assert_eq!(id, 39633345008634465);
    assert!((ra - 105.48977452).abs() < 1e-6 && (dec - 56.66930006).abs() < 1e-6);
    assert_eq!(flux.len(), 7781);
    assert_eq!(grid_wavelength(0), 3600.0);
    assert!((grid_wavelength(7780) - 9824.0).abs() < 1e-9);
    let arms = raw_arms(&data.join(COADD_A));
    // Every arm sits on the grid: pixel j of an arm is grid pixel (λ − 3600)/0.8.
    let at = |arm: usize, lam: f64| {
        let (w, f, iv) = &arms[arm];
        let j = w.iter().position(|&x| (x - lam).abs() < 1e-3).unwrap();
        (f[j], iv[j])
    };
    // b only (3700 Å), z only (9500 Å): the arm's value itself.
    for (arm, i) in [(0usize, 125usize), (2, 7375)] {
        let (f, _) = at(arm, grid_wavelength(i));
        assert!((flux[i] as f64 - f).abs() < 1e-5, "pixel {i}");
    }
    // b/r overlap (5780 Å) and r/z overlap (7600 Å): inverse-variance weighted.
    for (a, b, i) in [(0usize, 1usize, 2725usize), (1, 2, 5000)] {
        let lam = grid_wavelength(i);
        let ((f1, w1), (f2, w2)) = (at(a, lam), at(b, lam));
        assert!(w1 > 0.0 && w2 > 0.0);
        let expect = (w1 * f1 + w2 * f2) / (w1 + w2);
        assert!(
            (flux[i] as f64 - expect).abs() < 1e-4 * expect.abs().max(1.0),
            "pixel {i}: {} vs {expect}",
            flux[i]
        );
        // …and differs from either arm alone (the test has teeth).
        assert!((f1 - f2).abs() > 1e-3);
    }
}

#[test]
fn emission_lines_of_the_z037_galaxy_sit_where_its_redshift_puts_them() {
    let data = data_dir();
    let (id, _, _, flux) = one_spectrum(&data.join(COADD_A));
    let mut z = Redshifts::new();
    read_redrock(&data.join(REDROCK_A), &mut z).unwrap();
    let z = z[&id].z;
    assert!((z - 0.3687).abs() < 1e-3, "z = {z}");
    // Hα 6564.6 Å and the [OII] 3727/3729 Å doublet (vacuum rest wavelengths).
    for (line, rest) in [("H-alpha", 6564.6), ("[OII]", 3728.5)] {
        let expect = ((1.0 + z) * rest - 3600.0) / 0.8;
        let c = expect.round() as usize;
        let peak = (c - 15..=c + 15)
            .max_by(|&a, &b| flux[a].total_cmp(&flux[b]))
            .unwrap();
        assert!(
            (peak as f64 - expect).abs() <= 3.0,
            "{line}: peak at pixel {peak}, expected {expect:.1}"
        );
        // A real emission line: far above the local continuum and its scatter.
        let mut local: Vec<f32> = flux[c - 80..=c + 80].to_vec();
        local.sort_by(f32::total_cmp);
        let median = local[local.len() / 2];
        let mut dev: Vec<f32> = local.iter().map(|v| (v - median).abs()).collect();
        dev.sort_by(f32::total_cmp);
        let mad = dev[dev.len() / 2];
        assert!(
            flux[peak] - median > 20.0 * mad,
            "{line}: peak {} vs continuum {median} ± {mad}",
            flux[peak]
        );
    }
}

/// A tiny random model written as a bare safetensors file (not a model directory),
/// so the ingest must save it in the collection itself.
fn tiny_weights(dir: &Path) -> PathBuf {
    let model = dir.join("m");
    Encoder::<CpuBackend>::random(&AstroClipConfig::tiny(), &Default::default())
        .unwrap()
        .save_dir(&model)
        .unwrap();
    let file = dir.join("tiny-weights.safetensors");
    std::fs::rename(model.join(WEIGHTS_FILE), &file).unwrap();
    file
}

#[test]
fn two_real_spectra_ingest_with_redrock_redshifts() {
    let data = data_dir();
    let tmp = tempfile::tempdir().unwrap();
    let weights = tiny_weights(tmp.path());
    let dir = tmp.path().join("desi");
    let mut o = IngestOptions::new(
        [COADD_A, COADD_B, REDROCK_A, REDROCK_B]
            .iter()
            .map(|p| data.join(p))
            .collect(),
        dir.clone(),
        Embedder::Model {
            config: Box::new(AstroClipConfig::tiny()),
            weights: Some(weights.clone()),
            backend: BackendChoice::Cpu,
            batch_size: 2,
            name: "tiny".into(),
        },
    );
    o.mapping = toml::from_str::<Mapping>("[attributes]\nFLUX_R = \"flux_r\"").unwrap();
    let r = ingest(&o).unwrap();
    assert_eq!((r.rows_total, r.rows_written, r.rows_rejected), (2, 2, 0));
    let c = Collection::open(&dir).unwrap();
    let a = c.get(39633345008634465).unwrap();
    let b = c.get(39089837499744649).unwrap();
    assert_eq!(a.modalities, vec!["spectrum".to_string()]);
    match (&a.attributes["redshift"], &b.attributes["redshift"]) {
        (AttrValue::Float(za), AttrValue::Float(zb)) => {
            assert!((za - 0.36874).abs() < 1e-4 && (zb - 0.00727).abs() < 1e-4)
        }
        other => panic!("redshifts {other:?}"),
    }
    assert_eq!(
        a.attributes["spectype"],
        AttrValue::Category("GALAXY".into())
    );
    assert_eq!(a.attributes["zwarn"], AttrValue::Int(0));
    assert!(matches!(a.attributes["flux_r"], AttrValue::Float(f) if f > 0.0));
    assert!((b.ra - 149.46540425).abs() < 1e-6 && (b.dec - 1.79364675).abs() < 1e-6);
    // The preview blob is the combined spectrum.
    let (_, _, _, flux) = one_spectrum(&data.join(COADD_A));
    let blob = c.get_blob(a.id, "spectrum.f16").unwrap().unwrap();
    let back = astrovec_engine::blobs::decode_spectrum_f16(&blob).unwrap();
    assert_eq!(back.len(), 7781);
    assert!((back[6732] - flux[6732]).abs() < 2e-3 * flux[6732].abs());
    // The model given as a bare weights file is saved with the collection.
    let saved_dir = encoder_dir(&dir);
    assert!(saved_dir.join(CONFIG_FILE).is_file());
    assert!(saved_dir.join(WEIGHTS_FILE).is_file());
    let source: serde_json::Value =
        serde_json::from_slice(&std::fs::read(saved_dir.join(ENCODER_SOURCE_FILE)).unwrap())
            .unwrap();
    assert_eq!(source["weights"], weights.display().to_string());
    let saved = Encoder::<CpuBackend>::load_dir(saved_dir, &Default::default()).unwrap();
    let given =
        Encoder::<CpuBackend>::load(&AstroClipConfig::tiny(), &weights, &Default::default())
            .unwrap();
    assert_eq!(
        saved.embed_spectra(&flux).unwrap(),
        given.embed_spectra(&flux).unwrap()
    );
    // The stored vector is the given model's embedding (stored L2-normalised).
    let stored = c.get_embedding(a.id, "spectrum").unwrap();
    let mut e = given.embed_spectra(&flux).unwrap().remove(0);
    astrovec_engine::normalize(&mut e);
    for (x, y) in stored.iter().zip(&e) {
        assert!((x - y).abs() < 1e-5, "{x} vs {y}");
    }
}

/// A one-spectrum coadd with one arm covering grid pixels 0..50; `drop` leaves
/// out an HDU or a FIBERMAP column.
fn small_coadd(drop: &str) -> Vec<u8> {
    let wave: Vec<f64> = (0..50).map(grid_wavelength).collect();
    let mut cols = vec![Col::K("TARGETID", vec![42])];
    if drop != "TARGET_RA" {
        cols.push(Col::D("TARGET_RA", vec![10.0]));
    }
    cols.push(Col::D("TARGET_DEC", vec![-5.0]));
    let mut b = fw::primary();
    b.extend(fw::table_ext("FIBERMAP", 1, &cols));
    b.extend(fw::image_ext("B_WAVELENGTH", &[50], Pixels::F64(&wave)));
    b.extend(fw::image_ext("B_FLUX", &[1, 50], Pixels::F32(&[1.0; 50])));
    if drop != "B_IVAR" {
        b.extend(fw::image_ext("B_IVAR", &[1, 50], Pixels::F32(&[1.0; 50])));
    }
    b.extend(fw::image_ext("B_MASK", &[1, 50], Pixels::I32(&[0; 50])));
    b
}

#[test]
fn malformed_coadds_are_errors_naming_file_hdu_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |name: &str, bytes: &[u8]| -> String {
        let p = tmp.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        let embedder = Embedder::Model {
            config: Box::new(AstroClipConfig::tiny()),
            weights: None,
            backend: BackendChoice::Cpu,
            batch_size: 2,
            name: "tiny".into(),
        };
        let o = IngestOptions::new(
            vec![p.clone()],
            tmp.path().join(format!("c-{name}")),
            embedder,
        );
        let e: IngestError = ingest(&o).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(p.to_str().unwrap()), "names the file: {msg}");
        msg
    };
    // The hand-made file itself is good (so the failures below are the defects).
    let good = tmp.path().join("good.fits");
    std::fs::write(&good, small_coadd("")).unwrap();
    let src = CoaddSource::open(&good, None, Vec::new()).unwrap();
    let row = src
        .read_from(0, 4)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .remove(0);
    assert_eq!(row.result.unwrap().spectrum.unwrap()[30], 1.0);

    let full = small_coadd("");
    let msg = run("truncated.fits", &full[..full.len() - 2880]);
    assert!(
        msg.contains("HDU B_MASK") && msg.contains("truncated"),
        "{msg}"
    );
    let msg = run("cut-header.fits", &full[..2880 + 1000]);
    assert!(msg.contains("truncated header"), "{msg}");
    let mut bad = full.clone();
    bad[..6].copy_from_slice(b"SIMPLX");
    let msg = run("wrong-header.fits", &bad);
    assert!(msg.contains("not a FITS file"), "{msg}");
    let msg = run("no-ivar.fits", &small_coadd("B_IVAR"));
    assert!(msg.contains("HDU B_IVAR: missing HDU"), "{msg}");
    let msg = run("no-ra.fits", &small_coadd("TARGET_RA"));
    assert!(
        msg.contains("HDU FIBERMAP: column `TARGET_RA`: missing column"),
        "{msg}"
    );
}

fn write_png(path: &Path, w: u32, h: u32, px: &[u8]) {
    let f = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(f), w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header().unwrap().write_image_data(px).unwrap();
}

fn tiny_random() -> Embedder {
    Embedder::Model {
        config: Box::new(AstroClipConfig::tiny()),
        weights: None,
        backend: BackendChoice::Cpu,
        batch_size: 4,
        name: "tiny".into(),
    }
}

#[test]
fn png_and_fits_cutouts_ingest_as_an_image_only_collection_with_csv_labels() {
    let tmp = tempfile::tempdir().unwrap();
    let cut = tmp.path().join("cutouts");
    std::fs::create_dir_all(cut.join("sub")).unwrap();
    // Two RGB PNGs of different sizes (ids from the file names) …
    let px = |w: u32, h: u32, k: u32| -> Vec<u8> {
        (0..w * h * 3)
            .map(|i| ((i * (k + 1)) % 251) as u8)
            .collect()
    };
    write_png(&cut.join("gal_0007.png"), 60, 40, &px(60, 40, 1));
    write_png(&cut.join("sub/gal_0009.png"), 200, 200, &px(200, 200, 2));
    // … a FITS g, r, z cutout stored z, r, g with its position in the header …
    let s = 152usize;
    let grz: Vec<f32> = (0..3 * s * s)
        .map(|i| ((i % 97) as f32) * 0.01 * (1 + i / (s * s)) as f32)
        .collect();
    let zrg: Vec<f32> = [2usize, 1, 0]
        .iter()
        .flat_map(|&b| grz[b * s * s..(b + 1) * s * s].to_vec())
        .collect();
    let cards = [
        fw::card("BAND0", "'z'"),
        fw::card("BAND1", "'r'"),
        fw::card("BAND2", "'g'"),
        fw::card("RA", "150.25"),
        fw::card("DEC", "2.5"),
    ];
    std::fs::write(
        cut.join("cutout-0011.fits"),
        fw::primary_image_f32(&[3, s, s], &zrg, &cards),
    )
    .unwrap();
    // … a broken JPEG and a file without digits: both rejected with reasons.
    std::fs::write(cut.join("broken-0013.jpg"), b"not a jpeg").unwrap();
    write_png(&cut.join("nameless.png"), 40, 40, &px(40, 40, 3));
    // Labels and one position by id.
    let csv = tmp.path().join("labels.csv");
    std::fs::write(
        &csv,
        "id,ra,dec,spiral,p_spiral\n7,10.5,-3.25,yes,0.9\n9,,,no,0.1\n11,,,yes,\n",
    )
    .unwrap();
    let dir = tmp.path().join("coll");
    let mut o = IngestOptions::new(vec![cut.clone(), csv.clone()], dir.clone(), tiny_random());
    o.batch_size = 2;
    o.mapping =
        toml::from_str("[attributes]\nspiral = { name = \"morphology\", kind = \"category\" }")
            .unwrap();
    let r = ingest(&o).unwrap();
    assert_eq!(
        (r.rows_total, r.rows_written, r.rows_rejected),
        (5, 3, 2),
        "{r:?}"
    );
    assert_eq!(
        r.modalities
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>(),
        vec!["image"]
    );
    let rejects = std::fs::read_to_string(&r.rejects_file).unwrap();
    assert!(
        rejects.contains("expected a JPEG picture, got undecodable bytes")
            && rejects.contains("no id"),
        "{rejects}"
    );
    let c = Collection::open(&dir).unwrap();
    let a = c.get(7).unwrap();
    assert_eq!((a.ra, a.dec), (10.5, -3.25));
    assert_eq!(
        a.attributes["morphology"],
        AttrValue::Category("yes".into())
    );
    assert_eq!(a.attributes["p_spiral"], AttrValue::Float(0.9));
    assert_eq!(a.attributes["position_known"], AttrValue::Int(1));
    assert_eq!(a.modalities, vec!["image".to_string()]);
    let b = c.get(9).unwrap();
    assert_eq!(
        (b.ra, b.dec, &b.attributes["position_known"]),
        (0.0, 0.0, &AttrValue::Int(0))
    );
    // The full-resolution picture of an RGB input is the input itself.
    let png_bytes = c.get_blob(9, "image.png").unwrap().unwrap();
    let mut rd = png::Decoder::new(std::io::Cursor::new(png_bytes))
        .read_info()
        .unwrap();
    let mut buf = vec![0u8; rd.output_buffer_size()];
    let info = rd.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (200, 200));
    assert_eq!(&buf[..info.buffer_size()], &px(200, 200, 2)[..]);
    // The FITS cutout: position from its header, bands put back in g, r, z order.
    let f = c.get(11).unwrap();
    assert_eq!((f.ra, f.dec), (150.25, 2.5));
    let expect = astrovec_indexer::ingest::thumb::image_png(&astrovec_indexer::ingest::Image {
        kind: astrovec_indexer::ingest::ImageKind::Grz,
        height: s,
        width: s,
        data: grz,
    })
    .unwrap();
    assert_eq!(c.get_blob(11, "image.png").unwrap().unwrap(), expect);
    assert!(c
        .get_embedding(11, "image")
        .unwrap()
        .iter()
        .any(|v| *v != 0.0));
}

mod hdf5_files {
    use super::*;
    use hdf5_metno as h5;

    fn put<T: h5::H5Type>(g: &h5::Group, name: &str, shape: &[usize], data: &[T]) {
        g.new_dataset::<T>()
            .shape(shape.to_vec())
            .create(name)
            .unwrap()
            .write_raw(data)
            .unwrap();
    }

    fn cutout(k: usize) -> Vec<f32> {
        (0..152 * 152 * 3)
            .map(|i| ((i * (k + 2)) % 89) as f32 * 0.004)
            .collect()
    }

    fn spectrum(k: usize) -> Vec<f32> {
        (0..7781)
            .map(|i| 1.0 + (i as f32 * 0.003 * (k + 1) as f32).sin())
            .collect()
    }

    #[test]
    fn astroclip_layout_groups_ingest_with_redshifts() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("astroclip.h5");
        {
            let f = h5::File::create(&path).unwrap();
            // Groups "10" and "2": read in numeric order (2 before 10).
            for (name, ids) in [("10", vec![30i64, 31]), ("2", vec![20, 21, 22])] {
                let g = f.create_group(name).unwrap();
                let n = ids.len();
                let imgs: Vec<f32> = (0..n).flat_map(|k| cutout(ids[k] as usize)).collect();
                put(&g, "images", &[n, 152, 152, 3], &imgs);
                let specs: Vec<f32> = (0..n).flat_map(|k| spectrum(ids[k] as usize)).collect();
                put(&g, "spectra", &[n, 7781, 1], &specs);
                let z: Vec<f32> = ids.iter().map(|&i| i as f32 / 100.0).collect();
                put(&g, "redshifts", &[n], &z);
                put(&g, "targetids", &[n], &ids);
            }
        }
        let dir = tmp.path().join("coll");
        let mut o = IngestOptions::new(vec![path.clone()], dir.clone(), tiny_random());
        o.batch_size = 2;
        let r = ingest(&o).unwrap();
        assert_eq!((r.rows_total, r.rows_written, r.rows_rejected), (5, 5, 0));
        let c = Collection::open(&dir).unwrap();
        let o21 = c.get(21).unwrap();
        assert_eq!(o21.attributes["redshift"], AttrValue::Float(0.21f32 as f64));
        assert_eq!(o21.attributes["position_known"], AttrValue::Int(0));
        assert_eq!(
            o21.modalities,
            vec!["image".to_string(), "spectrum".to_string()]
        );
        // Rows keep the numeric group order, and the spectrum is [7781, 1] read right.
        let blob = c.get_blob(31, "spectrum.f16").unwrap().unwrap();
        let back = astrovec_engine::blobs::decode_spectrum_f16(&blob).unwrap();
        assert!((back[500] - spectrum(31)[500]).abs() < 1e-2);
        let rejects = std::path::Path::new(&r.rejects_file);
        assert!(!rejects.exists() || std::fs::read_to_string(rejects).unwrap().is_empty());
        // Same cutouts as the Parquet mirror layout would give: channel-last → g, r, z planes.
        let png = c.get_blob(20, "image.png").unwrap().unwrap();
        let planar: Vec<f32> = {
            let hwc = cutout(20);
            (0..3)
                .flat_map(|b| (0..152 * 152).map(move |p| (b, p)))
                .map(|(b, p)| hwc[p * 3 + b])
                .collect()
        };
        let expect = astrovec_indexer::ingest::thumb::image_png(&astrovec_indexer::ingest::Image {
            kind: astrovec_indexer::ingest::ImageKind::Grz,
            height: 152,
            width: 152,
            data: planar,
        })
        .unwrap();
        assert_eq!(png, expect);
    }

    #[test]
    fn multimodal_universe_layout_ingests_labels_and_precomputed_embeddings() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("mmu.hdf5");
        let n = 4usize;
        {
            let f = h5::File::create(&path).unwrap();
            let root: &h5::Group = &f;
            put(root, "object_id", &[n], &[5i64, 6, -1, 8]);
            put(root, "ra", &[n], &[10.0f64, 20.0, 30.0, 400.0]);
            put(root, "dec", &[n], &[1.0f64, 2.0, 3.0, 4.0]);
            let imgs: Vec<f32> = (0..n * 3 * 16 * 16)
                .map(|i| (i % 7) as f32 * 0.01)
                .collect();
            put(root, "image_array", &[n, 3, 16, 16], &imgs);
            let emb: Vec<f32> = (0..n * 8).map(|i| (i % 5) as f32 - 2.0 + 0.25).collect();
            put(root, "emb", &[n, 8], &emb);
            put(root, "z_spec", &[n], &[0.1f32, 0.2, 0.3, 0.4]);
            put(root, "is_spiral", &[n], &[1i32, 0, 1, 0]);
            put(root, "psf", &[n, 2], &[0.0f32; 8]);
        }
        let dir = tmp.path().join("coll");
        let mut o = IngestOptions::new(vec![path.clone()], dir.clone(), Embedder::Precomputed);
        o.mapping = toml::from_str(
            "[embeddings]\nimage = \"emb\"\n[attributes]\nz_spec = { name = \"redshift\" }",
        )
        .unwrap();
        let r = ingest(&o).unwrap();
        assert_eq!(
            (r.rows_total, r.rows_written, r.rows_rejected),
            (4, 2, 2),
            "{r:?}"
        );
        let rejects = std::fs::read_to_string(&r.rejects_file).unwrap();
        assert!(
            rejects.contains("negative") && rejects.contains("outside [0, 360]"),
            "{rejects}"
        );
        assert!(r.ignored_columns.iter().any(|(c, _)| c == "psf"));
        let c = Collection::open(&dir).unwrap();
        let o6 = c.get(6).unwrap();
        assert_eq!((o6.ra, o6.dec), (20.0, 2.0));
        assert_eq!(o6.attributes["redshift"], AttrValue::Float(0.2f32 as f64));
        assert_eq!(o6.attributes["is_spiral"], AttrValue::Int(0));
        assert!(!o6.attributes.contains_key("position_known"));
        assert_eq!(o6.modalities, vec!["image".to_string()]);
        assert!(o6.blobs.contains(&"image.png".to_string()));
        // A file without an id dataset is an error naming the file and dataset.
        let bad = tmp.path().join("noid.h5");
        {
            let f = h5::File::create(&bad).unwrap();
            put(&f, "ra", &[1], &[1.0f64]);
        }
        let mut o = IngestOptions::new(vec![bad.clone()], tmp.path().join("c2"), tiny_random());
        o.batch_size = 2;
        let msg = ingest(&o).unwrap_err().to_string();
        assert!(
            msg.contains("noid.h5") && msg.contains("object_id"),
            "{msg}"
        );
        // A truncated file is an error, not a panic.
        let bytes = std::fs::read(&path).unwrap();
        let cut = tmp.path().join("cut.h5");
        std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
        let o = IngestOptions::new(vec![cut.clone()], tmp.path().join("c3"), tiny_random());
        let msg = ingest(&o).unwrap_err().to_string();
        assert!(msg.contains("cut.h5"), "{msg}");
    }
}
