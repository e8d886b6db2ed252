//! Numeric hygiene: whatever the scale of a vector, what is stored and searched with is a
//! finite unit vector, and `verify` names a row that holds a non-finite value.

mod common;

use std::io::{Seek, SeekFrom, Write};

use astrovec_engine::{layout, AttrValue, Collection, Object, SearchParams};

const DIM: usize = 8;

fn object(id: u64, v: Vec<f32>) -> Object {
    Object::new(id, 150.0, 2.0)
        .attribute("redshift", AttrValue::Float(0.1))
        .embedding("image", v)
}

#[test]
fn subnormal_vectors_are_stored_as_finite_unit_vectors_and_score_finitely() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collection::create(dir.path().join("c"), common::config(DIM)).unwrap();
    // Subnormal values beside zeros: 1 / norm exceeds f32's range, and the old
    // multiplication by it stored infinities (and NaN where a component was 0).
    let tiny = vec![1e-45f32, 0.0, -2e-45, 0.0, 3e-45, 0.0, 0.0, 1e-45];
    c.upsert_batch(&[object(1, tiny.clone()), object(2, common::vector(2, DIM))])
        .unwrap();
    let stored = c.get_embedding(1, "image").unwrap();
    assert!(stored.iter().all(|x| x.is_finite()), "{stored:?}");
    let len = stored.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((len - 1.0).abs() < 1e-5, "stored length {len}");
    let hits = c.search(&tiny, "image", &SearchParams::new(2)).unwrap();
    assert_eq!(hits[0].id, 1);
    assert!(hits.iter().all(|h| h.score.is_finite()), "{hits:?}");
    assert!((hits[0].score - 1.0).abs() < 1e-5);
    assert_eq!(c.verify().unwrap(), 2);
}

#[test]
fn verify_names_a_row_holding_a_non_finite_value() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    {
        let c = Collection::create(&path, common::config(DIM)).unwrap();
        c.upsert_batch(
            &(1..=3)
                .map(|i| object(i, common::vector(i, DIM)))
                .collect::<Vec<_>>(),
        )
        .unwrap();
        // Indexed rows are not checksummed on open (only by `verify`).
        c.build_index().unwrap();
    }
    // A NaN written into the second row of the image vector file (after its 4096-byte
    // header), as a disk fault or an older writer could leave it.
    let file = layout::vector_file(&path, "image");
    let mut f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
    f.seek(SeekFrom::Start(4096 + (DIM * 4) as u64 + 8))
        .unwrap();
    f.write_all(&f32::NAN.to_le_bytes()).unwrap();
    drop(f);
    let e = Collection::open(&path)
        .and_then(|c| c.verify())
        .unwrap_err()
        .to_string();
    assert!(e.contains("non-finite"), "{e}");
    assert!(e.contains("image.vec"), "{e}");
}
