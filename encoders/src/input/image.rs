//! Images on their way to the image encoder: what their values are ([`ImageKind`]), how
//! arrays and files become one ([`Image::from_array`], [`read_file`], [`decode`]), and
//! the one preparation every path applies ([`Image::model_input`]).

use std::path::Path;

use super::fits::FitsFile;
use super::raster::{self, Picture};
use super::{check_finite, element_count, extension, Array, InputError, Result};
use crate::encoder::prepare_grz;

/// What the values of an [`Image`] are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    /// Planes g, r, z in nanomaggies (Legacy Survey cutouts); mapped to display colours
    /// with the Legacy Survey viewer's mapping and centre-cropped for the model.
    Grz,
    /// Display colours, planes R, G, B in [0, 1] (JPEG/PNG pictures); centre-cropped to
    /// a square and area-resampled to the model's size.
    Rgb,
}

impl ImageKind {
    /// Parses `grz` or `rgb`.
    pub fn parse(what: &str, text: &str) -> Result<ImageKind> {
        match text {
            "grz" => Ok(ImageKind::Grz),
            "rgb" => Ok(ImageKind::Rgb),
            other => Err(InputError::new(
                what,
                "`grz` (g, r, z nanomaggies) or `rgb` (display colours in [0, 1])",
                format!("`{other}`"),
            )),
        }
    }
}

/// The smallest picture side (pixels) [`Image::model_input`] resamples: below it the
/// model would see more than 4.5× invented detail at its 144-pixel input, so such a
/// picture is refused rather than embedded.
pub const MIN_PICTURE_SIDE: usize = 32;

/// How three planes are laid out in a flat array.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// `[3, H, W]` or `[H, W, 3]` told apart by the shape; a flat array is planar.
    #[default]
    Auto,
    /// Channel-last, `[H, W, 3]` (the reference HDF5 files); a flat array too.
    Hwc,
}

/// A planar `[3, height, width]` image.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// What the planes hold.
    pub kind: ImageKind,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// `3 × height × width` values, plane by plane.
    pub data: Vec<f32>,
}

impl Image {
    /// An image from an array of shape `[3, H, W]`, `[H, W, 3]` or flat `3·H·W` values
    /// of a square image, holding `kind` values.
    pub fn from_array(what: &str, array: Array, kind: ImageKind, layout: Layout) -> Result<Image> {
        let Array { shape, data } = array;
        let (h, w, hwc) = match shape[..] {
            [3, h, w] if layout != Layout::Hwc => (h, w, false),
            [h, w, 3] => (h, w, true),
            [n] if n % 3 == 0 && n > 0 => {
                let side = ((n / 3) as f64).sqrt().round() as usize;
                if side * side * 3 != n {
                    return Err(InputError::new(
                        what,
                        "a square 3-band image",
                        format!("{n} values"),
                    ));
                }
                (side, side, layout == Layout::Hwc)
            }
            _ => {
                return Err(InputError::new(
                    what,
                    "an image of shape [3, height, width] or [height, width, 3]",
                    format!("shape {shape:?}"),
                ))
            }
        };
        let plane = element_count(what, &[h, w])?;
        if h == 0 || w == 0 || data.len() != 3 * plane {
            return Err(InputError::new(
                what,
                format!("{} values for shape {shape:?}", 3 * plane),
                format!("{} values", data.len()),
            ));
        }
        let data = if hwc {
            let mut out = vec![0.0f32; 3 * plane];
            for (p, px) in data.chunks_exact(3).enumerate() {
                for b in 0..3 {
                    out[b * plane + p] = px[b];
                }
            }
            out
        } else {
            data
        };
        Ok(Image {
            kind,
            height: h,
            width: w,
            data,
        })
    }

    /// What the image encoder takes: planar `[3, size, size]` display colours in
    /// channel order (z, r, g) = (R, G, B). g, r, z cutouts go through the Legacy Survey
    /// mapping and a centre crop (the reference's preprocessing; they must be at least
    /// `size` on each side); pictures are centre-cropped to a square and area-resampled
    /// ([`fit_rgb`]; at least [`MIN_PICTURE_SIDE`] on each side).
    pub fn model_input(&self, what: &str, size: usize) -> Result<Vec<f32>> {
        self.check_for_model(what, size)?;
        match self.kind {
            ImageKind::Grz => prepare_grz(&self.data, 3, self.height, self.width, size)
                .map_err(|e| InputError::new(what, "a cutout the model accepts", e.to_string())),
            ImageKind::Rgb => Ok(fit_rgb(self, size)),
        }
    }

    /// What [`Image::model_input`] requires, checked without preparing anything (readers
    /// reject such rows before they reach the encoder): finite values, g, r, z cutouts at
    /// least `size` on each side, pictures at least [`MIN_PICTURE_SIDE`].
    pub fn check_for_model(&self, what: &str, size: usize) -> Result<()> {
        check_finite(what, &self.data)?;
        let (side, unit) = match self.kind {
            ImageKind::Grz => (size, "a g, r, z cutout"),
            ImageKind::Rgb => (MIN_PICTURE_SIDE.min(size), "a picture"),
        };
        if self.height < side || self.width < side {
            return Err(InputError::new(
                what,
                format!(
                    "{unit} at least {side} × {side} pixels (the model's input is {size} × {size})"
                ),
                format!("{} × {}", self.height, self.width),
            ));
        }
        Ok(())
    }
}

/// Area-averaging weights mapping `n` input pixels onto `m` output pixels: for each
/// output pixel, `(input index, weight)` pairs summing to 1.
fn area_weights(n: usize, m: usize) -> Vec<Vec<(usize, f32)>> {
    let scale = n as f64 / m as f64;
    (0..m)
        .map(|o| {
            let (a, b) = (o as f64 * scale, (o + 1) as f64 * scale);
            let mut w = Vec::new();
            let mut i = a.floor() as usize;
            while (i as f64) < b && i < n {
                let overlap = (b.min(i as f64 + 1.0) - a.max(i as f64)).max(0.0);
                if overlap > 0.0 {
                    w.push((i, (overlap / scale) as f32));
                }
                i += 1;
            }
            w
        })
        .collect()
}

/// A picture as the image encoder takes it: centre-cropped to a square and
/// area-resampled to `size × size`, planar `[3, size, size]` in [0, 1].
pub fn fit_rgb(image: &Image, size: usize) -> Vec<f32> {
    let (h, w) = (image.height, image.width);
    let side = h.min(w);
    let (top, left) = ((h - side) / 2, (w - side) / 2);
    let wts = area_weights(side, size);
    let plane = h * w;
    let mut out = vec![0.0f32; 3 * size * size];
    for c in 0..3 {
        for (oy, wy) in wts.iter().enumerate() {
            for (ox, wx) in wts.iter().enumerate() {
                let mut s = 0.0f32;
                for &(iy, a) in wy {
                    let row = c * plane + (top + iy) * w + left;
                    for &(ix, b) in wx {
                        s += a * b * image.data[row + ix];
                    }
                }
                out[c * size * size + oy * size + ox] = s.clamp(0.0, 1.0);
            }
        }
    }
    out
}

/// Image formats a file or upload can be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// A JPEG or PNG picture.
    Picture(Picture),
    /// A FITS file holding a `[3, H, W]` g, r, z cutout.
    Fits,
    /// A `.npy` array (`[3, H, W]` or `[H, W, 3]`).
    Npy,
}

impl ImageFormat {
    /// The format a file name's extension names.
    pub fn from_extension(path: &Path) -> Option<ImageFormat> {
        match extension(path).as_str() {
            "jpg" | "jpeg" => Some(ImageFormat::Picture(Picture::Jpeg)),
            "png" => Some(ImageFormat::Picture(Picture::Png)),
            "fits" | "fit" => Some(ImageFormat::Fits),
            "npy" => Some(ImageFormat::Npy),
            _ => None,
        }
    }
}

/// A decoded image and, when its file says so, its sky position (ICRS degrees).
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The image.
    pub image: Image,
    /// Right ascension and declination from a FITS header (`RA`/`DEC`, else
    /// `CRVAL1`/`CRVAL2`).
    pub position: Option<(f64, f64)>,
}

/// Decodes an image file's bytes. `numeric` says what `.npy` values hold (pictures are
/// always RGB, FITS cutouts always g, r, z); `max_pixels` bounds the height × width a
/// header may claim.
pub fn decode(
    what: &str,
    bytes: &[u8],
    format: ImageFormat,
    numeric: ImageKind,
    max_pixels: usize,
) -> Result<Decoded> {
    let image = match format {
        ImageFormat::Picture(p) => {
            let planes = raster::decode(what, bytes, p, max_pixels)?;
            Image {
                kind: ImageKind::Rgb,
                height: planes.height,
                width: planes.width,
                data: planes.data,
            }
        }
        ImageFormat::Npy => {
            let array = super::npy::read(what, bytes, max_pixels.saturating_mul(3))?;
            Image::from_array(what, array, numeric, Layout::Auto)?
        }
        ImageFormat::Fits => {
            let fits = FitsFile::from_bytes(what, bytes.to_vec())
                .map_err(|e| InputError::new(what, "a FITS file", e.to_string()))?;
            return fits_cutout(what, &fits, max_pixels);
        }
    };
    Ok(Decoded {
        image,
        position: None,
    })
}

/// Reads an image file, its format told by its extension (`.jpg`, `.jpeg`, `.png`,
/// `.fits`, `.fit`, `.npy`).
pub fn read_file(path: &Path, numeric: ImageKind, max_pixels: usize) -> Result<Decoded> {
    let what = path.display().to_string();
    let format = ImageFormat::from_extension(path).ok_or_else(|| {
        InputError::new(
            &what,
            "an image file (.jpg, .jpeg, .png, .fits, .fit or .npy)",
            format!("extension `.{}`", extension(path)),
        )
    })?;
    if format == ImageFormat::Fits {
        // Opened in place: only headers are read until the cutout's HDU is chosen.
        let fits = FitsFile::open(path)
            .map_err(|e| InputError::new(&what, "a FITS file", e.to_string()))?;
        return fits_cutout(&what, &fits, max_pixels);
    }
    let bytes = std::fs::read(path)
        .map_err(|e| InputError::new(&what, "a readable file", e.to_string()))?;
    decode(&what, &bytes, format, numeric, max_pixels)
}

/// The first HDU of `fits` holding a `[3, H, W]` image: bands g, r, z in nanomaggies,
/// reordered by `BAND0..2` or `BANDS` keywords when present, and the header position.
pub fn fits_cutout(what: &str, fits: &FitsFile, max_pixels: usize) -> Result<Decoded> {
    let hdu = fits
        .hdus()
        .iter()
        .find(|h| !h.is_table() && h.shape().is_ok_and(|s| s.len() == 3 && s[0] == 3))
        .ok_or_else(|| {
            InputError::new(
                what,
                "a FITS HDU holding a [3, height, width] g, r, z image",
                "none",
            )
        })?;
    let shape = hdu
        .shape()
        .map_err(|e| InputError::new(what, "a FITS image", e.to_string()))?;
    let (h, w) = (shape[1], shape[2]);
    if h.checked_mul(w).is_none_or(|p| p > max_pixels) {
        return Err(InputError::new(
            what,
            format!("a cutout of at most {max_pixels} pixels"),
            format!("a header claiming {h} × {w} pixels"),
        ));
    }
    let img = hdu
        .image()
        .map_err(|e| InputError::new(what, "a FITS image", e.to_string()))?;
    let bands: Vec<String> = match (0..3)
        .map(|i| {
            hdu.keyword(&format!("BAND{i}"))
                .map(|b| b.to_ascii_lowercase())
        })
        .collect::<Option<Vec<_>>>()
    {
        Some(b) => b,
        None => match hdu.keyword("BANDS") {
            Some(s) if s.chars().count() == 3 => s
                .chars()
                .map(|c| c.to_ascii_lowercase().to_string())
                .collect(),
            _ => vec!["g".into(), "r".into(), "z".into()],
        },
    };
    let plane = h * w;
    let mut data = vec![0.0f32; 3 * plane];
    for (target, band) in ["g", "r", "z"].iter().enumerate() {
        let src = bands.iter().position(|b| b == band).ok_or_else(|| {
            InputError::new(
                what,
                "bands g, r and z",
                format!("bands {bands:?} (from BAND0..2 / BANDS)"),
            )
        })?;
        for p in 0..plane {
            data[target * plane + p] = img.values[src * plane + p] as f32;
        }
    }
    let num = |k: &str| hdu.keyword(k).and_then(|v| v.parse::<f64>().ok());
    let position = match (num("RA"), num("DEC")) {
        (Some(ra), Some(dec)) => Some((ra, dec)),
        _ => num("CRVAL1").zip(num("CRVAL2")),
    };
    Ok(Decoded {
        image: Image {
            kind: ImageKind::Grz,
            height: h,
            width: w,
            data,
        },
        position,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pictures_are_cropped_square_and_area_resampled() {
        // 4 rows × 6 columns: the centre 4×4 is kept, then halved to 2×2.
        let (h, w) = (4, 6);
        let data: Vec<f32> = (0..3)
            .flat_map(|c| (0..h * w).map(move |p| if c == 0 { (p % w) as f32 / 10.0 } else { 0.5 }))
            .collect();
        let img = Image {
            kind: ImageKind::Rgb,
            height: h,
            width: w,
            data,
        };
        let out = img.model_input("x", 2).unwrap();
        assert_eq!(out.len(), 12);
        // Columns 1..5 kept; output column 0 averages columns 1, 2 → 0.15.
        assert!(
            (out[0] - 0.15).abs() < 1e-6 && (out[1] - 0.35).abs() < 1e-6,
            "{out:?}"
        );
        assert!(out[4..].iter().all(|v| (v - 0.5).abs() < 1e-6));
        // Weights of a non-integer ratio still sum to one.
        for w in area_weights(424, 144) {
            assert!((w.iter().map(|x| x.1).sum::<f32>() - 1.0).abs() < 1e-5);
        }
    }

    #[test]
    fn channel_last_arrays_become_planar_and_bad_shapes_are_named() {
        let a = Array {
            shape: vec![1, 2, 3],
            data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        };
        let img = Image::from_array("image", a, ImageKind::Grz, Layout::Auto).unwrap();
        assert_eq!((img.height, img.width), (1, 2));
        assert_eq!(img.data, vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        let a = Array {
            shape: vec![2, 2],
            data: vec![0.0; 4],
        };
        let e = Image::from_array("image", a, ImageKind::Grz, Layout::Auto).unwrap_err();
        assert_eq!(e.what, "image");
        assert!(e.got.contains("[2, 2]"), "{e}");
    }

    #[test]
    fn non_finite_pixels_and_small_cutouts_are_refused_by_name() {
        let mut img = Image {
            kind: ImageKind::Grz,
            height: 8,
            width: 8,
            data: vec![0.1; 3 * 64],
        };
        let e = img.model_input("image", 16).unwrap_err();
        assert!(e.got.contains("8"), "{e}");
        img.data[5] = f32::NAN;
        assert_eq!(img.model_input("image", 4).unwrap_err().what, "image[5]");
        let tiny = Image {
            kind: ImageKind::Rgb,
            height: 2,
            width: 40,
            data: vec![0.5; 3 * 80],
        };
        assert!(tiny
            .model_input("image", 144)
            .unwrap_err()
            .expected
            .contains("32 × 32"));
    }
}
