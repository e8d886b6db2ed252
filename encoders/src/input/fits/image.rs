//! Numeric image HDUs (§7.1): any BITPIX, BSCALE/BZERO applied, read whole or a
//! range of the outermost axis.

use super::{decode, Hdu, Result};

/// The values of a numeric image, as `f64`, with its axes outermost first
/// (`[NAXISn, …, NAXIS1]`, the order numpy/astropy show).
#[derive(Debug, Clone, PartialEq)]
pub struct ImageData {
    /// Axis lengths, outermost first.
    pub shape: Vec<usize>,
    /// Values in file order (the last axis varies fastest), BSCALE/BZERO applied.
    pub values: Vec<f64>,
}

impl Hdu {
    /// Reads a numeric image whole.
    pub fn image(&self) -> Result<ImageData> {
        let shape = self.shape()?;
        let rows = shape.first().copied().unwrap_or(0);
        self.image_rows(0, rows)
    }

    /// Reads `count` entries of the image's outermost axis from `start` (e.g.
    /// spectra `start..start+count` of a `[N, pixels]` FLUX image).
    pub fn image_rows(&self, start: usize, count: usize) -> Result<ImageData> {
        if self.is_table() {
            return Err(self.error(None, "expected an image, found a binary table"));
        }
        let mut shape = self.shape()?;
        if shape.is_empty() {
            return Err(self.error(None, "expected image data, the HDU has none (NAXIS = 0)"));
        }
        let outer = shape[0];
        if start + count > outer {
            return Err(self.error(
                None,
                format!(
                    "rows {start}..{} requested, the image has {outer}",
                    start + count
                ),
            ));
        }
        let bitpix = self.int("BITPIX")?;
        let elem = (bitpix.unsigned_abs() / 8) as usize;
        let per: usize = shape[1..].iter().product();
        let bytes = self.read_bytes((start * per * elem) as u64, count * per * elem)?;
        let (scale, zero) = (self.float_or("BSCALE", 1.0)?, self.float_or("BZERO", 0.0)?);
        let raw: Vec<f64> = decode(&bytes, bitpix_code(bitpix), elem);
        let values = if scale == 1.0 && zero == 0.0 {
            raw
        } else {
            raw.into_iter().map(|v| v * scale + zero).collect()
        };
        shape[0] = count;
        Ok(ImageData { shape, values })
    }
}

fn bitpix_code(bitpix: i64) -> char {
    match bitpix {
        8 => 'B',
        16 => 'I',
        32 => 'J',
        64 => 'K',
        -32 => 'E',
        _ => 'D',
    }
}
