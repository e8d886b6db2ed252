//! A PNG contact sheet of a mock survey: 25 cutouts in the Legacy Survey viewer's
//! colours (the AstroCLIP reference mapping, `astrovec_encoders::preprocess::legacy_rgb`)
//! and 5 spectra.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use astrovec_encoders::preprocess::legacy_rgb;

use super::error::{MockError, Result};
use super::image::SIZE;
use super::sed::lines;
use super::spectrum::{wavelength, NPIX};
use super::survey::{MockRow, MockSurvey};

const GAP: usize = 4;
const GRID: usize = 5;
const PLOT_H: usize = 120;
const BG: [u8; 3] = [24, 24, 28];

/// A simple RGB canvas.
struct Canvas {
    w: usize,
    h: usize,
    px: Vec<u8>,
}

impl Canvas {
    fn new(w: usize, h: usize) -> Self {
        let mut px = Vec::with_capacity(w * h * 3);
        for _ in 0..w * h {
            px.extend_from_slice(&BG);
        }
        Self { w, h, px }
    }

    fn set(&mut self, x: i64, y: i64, c: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as usize) < self.w && (y as usize) < self.h {
            let i = (y as usize * self.w + x as usize) * 3;
            self.px[i..i + 3].copy_from_slice(&c);
        }
    }

    fn line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), c: [u8; 3]) {
        // Bresenham.
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        loop {
            self.set(x, y, c);
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    /// Draws `text` with a 3 × 5 pixel font scaled by `s`.
    fn text(&mut self, x: i64, y: i64, text: &str, s: i64, c: [u8; 3]) {
        for (i, ch) in text.chars().enumerate() {
            let rows = glyph(ch);
            for (r, bits) in rows.iter().enumerate() {
                for col in 0..3 {
                    if bits & (0b100 >> col) != 0 {
                        for dy in 0..s {
                            for dx in 0..s {
                                self.set(
                                    x + (i as i64 * 4 + col) * s + dx,
                                    y + r as i64 * s + dy,
                                    c,
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}

/// 3 × 5 bitmaps (one row per entry, MSB = left column) for the few characters used.
fn glyph(c: char) -> [u8; 5] {
    match c {
        '0' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '2' => [7, 1, 7, 4, 7],
        '3' => [7, 1, 7, 1, 7],
        '4' => [5, 5, 7, 1, 1],
        '5' => [7, 4, 7, 1, 7],
        '6' => [7, 4, 7, 5, 7],
        '7' => [7, 1, 2, 2, 2],
        '8' => [7, 5, 7, 5, 7],
        '9' => [7, 5, 7, 1, 7],
        '.' => [0, 0, 0, 0, 2],
        '=' => [0, 7, 0, 7, 0],
        '-' => [0, 0, 7, 0, 0],
        'z' => [0, 7, 1, 2, 7],
        'M' => [5, 7, 7, 5, 5],
        'S' => [7, 4, 7, 1, 7],
        'F' => [7, 4, 6, 4, 4],
        'A' => [2, 5, 7, 5, 5],
        'H' => [5, 5, 7, 5, 5],
        'a' => [0, 6, 1, 7, 7],
        's' => [0, 3, 6, 1, 6],
        'R' => [6, 5, 6, 5, 5],
        'Q' => [7, 5, 5, 7, 1],
        'f' => [1, 2, 7, 2, 2],
        'r' => [0, 5, 6, 4, 4],
        _ => [0; 5],
    }
}

/// Which objects to show: 25 of the first 250, spread evenly in redshift so the sheet
/// shows nearby, large galaxies as well as distant, compact ones.
fn pick(survey: &MockSurvey) -> Vec<usize> {
    let pool = survey.len().min(250);
    let mut idx: Vec<(usize, f64)> = (0..pool).map(|i| (i, survey.galaxy(i).z)).collect();
    idx.sort_by(|a, b| a.1.total_cmp(&b.1));
    let want = (GRID * GRID).min(pool);
    (0..want).map(|k| idx[k * pool / want].0).collect()
}

/// Draws one spectrum panel: the noisy spectrum in grey, a 9-pixel running mean in
/// colour, and ticks at the redshifted \[OII\], Hβ, \[OIII\] and Hα.
fn draw_spectrum(c: &mut Canvas, top: usize, row: &MockRow) {
    let w = c.w - 2 * GAP;
    let smooth: Vec<f32> = (0..NPIX)
        .map(|i| {
            let (lo, hi) = (i.saturating_sub(4), (i + 4).min(NPIX - 1));
            row.spectrum[lo..=hi].iter().sum::<f32>() / (hi - lo + 1) as f32
        })
        .collect();
    let mut sorted = smooth.clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let lo = sorted[NPIX / 100].min(0.0);
    let hi = sorted[NPIX - 1 - NPIX / 200] * 1.3 + 1e-3;
    for y in top..top + PLOT_H {
        for x in GAP..GAP + w {
            c.set(x as i64, y as i64, [12, 12, 16]);
        }
    }
    let ypix = |v: f32| -> i64 {
        let t = ((v - lo) / (hi - lo)).clamp(-0.05, 1.05);
        (top + PLOT_H) as i64 - 4 - (t * (PLOT_H - 8) as f32) as i64
    };
    let xpix = |i: usize| -> i64 { (GAP + i * (w - 1) / (NPIX - 1)) as i64 };
    let z = row.labels.redshift;
    for rest in [
        lines::OII_3729,
        lines::H_BETA,
        lines::OIII_5007,
        lines::H_ALPHA,
    ] {
        let obs = rest * (1.0 + z);
        if obs > wavelength(0) && obs < wavelength(NPIX - 1) {
            let x = xpix(((obs - wavelength(0)) / 0.8) as usize);
            c.line((x, top as i64), (x, top as i64 + 8), [220, 90, 90]);
        }
    }
    for (series, colour) in [(&row.spectrum, [95, 95, 105]), (&smooth, [140, 200, 255])] {
        let mut prev = None;
        for (i, &v) in series.iter().enumerate() {
            let p = (xpix(i), ypix(v));
            if let Some(q) = prev {
                c.line(q, p, colour);
            }
            prev = Some(p);
        }
    }
    let label = format!(
        "z={:.3}  M={:.1}  sSFR={:.1}  r={:.1}",
        z, row.labels.log_stellar_mass, row.labels.log_ssfr, row.labels.mag_grz[1]
    );
    c.text(GAP as i64 + 6, top as i64 + 6, &label, 2, [230, 230, 230]);
}

impl MockSurvey {
    /// Writes the contact sheet (25 cutouts over 5 spectra) to `path` as PNG.
    pub fn write_preview(&self, path: &Path) -> Result<()> {
        let picks = pick(self);
        let rows: Vec<MockRow> = {
            use rayon::prelude::*;
            picks.par_iter().map(|&i| self.row(i)).collect()
        };
        let w = GRID * SIZE + (GRID + 1) * GAP;
        let h = w + GRID * (PLOT_H + GAP);
        let mut c = Canvas::new(w, h);
        for (k, row) in rows.iter().enumerate() {
            let rgb = legacy_rgb(&row.image, SIZE, SIZE)?;
            let (ox, oy) = (
                GAP + (k % GRID) * (SIZE + GAP),
                GAP + (k / GRID) * (SIZE + GAP),
            );
            let plane = SIZE * SIZE;
            for y in 0..SIZE {
                for x in 0..SIZE {
                    // Image row 0 is south; PNG row 0 is the top, so flip to put north up.
                    let p = (SIZE - 1 - y) * SIZE + x;
                    let col = [0, 1, 2].map(|ch| (rgb[ch * plane + p] * 255.0 + 0.5) as u8);
                    c.set((ox + x) as i64, (oy + y) as i64, col);
                }
            }
            c.text(
                ox as i64 + 4,
                oy as i64 + 4,
                &format!("z={:.3}", row.labels.redshift),
                2,
                [235, 235, 235],
            );
        }
        // Spectra: star-forming galaxies first (their lines are the interesting part),
        // then quiescent ones, in redshift order within each group.
        let mut order: Vec<usize> = (0..rows.len())
            .filter(|&k| rows[k].labels.star_forming)
            .collect();
        order.truncate(3);
        order.extend((0..rows.len()).filter(|&k| !rows[k].labels.star_forming));
        order.truncate(GRID);
        order.sort_by(|&a, &b| rows[a].labels.redshift.total_cmp(&rows[b].labels.redshift));
        for (s, &k) in order.iter().enumerate() {
            let top = w + s * (PLOT_H + GAP);
            draw_spectrum(&mut c, top, &rows[k]);
        }
        let file = File::create(path).map_err(|source| MockError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let perr = |e: png::EncodingError| MockError::Png {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let mut enc = png::Encoder::new(BufWriter::new(file), w as u32, h as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(perr)?;
        writer.write_image_data(&c.px).map_err(perr)?;
        writer.finish().map_err(perr)?;
        Ok(())
    }
}
