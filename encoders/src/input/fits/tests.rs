//! The reader on files built with [`super::write`]: round trips and errors that
//! name the HDU and column.

use super::write::*;
use super::*;

fn file(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.fits");
    std::fs::write(&p, bytes).unwrap();
    (dir, p)
}

#[test]
fn images_and_tables_round_trip() {
    let mut bytes = primary();
    bytes.extend(image_ext("W", &[3], Pixels::F64(&[1.5, 2.5, 3.5])));
    bytes.extend(image_ext(
        "F",
        &[2, 3],
        Pixels::F32(&[1., 2., 3., 4., 5., 6.]),
    ));
    bytes.extend(image_ext("M", &[2, 3], Pixels::I32(&[0, 1, 0, 0, 0, 7])));
    bytes.extend(table_ext(
        "T",
        2,
        &[
            Col::K("ID", vec![39633345008634465, 7]),
            Col::D("Z", vec![0.25, 1.5]),
            Col::A("KIND", 6, vec!["GALAXY".into(), "QSO".into()]),
        ],
    ));
    let (_d, p) = file(&bytes);
    let f = FitsFile::open(&p).unwrap();
    assert_eq!(f.hdus().len(), 5);
    assert_eq!(
        f.hdu("w").unwrap().image().unwrap().values,
        vec![1.5, 2.5, 3.5]
    );
    let rows = f.hdu("F").unwrap().image_rows(1, 1).unwrap();
    assert_eq!(rows.shape, vec![1, 3]);
    assert_eq!(rows.values, vec![4., 5., 6.]);
    assert_eq!(f.hdu("M").unwrap().image().unwrap().values[5], 7.0);
    let t = f.hdu("T").unwrap();
    assert_eq!(t.rows().unwrap(), 2);
    let id = t.column("id").unwrap();
    assert_eq!(
        t.column_i128(&id, 0, 2).unwrap(),
        vec![39633345008634465, 7]
    );
    let z = t.column("Z").unwrap();
    assert_eq!(t.column_f64(&z, 1, 1).unwrap(), vec![1.5]);
    let k = t.column("KIND").unwrap();
    assert_eq!(t.column_str(&k, 0, 2).unwrap(), vec!["GALAXY", "QSO"]);
}

#[test]
fn malformed_files_name_the_hdu_and_column() {
    let mut bytes = primary();
    bytes.extend(table_ext("REDSHIFTS", 1, &[Col::D("Z", vec![0.1])]));
    // Truncated data.
    let (_d, p) = file(&bytes[..bytes.len() - 2880]);
    let e = FitsFile::open(&p).unwrap_err();
    assert_eq!(e.hdu.as_deref(), Some("REDSHIFTS"));
    assert!(e.to_string().contains("truncated"), "{e}");
    // Truncated header.
    let (_d, p) = file(&bytes[..1000]);
    assert!(FitsFile::open(&p)
        .unwrap_err()
        .to_string()
        .contains("truncated header"));
    // Not FITS at all.
    let (_d, p) = file(&[b'x'; 2880]);
    let e = FitsFile::open(&p).unwrap_err();
    assert!(e.to_string().contains("not a FITS file"), "{e}");
    // Missing HDU and column.
    let (_d, p) = file(&bytes);
    let f = FitsFile::open(&p).unwrap();
    let e = f.hdu("FIBERMAP").unwrap_err();
    assert!(e.to_string().contains("HDU FIBERMAP: missing HDU"), "{e}");
    let e = f.hdu("REDSHIFTS").unwrap().column("TARGETID").unwrap_err();
    assert!(
        e.to_string()
            .contains("HDU REDSHIFTS: column `TARGETID`: missing column"),
        "{e}"
    );
    // Wrong type.
    let t = f.hdu("REDSHIFTS").unwrap();
    let z = t.column("Z").unwrap();
    assert!(t.column_i128(&z, 0, 1).is_err());
    assert!(t.image().is_err());
}

#[test]
fn bytes_in_memory_read_like_the_file() {
    let mut bytes = primary();
    bytes.extend(image_ext("F", &[2, 2], Pixels::F32(&[1., 2., 3., 4.])));
    bytes.extend(table_ext("T", 2, &[Col::D("Z", vec![0.25, 1.5])]));
    let (_d, p) = file(&bytes);
    let on_disk = FitsFile::open(&p).unwrap();
    let in_memory = FitsFile::from_bytes("bundled.fits", bytes.clone()).unwrap();
    assert_eq!(in_memory.path(), Path::new("bundled.fits"));
    for name in ["F", "T"] {
        let (a, b) = (on_disk.hdu(name).unwrap(), in_memory.hdu(name).unwrap());
        assert_eq!(a.shape().unwrap(), b.shape().unwrap());
    }
    assert_eq!(
        in_memory.hdu("F").unwrap().image_rows(1, 1).unwrap().values,
        vec![3., 4.]
    );
    let t = in_memory.hdu("T").unwrap();
    assert_eq!(
        t.column_f64(&t.column("Z").unwrap(), 0, 2).unwrap(),
        vec![0.25, 1.5]
    );
    // Errors name the given name, and truncation is caught as for a file.
    let e = FitsFile::from_bytes("bundled.fits", &bytes[..bytes.len() - 2880]).unwrap_err();
    assert!(e.to_string().starts_with("bundled.fits: HDU T:"), "{e}");
}

#[test]
fn a_header_whose_data_size_overflows_is_an_error_not_a_wrap() {
    // NAXIS1 × NAXIS2 × 8 bytes overflows 64 bits; a wrapped product would be small
    // enough to pass the size check.
    let header: Vec<String> = vec![
        card("SIMPLE", "T"),
        card("BITPIX", "-64"),
        card("NAXIS", "2"),
        card("NAXIS1", "4294967296"),
        card("NAXIS2", "4294967296"),
    ];
    let mut bytes: Vec<u8> = header
        .iter()
        .map(|c| format!("{c:<80}"))
        .collect::<String>()
        .into_bytes();
    bytes.extend(format!("{:<80}", "END").into_bytes());
    bytes.resize(2880, b' ');
    let e = FitsFile::from_bytes("huge.fits", bytes).unwrap_err();
    assert!(e.to_string().contains("overflows"), "{e}");
}
