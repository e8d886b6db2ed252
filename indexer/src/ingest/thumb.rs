//! Thumbnails for the UI: a small 8-bit RGB PNG (`thumb.png`) of each cutout, using
//! the Legacy Survey viewer colours for g, r, z images.

use astrovec_encoders::preprocess::legacy_rgb;

use super::row::{Image, ImageKind};

/// Blob name of the thumbnail.
pub const THUMB_BLOB: &str = "thumb.png";
/// Largest side of a thumbnail, pixels (a 152-px cutout becomes 76 px).
pub const THUMB_MAX_SIDE: usize = 96;

/// Encodes `image` as a PNG no larger than [`THUMB_MAX_SIDE`] on a side (block
/// averages of an integer factor). Rows are written top to bottom as stored.
pub fn thumbnail_png(image: &Image) -> Result<Vec<u8>, String> {
    let (h, w) = (image.height, image.width);
    let rgb = match image.kind {
        ImageKind::Grz => legacy_rgb(&image.data, h, w).map_err(|e| e.to_string())?,
        ImageKind::Rgb => image.data.clone(),
    };
    let f = h.max(w).div_ceil(THUMB_MAX_SIDE).max(1);
    let (th, tw) = (h / f, w / f);
    if th == 0 || tw == 0 {
        return Err(format!("image {h}×{w} is too small for a thumbnail"));
    }
    let plane = h * w;
    let mut px = vec![0u8; th * tw * 3];
    for y in 0..th {
        for x in 0..tw {
            for c in 0..3 {
                let mut s = 0.0f32;
                for dy in 0..f {
                    for dx in 0..f {
                        s += rgb[c * plane + (y * f + dy) * w + x * f + dx];
                    }
                }
                let v = (s / (f * f) as f32).clamp(0.0, 1.0);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grz_cutout_becomes_a_small_png() {
        let img = Image {
            kind: ImageKind::Grz,
            height: 152,
            width: 152,
            data: (0..3 * 152 * 152).map(|i| (i % 50) as f32 * 0.01).collect(),
        };
        let png = thumbnail_png(&img).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let dec = png::Decoder::new(std::io::Cursor::new(&png));
        let reader = dec.read_info().unwrap();
        assert_eq!((reader.info().width, reader.info().height), (76, 76));
    }
}
