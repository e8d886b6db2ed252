//! Legacy Survey-like g, r, z cutouts: bulge + disk (+ arms) convolved with the
//! DR9 PSF, optional neighbouring sources, then sky and Poisson noise.

use rand::Rng;
use rand_distr::{Distribution, Poisson, StandardNormal};

use super::galaxy::Galaxy;
use super::profiles::{dev, expo, DEV_TRUNC, EXP_TRUNC};

/// Cutout side (pixels).
pub const SIZE: usize = 152;
/// Pixel scale (arcsec / pixel), as Legacy Survey cutouts.
pub const PIXEL_SCALE: f64 = 0.262;
/// DR9 PSF FWHM (arcsec) in g, r, z.
pub const PSF_FWHM: [f64; 3] = [1.3, 1.2, 1.1];
/// Fraction of PSF flux in the wide Gaussian wing (a double Gaussian stands in for
/// the Moffat-like wings of real PSFs while keeping the convolution separable).
const WING_FRACTION: f64 = 0.1;
/// Wing width relative to the core σ.
const WING_SCALE: f64 = 2.0;
/// Margin (pixels) rendered around the cutout so the PSF does not wrap or lose the
/// light of sources just outside.
const PAD: usize = 20;
/// Median 5σ depths (AB) of DR9 south for a small galaxy in g, r, z (Dey et al. 2019).
const DEPTH: [f64; 3] = [24.0, 23.4, 22.5];
/// Electrons per nanomaggy for a typical 3-exposure DECam stack: DECam zero points
/// of about 25.0–25.3 mag for 1 e⁻/s, times ~270 s (only the source Poisson term
/// uses it; the sky noise comes from `DEPTH`).
const GAIN: [f64; 3] = [2900.0, 3500.0, 2800.0];
/// DESI fibre radius (arcsec), for the fibre fraction used by the spectrum noise.
const FIBER_RADIUS: f64 = 0.75;

/// Pixels and a few by-products of rendering.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// Planar `[3, 152, 152]` g, r, z in nanomaggies (row-major, y then x).
    pub image: Vec<f32>,
    /// Fraction of the r-band light of the galaxy (PSF-convolved) inside a DESI fibre.
    pub fiber_fraction_r: f64,
    /// Sky noise per pixel (nanomaggies) in g, r, z.
    pub sky_sigma: [f64; 3],
}

/// One standard-normal deviate.
fn normal<R: Rng>(rng: &mut R) -> f64 {
    StandardNormal.sample(rng)
}

/// Core σ of the PSF in pixels for band `b`.
pub fn psf_sigma_px(b: usize) -> f64 {
    PSF_FWHM[b] / 2.354_82 / PIXEL_SCALE
}

/// Samples a profile over a square region around (cx, cy), sub-sampling pixels near
/// the centre where the de Vaucouleurs cusp changes fastest. Returns the canvas
/// (n × n) of each of the `K` outputs and their sums over *all* sampled pixels,
/// including those outside the canvas, so normalising by the sum conserves flux.
fn sample_region<const K: usize>(
    n: usize,
    cx: f64,
    cy: f64,
    radius: f64,
    f: impl Fn(f64, f64) -> [f64; K],
) -> ([Vec<f64>; K], [f64; K]) {
    let mut out: [Vec<f64>; K] = std::array::from_fn(|_| vec![0.0; n * n]);
    let mut sums = [0.0; K];
    let r = radius + 1.5;
    let (y0, y1) = ((cy - r).floor() as i64, (cy + r).ceil() as i64);
    let (x0, x1) = ((cx - r).floor() as i64, (cx + r).ceil() as i64);
    // Mean of the profile over pixel (x, y), or None beyond the truncation radius.
    let pixel = |x: i64, y: i64| -> Option<[f64; K]> {
        let (dx, dy) = (x as f64 - cx, y as f64 - cy);
        let d = (dx * dx + dy * dy).sqrt();
        if d > r {
            return None;
        }
        let ss = if d < 3.5 {
            11
        } else if d < 8.0 {
            5
        } else if d < 16.0 {
            2
        } else {
            1
        };
        let mut acc = [0.0; K];
        let inv = 1.0 / ss as f64;
        for sy in 0..ss {
            let oy = dy + (sy as f64 + 0.5) * inv - 0.5;
            for sx in 0..ss {
                let ox = dx + (sx as f64 + 0.5) * inv - 0.5;
                let v = f(ox, oy);
                for k in 0..K {
                    acc[k] += v[k];
                }
            }
        }
        Some(acc.map(|a| a * inv * inv))
    };
    let last = n as i64 - 1;
    // Pixels outside the canvas only count towards the sums. For very large, nearby
    // galaxies (truncation radius ≫ canvas) they are evaluated in blocks of
    // `block` × `block` pixels at the block centre: the profile is smooth there, and
    // this keeps the cost bounded. For ordinary galaxies `block` is 1 (exact).
    let block = ((r / (2.0 * n as f64)).floor() as i64).max(1);
    let (fy0, fy1, fx0, fx1) = if block == 1 {
        (y0, y1, x0, x1)
    } else {
        (y0.max(0), y1.min(last), x0.max(0), x1.min(last))
    };
    for y in fy0..=fy1 {
        for x in fx0..=fx1 {
            let Some(v) = pixel(x, y) else { continue };
            let inside = x >= 0 && y >= 0 && x <= last && y <= last;
            for k in 0..K {
                sums[k] += v[k];
                if inside {
                    out[k][y as usize * n + x as usize] = v[k];
                }
            }
        }
    }
    if block > 1 {
        let overlap = |a: i64, b: i64| (b.min(last) - a.max(0) + 1).max(0);
        let mut by = y0;
        while by <= y1 {
            let by1 = (by + block - 1).min(y1);
            let mut bx = x0;
            while bx <= x1 {
                let bx1 = (bx + block - 1).min(x1);
                let outside = (bx1 - bx + 1) * (by1 - by + 1) - overlap(bx, bx1) * overlap(by, by1);
                if outside > 0 {
                    let (mx, my) = ((bx + bx1) as f64 / 2.0, (by + by1) as f64 / 2.0);
                    let (dx, dy) = (mx - cx, my - cy);
                    if (dx * dx + dy * dy).sqrt() <= r {
                        let v = f(dx, dy);
                        for k in 0..K {
                            sums[k] += v[k] * outside as f64;
                        }
                    }
                }
                bx += block;
            }
            by += block;
        }
    }
    (out, sums)
}

/// Separable Gaussian blur with zero padding (kernel normalised to 1).
fn blur(src: &[f64], n: usize, sigma: f64) -> Vec<f64> {
    let rad = (4.0 * sigma).ceil() as usize;
    let mut k: Vec<f64> = (0..=2 * rad)
        .map(|i| {
            let d = i as f64 - rad as f64;
            (-0.5 * d * d / (sigma * sigma)).exp()
        })
        .collect();
    let s: f64 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= s);
    let mut tmp = vec![0.0; n * n];
    for y in 0..n {
        let row = &src[y * n..(y + 1) * n];
        for (x, t) in tmp[y * n..(y + 1) * n].iter_mut().enumerate() {
            let lo = x.saturating_sub(rad);
            let hi = (x + rad).min(n - 1);
            *t = (lo..=hi).map(|xx| row[xx] * k[xx + rad - x]).sum();
        }
    }
    let mut out = vec![0.0; n * n];
    for y in 0..n {
        let lo = y.saturating_sub(rad);
        let hi = (y + rad).min(n - 1);
        for yy in lo..=hi {
            let w = k[yy + rad - y];
            let (dst, srow) = (&mut out[y * n..(y + 1) * n], &tmp[yy * n..(yy + 1) * n]);
            for (o, s) in dst.iter_mut().zip(srow) {
                *o += w * s;
            }
        }
    }
    out
}

/// Convolves with the double-Gaussian PSF of band `b`.
fn convolve_psf(src: &[f64], n: usize, b: usize) -> Vec<f64> {
    let s = psf_sigma_px(b);
    let core = blur(src, n, s);
    let wing = blur(src, n, s * WING_SCALE);
    core.iter()
        .zip(&wing)
        .map(|(c, w)| (1.0 - WING_FRACTION) * c + WING_FRACTION * w)
        .collect()
}

/// Renders the galaxy (and, if asked, neighbours and noise) into a cutout.
pub(crate) fn render<R: Rng>(g: &Galaxy, noise: bool, neighbours: bool, rng: &mut R) -> Rendered {
    let n = SIZE + 2 * PAD;
    let cx = (PAD + SIZE / 2) as f64 + g.center_offset[0];
    let cy = (PAD + SIZE / 2) as f64 + g.center_offset[1];
    let pa = g.pa_deg.to_radians();
    // Major-axis unit vector (from +y towards −x) and minor-axis unit vector.
    let (ux, uy) = (-pa.sin(), pa.cos());
    let (vx, vy) = (pa.cos(), pa.sin());
    let px_per_kpc = g.arcsec_per_kpc / PIXEL_SCALE;
    let re_b = (g.re_bulge_kpc * px_per_kpc).max(0.05);
    let re_d = (g.re_disk_kpc * px_per_kpc).max(0.05);

    let (bulge, bsum) = sample_region::<1>(n, cx, cy, DEV_TRUNC * re_b, |dx, dy| {
        let a = dx * ux + dy * uy;
        let b = (dx * vx + dy * vy) / g.q_bulge;
        [dev((a * a + b * b).sqrt() / re_b)]
    });
    let h = re_d / 1.678;
    let arms = g.arms;
    let (disk, dsum) = sample_region::<2>(n, cx, cy, EXP_TRUNC * re_d, |dx, dy| {
        let a = dx * ux + dy * uy;
        let b = (dx * vx + dy * vy) / g.q_disk;
        let r = (a * a + b * b).sqrt();
        let base = expo(r / re_d);
        let arm = match arms {
            Some(arm) if r > 1e-6 => {
                // Logarithmic spiral r = h·exp(tan ψ · θ) in the disk plane; the cube
                // of a raised cosine gives narrow arms, divided by its azimuthal mean
                // (5/16) so the modulation averages to zero around each ring.
                let theta = b.atan2(a);
                let phase = arm.count as f64
                    * (theta - (r / h).ln() / arm.pitch_deg.to_radians().tan() - arm.phase);
                let s = (0.5 * (1.0 + phase.cos())).powi(3) / 0.3125 - 1.0;
                // Arms fade towards the centre, where the bulge dominates.
                let env = 1.0 - (-(r / h) * (r / h)).exp();
                base * s * env
            }
            _ => 0.0,
        };
        [base, arm]
    });
    let clumps = g
        .arms
        .map(|arm| star_forming_clumps(g, arm, re_d, (cx, cy), (ux, uy), (vx, vy), n, rng));
    // A dust lane along the midplane of nearly edge-on disks, offset slightly to
    // the near side, fading beyond ~1.5 disk half-light radii.
    let dust_lane =
        (g.bulge_fraction[1] < 0.7 && g.inclination_deg > 70.0 && g.featured).then(|| {
            let cos_i = g.inclination_deg.to_radians().cos();
            // Dust scale height ≈ half the stellar one (thickness 0.12 of the disk), so
            // the lane is only resolved for large, nearby disks — as in real cutouts.
            let width = (0.06 * re_d).max(0.5);
            let offset = 0.25 * cos_i * re_d;
            let mut lane = vec![0.0; n * n];
            for (i, t) in lane.iter_mut().enumerate() {
                let (dx, dy) = ((i % n) as f64 - cx, (i / n) as f64 - cy);
                let (a, b) = (dx * ux + dy * uy, dx * vx + dy * vy);
                let along = (-(a / (1.5 * re_d)).powi(2)).exp();
                *t = along * (-0.5 * ((b - offset) / width).powi(2)).exp();
            }
            lane
        });
    let [bulge] = bulge;
    let [disk, mut armmap] = disk;
    // Remove the residual net flux of the arm pattern left by pixelisation, so each
    // band's total stays exactly the SED's photometry.
    let arm_net = dsum[1] / dsum[0];
    armmap
        .iter_mut()
        .zip(&disk)
        .for_each(|(m, d)| *m -= arm_net * d);

    let mut image = vec![0.0f32; 3 * SIZE * SIZE];
    let mut fiber_fraction_r = 0.0;
    let mut sky_sigma = [0.0; 3];
    let depth_shift = 0.15 * normal(rng);
    let mut canvases: Vec<Vec<f64>> = Vec::with_capacity(3);
    for band in 0..3 {
        let flux = g.flux_nmgy[band].max(0.0);
        let bt = g.bulge_fraction[band];
        let amp = g.arms.map_or(0.0, |a| a.amplitude[band]);
        let (wb, wd) = (
            flux * bt / bsum[0].max(1e-300),
            flux * (1.0 - bt) / dsum[0].max(1e-300),
        );
        let mut canvas: Vec<f64> = (0..n * n)
            .map(|i| wb * bulge[i] + wd * (disk[i] + amp * armmap[i]))
            .collect();
        if let Some(cl) = &clumps {
            // Move a band-dependent share of the disk light into the clumps, so the
            // band total is unchanged.
            let k = CLUMP_FRACTION[band];
            let disk_flux = flux * (1.0 - bt);
            for (i, c) in canvas.iter_mut().enumerate() {
                *c += disk_flux * k * (cl[i] - disk[i] / dsum[0].max(1e-300));
            }
        }
        if let Some(lane) = &dust_lane {
            // The SED photometry is the observed (dust-attenuated) total, so the lane
            // only redistributes light: attenuate, then restore the band total.
            let before: f64 = canvas.iter().sum();
            for (c, t) in canvas.iter_mut().zip(lane) {
                *c *= (-LANE_TAU[band] * t).exp();
            }
            let after: f64 = canvas.iter().sum();
            if after > 0.0 {
                canvas.iter_mut().for_each(|c| *c *= before / after);
            }
        }
        let conv = convolve_psf(&canvas, n, band);
        if band == 1 && flux > 0.0 {
            fiber_fraction_r = aperture_sum(&conv, n, cx, cy, FIBER_RADIUS / PIXEL_SCALE) / flux;
        }
        canvases.push(conv);
        let sigma_psf = psf_sigma_px(band);
        let depth_flux = 10f64.powf(-0.4 * (DEPTH[band] + depth_shift - 22.5));
        sky_sigma[band] =
            depth_flux / (5.0 * (4.0 * std::f64::consts::PI * sigma_psf * sigma_psf).sqrt());
    }
    let mut cut: Vec<f64> = Vec::with_capacity(3 * SIZE * SIZE);
    for c in &canvases {
        for y in 0..SIZE {
            cut.extend_from_slice(&c[(y + PAD) * n + PAD..(y + PAD) * n + PAD + SIZE]);
        }
    }
    if neighbours {
        add_neighbours(&mut cut, rng);
    }
    for band in 0..3 {
        let plane = &cut[band * SIZE * SIZE..(band + 1) * SIZE * SIZE];
        let out = &mut image[band * SIZE * SIZE..(band + 1) * SIZE * SIZE];
        for (o, &v) in out.iter_mut().zip(plane) {
            *o = if noise {
                let var = sky_sigma[band].powi(2) + v.max(0.0) / GAIN[band];
                let e: f64 = StandardNormal.sample(rng);
                (v + var.sqrt() * e) as f32
            } else {
                v as f32
            };
        }
    }
    Rendered {
        image,
        fiber_fraction_r,
        sky_sigma,
    }
}

/// Optical depth of the central dust lane of edge-on disks in g, r, z (∝ λ^-0.7).
const LANE_TAU: [f64; 3] = [1.4, 1.1, 0.75];

/// Share of the disk light in star-forming clumps in g, r, z (young, blue regions).
const CLUMP_FRACTION: [f64; 3] = [0.12, 0.07, 0.03];

/// HII-region-like knots along the spiral arms of a featured disk, as a canvas
/// normalised to unit sum. Radii follow the exponential disk; azimuths sit on the
/// arm ridges (with scatter); each knot is a Gaussian of ~150–400 pc.
#[allow(clippy::too_many_arguments)]
fn star_forming_clumps<R: Rng>(
    g: &Galaxy,
    arm: super::galaxy::Arms,
    re_d: f64,
    (cx, cy): (f64, f64),
    (ux, uy): (f64, f64),
    (vx, vy): (f64, f64),
    n: usize,
    rng: &mut R,
) -> Vec<f64> {
    let mut out = vec![0.0; n * n];
    let h = re_d / 1.678;
    let count = 8 + (rng.random::<f64>() * 20.0) as usize;
    let px_per_kpc = g.arcsec_per_kpc / PIXEL_SCALE;
    let tan_pitch = arm.pitch_deg.to_radians().tan();
    let mut total = 0.0;
    for _ in 0..count {
        // Radius from the exponential disk's light distribution (Gamma(2) in r/h),
        // shifted out of the bulge-dominated centre and kept inside the visible disk.
        let r = h * (0.8 - (rng.random::<f64>() * rng.random::<f64>()).max(1e-12).ln()).min(3.5);
        let j = (rng.random::<f64>() * arm.count as f64) as u32;
        let theta = (r / h).ln() / tan_pitch
            + arm.phase
            + std::f64::consts::TAU * j as f64 / arm.count as f64
            + 0.15 * normal(rng);
        // Disk-plane position → sky: the minor-axis coordinate shrinks by q.
        let (a, b) = (r * theta.cos(), r * theta.sin() * g.q_disk);
        let (x, y) = (cx + a * ux + b * vx, cy + a * uy + b * vy);
        let sigma = ((0.15 + 0.25 * rng.random::<f64>()) * px_per_kpc).max(0.6);
        let weight = 0.3 + rng.random::<f64>();
        let rad = (4.0 * sigma).ceil() as i64;
        let mut local = Vec::new();
        let mut sum = 0.0;
        for yy in (y as i64 - rad).max(0)..=(y as i64 + rad).min(n as i64 - 1) {
            for xx in (x as i64 - rad).max(0)..=(x as i64 + rad).min(n as i64 - 1) {
                let d2 = (xx as f64 - x).powi(2) + (yy as f64 - y).powi(2);
                let v = (-0.5 * d2 / (sigma * sigma)).exp();
                sum += v;
                local.push((yy as usize * n + xx as usize, v));
            }
        }
        if sum > 0.0 {
            for (i, v) in local {
                out[i] += weight * v / sum;
            }
            total += weight;
        }
    }
    if total > 0.0 {
        out.iter_mut().for_each(|v| *v /= total);
    }
    out
}

/// Sum of an n × n image within a circle, with 5 × 5 sub-pixel area weighting.
fn aperture_sum(img: &[f64], n: usize, cx: f64, cy: f64, radius: f64) -> f64 {
    let mut s = 0.0;
    let r = radius.ceil() as i64 + 1;
    for y in (cy as i64 - r)..=(cy as i64 + r) {
        for x in (cx as i64 - r)..=(cx as i64 + r) {
            if x < 0 || y < 0 || x as usize >= n || y as usize >= n {
                continue;
            }
            let mut inside = 0;
            for sy in 0..5 {
                for sx in 0..5 {
                    let ox = x as f64 + (sx as f64 + 0.5) / 5.0 - 0.5 - cx;
                    let oy = y as f64 + (sy as f64 + 0.5) / 5.0 - 0.5 - cy;
                    if ox * ox + oy * oy <= radius * radius {
                        inside += 1;
                    }
                }
            }
            s += img[y as usize * n + x as usize] * inside as f64 / 25.0;
        }
    }
    s
}

/// Adds faint background galaxies and stars at random positions away from the
/// centre. Their counts follow rough high-latitude densities for a 40″ cutout
/// (a few r < 24 galaxies, about one star in two cutouts); as sources they are
/// PSF-convolved elliptical Gaussians (galaxies) and the PSF itself (stars).
fn add_neighbours<R: Rng>(cut: &mut [f64], rng: &mut R) {
    let n_gal = Poisson::new(3.0f64).map_or(0.0, |p| p.sample(rng)) as usize;
    let n_star = Poisson::new(0.5f64).map_or(0.0, |p| p.sample(rng)) as usize;
    let centre = SIZE as f64 / 2.0;
    for i in 0..n_gal + n_star {
        let star = i >= n_gal;
        let (mut x, mut y);
        loop {
            x = rng.random::<f64>() * SIZE as f64;
            y = rng.random::<f64>() * SIZE as f64;
            if (x - centre).hypot(y - centre) > 14.0 {
                break;
            }
        }
        let (mag_r, gr, rz) = if star {
            let gr = 0.2 + 1.2 * rng.random::<f64>();
            (
                17.0 + 6.0 * rng.random::<f64>(),
                gr,
                0.1 + 0.6 * gr + 0.1 * normal(rng),
            )
        } else {
            let gr = 0.3 + 1.3 * rng.random::<f64>();
            (
                20.0 + 4.0 * rng.random::<f64>().sqrt(),
                gr,
                0.2 + 0.7 * gr + 0.15 * normal(rng),
            )
        };
        let mags = [mag_r + gr, mag_r, mag_r - rz];
        let (size, q, pa) = if star {
            (0.0, 1.0, 0.0)
        } else {
            (
                (0.3 + 0.9 * rng.random::<f64>()) / PIXEL_SCALE / 1.177,
                0.3 + 0.7 * rng.random::<f64>(),
                rng.random::<f64>() * std::f64::consts::PI,
            )
        };
        for band in 0..3 {
            let flux = 10f64.powf(-0.4 * (mags[band] - 22.5));
            let plane = &mut cut[band * SIZE * SIZE..(band + 1) * SIZE * SIZE];
            let s0 = psf_sigma_px(band);
            for (frac, scale) in [(1.0 - WING_FRACTION, 1.0), (WING_FRACTION, WING_SCALE)] {
                let sp = s0 * scale;
                let sa = (size * size + sp * sp).sqrt();
                let sb = ((size * q).powi(2) + sp * sp).sqrt();
                let norm = flux * frac / (2.0 * std::f64::consts::PI * sa * sb);
                let rad = (5.0 * sa).ceil() as i64;
                let (cs, sn) = (pa.cos(), pa.sin());
                for yy in (y as i64 - rad).max(0)..=(y as i64 + rad).min(SIZE as i64 - 1) {
                    for xx in (x as i64 - rad).max(0)..=(x as i64 + rad).min(SIZE as i64 - 1) {
                        let (dx, dy) = (xx as f64 - x, yy as f64 - y);
                        let a = dx * cs + dy * sn;
                        let b = -dx * sn + dy * cs;
                        plane[yy as usize * SIZE + xx as usize] +=
                            norm * (-0.5 * (a * a / (sa * sa) + b * b / (sb * sb))).exp();
                    }
                }
            }
        }
    }
}
