//! Picture blobs for the UI: the full-resolution 8-bit RGB PNG of each cutout
//! ([`IMAGE_PNG`]) and a small one ([`THUMB_PNG`]) for result grids. g, r, z cutouts
//! get the Legacy Survey viewer colours (`legacy_rgb`, the mapping the image
//! encoder sees); RGB inputs are written as given.

use astrovec_encoders::preprocess::legacy_rgb;
pub use astrovec_engine::blobs::{IMAGE_PNG, THUMB_PNG};

use super::row::{Image, ImageKind};

/// Largest side of a thumbnail, pixels (a 152-px cutout becomes 76 px).
pub const THUMB_MAX_SIDE: usize = 96;

/// The display colours of `image`: planar `[3, h, w]` R, G, B in [0, 1].
fn display_rgb(image: &Image) -> Result<Vec<f32>, String> {
    match image.kind {
        ImageKind::Grz => {
            legacy_rgb(&image.data, image.height, image.width).map_err(|e| e.to_string())
        }
        ImageKind::Rgb => Ok(image.data.clone()),
    }
}

/// Block-averages planar RGB by an integer factor `f` and writes an 8-bit PNG.
fn png_of(rgb: &[f32], h: usize, w: usize, f: usize) -> Result<Vec<u8>, String> {
    let (th, tw) = (h / f, w / f);
    if th == 0 || tw == 0 {
        return Err(format!("image {h}×{w} is too small for a picture"));
    }
    let plane = h * w;
    let mut px = vec![0u8; th * tw * 3];
    let norm = 1.0 / (f * f) as f32;
    for y in 0..th {
        for x in 0..tw {
            for c in 0..3 {
                let mut s = 0.0f32;
                for dy in 0..f {
                    let row = c * plane + (y * f + dy) * w + x * f;
                    s += rgb[row..row + f].iter().sum::<f32>();
                }
                let v = (s * norm).clamp(0.0, 1.0);
                px[(y * tw + x) * 3 + c] = (v * 255.0).round() as u8;
            }
        }
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, tw as u32, th as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(|e| e.to_string())?;
        writer.write_image_data(&px).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// Encodes `image` as a PNG no larger than [`THUMB_MAX_SIDE`] on a side (block
/// averages of an integer factor). Rows are written top to bottom as stored.
pub fn thumbnail_png(image: &Image) -> Result<Vec<u8>, String> {
    let rgb = display_rgb(image)?;
    let f = image
        .height
        .max(image.width)
        .div_ceil(THUMB_MAX_SIDE)
        .max(1);
    png_of(&rgb, image.height, image.width, f)
}

/// Encodes `image` at full resolution (same colours as the thumbnail).
pub fn image_png(image: &Image) -> Result<Vec<u8>, String> {
    let rgb = display_rgb(image)?;
    png_of(&rgb, image.height, image.width, 1)
}

/// Both pictures from one colour mapping: `(full resolution, thumbnail)`.
pub fn image_and_thumbnail_png(image: &Image) -> Result<(Vec<u8>, Vec<u8>), String> {
    let rgb = display_rgb(image)?;
    let f = image
        .height
        .max(image.width)
        .div_ceil(THUMB_MAX_SIDE)
        .max(1);
    Ok((
        png_of(&rgb, image.height, image.width, 1)?,
        png_of(&rgb, image.height, image.width, f)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size_of(png: &[u8]) -> (u32, u32) {
        let dec = png::Decoder::new(std::io::Cursor::new(png));
        let reader = dec.read_info().unwrap();
        (reader.info().width, reader.info().height)
    }

    #[test]
    fn grz_cutout_becomes_a_small_png_and_a_full_one() {
        let img = Image {
            kind: ImageKind::Grz,
            height: 152,
            width: 152,
            data: (0..3 * 152 * 152).map(|i| (i % 50) as f32 * 0.01).collect(),
        };
        let png = thumbnail_png(&img).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        assert_eq!(size_of(&png), (76, 76));
        let full = image_png(&img).unwrap();
        assert_eq!(size_of(&full), (152, 152));
        let (a, b) = image_and_thumbnail_png(&img).unwrap();
        assert_eq!((a, b), (full, png));
    }

    #[test]
    fn rgb_input_is_written_as_given() {
        // A 2×2 RGB image: pure red, green, blue and white pixels.
        let img = Image {
            kind: ImageKind::Rgb,
            height: 2,
            width: 2,
            data: vec![
                1.0, 0.0, 0.0, 1.0, // R plane
                0.0, 1.0, 0.0, 1.0, // G plane
                0.0, 0.0, 1.0, 1.0, // B plane
            ],
        };
        let png = image_png(&img).unwrap();
        let mut reader = png::Decoder::new(std::io::Cursor::new(&png))
            .read_info()
            .unwrap();
        let mut buf = vec![0u8; reader.output_buffer_size()];
        reader.next_frame(&mut buf).unwrap();
        assert_eq!(
            &buf[..12],
            &[255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255]
        );
    }
}
