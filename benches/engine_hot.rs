//! Criterion benches of the engine's hot paths, so a regression in any one shows
//! up on its own: the f32 and half-float dot kernels (1024-d), an unfiltered HNSW
//! search, filtered searches at 10% (graph, filter in the traversal) and 1% (the
//! automatic strategy: exact scan of the admitted rows), and a graph build
//! (`optimize` rebuilds from scratch, so each iteration inserts every row).
//!
//! Run: `cargo bench --bench engine_hot` (release). Sizes: `ASTROVEC_HOT_N`
//! vectors (default 20,000) × 1024-d for searches, 2,000 for the build.

#[path = "../engine/tests/common.rs"]
mod common;

use std::time::Duration;

use astrovec_engine::{
    dot, dot_f16, to_f16, AttrValue, Collection, Filter, Object, SearchParams, Strategy,
};
use criterion::{criterion_group, criterion_main, Criterion};

const DIM: usize = 1024;

fn collection(dir: &std::path::Path, n: usize, mix: &mut common::Mixture) -> Collection {
    let mut cfg = common::config(DIM);
    cfg.modalities.truncate(1);
    let coll = Collection::create(dir, cfg).unwrap();
    let objs: Vec<Object> = (0..n as u64)
        .map(|i| {
            // Uniform in [0, 1): `redshift < 0.1` keeps 10%, `< 0.01` keeps 1%.
            let u = ((i.wrapping_mul(2_654_435_761) % 1000) as f64) / 1000.0;
            Object::new(i, 0.0, 0.0)
                .attribute("redshift", AttrValue::Float(u))
                .embedding("image", mix.sample())
        })
        .collect();
    for chunk in objs.chunks(5000) {
        coll.upsert_batch(chunk).unwrap();
    }
    coll.build_index().unwrap();
    coll
}

fn kernels(c: &mut Criterion) {
    let a: Vec<f32> = (0..DIM).map(|i| (i as f32 * 0.37).sin() / 23.0).collect();
    let b: Vec<f32> = (0..DIM).map(|i| (i as f32 * 0.11).cos() / 23.0).collect();
    let mut h = vec![0u16; DIM];
    to_f16(&b, &mut h);
    let mut g = c.benchmark_group("kernels");
    g.bench_function("dot_f32_1024", |bch| {
        bch.iter(|| dot(std::hint::black_box(&a), std::hint::black_box(&b)))
    });
    g.bench_function("dot_f16_1024", |bch| {
        bch.iter(|| dot_f16(std::hint::black_box(&a), std::hint::black_box(&h)))
    });
    g.finish();
}

fn searches(c: &mut Criterion) {
    let n: usize = std::env::var("ASTROVEC_HOT_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let dir = tempfile::tempdir().unwrap();
    let mut mix = common::Mixture::new(11, 100, DIM, 0.7);
    let coll = collection(&dir.path().join("c"), n, &mut mix);
    let queries: Vec<Vec<f32>> = (0..200).map(|_| mix.sample()).collect();
    let mut g = c.benchmark_group("search");
    g.sample_size(30).measurement_time(Duration::from_secs(4));
    let cases = [
        (
            "hnsw_k10_ef64",
            SearchParams::new(10)
                .with_ef(64)
                .with_strategy(Strategy::Hnsw),
        ),
        (
            "filtered_10pct_graph_ef64",
            SearchParams::new(10)
                .with_ef(64)
                .with_strategy(Strategy::Hnsw)
                .with_filter(Filter::parse("redshift < 0.1").unwrap()),
        ),
        (
            "filtered_1pct_auto",
            SearchParams::new(10).with_filter(Filter::parse("redshift < 0.01").unwrap()),
        ),
    ];
    for (name, params) in cases {
        let mut i = 0;
        g.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) % queries.len();
                coll.search(&queries[i], "image", &params).unwrap()
            })
        });
    }
    g.finish();
}

fn build(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut mix = common::Mixture::new(12, 100, DIM, 0.7);
    let coll = collection(&dir.path().join("c"), 2000, &mut mix);
    let mut g = c.benchmark_group("build");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("insert_2000x1024", |b| b.iter(|| coll.optimize().unwrap()));
    g.finish();
}

criterion_group!(benches, kernels, searches, build);
criterion_main!(benches);
