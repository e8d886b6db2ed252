//! Tensors as a weight file holds them, whichever format it is: one PyTorch-layout tensor
//! ([`RawTensor`]), the element types a file may store and their conversion to f32
//! ([`Dtype`]), and the strict checks loading applies to a set of them by checkpoint key
//! (a missing, mis-shaped or unexpected tensor is an error naming its key).

use std::collections::HashMap;

use crate::error::{EncoderError, Result};

/// Checkpoint keys that the reference `astroclip.ckpt` holds but AstroCLIP's forward pass never
/// reads: DINOv2's CLS token, positional embedding, mask token and registers (the AstroCLIP
/// image path skips them), and SpecFormer's pretraining reconstruction head. They may be
/// present or absent; they are never loaded.
pub const UNUSED_KEYS: [&str; 6] = [
    "image_encoder.backbone.cls_token",
    "image_encoder.backbone.pos_embed",
    "image_encoder.backbone.mask_token",
    "image_encoder.backbone.register_tokens",
    "spectrum_encoder.backbone.head.weight",
    "spectrum_encoder.backbone.head.bias",
];

/// One tensor in PyTorch layout, converted to f32.
#[derive(Debug, Clone)]
pub struct RawTensor {
    /// PyTorch shape.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
}

/// An element type a weight file may store; every one is read as f32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dtype {
    /// 64-bit float.
    F64,
    /// 32-bit float.
    F32,
    /// IEEE half.
    F16,
    /// bfloat16.
    BF16,
    /// 64-bit integer.
    I64,
    /// 32-bit integer.
    I32,
    /// 16-bit integer.
    I16,
    /// Signed byte.
    I8,
    /// Unsigned byte or boolean.
    U8,
}

impl Dtype {
    /// Bytes per element.
    pub(crate) fn size(self) -> usize {
        match self {
            Dtype::F64 | Dtype::I64 => 8,
            Dtype::F32 | Dtype::I32 => 4,
            Dtype::F16 | Dtype::BF16 | Dtype::I16 => 2,
            Dtype::I8 | Dtype::U8 => 1,
        }
    }

    /// One little-endian element (`b` holds exactly [`Dtype::size`] bytes) as f32.
    #[inline(always)]
    pub(crate) fn decode(self, b: &[u8]) -> f32 {
        match self {
            Dtype::F64 => f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32,
            Dtype::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            Dtype::F16 => half::f16::from_le_bytes([b[0], b[1]]).to_f32(),
            Dtype::BF16 => half::bf16::from_le_bytes([b[0], b[1]]).to_f32(),
            Dtype::I64 => i64::from_le_bytes(b.try_into().expect("8 bytes")) as f32,
            Dtype::I32 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32,
            Dtype::I16 => i16::from_le_bytes([b[0], b[1]]) as f32,
            Dtype::I8 => b[0] as i8 as f32,
            Dtype::U8 => b[0] as f32,
        }
    }

    /// A contiguous run of little-endian elements as f32.
    ///
    /// Why one arm per type: with the element size and type fixed inside each loop, the
    /// loop compiles to straight conversions (a full-size model holds ~370M values).
    pub(crate) fn decode_all(self, bytes: &[u8]) -> Vec<f32> {
        fn each<const N: usize>(bytes: &[u8], decode: impl Fn(&[u8]) -> f32) -> Vec<f32> {
            bytes.chunks_exact(N).map(decode).collect()
        }
        match self {
            Dtype::F64 => each::<8>(bytes, |b| Dtype::F64.decode(b)),
            Dtype::F32 => each::<4>(bytes, |b| Dtype::F32.decode(b)),
            Dtype::F16 => each::<2>(bytes, |b| Dtype::F16.decode(b)),
            Dtype::BF16 => each::<2>(bytes, |b| Dtype::BF16.decode(b)),
            Dtype::I64 => each::<8>(bytes, |b| Dtype::I64.decode(b)),
            Dtype::I32 => each::<4>(bytes, |b| Dtype::I32.decode(b)),
            Dtype::I16 => each::<2>(bytes, |b| Dtype::I16.decode(b)),
            Dtype::I8 => each::<1>(bytes, |b| Dtype::I8.decode(b)),
            Dtype::U8 => each::<1>(bytes, |b| Dtype::U8.decode(b)),
        }
    }
}

/// Removes the tensor stored under `key` and returns its values, after checking that it
/// exists and has the PyTorch shape `expected`.
pub(crate) fn take_checked(
    tensors: &mut HashMap<String, RawTensor>,
    key: &str,
    expected: &[usize],
) -> Result<Vec<f32>> {
    let t = tensors
        .remove(key)
        .ok_or_else(|| EncoderError::MissingTensor {
            key: key.to_string(),
        })?;
    if t.shape != expected {
        return Err(EncoderError::TensorShape {
            key: key.to_string(),
            got: t.shape,
            expected: expected.to_vec(),
        });
    }
    Ok(t.data)
}

/// Fails on any tensor left in `tensors` (after loading took what it needs) that is not in
/// [`UNUSED_KEYS`], naming the first such key in sorted order.
pub(crate) fn check_all_used(tensors: &HashMap<String, RawTensor>) -> Result<()> {
    let mut left: Vec<&String> = tensors
        .keys()
        .filter(|k| !UNUSED_KEYS.contains(&k.as_str()))
        .collect();
    left.sort();
    match left.first() {
        None => Ok(()),
        Some(first) => Err(EncoderError::UnexpectedTensor {
            key: (*first).clone(),
            count: left.len(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dtype_decodes_alike_one_by_one_and_in_bulk() {
        let cases: [(Dtype, Vec<u8>, f32); 9] = [
            (Dtype::F64, (-1.5f64).to_le_bytes().to_vec(), -1.5),
            (Dtype::F32, 2.25f32.to_le_bytes().to_vec(), 2.25),
            (
                Dtype::F16,
                half::f16::from_f32(0.5).to_le_bytes().to_vec(),
                0.5,
            ),
            (
                Dtype::BF16,
                half::bf16::from_f32(-3.0).to_le_bytes().to_vec(),
                -3.0,
            ),
            (Dtype::I64, (-7i64).to_le_bytes().to_vec(), -7.0),
            (Dtype::I32, 9i32.to_le_bytes().to_vec(), 9.0),
            (Dtype::I16, (-2i16).to_le_bytes().to_vec(), -2.0),
            (Dtype::I8, vec![0xFF], -1.0),
            (Dtype::U8, vec![0xFF], 255.0),
        ];
        for (dtype, bytes, want) in cases {
            assert_eq!(bytes.len(), dtype.size(), "{dtype:?}");
            assert_eq!(dtype.decode(&bytes), want, "{dtype:?}");
            let twice = [bytes.clone(), bytes].concat();
            assert_eq!(dtype.decode_all(&twice), vec![want, want], "{dtype:?}");
        }
    }
}
