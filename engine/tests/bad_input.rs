//! Bad input gives typed errors and writes nothing; damaged or foreign files give
//! errors naming the file.

mod common;

use astrovec_engine::{
    layout, AttrValue, Collection, Error, Filter, Object, SearchParams, MAX_EF, MAX_K,
};

fn fresh() -> (tempfile::TempDir, Collection) {
    let dir = tempfile::tempdir().unwrap();
    let coll = Collection::create(dir.path().join("c"), common::config(8)).unwrap();
    (dir, coll)
}

fn good(id: u64) -> Object {
    Object::new(id, 150.0, 2.0)
        .attribute("redshift", AttrValue::Float(0.1))
        .embedding("image", common::vector(id, 8))
}

#[test]
fn bad_objects_are_rejected_and_nothing_is_written() {
    let (_d, coll) = fresh();
    coll.upsert(good(1)).unwrap();
    let before = coll.stats();
    type Expect = fn(&Error) -> bool;
    let cases: Vec<(Object, Expect)> = vec![
        (
            Object::new(2, 1.0, 1.0).embedding("image", vec![1.0; 7]),
            |e| {
                matches!(
                    e,
                    Error::DimensionMismatch {
                        expected: 8,
                        got: 7,
                        ..
                    }
                )
            },
        ),
        (
            Object::new(2, 1.0, 1.0).embedding("image", {
                let mut v = vec![1.0; 8];
                v[3] = f32::NAN;
                v
            }),
            |e| matches!(e, Error::NonFiniteVector { index: 3, .. }),
        ),
        (
            Object::new(2, 1.0, 1.0).embedding("image", {
                let mut v = vec![1.0; 8];
                v[5] = f32::INFINITY;
                v
            }),
            |e| matches!(e, Error::NonFiniteVector { index: 5, .. }),
        ),
        (
            Object::new(2, 1.0, 1.0).embedding("image", vec![0.0; 8]),
            |e| matches!(e, Error::ZeroVector { .. }),
        ),
        (
            Object::new(2, 1.0, 1.0).embedding("radio", vec![1.0; 8]),
            |e| matches!(e, Error::UnknownModality { .. }),
        ),
        (
            Object::new(2, 1.0, 1.0).attribute("colour", AttrValue::Float(1.0)),
            |e| matches!(e, Error::UnknownAttribute { .. }),
        ),
        (
            Object::new(2, 1.0, 1.0).attribute("redshift", AttrValue::Category("high".into())),
            |e| matches!(e, Error::AttributeType { .. }),
        ),
        (
            Object::new(2, 1.0, 1.0).attribute("redshift", AttrValue::Float(f64::NAN)),
            |e| matches!(e, Error::InvalidArgument { .. }),
        ),
        (Object::new(2, 1.0, 95.0), |e| {
            matches!(e, Error::InvalidArgument { .. })
        }),
        (Object::new(2, -1.0, 0.0), |e| {
            matches!(e, Error::InvalidArgument { .. })
        }),
        (Object::new(2, f64::NAN, 0.0), |e| {
            matches!(e, Error::InvalidArgument { .. })
        }),
    ];
    for (obj, is_expected) in cases {
        let err = coll.upsert(obj.clone()).unwrap_err();
        assert!(is_expected(&err), "{obj:?} gave {err:?}");
        assert!(err.is_user_error());
        // A batch with one bad object writes none of them.
        let err = coll.upsert_batch(&[good(3), obj]).unwrap_err();
        assert!(is_expected(&err));
        assert!(matches!(coll.get(2), Err(Error::NotFound(2))));
        assert!(matches!(coll.get(3), Err(Error::NotFound(3))));
        assert_eq!(coll.stats(), before);
    }
}

#[test]
fn bad_queries_are_typed_errors() {
    let (_d, coll) = fresh();
    coll.upsert(good(1)).unwrap();
    let q = common::vector(9, 8);
    let p = SearchParams::new(5);
    assert!(matches!(
        coll.search(&q[..4], "image", &p),
        Err(Error::DimensionMismatch { .. })
    ));
    assert!(matches!(
        coll.search(&[0.0; 8], "image", &p),
        Err(Error::ZeroVector { .. })
    ));
    assert!(matches!(
        coll.search(&q, "radio", &p),
        Err(Error::UnknownModality { .. })
    ));
    assert!(matches!(
        coll.search(&q, "image", &SearchParams::new(0)),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        coll.search(&q, "image", &SearchParams::new(5).with_ef(0)),
        Err(Error::InvalidArgument { .. })
    ));
    // The limits themselves are accepted; one past them is not.
    assert!(coll.search(&q, "image", &SearchParams::new(MAX_K)).is_ok());
    assert!(matches!(
        coll.search(&q, "image", &SearchParams::new(MAX_K + 1)),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(coll
        .search(&q, "image", &SearchParams::new(5).with_ef(MAX_EF))
        .is_ok());
    assert!(matches!(
        coll.search(&q, "image", &SearchParams::new(5).with_ef(MAX_EF + 1)),
        Err(Error::InvalidArgument { .. })
    ));
    for text in [
        "redshift <",
        "redshift < 0.3 and",
        "((redshift < 1)",
        "redshift ~ 1",
        "'x' < 1",
    ] {
        assert!(
            matches!(Filter::parse(text), Err(Error::FilterSyntax { .. })),
            "{text}"
        );
    }
    let with = |f: &str| {
        coll.search(
            &q,
            "image",
            &p.clone().with_filter(Filter::parse(f).unwrap()),
        )
    };
    assert!(matches!(
        with("colour < 1"),
        Err(Error::UnknownAttribute { .. })
    ));
    assert!(matches!(
        with("morph_class < 1"),
        Err(Error::AttributeType { .. })
    ));
    assert!(matches!(
        with("redshift = 'x'"),
        Err(Error::AttributeType { .. })
    ));
    assert!(matches!(
        with("cone(10, 100, 1)"),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        with("cone(10, 10, -1)"),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        coll.search_by_id(77, "image", "image", &p),
        Err(Error::NotFound(77))
    ));
    assert!(matches!(
        coll.search_by_id(1, "spectrum", "image", &p),
        Err(Error::MissingEmbedding { id: 1, .. })
    ));
    assert!(matches!(
        coll.predict(&q, "image", "morph_class", &p),
        Err(Error::AttributeType { .. })
    ));
}

#[test]
fn corrupt_and_foreign_files_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    {
        let coll = Collection::create(&path, common::config(8)).unwrap();
        let objs: Vec<Object> = (0..50).map(good).collect();
        coll.upsert_batch(&objs).unwrap();
        coll.build_index().unwrap();
        coll.upsert(good(99)).unwrap();
    }
    // Not a collection at all.
    let err = Collection::open(dir.path()).err().unwrap();
    assert!(matches!(err, Error::NotACollection { .. }), "{err}");
    // Creating over an existing collection.
    assert!(matches!(
        Collection::create(&path, common::config(8)),
        Err(Error::AlreadyExists(_))
    ));

    let vec_file = layout::vector_file(&path, "image");
    let original = std::fs::read(&vec_file).unwrap();
    let mut damaged = original.clone();
    damaged[17] ^= 0xff; // inside the header's dimension field
    std::fs::write(&vec_file, &damaged).unwrap();
    let err = Collection::open(&path).err().unwrap();
    assert!(
        matches!(&err, Error::Corrupt { path: p, .. } if p == &vec_file),
        "{err}"
    );
    assert!(err.to_string().contains("image.vec"));

    // A flipped bit in a row written after the last build (row 50) is caught on open.
    let mut damaged = original.clone();
    damaged[4096 + 50 * 8 * 4 + 3] ^= 0x10;
    std::fs::write(&vec_file, &damaged).unwrap();
    let err = Collection::open(&path).err().unwrap();
    assert!(
        matches!(&err, Error::Corrupt { path: p, .. } if p == &vec_file),
        "{err}"
    );

    // A flipped bit in an indexed row is caught by verify.
    let mut damaged = original.clone();
    damaged[4096 + 10 * 8 * 4] ^= 0x10;
    std::fs::write(&vec_file, &damaged).unwrap();
    let coll = Collection::open(&path).unwrap();
    assert!(matches!(coll.verify(), Err(Error::Corrupt { .. })));
    drop(coll);

    std::fs::write(&vec_file, b"hello, I am not a vector file").unwrap();
    assert!(matches!(
        Collection::open(&path),
        Err(Error::Corrupt { .. })
    ));
    std::fs::write(&vec_file, &original).unwrap();
    Collection::open(&path).unwrap();

    // Graph files: a damaged meta file, then a damaged graph body.
    let meta = path.join(layout::GRAPHS_DIR).join("image.graph.meta");
    let meta_bytes = std::fs::read(&meta).unwrap();
    let mut bad = meta_bytes.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x01;
    std::fs::write(&meta, &bad).unwrap();
    let err = Collection::open(&path).err().unwrap();
    assert!(
        matches!(&err, Error::Corrupt { path: p, .. } if p == &meta),
        "{err}"
    );
    std::fs::write(&meta, &meta_bytes).unwrap();
    let graph = std::fs::read_dir(path.join(layout::GRAPHS_DIR))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("image.g1.hnsw.graph"))
        .unwrap();
    let mut g = std::fs::read(&graph).unwrap();
    let last = g.len() - 1;
    g[last] ^= 0x01;
    std::fs::write(&graph, &g).unwrap();
    let err = Collection::open(&path).err().unwrap();
    assert!(
        matches!(&err, Error::Corrupt { path: p, .. } if p == &graph),
        "{err}"
    );
}

/// A graph meta file of a format version this build does not read (1 was written
/// by an earlier, unreleased build; 3 by none yet) is refused on open with an
/// error naming the file and the version, not skipped or misread.
#[test]
fn graph_meta_of_an_unknown_format_version_names_file_and_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    {
        let coll = Collection::create(&path, common::config(8)).unwrap();
        let objs: Vec<Object> = (0..50).map(good).collect();
        coll.upsert_batch(&objs).unwrap();
        coll.build_index().unwrap();
    }
    let meta = path.join(layout::GRAPHS_DIR).join("image.graph.meta");
    let original = std::fs::read(&meta).unwrap();
    // Layout: magic (8 bytes), version (u32 LE), body, CRC-32 of all before it.
    assert_eq!(&original[..8], b"ASTROGPH");
    assert_eq!(original[8..12], 2u32.to_le_bytes());
    for version in [1u32, 3] {
        let mut bytes = original[..original.len() - 4].to_vec();
        bytes[8..12].copy_from_slice(&version.to_le_bytes());
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        std::fs::write(&meta, &bytes).unwrap();
        let err = Collection::open(&path).err().unwrap();
        assert!(
            matches!(&err, Error::Corrupt { path: p, .. } if p == &meta),
            "{err}"
        );
        let text = err.to_string();
        assert!(text.contains("image.graph.meta"), "{text}");
        assert!(
            text.contains(&format!("graph format version {version}")),
            "{text}"
        );
    }
    std::fs::write(&meta, &original).unwrap();
    let coll = Collection::open(&path).unwrap();
    assert!(coll.stats().modalities[0].graph_loaded);
}
