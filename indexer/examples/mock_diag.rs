//! Prints the physics checks of the mock survey (fit quality, label ranges, colour
//! and size trends, timing) — a quick look while tuning, beyond what the tests assert.
//!
//! `cargo run --release -p astrovec-indexer --example mock_diag -- [COUNT]`

use std::time::Instant;

use astrovec_indexer::mock::filters::nanomaggies_to_mag;
use astrovec_indexer::mock::image::SIZE;
use astrovec_indexer::mock::{MockConfig, MockSurvey};

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let count: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(400);
    let t0 = Instant::now();
    let survey = MockSurvey::new(MockConfig {
        count,
        seed: 1,
        ..Default::default()
    })?;
    println!(
        "load + fit: {:.2?}; usable parents {}",
        t0.elapsed(),
        survey.parent_count()
    );
    let data = survey.data();
    // Fit residuals over all usable parents.
    for b in 0..5 {
        let d: Vec<f64> = data
            .fitted
            .iter()
            .filter(|f| f.usable())
            .map(|f| {
                let g = survey.data();
                let a = g.templates.band_maggies(&g.sdss[b], f.z);
                let m: f64 = a.iter().zip(&f.coeffs).map(|(x, c)| x * c).sum();
                (nanomaggies_to_mag(m * 1e9) - nanomaggies_to_mag(f.maggies[b] * 1e9)).abs()
            })
            .collect();
        let err: Vec<f64> = data
            .fitted
            .iter()
            .map(|f| 1.0857 / (f.ivar[b].sqrt() * f.maggies[b]))
            .collect();
        println!(
            "band {b}: median |Δmag| fit {:.4}; median σ (with floor) {:.4}",
            median(d),
            median(err)
        );
    }
    for i in 0..5 {
        let g = survey.galaxy(i);
        let f = &data.fitted[g.parent];
        let sd: Vec<f64> = (0..5)
            .map(|b| nanomaggies_to_mag(g.sed.maggies(&data.templates, &data.sdss[b]) * 1e9))
            .collect();
        let ob: Vec<f64> = (0..5)
            .map(|b| nanomaggies_to_mag(f.maggies[b] * 1e9))
            .collect();
        let de: Vec<f64> = (0..3).map(|b| nanomaggies_to_mag(g.flux_nmgy[b])).collect();
        println!(
            "gal {i} z {:.3} sdss {sd:.2?} obs {ob:.2?} decam {de:.2?} coeffs {:?}",
            g.z,
            f.coeffs.map(|c| (c * 1e12).round() / 1e12)
        );
    }
    let frac: Vec<[f64; 5]> = data
        .fitted
        .iter()
        .map(|f| {
            let m: Vec<f64> = (0..5)
                .map(|k| f.coeffs[k] * data.templates.mremain[k])
                .collect();
            let t: f64 = m.iter().sum();
            [m[0] / t, m[1] / t, m[2] / t, m[3] / t, m[4] / t]
        })
        .collect();
    for k in 0..5 {
        let nz = frac.iter().filter(|f| f[k] > 0.0).count();
        println!(
            "template {k}: nonzero in {nz}, median mass frac {:.3}",
            median(frac.iter().map(|f| f[k]).collect())
        );
    }
    let gals: Vec<_> = (0..count).map(|i| survey.galaxy(i)).collect();
    let col =
        |f: &dyn Fn(&astrovec_indexer::mock::Galaxy) -> f64| median(gals.iter().map(f).collect());
    println!(
        "median logM {:.2} logsSFR {:.2} Z {:.4} age {:.2} re\" {:.2} mag_r {:.2}",
        col(&|g| g.log_mass),
        col(&|g| g.log_ssfr),
        col(&|g| g.metallicity),
        col(&|g| g.age_gyr),
        col(&|g| g.half_light_arcsec),
        col(&|g| nanomaggies_to_mag(g.flux_nmgy[1]))
    );
    for sfv in [true, false] {
        let gr: Vec<f64> = gals
            .iter()
            .filter(|g| g.star_forming == sfv && g.z > 0.05 && g.z < 0.12)
            .map(|g| nanomaggies_to_mag(g.flux_nmgy[0]) - nanomaggies_to_mag(g.flux_nmgy[1]))
            .collect();
        println!(
            "star_forming={sfv}: n={} median g-r (0.05<z<0.12) {:.3}",
            gr.len(),
            median(gr)
        );
    }
    // Rest-frame Hα equivalent widths of star-forming galaxies (SDSS: ~10–100 Å).
    let ew: Vec<f64> = gals
        .iter()
        .filter(|g| g.star_forming)
        .map(|g| {
            let l = astrovec_indexer::mock::sed::lines::H_ALPHA * (1.0 + g.z);
            g.halpha_flux / g.sed.continuum(&data.templates, l) / (1.0 + g.z)
        })
        .collect();
    let mut sorted = ew.clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    if !sorted.is_empty() {
        let q = |p: f64| sorted[((sorted.len() - 1) as f64 * p) as usize];
        println!(
            "EW(Hα) of star-forming galaxies: 10/50/90 % = {:.1} / {:.1} / {:.1} Å",
            q(0.1),
            q(0.5),
            q(0.9)
        );
    }
    let sf = gals.iter().filter(|g| g.star_forming).count();
    let feat = gals.iter().filter(|g| g.featured).count();
    let arms = gals.iter().filter(|g| g.arms.is_some()).count();
    let edge = gals.iter().filter(|g| g.edge_on).count();
    println!("star-forming {sf}, featured {feat}, arms {arms}, edge-on {edge} of {count}");
    for (lo, hi) in [
        (0.0, 0.05),
        (0.05, 0.1),
        (0.1, 0.15),
        (0.15, 0.25),
        (0.25, 0.6),
    ] {
        let sel: Vec<_> = gals.iter().filter(|g| g.z >= lo && g.z < hi).collect();
        let m = |f: &dyn Fn(&&astrovec_indexer::mock::Galaxy) -> f64| {
            median(sel.iter().map(f).collect())
        };
        println!(
            "z {lo:.2}-{hi:.2} n={:4} g-r {:.3} r-z {:.3} re\" {:.2} logM {:.2}",
            sel.len(),
            m(&|g| nanomaggies_to_mag(g.flux_nmgy[0]) - nanomaggies_to_mag(g.flux_nmgy[1])),
            m(&|g| nanomaggies_to_mag(g.flux_nmgy[1]) - nanomaggies_to_mag(g.flux_nmgy[2])),
            m(&|g| g.half_light_arcsec),
            m(&|g| g.log_mass)
        );
    }
    let t1 = Instant::now();
    let n = count.min(200);
    let rows = survey.rows(0..n);
    let dt = t1.elapsed();
    println!(
        "{n} full rows in {dt:.2?} ({:.1} ms/object wall)",
        dt.as_secs_f64() * 1e3 / n as f64
    );
    let ff = median(rows.iter().map(|r| r.labels.fiber_fraction_r).collect());
    // Continuum S/N per 0.8 Å pixel in 6000–7000 Å observed.
    let (p0, p1) = (3000, 4250);
    let snr = median(
        rows.iter()
            .map(|r| {
                median(
                    (p0..p1)
                        .map(|p| (r.spectrum[p] * r.spectrum_ivar[p].sqrt()) as f64)
                        .collect(),
                )
            })
            .collect(),
    );
    println!("median continuum S/N per pixel (6000–7000 Å): {snr:.2}");
    println!("median fibre fraction {ff:.3}");
    // The largest galaxy on the sky among the first objects: the slowest to render.
    if let Some((i, g)) = gals.iter().enumerate().max_by(|a, b| {
        (a.1.re_bulge_kpc * a.1.arcsec_per_kpc).total_cmp(&(b.1.re_bulge_kpc * b.1.arcsec_per_kpc))
    }) {
        let t = Instant::now();
        let row = survey.row(i);
        let sum: f64 = row.image[SIZE * SIZE..2 * SIZE * SIZE]
            .iter()
            .map(|&v| v as f64)
            .sum();
        println!(
            "largest bulge r_e {:.1}″ (z = {:.3}): rendered in {:.2?}, cutout holds {:.2} of its r flux",
            g.re_bulge_kpc * g.arcsec_per_kpc,
            g.z,
            t.elapsed(),
            sum / g.flux_nmgy[1]
        );
    }
    Ok(())
}
