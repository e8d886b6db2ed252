//! Filters, cone search, k-NN estimation, cross-modal search by id, tombstones on
//! the HNSW path and concurrent readers during writes.

mod common;

use std::sync::Arc;

use astrovec_engine::{
    separation_deg, AttrValue, Collection, Filter, Object, SearchParams, Strategy,
};

struct Row {
    id: u64,
    ra: f64,
    dec: f64,
    z: f64,
    mag: f64,
    morph: &'static str,
}

fn populate(coll: &Collection, n: u64) -> Vec<Row> {
    let mut mix = common::Mixture::new(11, 8, 32, 0.4);
    let mut rows = Vec::new();
    let mut objs = Vec::new();
    for i in 0..n {
        let ra = (i as f64 * 137.507_764) % 360.0;
        // A different irrational than RA's golden-angle step, so positions fill the band.
        let dec = ((i as f64 * 0.754_877_7) % 1.0) * 60.0 - 30.0;
        let z = (i % 100) as f64 / 100.0;
        let mag = 16.0 + (i % 7) as f64;
        let morph = ["spiral", "elliptical", "merger"][(i % 3) as usize];
        let img = mix.sample();
        // The spectrum embedding is a noisy copy of the image one: aligned modalities.
        let spec: Vec<f32> = img
            .iter()
            .enumerate()
            .map(|(j, x)| x + 0.05 * ((i + j as u64) % 5) as f32)
            .collect();
        objs.push(
            Object::new(i, ra, dec)
                .attribute("redshift", AttrValue::Float(z))
                .attribute("mag_r", AttrValue::Float(mag))
                .attribute("release", AttrValue::Int((i % 4) as i64))
                .attribute("morph_class", AttrValue::Category(morph.into()))
                .embedding("image", img)
                .embedding("spectrum", spec),
        );
        rows.push(Row {
            id: i,
            ra,
            dec,
            z,
            mag,
            morph,
        });
    }
    coll.upsert_batch(&objs).unwrap();
    rows
}

#[test]
fn filters_match_brute_force_evaluation() {
    let dir = tempfile::tempdir().unwrap();
    let coll = Collection::create(dir.path().join("c"), common::config(32)).unwrap();
    let rows = populate(&coll, 3000);
    type Predicate = Box<dyn Fn(&Row) -> bool>;
    let cases: Vec<(&str, Predicate)> = vec![
        (
            "redshift < 0.3 and mag_r < 19",
            Box::new(|r: &Row| r.z < 0.3 && r.mag < 19.0),
        ),
        (
            "morph_class = 'spiral' or redshift >= 0.95",
            Box::new(|r: &Row| r.morph == "spiral" || r.z >= 0.95),
        ),
        (
            "morph_class in ('merger', 'elliptical') and not mag_r between 17 and 20",
            Box::new(|r: &Row| r.morph != "spiral" && !(17.0..=20.0).contains(&r.mag)),
        ),
        ("release = 2", Box::new(|r: &Row| r.id % 4 == 2)),
        (
            "release in (0, 3) and morph_class != 'spiral'",
            Box::new(|r: &Row| matches!(r.id % 4, 0 | 3) && r.morph != "spiral"),
        ),
        (
            "id in (5, 17, 2999, 123456)",
            Box::new(|r: &Row| [5, 17, 2999].contains(&r.id)),
        ),
        (
            "cone(120, 10, 8)",
            Box::new(|r: &Row| separation_deg(120.0, 10.0, r.ra, r.dec) <= 8.0),
        ),
        (
            "cone(359.9, -20, 3.5) or cone(0.2, 29, 1)",
            Box::new(|r: &Row| {
                separation_deg(359.9, -20.0, r.ra, r.dec) <= 3.5
                    || separation_deg(0.2, 29.0, r.ra, r.dec) <= 1.0
            }),
        ),
        ("morph_class = 'unknown'", Box::new(|_| false)),
    ];
    for (text, pred) in cases {
        let mut got = coll.filter_ids(&Filter::parse(text).unwrap()).unwrap();
        got.sort();
        let want: Vec<u64> = rows.iter().filter(|r| pred(r)).map(|r| r.id).collect();
        assert_eq!(got, want, "{text}");
    }
    // The cone-selected set is non-trivial, so the HEALPix pre-selection is exercised.
    assert!(
        coll.filter_ids(&Filter::parse("cone(120, 10, 8)").unwrap())
            .unwrap()
            .len()
            > 10
    );
}

/// The rows a filter admits are reused between searches; every write must make the
/// next search see the new catalog (added, re-labelled and deleted objects).
#[test]
fn repeated_filtered_searches_follow_writes() {
    let dir = tempfile::tempdir().unwrap();
    let coll = Collection::create(dir.path().join("c"), common::config(32)).unwrap();
    populate(&coll, 500);
    let q = common::unit(&common::vector(99, 32));
    let cut = Filter::parse("redshift > 2").unwrap();
    let params = SearchParams::new(5)
        .with_filter(cut.clone())
        .with_strategy(Strategy::Exact);
    // Nothing is above z = 2 yet; ask twice so the second answer comes from the cache.
    for _ in 0..2 {
        assert!(coll.search(&q, "image", &params).unwrap().is_empty());
    }
    // A new object passes the cut: the next search must find it.
    coll.upsert(
        Object::new(10_000, 10.0, 0.0)
            .attribute("redshift", AttrValue::Float(3.0))
            .embedding("image", q.clone())
            .embedding("spectrum", q.clone()),
    )
    .unwrap();
    let ids = |p: &SearchParams| -> Vec<u64> {
        coll.search(&q, "image", p)
            .unwrap()
            .iter()
            .map(|h| h.id)
            .collect()
    };
    assert_eq!(ids(&params), vec![10_000]);
    // An existing object is re-labelled into the cut.
    let moved = coll.get(7).unwrap();
    assert_eq!(moved.id, 7);
    coll.upsert(
        Object::new(7, moved.ra, moved.dec)
            .attribute("redshift", AttrValue::Float(2.5))
            .embedding("image", common::unit(&common::vector(5, 32)))
            .embedding("spectrum", common::unit(&common::vector(5, 32))),
    )
    .unwrap();
    let mut got = ids(&params);
    got.sort();
    assert_eq!(got, vec![7, 10_000]);
    assert_eq!(coll.filter_ids(&cut).unwrap().len(), 2);
    // Deleting takes it out again; the same filter on the graph path agrees.
    assert_eq!(coll.delete(&[10_000]).unwrap(), 1);
    assert_eq!(ids(&params), vec![7]);
    assert_eq!(
        coll.filter_ids(&cut).unwrap(),
        vec![7],
        "deleted objects never match"
    );
    let graph = SearchParams::new(5)
        .with_filter(cut)
        .with_strategy(Strategy::Hnsw);
    assert_eq!(ids(&graph), vec![7]);
}

#[test]
fn cone_search_sorts_by_separation() {
    let dir = tempfile::tempdir().unwrap();
    let coll = Collection::create(dir.path().join("c"), common::config(32)).unwrap();
    let rows = populate(&coll, 2000);
    let hits = coll.cone_search(200.0, 5.0, 6.0, 1000).unwrap();
    let mut want: Vec<(u64, f64)> = rows
        .iter()
        .map(|r| (r.id, separation_deg(200.0, 5.0, r.ra, r.dec)))
        .filter(|(_, s)| *s <= 6.0)
        .collect();
    want.sort_by(|a, b| a.1.total_cmp(&b.1));
    assert_eq!(
        hits.iter().map(|h| h.id).collect::<Vec<_>>(),
        want.iter().map(|w| w.0).collect::<Vec<_>>()
    );
    assert!(!hits.is_empty());
    assert_eq!(
        coll.cone_search(200.0, 5.0, 6.0, 3).unwrap().len(),
        3.min(want.len())
    );
}

#[test]
fn knn_estimate_is_the_distance_weighted_mean_of_neighbours() {
    let dir = tempfile::tempdir().unwrap();
    let coll = Collection::create(dir.path().join("c"), common::config(32)).unwrap();
    let rows = populate(&coll, 1500);
    let params = SearchParams::new(16);
    let est = coll
        .predict_by_id(42, "image", "spectrum", "redshift", &params)
        .unwrap();
    assert_eq!(est.neighbours.len(), 16);
    assert!(
        est.neighbours.iter().all(|(h, _)| h.id != 42),
        "the query object must be excluded"
    );
    let mut num = 0.0;
    let mut den = 0.0;
    for (h, v) in &est.neighbours {
        assert_eq!(*v, rows[h.id as usize].z);
        let d = (2.0 - 2.0 * h.score as f64).sqrt();
        num += v / d;
        den += 1.0 / d;
    }
    assert!((est.value - num / den).abs() < 1e-9);
    assert!(est.spread >= 0.0 && est.p16 <= est.p84);
    // Neighbours without the attribute are skipped, not counted as zero.
    coll.upsert(
        Object::new(5000, 1.0, 1.0).embedding("spectrum", coll.get_embedding(42, "image").unwrap()),
    )
    .unwrap();
    let est2 = coll
        .predict_by_id(42, "image", "spectrum", "redshift", &params)
        .unwrap();
    assert!(est2.neighbours.iter().all(|(h, _)| h.id != 5000));
}

#[test]
fn cross_modal_search_by_id_and_tombstones_on_every_path() {
    let dir = tempfile::tempdir().unwrap();
    let coll = Collection::create(dir.path().join("c"), common::config(32)).unwrap();
    populate(&coll, 6000);
    coll.build_index().unwrap();
    // Image→spectrum: the object's own spectrum is its nearest spectrum.
    let p = SearchParams::new(5).with_strategy(Strategy::Hnsw);
    let with_self = SearchParams {
        include_self: true,
        ..p.clone()
    };
    let mut own = 0;
    for id in (0..6000).step_by(97) {
        let hits = coll
            .search_by_id(id, "image", "spectrum", &with_self)
            .unwrap();
        own += usize::from(hits[0].id == id);
        let hits = coll.search_by_id(id, "image", "image", &p).unwrap();
        assert!(
            hits.iter().all(|h| h.id != id),
            "self must be excluded by default"
        );
        assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
    }
    assert!(own >= 55, "own spectrum ranked first for only {own}/62");
    // Delete the current nearest neighbours: they vanish from HNSW, exact and tail paths.
    let q = coll.get_embedding(10, "image").unwrap();
    let before = coll
        .search(
            &q,
            "image",
            &SearchParams::new(5).with_strategy(Strategy::Exact),
        )
        .unwrap();
    let gone: Vec<u64> = before.iter().map(|h| h.id).collect();
    coll.delete(&gone).unwrap();
    coll.upsert(Object::new(9999, 3.0, 3.0).embedding("image", q.clone()))
        .unwrap();
    for strategy in [Strategy::Exact, Strategy::Hnsw, Strategy::Auto] {
        let hits = coll
            .search(&q, "image", &SearchParams::new(5).with_strategy(strategy))
            .unwrap();
        assert!(
            hits.iter().all(|h| !gone.contains(&h.id)),
            "{strategy:?} returned a deleted object"
        );
        assert_eq!(hits[0].id, 9999, "{strategy:?} missed the unindexed tail");
    }
    // Replacing an object's embedding tombstones the old row.
    coll.upsert(Object::new(20, 1.0, 1.0).embedding("image", common::vector(1, 32)))
        .unwrap();
    let s = coll.stats();
    assert_eq!(s.modalities[0].dead_rows, 6);
    coll.optimize().unwrap();
    assert_eq!(
        coll.stats().modalities[0].graph_points,
        s.modalities[0].vectors
    );
}

#[test]
fn readers_see_consistent_snapshots_while_a_writer_upserts() {
    let dir = tempfile::tempdir().unwrap();
    let coll = Arc::new(Collection::create(dir.path().join("c"), common::config(32)).unwrap());
    populate(&coll, 2000);
    coll.build_index().unwrap();
    let writer = {
        let coll = coll.clone();
        std::thread::spawn(move || {
            for i in 0..300u64 {
                let id = 10_000 + i;
                coll.upsert(Object::new(id, 10.0, 10.0).embedding("image", common::vector(id, 32)))
                    .unwrap();
                if i % 3 == 0 {
                    coll.delete(&[i]).unwrap();
                }
                if i == 150 {
                    coll.build_index().unwrap();
                }
            }
        })
    };
    let readers: Vec<_> = (0..3)
        .map(|t| {
            let coll = coll.clone();
            std::thread::spawn(move || {
                for i in 0..200u64 {
                    let q = common::vector(t * 1000 + i, 32);
                    let hits = coll.search(&q, "image", &SearchParams::new(10)).unwrap();
                    assert_eq!(hits.len(), 10);
                    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
                    let mut ids: Vec<u64> = hits.iter().map(|h| h.id).collect();
                    ids.sort();
                    ids.dedup();
                    assert_eq!(ids.len(), 10, "duplicate ids in one result");
                }
            })
        })
        .collect();
    writer.join().unwrap();
    for r in readers {
        r.join().unwrap();
    }
    assert_eq!(coll.len(), 2000 + 300 - 100);
}
