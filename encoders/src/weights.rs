//! Weight files: reading PyTorch-layout tensors (safetensors, Lightning `.ckpt`), loading them
//! strictly into the Burn modules, and exporting the modules back to safetensors.
//!
//! Every module walks its parameters with a [`ParamVisitor`], giving each one its checkpoint
//! key, its PyTorch shape and how PyTorch lays it out ([`Layout`]). The same walk drives
//! loading ([`Loader`]) and saving ([`Exporter`]), so the two can never disagree about a key.
//!
//! Strictness: a tensor the model needs but the file lacks, a tensor of the wrong shape, and a
//! tensor the model does not know are all errors naming the key. The only keys tolerated
//! without being used are those the reference checkpoint carries for paths AstroCLIP never
//! runs ([`UNUSED_KEYS`]).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::TensorData;

use crate::backend::host_values;
use crate::error::{EncoderError, Result};
use crate::tensors::{check_all_used, take_checked, Dtype};
pub use crate::tensors::{RawTensor, UNUSED_KEYS};

/// A named set of PyTorch-layout tensors, as read from a file.
#[derive(Debug, Default, Clone)]
pub struct TensorMap {
    /// Tensors by checkpoint key.
    pub tensors: HashMap<String, RawTensor>,
}

impl TensorMap {
    /// Reads a weight file, choosing the format from its first bytes: a zip archive (`PK`) is a
    /// PyTorch / Lightning checkpoint, anything else is tried as safetensors.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let mut magic = [0u8; 2];
        {
            use std::io::Read;
            let mut f = std::fs::File::open(path).map_err(|e| EncoderError::io(path, e))?;
            f.read_exact(&mut magic)
                .map_err(|e| EncoderError::io(path, e))?;
        }
        if &magic == b"PK" {
            Self::read_checkpoint(path)
        } else {
            Self::read_safetensors(path)
        }
    }

    /// Reads a safetensors file (dtypes f32, f64, f16, bf16; all converted to f32).
    pub fn read_safetensors(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| EncoderError::io(path, e))?;
        let st = safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| EncoderError::format(path, format!("not a safetensors file: {e}")))?;
        let mut tensors = HashMap::new();
        for (name, view) in st.iter() {
            let data = safetensors_dtype(name, view.dtype())?.decode_all(view.data());
            tensors.insert(
                name.to_string(),
                RawTensor {
                    shape: view.shape().to_vec(),
                    data,
                },
            );
        }
        Ok(Self { tensors })
    }

    /// Reads the `state_dict` of a PyTorch Lightning checkpoint (a zip-format `torch.save`
    /// file). A plain `torch.save(state_dict)` file (no `state_dict` key) is accepted too.
    ///
    /// Only the tensors are materialised; `hyper_parameters` (which pickles the reference's
    /// own Python classes) is run as opaque pickle objects and never needed (see [`crate::ckpt`]).
    pub fn read_checkpoint(path: impl AsRef<Path>) -> Result<Self> {
        Ok(Self {
            tensors: crate::ckpt::read_state_dict(path.as_ref())?,
        })
    }

    /// Writes the tensors to a safetensors file (f32), keys sorted.
    pub fn write_safetensors(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let sorted: BTreeMap<&String, &RawTensor> = self.tensors.iter().collect();
        let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = sorted
            .into_iter()
            .map(|(k, t)| {
                let b = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
                (k.clone(), t.shape.clone(), b)
            })
            .collect();
        let mut views = Vec::with_capacity(bytes.len());
        for (k, shape, b) in &bytes {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), b)
                    .map_err(|e| EncoderError::format(path, format!("tensor {k:?}: {e}")))?;
            views.push((k.clone(), view));
        }
        safetensors::serialize_to_file(views, None, path)
            .map_err(|e| EncoderError::format(path, format!("cannot write safetensors: {e}")))
    }
}

/// The element type of safetensors tensor `name`: floating point only (f32, f64, f16, bf16).
fn safetensors_dtype(name: &str, dtype: safetensors::Dtype) -> Result<Dtype> {
    use safetensors::Dtype as D;
    Ok(match dtype {
        D::F32 => Dtype::F32,
        D::F64 => Dtype::F64,
        D::F16 => Dtype::F16,
        D::BF16 => Dtype::BF16,
        other => {
            return Err(EncoderError::TensorDtype {
                key: name.to_string(),
                dtype: format!("{other:?}"),
            })
        }
    })
}

/// How a parameter is laid out in the PyTorch checkpoint relative to the Burn module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Same shape and order in both.
    Same,
    /// A `Linear` weight: PyTorch `[out, in]`, Burn `[in, out]`.
    Linear,
    /// A patch-embedding `Conv2d` weight with kernel == stride: PyTorch `[out, c, p, p]`,
    /// Burn `[c·p·p, out]` (the convolution runs as a matmul over flattened patches).
    PatchConv,
}

/// A walk over a module's parameters, in checkpoint terms.
pub trait ParamVisitor<B: Backend> {
    /// One parameter stored under `key` with PyTorch shape `torch_shape`.
    fn visit<const D: usize>(
        &mut self,
        key: &str,
        torch_shape: &[usize],
        layout: Layout,
        param: &mut Param<Tensor<B, D>>,
    ) -> Result<()>;

    /// Three parameters stored concatenated along PyTorch dim 0 under one key (PyTorch's
    /// fused `in_proj_weight` / `in_proj_bias`); `part_shape` is one part's PyTorch shape.
    fn visit_fused<const D: usize>(
        &mut self,
        key: &str,
        part_shape: &[usize],
        layout: Layout,
        parts: [&mut Param<Tensor<B, D>>; 3],
    ) -> Result<()>;
}

/// Forces every parameter's value into existence. Burn creates some parameters lazily
/// (initialised on first use); a clone of a module taken before that use draws its own
/// random values, so a freshly initialised model and its copies (or the copy that gets
/// saved) would disagree. Visiting each parameter once makes the values concrete.
pub(crate) struct Materialize;

impl<B: Backend> ParamVisitor<B> for Materialize {
    fn visit<const D: usize>(
        &mut self,
        _key: &str,
        _torch_shape: &[usize],
        _layout: Layout,
        param: &mut Param<Tensor<B, D>>,
    ) -> Result<()> {
        let _ = param.val();
        Ok(())
    }

    fn visit_fused<const D: usize>(
        &mut self,
        _key: &str,
        _part_shape: &[usize],
        _layout: Layout,
        parts: [&mut Param<Tensor<B, D>>; 3],
    ) -> Result<()> {
        for p in parts {
            let _ = p.val();
        }
        Ok(())
    }
}

/// Converts PyTorch-layout values to the Burn layout and shape.
fn torch_to_burn(torch_shape: &[usize], layout: Layout, data: Vec<f32>) -> (Vec<usize>, Vec<f32>) {
    match layout {
        Layout::Same => (torch_shape.to_vec(), data),
        Layout::Linear | Layout::PatchConv => {
            let rows = torch_shape[0];
            let cols: usize = torch_shape[1..].iter().product();
            (vec![cols, rows], transpose(&data, rows, cols))
        }
    }
}

/// Converts Burn-layout values back to PyTorch layout (the shape is given in PyTorch terms).
fn burn_to_torch(torch_shape: &[usize], layout: Layout, data: Vec<f32>) -> Vec<f32> {
    match layout {
        Layout::Same => data,
        Layout::Linear | Layout::PatchConv => {
            let rows = torch_shape[0];
            let cols: usize = torch_shape[1..].iter().product();
            transpose(&data, cols, rows)
        }
    }
}

/// Transposes a row-major `[rows, cols]` matrix.
fn transpose(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; data.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = data[r * cols + c];
        }
    }
    out
}

fn make_param<B: Backend, const D: usize>(
    shape: Vec<usize>,
    data: Vec<f32>,
    device: &B::Device,
) -> Param<Tensor<B, D>> {
    Param::from_tensor(Tensor::from_data(TensorData::new(data, shape), device))
}

/// Loads parameters from a [`TensorMap`], consuming each key it uses.
pub struct Loader<'a, B: Backend> {
    tensors: &'a mut HashMap<String, RawTensor>,
    device: B::Device,
}

impl<'a, B: Backend> Loader<'a, B> {
    /// A loader that moves tensors out of `map` onto `device`.
    pub fn new(map: &'a mut TensorMap, device: &B::Device) -> Self {
        Self {
            tensors: &mut map.tensors,
            device: device.clone(),
        }
    }

    /// Fails on any key left over that is not in [`UNUSED_KEYS`].
    pub fn finish(self) -> Result<()> {
        check_all_used(self.tensors)
    }
}

impl<B: Backend> ParamVisitor<B> for Loader<'_, B> {
    fn visit<const D: usize>(
        &mut self,
        key: &str,
        torch_shape: &[usize],
        layout: Layout,
        param: &mut Param<Tensor<B, D>>,
    ) -> Result<()> {
        let data = take_checked(self.tensors, key, torch_shape)?;
        let (shape, data) = torch_to_burn(torch_shape, layout, data);
        *param = make_param(shape, data, &self.device);
        Ok(())
    }

    fn visit_fused<const D: usize>(
        &mut self,
        key: &str,
        part_shape: &[usize],
        layout: Layout,
        parts: [&mut Param<Tensor<B, D>>; 3],
    ) -> Result<()> {
        let mut full_shape = part_shape.to_vec();
        full_shape[0] *= 3;
        let data = take_checked(self.tensors, key, &full_shape)?;
        let part_len: usize = part_shape.iter().product();
        for (i, param) in parts.into_iter().enumerate() {
            let chunk = data[i * part_len..(i + 1) * part_len].to_vec();
            let (shape, chunk) = torch_to_burn(part_shape, layout, chunk);
            *param = make_param(shape, chunk, &self.device);
        }
        Ok(())
    }
}

/// Collects parameters into a [`TensorMap`] in PyTorch layout under their checkpoint keys.
#[derive(Debug, Default)]
pub struct Exporter {
    /// The collected tensors.
    pub map: TensorMap,
}

impl<B: Backend> ParamVisitor<B> for Exporter {
    fn visit<const D: usize>(
        &mut self,
        key: &str,
        torch_shape: &[usize],
        layout: Layout,
        param: &mut Param<Tensor<B, D>>,
    ) -> Result<()> {
        let data = burn_to_torch(torch_shape, layout, host_values(param.val()));
        self.map.tensors.insert(
            key.to_string(),
            RawTensor {
                shape: torch_shape.to_vec(),
                data,
            },
        );
        Ok(())
    }

    fn visit_fused<const D: usize>(
        &mut self,
        key: &str,
        part_shape: &[usize],
        layout: Layout,
        parts: [&mut Param<Tensor<B, D>>; 3],
    ) -> Result<()> {
        let mut data = Vec::new();
        for param in parts {
            data.extend(burn_to_torch(part_shape, layout, host_values(param.val())));
        }
        let mut shape = part_shape.to_vec();
        shape[0] *= 3;
        self.map
            .tensors
            .insert(key.to_string(), RawTensor { shape, data });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_round_trips() {
        let m: Vec<f32> = (0..6).map(|v| v as f32).collect();
        let t = transpose(&m, 2, 3);
        assert_eq!(t, vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
        assert_eq!(transpose(&t, 3, 2), m);
    }
}
