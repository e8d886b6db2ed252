//! Engine search benchmark: HNSW build time, search latency (QPS) and recall@10
//! against the exact oracle at several `ef`, on a seeded Gaussian mixture of
//! 100,000 × 1024-d vectors (override with `ASTROVEC_BENCH_N`).
//!
//! Run: `cargo bench --bench engine_search` (release). Build time and recall are
//! printed once; criterion reports the per-query latency of each configuration.

#[path = "../engine/tests/common.rs"]
mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use astrovec_engine::{AttrValue, Collection, Filter, Object, SearchParams, Strategy};
use criterion::{criterion_group, criterion_main, Criterion};

const DIM: usize = 1024;

fn recall(
    coll: &Collection,
    queries: &[Vec<f32>],
    truth: &[Vec<u64>],
    params: &SearchParams,
) -> f64 {
    let got = coll.search_batch(queries, "image", params).unwrap();
    let mut hit = 0usize;
    let mut total = 0usize;
    for (g, t) in got.iter().zip(truth) {
        let t: HashSet<u64> = t.iter().copied().collect();
        hit += g.iter().filter(|h| t.contains(&h.id)).count();
        total += t.len();
    }
    hit as f64 / total as f64
}

fn bench(c: &mut Criterion) {
    let n: usize = std::env::var("ASTROVEC_BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::config(DIM);
    cfg.modalities.truncate(1);
    let coll = Collection::create(dir.path().join("bench"), cfg).unwrap();
    let mut mix = common::Mixture::new(2024, 100, DIM, 0.7);
    let t = Instant::now();
    let mut batch = Vec::new();
    for i in 0..n as u64 {
        let u = ((i.wrapping_mul(2_654_435_761) % 1000) as f64) / 1000.0;
        batch.push(
            Object::new(i, (i as f64 * 0.01) % 360.0, 0.0)
                .attribute("redshift", AttrValue::Float(u))
                .embedding("image", mix.sample()),
        );
        if batch.len() == 5000 {
            coll.upsert_batch(&batch).unwrap();
            batch.clear();
        }
    }
    coll.upsert_batch(&batch).unwrap();
    let ingest = t.elapsed();
    let t = Instant::now();
    coll.build_index().unwrap();
    let build = t.elapsed();
    eprintln!(
        "engine_search: n = {n} x {DIM}: ingest {:.1} s ({:.0} vectors/s), HNSW build {:.1} s ({:.0} vectors/s)",
        ingest.as_secs_f64(),
        n as f64 / ingest.as_secs_f64(),
        build.as_secs_f64(),
        n as f64 / build.as_secs_f64()
    );
    let queries: Vec<Vec<f32>> = (0..300).map(|_| mix.sample()).collect();
    let truth_of = |p: SearchParams| -> Vec<Vec<u64>> {
        coll.search_batch(&queries, "image", &p.with_strategy(Strategy::Exact))
            .unwrap()
            .into_iter()
            .map(|h| h.into_iter().map(|h| h.id).collect())
            .collect()
    };
    let truth = truth_of(SearchParams::new(10));
    let filter = Filter::parse("redshift < 0.1").unwrap();
    let truth_f = truth_of(SearchParams::new(10).with_filter(filter.clone()));

    let mut group = c.benchmark_group("engine_search");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(4));
    for ef in [16usize, 32, 64, 128, 256] {
        let params = SearchParams::new(10)
            .with_ef(ef)
            .with_strategy(Strategy::Hnsw);
        eprintln!(
            "engine_search: ef = {ef}: recall@10 = {:.4}",
            recall(&coll, &queries, &truth, &params)
        );
        let mut i = 0;
        group.bench_function(format!("hnsw_k10_ef{ef}"), |b| {
            b.iter(|| {
                i = (i + 1) % queries.len();
                coll.search(&queries[i], "image", &params).unwrap()
            })
        });
    }
    let params = SearchParams::new(10)
        .with_filter(filter)
        .with_strategy(Strategy::Hnsw);
    eprintln!(
        "engine_search: 10% filter, default ef: recall@10 = {:.4}",
        recall(&coll, &queries, &truth_f, &params)
    );
    let mut i = 0;
    group.bench_function("hnsw_k10_filter10pct", |b| {
        b.iter(|| {
            i = (i + 1) % queries.len();
            coll.search(&queries[i], "image", &params).unwrap()
        })
    });
    let exact = SearchParams::new(10).with_strategy(Strategy::Exact);
    let mut i = 0;
    group.sample_size(10);
    group.bench_function("exact_k10", |b| {
        b.iter(|| {
            i = (i + 1) % queries.len();
            coll.search(&queries[i], "image", &exact).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
