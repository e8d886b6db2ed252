//! The backends the encoders run on: their type aliases, the run-time choice between them
//! ([`BackendChoice`]: `cpu`, or `cuda[:N]` when built with the `cuda` feature), the test
//! for the CPU backend, where the model takes its host-side fast paths, and reading a
//! tensor's values back to the host.

use std::any::TypeId;
use std::str::FromStr;

use burn::prelude::{Backend, Tensor};

use crate::error::{EncoderError, Result};

/// The CPU backend: Burn's ndarray backend with OpenBLAS matmuls.
pub type CpuBackend = burn::backend::NdArray<f32>;
/// The CUDA backend (CubeCL).
#[cfg(feature = "cuda")]
pub type CudaBackend = burn::backend::Cuda<f32, i32>;

/// Which backend to run on, chosen at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendChoice {
    /// Burn ndarray + OpenBLAS on the CPU.
    Cpu,
    /// CUDA device `N` (only with the `cuda` feature).
    Cuda(usize),
}

impl FromStr for BackendChoice {
    type Err = EncoderError;

    /// Parses `cpu`, `cuda` or `cuda:N`; CUDA is refused unless built with the `cuda` feature.
    fn from_str(s: &str) -> Result<Self> {
        let unknown = || EncoderError::UnknownBackend(s.to_string());
        let choice = match s {
            "cpu" => BackendChoice::Cpu,
            "cuda" => BackendChoice::Cuda(0),
            _ => {
                let index = s.strip_prefix("cuda:").ok_or_else(unknown)?;
                BackendChoice::Cuda(index.parse().map_err(|_| unknown())?)
            }
        };
        if matches!(choice, BackendChoice::Cuda(_)) && !cfg!(feature = "cuda") {
            return Err(unknown());
        }
        Ok(choice)
    }
}

/// Whether `B` is the CPU backend (where the host paths apply).
pub(crate) fn is_cpu<B: Backend>() -> bool {
    TypeId::of::<B>() == TypeId::of::<CpuBackend>()
}

/// A tensor's values on the host (free for a uniquely owned contiguous CPU tensor).
pub(crate) fn host_values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .expect("f32 after convert")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_names_parse() {
        assert_eq!("cpu".parse::<BackendChoice>().unwrap(), BackendChoice::Cpu);
        assert!("gpu".parse::<BackendChoice>().is_err());
        assert!("cuda:x".parse::<BackendChoice>().is_err());
        assert_eq!(
            "cuda:1".parse::<BackendChoice>().is_ok(),
            cfg!(feature = "cuda")
        );
    }
}
