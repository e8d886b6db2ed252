//! The simple front door: an [`Encoder`] holds a model and its device and turns flat `f32`
//! buffers into embedding rows, checking the input first. [`AnyEncoder`] picks the backend at
//! run time ([`BackendChoice`]: `cpu`, or `cuda[:N]` when built with the `cuda` feature).

use std::path::Path;

use burn::prelude::*;

use crate::backend::host_values;
#[cfg(feature = "cuda")]
pub use crate::backend::CudaBackend;
pub use crate::backend::{BackendChoice, CpuBackend};
use crate::error::{EncoderError, Result};
use crate::model::astroclip::{AstroClip, AstroClipConfig};
use crate::preprocess::{center_crop, legacy_rgb};

/// Default number of items per forward pass (bounds memory; results do not depend on it).
pub const DEFAULT_BATCH_SIZE: usize = 16;

/// An AstroCLIP model on a device, with input checking. No ids, storage or I/O beyond weights.
#[derive(Debug, Clone)]
pub struct Encoder<B: Backend> {
    model: AstroClip<B>,
    config: AstroClipConfig,
    device: B::Device,
    batch_size: usize,
}

impl<B: Backend> Encoder<B> {
    /// Wraps a model built from `config`.
    pub fn new(model: AstroClip<B>, config: AstroClipConfig, device: B::Device) -> Self {
        Self {
            model,
            config,
            device,
            batch_size: DEFAULT_BATCH_SIZE,
        }
    }

    /// A randomly initialised encoder (tests, benches, demos without weights).
    pub fn random(config: &AstroClipConfig, device: &B::Device) -> Result<Self> {
        let model = config.init(device)?;
        Ok(Self::new(model, config.clone(), device.clone()))
    }

    /// Loads weights (safetensors or Lightning `.ckpt`) for `config`.
    pub fn load(
        config: &AstroClipConfig,
        weights: impl AsRef<Path>,
        device: &B::Device,
    ) -> Result<Self> {
        let model = AstroClip::load(config, weights, device)?;
        Ok(Self::new(model, config.clone(), device.clone()))
    }

    /// Loads a model directory (`config.json` + `model.safetensors`).
    pub fn load_dir(dir: impl AsRef<Path>, device: &B::Device) -> Result<Self> {
        let (model, config) = AstroClip::load_dir(dir, device)?;
        Ok(Self::new(model, config, device.clone()))
    }

    /// Writes a model directory (`config.json` + `model.safetensors`).
    pub fn save_dir(&self, dir: impl AsRef<Path>) -> Result<()> {
        self.model.save_dir(&self.config, dir)
    }

    /// Sets the number of items per forward pass (at least 1).
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// The model.
    pub fn model(&self) -> &AstroClip<B> {
        &self.model
    }

    /// The model's configuration.
    pub fn config(&self) -> &AstroClipConfig {
        &self.config
    }

    /// Width of the embeddings.
    pub fn embedding_dim(&self) -> usize {
        self.config.embedding_dim()
    }

    /// Values in one model-ready image: `channels × size × size` (3 × 144 × 144 published).
    pub fn image_len(&self) -> usize {
        let c = &self.config.image_backbone;
        c.in_channels * c.image_size * c.image_size
    }

    /// Pixels in one spectrum (7,781 published).
    pub fn spectrum_len(&self) -> usize {
        self.config.spectrum_backbone.spectrum_length
    }

    /// Embeds model-ready images: planar `[n, 3, size, size]` row-major, channel order
    /// (z, r, g), values in [0, 1] (e.g. from [`legacy_rgb`] + [`center_crop`]).
    /// Returns `n` rows of `embedding_dim` values (not normalised).
    pub fn embed_images(&self, images: &[f32]) -> Result<Vec<Vec<f32>>> {
        let c = &self.config.image_backbone;
        let per = self.image_len();
        if images.is_empty() {
            return Err(EncoderError::EmptyBatch { what: "image" });
        }
        if !images.len().is_multiple_of(per) {
            return Err(EncoderError::ImageSize {
                got: images.len(),
                per_image: per,
                channels: c.in_channels,
                height: c.image_size,
                width: c.image_size,
            });
        }
        check_finite("image", images, per)?;
        let (ch, s) = (c.in_channels, c.image_size);
        let mut rows = Vec::with_capacity(images.len() / per);
        for chunk in images.chunks(per * self.batch_size) {
            let n = chunk.len() / per;
            let x = Tensor::<B, 4>::from_data(
                TensorData::new(chunk.to_vec(), [n, ch, s, s]),
                &self.device,
            );
            rows.extend(to_rows(self.model.embed_images(x)));
        }
        Ok(rows)
    }

    /// Embeds Legacy Survey cutouts: planar `[n, bands, height, width]`, bands (g, r, z) in
    /// nanomaggies (152 × 152 for the reference data). Each is mapped with [`legacy_rgb`]
    /// and centre-cropped to the model's size before [`Encoder::embed_images`].
    pub fn embed_grz(
        &self,
        grz: &[f32],
        bands: usize,
        height: usize,
        width: usize,
    ) -> Result<Vec<Vec<f32>>> {
        let rgb = prepare_grz(
            grz,
            bands,
            height,
            width,
            self.config.image_backbone.image_size,
        )?;
        self.embed_images(&rgb)
    }

    /// Embeds spectra: `[n, length]` row-major flux on the DESI coadd grid (observed frame,
    /// 7,781 pixels published). Returns `n` rows of `embedding_dim` values.
    pub fn embed_spectra(&self, flux: &[f32]) -> Result<Vec<Vec<f32>>> {
        let per = self.spectrum_len();
        if flux.is_empty() {
            return Err(EncoderError::EmptyBatch { what: "spectrum" });
        }
        if !flux.len().is_multiple_of(per) {
            return Err(EncoderError::SpectrumLength {
                got: flux.len(),
                expected: per,
            });
        }
        check_finite("spectrum", flux, per)?;
        let mut rows = Vec::with_capacity(flux.len() / per);
        for chunk in flux.chunks(per * self.batch_size) {
            let n = chunk.len() / per;
            let x =
                Tensor::<B, 2>::from_data(TensorData::new(chunk.to_vec(), [n, per]), &self.device);
            rows.extend(to_rows(self.model.embed_spectra(x)));
        }
        Ok(rows)
    }
}

/// Maps a batch of g, r, z cutouts (planar `[n, 3, height, width]`, nanomaggies) to
/// model-ready images `[n, 3, size, size]`: [`legacy_rgb`] (→ z, r, g in [0, 1]) then
/// [`center_crop`] to `size`.
pub fn prepare_grz(
    grz: &[f32],
    bands: usize,
    height: usize,
    width: usize,
    size: usize,
) -> Result<Vec<f32>> {
    if bands != 3 {
        return Err(EncoderError::BandCount {
            got: bands,
            expected: 3,
        });
    }
    if height < size || width < size {
        return Err(EncoderError::CutoutTooSmall {
            height,
            width,
            size,
        });
    }
    let per = bands * height * width;
    if grz.is_empty() {
        return Err(EncoderError::EmptyBatch { what: "image" });
    }
    if !grz.len().is_multiple_of(per) {
        return Err(EncoderError::ImageSize {
            got: grz.len(),
            per_image: per,
            channels: bands,
            height,
            width,
        });
    }
    check_finite("image", grz, per)?;
    let mut out = Vec::with_capacity(grz.len() / per * 3 * size * size);
    for item in grz.chunks(per) {
        let rgb = legacy_rgb(item, height, width)?;
        out.extend(center_crop(&rgb, 3, height, width, size)?);
    }
    Ok(out)
}

fn check_finite(what: &'static str, values: &[f32], per: usize) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(pos) => Err(EncoderError::NonFinite {
            what,
            item: pos / per,
            index: pos % per,
        }),
    }
}

fn to_rows<B: Backend>(embeddings: Tensor<B, 2>) -> Vec<Vec<f32>> {
    let [_, dim] = embeddings.dims();
    let values = host_values(embeddings);
    values.chunks(dim).map(<[f32]>::to_vec).collect()
}

/// An [`Encoder`] on a backend chosen at run time.
#[derive(Debug, Clone)]
pub enum AnyEncoder {
    /// On the CPU.
    Cpu(Box<Encoder<CpuBackend>>),
    /// On a CUDA device.
    #[cfg(feature = "cuda")]
    Cuda(Box<Encoder<CudaBackend>>),
}

macro_rules! dispatch {
    ($self:ident, $e:ident => $body:expr) => {
        match $self {
            AnyEncoder::Cpu($e) => $body,
            #[cfg(feature = "cuda")]
            AnyEncoder::Cuda($e) => $body,
        }
    };
}

impl AnyEncoder {
    /// Loads weights (safetensors or `.ckpt`) onto the chosen backend.
    pub fn load(
        config: &AstroClipConfig,
        weights: impl AsRef<Path>,
        backend: BackendChoice,
    ) -> Result<Self> {
        match backend {
            BackendChoice::Cpu => Ok(Self::Cpu(Box::new(Encoder::load(
                config,
                weights,
                &Default::default(),
            )?))),
            #[cfg(feature = "cuda")]
            BackendChoice::Cuda(i) => Ok(Self::Cuda(Box::new(Encoder::load(
                config,
                weights,
                &burn::backend::cuda::CudaDevice::new(i),
            )?))),
            #[cfg(not(feature = "cuda"))]
            BackendChoice::Cuda(i) => Err(EncoderError::UnknownBackend(format!("cuda:{i}"))),
        }
    }

    /// A randomly initialised encoder on the chosen backend.
    pub fn random(config: &AstroClipConfig, backend: BackendChoice) -> Result<Self> {
        match backend {
            BackendChoice::Cpu => Ok(Self::Cpu(Box::new(Encoder::random(
                config,
                &Default::default(),
            )?))),
            #[cfg(feature = "cuda")]
            BackendChoice::Cuda(i) => Ok(Self::Cuda(Box::new(Encoder::random(
                config,
                &burn::backend::cuda::CudaDevice::new(i),
            )?))),
            #[cfg(not(feature = "cuda"))]
            BackendChoice::Cuda(i) => Err(EncoderError::UnknownBackend(format!("cuda:{i}"))),
        }
    }

    /// Sets the number of items per forward pass.
    pub fn with_batch_size(self, batch_size: usize) -> Self {
        match self {
            AnyEncoder::Cpu(e) => AnyEncoder::Cpu(Box::new(e.with_batch_size(batch_size))),
            #[cfg(feature = "cuda")]
            AnyEncoder::Cuda(e) => AnyEncoder::Cuda(Box::new(e.with_batch_size(batch_size))),
        }
    }

    /// See [`Encoder::config`].
    pub fn config(&self) -> &AstroClipConfig {
        dispatch!(self, e => e.config())
    }

    /// See [`Encoder::embed_images`].
    pub fn embed_images(&self, images: &[f32]) -> Result<Vec<Vec<f32>>> {
        dispatch!(self, e => e.embed_images(images))
    }

    /// See [`Encoder::embed_grz`].
    pub fn embed_grz(
        &self,
        grz: &[f32],
        bands: usize,
        height: usize,
        width: usize,
    ) -> Result<Vec<Vec<f32>>> {
        dispatch!(self, e => e.embed_grz(grz, bands, height, width))
    }

    /// See [`Encoder::embed_spectra`].
    pub fn embed_spectra(&self, flux: &[f32]) -> Result<Vec<Vec<f32>>> {
        dispatch!(self, e => e.embed_spectra(flux))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Encoder<CpuBackend> {
        Encoder::random(&AstroClipConfig::tiny(), &Default::default()).unwrap()
    }

    #[test]
    fn tiny_preset_embeds_real_sized_inputs() {
        let enc = tiny();
        let images: Vec<f32> = (0..2 * enc.image_len())
            .map(|i| (i % 97) as f32 / 97.0)
            .collect();
        let rows = enc.embed_images(&images).unwrap();
        assert_eq!((rows.len(), rows[0].len()), (2, 64));
        let flux: Vec<f32> = (0..3 * enc.spectrum_len())
            .map(|i| (i as f32 * 0.01).sin())
            .collect();
        let rows = enc.embed_spectra(&flux).unwrap();
        assert_eq!((rows.len(), rows[0].len()), (3, 64));
        assert!(rows.iter().flatten().all(|v| v.is_finite()));
        // A single item works too (the reference itself fails on a batch of one).
        assert_eq!(
            enc.embed_spectra(&flux[..enc.spectrum_len()])
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn bad_images_are_typed_errors() {
        let enc = tiny();
        let n = enc.image_len();
        assert!(matches!(
            enc.embed_images(&vec![0.5; n + 1]),
            Err(EncoderError::ImageSize { per_image, .. }) if per_image == 3 * 144 * 144
        ));
        assert!(matches!(
            enc.embed_images(&[]),
            Err(EncoderError::EmptyBatch { what: "image" })
        ));
        let mut images = vec![0.5; 2 * n];
        images[n + 7] = f32::NAN;
        assert!(matches!(
            enc.embed_images(&images),
            Err(EncoderError::NonFinite {
                what: "image",
                item: 1,
                index: 7
            })
        ));
        let cutout = vec![0.1; 4 * 152 * 152];
        assert!(matches!(
            enc.embed_grz(&cutout, 4, 152, 152),
            Err(EncoderError::BandCount {
                got: 4,
                expected: 3
            })
        ));
        assert!(matches!(
            enc.embed_grz(&cutout[..3 * 100 * 100], 3, 100, 100),
            Err(EncoderError::CutoutTooSmall { size: 144, .. })
        ));
        assert!(matches!(
            enc.embed_grz(&cutout[..3 * 152 * 152 + 5], 3, 152, 152),
            Err(EncoderError::ImageSize { .. })
        ));
        let mut grz = vec![0.1; 3 * 152 * 152];
        grz[10] = f32::INFINITY;
        assert!(matches!(
            enc.embed_grz(&grz, 3, 152, 152),
            Err(EncoderError::NonFinite {
                item: 0,
                index: 10,
                ..
            })
        ));
    }

    #[test]
    fn bad_spectra_are_typed_errors() {
        let enc = tiny();
        assert!(matches!(
            enc.embed_spectra(&[1.0; 7780]),
            Err(EncoderError::SpectrumLength {
                got: 7780,
                expected: 7781
            })
        ));
        let mut flux = vec![1.0; 7781];
        flux[5] = f32::NAN;
        assert!(matches!(
            enc.embed_spectra(&flux),
            Err(EncoderError::NonFinite {
                what: "spectrum",
                item: 0,
                index: 5
            })
        ));
    }
}
