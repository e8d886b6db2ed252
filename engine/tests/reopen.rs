//! Close/open keeps results identical and loads the graphs instead of rebuilding.

mod common;

use astrovec_engine::{Collection, Object, SearchParams, Strategy};

#[test]
fn reopen_gives_the_same_results_without_rebuilding_the_graph() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    let mut mix = common::Mixture::new(3, 16, 64, 0.5);
    let queries: Vec<Vec<f32>> = (0..50).map(|_| mix.sample()).collect();
    let params = SearchParams::new(10).with_strategy(Strategy::Hnsw);
    let (before, points) = {
        let coll = Collection::create(&path, common::config(64)).unwrap();
        let objs: Vec<Object> = (0..3000u64)
            .map(|i| {
                Object::new(i, 10.0, 5.0)
                    .embedding("image", mix.sample())
                    .embedding("spectrum", mix.sample())
            })
            .collect();
        coll.upsert_batch(&objs).unwrap();
        coll.build_index().unwrap();
        // Rows written after the build live in the exact-scanned tail.
        let late: Vec<Object> = (3000..3100u64)
            .map(|i| Object::new(i, 10.0, 5.0).embedding("image", mix.sample()))
            .collect();
        coll.upsert_batch(&late).unwrap();
        coll.delete(&[5, 6, 7]).unwrap();
        let s = coll.stats();
        assert_eq!(s.modalities[0].graph_inserts, 3000);
        (
            coll.search_batch(&queries, "image", &params).unwrap(),
            s.modalities[0].graph_points,
        )
    };
    let coll = Collection::open(&path).unwrap();
    let s = coll.stats();
    let image = &s.modalities[0];
    assert!(image.graph_loaded, "graph must be loaded from disk");
    assert_eq!(
        image.graph_inserts, 0,
        "no node may be inserted on open (no rebuild)"
    );
    assert_eq!(image.graph_points, points);
    assert_eq!(image.indexed_rows, 3000);
    assert_eq!(image.rows, 3100);
    assert_eq!(image.dead_rows, 3);
    assert_eq!(s.objects, 3097);
    let after = coll.search_batch(&queries, "image", &params).unwrap();
    assert_eq!(before, after);
    for hits in &after {
        assert!(
            hits.iter().all(|h| ![5, 6, 7].contains(&h.id)),
            "deleted ids returned"
        );
    }
    assert_eq!(
        coll.stats().modalities[0].graph_inserts,
        0,
        "searching must not rebuild"
    );
}
