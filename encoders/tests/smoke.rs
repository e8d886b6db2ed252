//! Full-size smoke test: the published `astroclip` preset with random weights embeds one
//! image and one spectrum on the CPU. Measured: 17 s in release on 2 shared cores (build and
//! random initialisation of 370 M parameters ~9 s, first image ~5.5 s including lazy
//! initialisation, first spectrum ~2.7 s), so it runs with the other tests.

use std::time::Instant;

use astrovec_encoders::{AstroClipConfig, CpuBackend, Encoder};
use burn::module::Module;

#[test]
fn astroclip_preset_embeds_one_image_and_one_spectrum() {
    let start = Instant::now();
    let config = AstroClipConfig::astroclip();
    let encoder = Encoder::<CpuBackend>::random(&config, &Default::default()).unwrap();
    // Checkpoint total 370,798,358 minus the unused cls_token (1,024), pos_embed (148,480),
    // mask_token (1,024) and SpecFormer head (16,918).
    assert_eq!(encoder.model().num_params(), 370_630_912);
    let built = start.elapsed();
    let image: Vec<f32> = (0..encoder.image_len())
        .map(|i| ((i * 31) % 255) as f32 / 255.0)
        .collect();
    let t = Instant::now();
    let img = encoder.embed_images(&image).unwrap();
    let image_time = t.elapsed();
    let flux: Vec<f32> = (0..7781).map(|i| 1.0 + (i as f32 * 0.003).sin()).collect();
    let t = Instant::now();
    let spec = encoder.embed_spectra(&flux).unwrap();
    let spectrum_time = t.elapsed();
    assert_eq!((img.len(), img[0].len()), (1, 1024));
    assert_eq!((spec.len(), spec[0].len()), (1, 1024));
    assert!(img[0].iter().chain(&spec[0]).all(|v| v.is_finite()));
    eprintln!(
        "astroclip preset: build {built:.2?}, one image {image_time:.2?}, one spectrum \
         {spectrum_time:.2?}, total {:.2?}",
        start.elapsed()
    );
}
