//! Helpers shared by the engine's integration tests and benches. Each test binary
//! compiles its own copy and uses only some of them, hence `allow(dead_code)`.
#![allow(dead_code)]

use astrovec_engine::{AttributeDef, CollectionConfig, HnswConfig, ModalityConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

/// A config with `image` and `spectrum` of dimension `dim` and a few attributes.
pub fn config(dim: usize) -> CollectionConfig {
    CollectionConfig {
        modalities: vec![
            ModalityConfig {
                name: "image".into(),
                dim,
            },
            ModalityConfig {
                name: "spectrum".into(),
                dim,
            },
        ],
        hnsw: HnswConfig::default(),
        ..CollectionConfig::astroclip()
    }
    .with_attribute(AttributeDef::float("redshift", ""))
    .with_attribute(AttributeDef::float("mag_r", "mag"))
    .with_attribute(AttributeDef::int("release", ""))
    .with_attribute(AttributeDef::category("morph_class"))
}

/// Deterministic pseudo-random vector for a seed (never all zeros).
pub fn vector(seed: u64, dim: usize) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xA5A5);
    let mut v: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    v[0] += 0.01;
    v
}

/// Unit-norm copy.
pub fn unit(v: &[f32]) -> Vec<f32> {
    let n = v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt() as f32;
    v.iter().map(|x| x / n).collect()
}

/// A seeded Gaussian mixture: `clusters` centres ~ N(0, 1) per component, points
/// = centre + N(0, sigma²). Clustered data like real embeddings, not uniform noise.
pub struct Mixture {
    centres: Vec<Vec<f32>>,
    noise: Normal<f32>,
    rng: StdRng,
}

impl Mixture {
    pub fn new(seed: u64, clusters: usize, dim: usize, sigma: f32) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let unit = Normal::new(0.0f32, 1.0).unwrap();
        let centres = (0..clusters)
            .map(|_| (0..dim).map(|_| unit.sample(&mut rng)).collect())
            .collect();
        Mixture {
            centres,
            noise: Normal::new(0.0, sigma).unwrap(),
            rng,
        }
    }

    pub fn sample(&mut self) -> Vec<f32> {
        let c = self.rng.random_range(0..self.centres.len());
        let centre = &self.centres[c];
        centre
            .iter()
            .map(|x| x + self.noise.sample(&mut self.rng))
            .collect()
    }
}
