//! Builds a large synthetic collection for the server load test
//! (`benches/load_test.sh`): N objects with clustered, precomputed `image` and
//! `spectrum` embeddings (no encoder runs), positions on a sky patch, `redshift`
//! and `mag_r` attributes, then the HNSW index.
//!
//! ```sh
//! cargo run --release --example load_collection -- /tmp/load/gal 100000 1024
//! ```

use std::time::Instant;

use astrovec_engine::{
    AttrValue, AttributeDef, Collection, CollectionConfig, ModalityConfig, Object,
};
use rand_xoshiro::rand_core::{RngCore, SeedableRng};
use rand_xoshiro::SplitMix64;

/// A seeded generator of uniform and normal draws for synthetic data.
struct Rng(SplitMix64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(SplitMix64::seed_from_u64(seed))
    }
    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f32 {
        let u = self.uniform().max(1e-300);
        let v = self.uniform();
        ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: load_collection DIR COUNT DIM");
        std::process::exit(2);
    }
    let dir = &args[1];
    let count: u64 = args[2].parse().expect("COUNT is an integer");
    let dim: usize = args[3].parse().expect("DIM is an integer");
    let mut config = CollectionConfig::astroclip();
    config.modalities = ["image", "spectrum"]
        .iter()
        .map(|m| ModalityConfig {
            name: m.to_string(),
            dim,
        })
        .collect();
    config.model = "synthetic clustered vectors (load test)".into();
    let config = config
        .with_attribute(AttributeDef::float("redshift", ""))
        .with_attribute(AttributeDef::float("mag_r", "mag"));
    let c = Collection::create(dir, config).expect("the collection directory is new");
    let mut rng = Rng::new(7);
    // 500 clusters per modality; objects scatter around their cluster's centre.
    let clusters = 500;
    let centres: Vec<Vec<Vec<f32>>> = (0..2)
        .map(|_| {
            (0..clusters)
                .map(|_| (0..dim).map(|_| rng.normal()).collect())
                .collect()
        })
        .collect();
    let t = Instant::now();
    let batch = 2000u64;
    for start in (0..count).step_by(batch as usize) {
        let objects: Vec<Object> = (start..(start + batch).min(count))
            .map(|i| {
                let k = (rng.0.next_u64() % clusters as u64) as usize;
                let mut o = Object::new(
                    i + 1,
                    150.0 + rng.uniform() * 20.0,
                    -5.0 + rng.uniform() * 10.0,
                )
                .attribute("redshift", AttrValue::Float(0.02 + 0.6 * rng.uniform()))
                .attribute("mag_r", AttrValue::Float(16.0 + 4.0 * rng.uniform()));
                for (m, name) in ["image", "spectrum"].iter().enumerate() {
                    let v: Vec<f32> = centres[m][k]
                        .iter()
                        .map(|c| c + 0.7 * rng.normal())
                        .collect();
                    o = o.embedding(name, v);
                }
                o
            })
            .collect();
        c.upsert_batch(&objects).expect("batch written");
    }
    eprintln!(
        "wrote {count} objects × 2 × {dim}-d in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    for r in c.build_index().expect("index built") {
        eprintln!(
            "{}: {} nodes in {:.1} s",
            r.modality, r.graph_points, r.seconds
        );
    }
    eprintln!("index: {:.1} s", t.elapsed().as_secs_f64());
}
