//! HNSW recall against the exact oracle on 50,000 clustered 1024-d vectors.

mod common;

use astrovec_engine::{AttrValue, Collection, Filter, Object, SearchParams, Strategy};
use std::collections::HashSet;

fn recall(approx: &[Vec<u64>], exact: &[Vec<u64>]) -> f64 {
    let mut found = 0usize;
    let mut total = 0usize;
    for (a, e) in approx.iter().zip(exact) {
        let truth: HashSet<u64> = e.iter().copied().collect();
        found += a.iter().filter(|id| truth.contains(id)).count();
        total += e.len();
    }
    found as f64 / total as f64
}

#[test]
fn hnsw_recall_at_10_on_a_gaussian_mixture() {
    const N: usize = 50_000;
    const DIM: usize = 1024;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::config(DIM);
    cfg.modalities.truncate(1);
    let coll = Collection::create(dir.path().join("c"), cfg).unwrap();
    let mut mix = common::Mixture::new(7, 64, DIM, 0.7);
    let mut batch = Vec::with_capacity(2000);
    for i in 0..N as u64 {
        // A uniform attribute in [0, 1): `u < 0.1` keeps 10% of the objects.
        let u = ((i.wrapping_mul(2_654_435_761) % 1000) as f64) / 1000.0;
        batch.push(
            Object::new(i, (i as f64 * 0.007) % 360.0, 0.0)
                .attribute("redshift", AttrValue::Float(u))
                .embedding("image", mix.sample()),
        );
        if batch.len() == 2000 {
            coll.upsert_batch(&batch).unwrap();
            batch.clear();
        }
    }
    let report = coll.build_index().unwrap();
    assert_eq!(report[0].inserted, N as u64);
    let queries: Vec<Vec<f32>> = (0..200).map(|_| mix.sample()).collect();

    let run = |params: &SearchParams| -> Vec<Vec<u64>> {
        coll.search_batch(&queries, "image", params)
            .unwrap()
            .into_iter()
            .map(|hits| hits.into_iter().map(|h| h.id).collect())
            .collect()
    };
    let exact = run(&SearchParams::new(10).with_strategy(Strategy::Exact));
    let approx = run(&SearchParams::new(10).with_strategy(Strategy::Hnsw));
    let r = recall(&approx, &exact);
    eprintln!("recall@10 at the default ef: {r:.4}");
    assert!(r >= 0.98, "recall@10 {r} < 0.98");

    let filter = Filter::parse("redshift < 0.1").unwrap();
    let exact_f = run(&SearchParams::new(10)
        .with_strategy(Strategy::Exact)
        .with_filter(filter.clone()));
    let approx_f = run(&SearchParams::new(10)
        .with_strategy(Strategy::Hnsw)
        .with_filter(filter));
    // The filtered results must honour the filter.
    for ids in &approx_f {
        for id in ids {
            let u = ((id.wrapping_mul(2_654_435_761) % 1000) as f64) / 1000.0;
            assert!(u < 0.1);
        }
    }
    let rf = recall(&approx_f, &exact_f);
    eprintln!("recall@10 with a 10% filter: {rf:.4}");
    assert!(rf >= 0.95, "filtered recall@10 {rf} < 0.95");

    // The automatic strategy: a 10% filter is scanned exactly (recall 1), a 60% one
    // goes through the graph with over-sampling; both honour the filter.
    for (text, limit, min_recall) in [("redshift < 0.1", 0.1, 1.0), ("redshift < 0.6", 0.6, 0.95)] {
        let f = Filter::parse(text).unwrap();
        let exact = run(&SearchParams::new(10)
            .with_strategy(Strategy::Exact)
            .with_filter(f.clone()));
        let auto = run(&SearchParams::new(10).with_filter(f));
        for ids in &auto {
            assert_eq!(ids.len(), 10);
            for id in ids {
                assert!((((id.wrapping_mul(2_654_435_761) % 1000) as f64) / 1000.0) < limit);
            }
        }
        let r = recall(&auto, &exact);
        eprintln!("recall@10 of the automatic strategy with `{text}`: {r:.4}");
        assert!(r >= min_recall, "{text}: recall {r}");
    }
}
