//! Encoder throughput on the CPU: images/s and spectra/s for the `small` and the full
//! `astroclip` presets (random weights; speed does not depend on the values).
//!
//! Run: `cargo bench -p astrovec-encoders --bench encode` (release profile). Environment:
//! - `ASTROVEC_BENCH_PRESETS` — comma-separated presets (default `small,astroclip`);
//! - `ASTROVEC_BENCH_SECONDS` — minimum measuring time per case (default 10);
//! - `OPENBLAS_NUM_THREADS` — matmul threads (default: all cores), `RAYON_NUM_THREADS` likewise.
//!
//! `benches/encode_torch.py` runs the same architectures in PyTorch with the same batch sizes
//! and thread count; compare the two outputs line by line.

use std::time::{Duration, Instant};

use astrovec_encoders::{AstroClipConfig, CpuBackend, Encoder};

fn batch_size(preset: &str) -> usize {
    if preset == "astroclip" {
        4
    } else {
        16
    }
}

/// Runs `f` once to warm up, then until `min` has passed (at least twice); returns items/s.
fn measure(items: usize, min: Duration, mut f: impl FnMut()) -> f64 {
    f();
    let start = Instant::now();
    let mut runs = 0;
    while runs < 2 || start.elapsed() < min {
        f();
        runs += 1;
    }
    (items * runs) as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    // `cargo bench` passes `--bench`; a plain `cargo test` of benches passes nothing useful.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let presets =
        std::env::var("ASTROVEC_BENCH_PRESETS").unwrap_or_else(|_| "small,astroclip".into());
    let seconds: f64 = std::env::var("ASTROVEC_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10.0);
    let min = Duration::from_secs_f64(seconds);
    let threads = std::env::var("OPENBLAS_NUM_THREADS").unwrap_or_else(|_| {
        std::thread::available_parallelism()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "?".into())
    });
    println!("burn 0.21.0 ndarray+openblas, threads {threads}");
    for preset in presets.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let config = AstroClipConfig::preset(preset).expect("known preset");
        let n = batch_size(preset);
        let encoder = Encoder::<CpuBackend>::random(&config, &Default::default())
            .expect("model")
            .with_batch_size(n);
        let images: Vec<f32> = (0..n * encoder.image_len())
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
            .collect();
        let flux: Vec<f32> = (0..n * encoder.spectrum_len())
            .map(|i| 1.0 + ((i % 7781) as f32 * 0.01).sin())
            .collect();
        let ips = measure(n, min, || {
            std::hint::black_box(encoder.embed_images(&images).expect("images"));
        });
        let sps = measure(n, min, || {
            std::hint::black_box(encoder.embed_spectra(&flux).expect("spectra"));
        });
        println!("burn {preset:<10} batch {n:>2}  images/s {ips:8.2}  spectra/s {sps:8.2}");
    }
}
