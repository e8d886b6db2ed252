//! Physics checks of the mock survey: the mock reproduces
//! the real SDSS galaxies it is drawn from, images and spectra agree, colours and
//! sizes evolve with redshift as they should, and star-forming spectra show Hα.
//! Each test prints the measured numbers (`cargo nextest run --no-capture`).

use astrovec_indexer::mock::filters::nanomaggies_to_mag;
use astrovec_indexer::mock::image::SIZE;
use astrovec_indexer::mock::sed::lines::H_ALPHA;
use astrovec_indexer::mock::spectrum::{wavelength, wavelengths, NPIX};
use astrovec_indexer::mock::{Galaxy, MockConfig, MockSurvey};

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    assert!(!v.is_empty(), "median of nothing");
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn survey(count: usize, noise: bool) -> MockSurvey {
    MockSurvey::new(MockConfig {
        count,
        seed: 42,
        noise,
        neighbours: noise,
        ..Default::default()
    })
    .expect("survey")
}

#[test]
fn synthetic_sdss_magnitudes_reproduce_the_real_parents() {
    let s = survey(400, true);
    let data = s.data();
    let mut pooled = Vec::new();
    for (b, name) in ["u", "g", "r", "i", "z"].iter().enumerate() {
        let d: Vec<f64> = (0..s.len())
            .map(|i| {
                let g = s.galaxy(i);
                let parent = &data.fitted[g.parent];
                let mock = g.sed.maggies(&data.templates, &data.sdss[b]) * 1e9;
                (nanomaggies_to_mag(mock) - nanomaggies_to_mag(parent.maggies[b] * 1e9)).abs()
            })
            .collect();
        let sigma = median(
            (0..s.len())
                .map(|i| {
                    let p = &data.fitted[s.galaxy(i).parent];
                    1.0857 / (p.ivar[b].sqrt() * p.maggies[b])
                })
                .collect(),
        );
        let m = median(d.clone());
        println!("SDSS {name}: median |mock − real| = {m:.4} mag (median real error incl. floor {sigma:.4})");
        // u is limited by the photometric error of the real u magnitudes (~0.08 mag),
        // not by the model, so it gets the looser bound.
        let bound = if b == 0 { 0.1 } else { 0.05 };
        assert!(m < bound, "{name}: {m}");
        pooled.extend(d);
    }
    let m = median(pooled);
    println!("all ugriz: median |Δ| = {m:.4} mag");
    assert!(m < 0.05);
}

#[test]
fn image_flux_equals_the_spectrum_photometry() {
    let s = survey(60, false);
    let data = s.data();
    let wave = wavelengths();
    let mut worst: f64 = 0.0;
    let mut used = 0;
    for i in 0..s.len() {
        let g = s.galaxy(i);
        // Only galaxies whose truncated profiles (8 r_e bulge, 4 r_e disk) plus the
        // PSF wings fit in the aperture; bigger ones are cut by the cutout as in the
        // real survey.
        let px = g.arcsec_per_kpc / 0.262;
        if (8.0 * g.re_bulge_kpc * px).max(4.0 * g.re_disk_kpc * px) > 60.0 {
            continue;
        }
        used += 1;
        let row = s.row(i);
        let f_lambda: Vec<f64> = row.spectrum.iter().map(|&v| v as f64 * 1e-17).collect();
        for b in 0..3 {
            // g and r lie inside the DESI grid: integrate the 7781-pixel spectrum
            // itself. DECam z extends past 9824 Å, so use the full SED there.
            let phot = if b < 2 {
                data.decam[b].maggies_of_samples(&wave, &f_lambda) * 1e9
            } else {
                g.sed.maggies(&data.templates, &data.decam[b]) * 1e9
            };
            let plane = &row.image[b * SIZE * SIZE..(b + 1) * SIZE * SIZE];
            let c = SIZE as f64 / 2.0;
            let mut ap = 0.0;
            for y in 0..SIZE {
                for x in 0..SIZE {
                    if (x as f64 - c).hypot(y as f64 - c) <= 74.0 {
                        ap += plane[y * SIZE + x] as f64;
                    }
                }
            }
            let ratio = ap / phot;
            worst = worst.max((ratio - 1.0).abs());
            assert!(
                (ratio - 1.0).abs() <= 0.03,
                "object {i} band {b}: aperture/photometry = {ratio}"
            );
        }
    }
    println!("{used} galaxies: worst |aperture flux / spectrum photometry − 1| = {worst:.4}");
    assert!(used >= 25, "only {used} galaxies fit the cutout");
}

const BINS: [(f64, f64); 5] = [
    (0.01, 0.05),
    (0.05, 0.08),
    (0.08, 0.12),
    (0.12, 0.18),
    (0.18, 0.3),
];

#[test]
fn colours_redden_with_redshift_like_the_real_catalog() {
    let s = survey(3000, true);
    let data = s.data();
    let gals: Vec<Galaxy> = (0..s.len()).map(|i| s.galaxy(i)).collect();
    let colour =
        |f: &[f64], a: usize, b: usize| nanomaggies_to_mag(f[a]) - nanomaggies_to_mag(f[b]);
    let mut prev: Option<[f64; 4]> = None;
    for (lo, hi) in BINS {
        let sel: Vec<&Galaxy> = gals.iter().filter(|g| g.z >= lo && g.z < hi).collect();
        let real: Vec<_> = data
            .fitted
            .iter()
            .filter(|f| f.z >= lo && f.z < hi)
            .collect();
        let mock_sdss = |a: usize, b: usize| {
            median(
                sel.iter()
                    .map(|g| {
                        let f: Vec<f64> = [a, b]
                            .iter()
                            .map(|&k| g.sed.maggies(&data.templates, &data.sdss[k]))
                            .collect();
                        colour(&f, 0, 1)
                    })
                    .collect(),
            )
        };
        let real_c =
            |a: usize, b: usize| median(real.iter().map(|f| colour(&f.maggies, a, b)).collect());
        let dgr = median(sel.iter().map(|g| colour(&g.flux_nmgy, 0, 1)).collect());
        let drz = median(sel.iter().map(|g| colour(&g.flux_nmgy, 1, 2)).collect());
        let (mgr, mrz) = (mock_sdss(1, 2), mock_sdss(2, 4));
        let (rgr, rrz) = (real_c(1, 2), real_c(2, 4));
        println!(
            "z {lo:.2}–{hi:.2} (n = {:4}): SDSS g−r mock {mgr:.3} real {rgr:.3}; r−z mock {mrz:.3} real {rrz:.3}; \
             DECam g−r {dgr:.3} r−z {drz:.3}",
            sel.len()
        );
        assert!(
            (mgr - rgr).abs() < 0.05 && (mrz - rrz).abs() < 0.05,
            "mock colours off the real ones"
        );
        let now = [dgr, drz, rgr, rrz];
        if let Some(p) = prev {
            for k in 0..4 {
                assert!(
                    now[k] > p[k],
                    "colour {k} does not rise into z {lo}–{hi}: {} → {}",
                    p[k],
                    now[k]
                );
            }
        }
        prev = Some(now);
    }
}

#[test]
fn angular_size_falls_with_redshift() {
    let s = survey(3000, true);
    let gals: Vec<Galaxy> = (0..s.len()).map(|i| s.galaxy(i)).collect();
    let mut medians = Vec::new();
    for (lo, hi) in BINS {
        let sel: Vec<f64> = gals
            .iter()
            .filter(|g| g.z >= lo && g.z < hi)
            .map(|g| g.half_light_arcsec)
            .collect();
        let kpc: Vec<f64> = gals
            .iter()
            .filter(|g| g.z >= lo && g.z < hi)
            .map(|g| g.half_light_arcsec / g.arcsec_per_kpc)
            .collect();
        let (m, mk) = (median(sel.clone()), median(kpc));
        println!(
            "z {lo:.2}–{hi:.2} (n = {:4}): median r_half = {m:.2}″ ({mk:.2} kpc)",
            sel.len()
        );
        medians.push(m);
    }
    // Physical sizes grow with z in a flux-limited sample (brighter, more massive
    // galaxies), yet the angular-diameter distance wins: angular sizes fall.
    for w in medians.windows(2) {
        assert!(w[1] < w[0], "angular size does not fall: {medians:?}");
    }
}

#[test]
fn star_forming_spectra_show_halpha_at_the_redshifted_wavelength() {
    let s = survey(300, true);
    let mut tested = 0;
    let mut detected = 0;
    let mut offsets = Vec::new();
    for i in 0..s.len() {
        let g = s.galaxy(i);
        let obs = H_ALPHA * (1.0 + g.z);
        if !g.star_forming || obs > wavelength(NPIX - 1) - 80.0 {
            continue;
        }
        tested += 1;
        let row = s.row(i);
        let pix = |l: f64| ((l - wavelength(0)) / 0.8).round() as usize;
        // Continuum and noise from windows 40–100 Å either side (clear of [NII], [SII]).
        let mut side: Vec<f64> = Vec::new();
        for (a, b) in [(obs - 100.0, obs - 40.0), (obs + 40.0, obs + 100.0)] {
            side.extend((pix(a)..pix(b)).map(|p| row.spectrum[p] as f64));
        }
        let cont = median(side.clone());
        let noise = median(side.iter().map(|v| (v - cont).abs()).collect()) * 1.4826;
        // Line flux in ±6 Å (σ ≲ 3 Å) and its significance for white noise.
        let (p0, p1) = (pix(obs - 6.0), pix(obs + 6.0));
        let excess: f64 = (p0..=p1).map(|p| row.spectrum[p] as f64 - cont).sum();
        let snr = excess / (noise * ((p1 - p0 + 1) as f64).sqrt());
        // Peak position of the 5-pixel running sum.
        let peak = (p0..=p1 - 4)
            .max_by(|&a, &b| {
                let sa: f32 = row.spectrum[a..a + 5].iter().sum();
                let sb: f32 = row.spectrum[b..b + 5].iter().sum();
                sa.total_cmp(&sb)
            })
            .map(|p| wavelength(p + 2))
            .unwrap_or(f64::NAN);
        if snr > 5.0 {
            detected += 1;
            offsets.push((peak - obs).abs());
        }
    }
    let off = median(offsets.clone());
    println!("Hα detected (S/N > 5) in {detected} of {tested} star-forming spectra; median |peak − 6564.6(1+z)| = {off:.2} Å");
    assert!(tested >= 30, "only {tested} star-forming galaxies in range");
    assert!(detected as f64 >= 0.8 * tested as f64);
    assert!(
        off <= 1.6,
        "Hα peak is off the redshifted wavelength by {off} Å"
    );
}

#[test]
fn objects_beyond_the_parents_are_small_perturbations_of_them() {
    let first = survey(1, true);
    let n = first.parent_count();
    let s = MockSurvey::new(MockConfig {
        count: n + 300,
        seed: 42,
        ..Default::default()
    })
    .unwrap();
    let data = s.data();
    // The first n objects are n distinct real parents, unperturbed.
    let mut seen = std::collections::HashSet::new();
    for i in (0..n).step_by(37) {
        let g = s.galaxy(i);
        assert!(!g.perturbed);
        assert_eq!(g.z, data.fitted[g.parent].z);
        assert!(seen.insert(g.parent), "parent {} used twice", g.parent);
    }
    let mut dz = Vec::new();
    let mut dcol = Vec::new();
    for i in n..n + 300 {
        let g = s.galaxy(i);
        let p = &data.fitted[g.parent];
        assert!(g.perturbed);
        dz.push(((g.z - p.z) / (1.0 + p.z)).abs());
        let mock_gr = g.sed.maggies(&data.templates, &data.sdss[1])
            / g.sed.maggies(&data.templates, &data.sdss[2]);
        dcol.push((2.5 * (mock_gr / (p.maggies[1] / p.maggies[2])).log10()).abs());
    }
    let (mz, mc) = (median(dz), median(dcol));
    println!("perturbed copies: median |Δz|/(1+z) = {mz:.4}, median |Δ(g−r)| = {mc:.3} mag");
    assert!(mz > 0.0 && mz < 0.02, "{mz}");
    assert!(mc > 0.0 && mc < 0.15, "{mc}");
}

#[test]
fn morphology_follows_galaxy_type() {
    let s = survey(2000, true);
    let gals: Vec<Galaxy> = (0..s.len()).map(|i| s.galaxy(i)).collect();
    let frac = |sel: &[&Galaxy], f: &dyn Fn(&Galaxy) -> bool| {
        sel.iter().filter(|g| f(g)).count() as f64 / sel.len() as f64
    };
    let sf: Vec<&Galaxy> = gals.iter().filter(|g| g.star_forming).collect();
    let q: Vec<&Galaxy> = gals.iter().filter(|g| g.log_ssfr < -12.0).collect();
    let (fsf, fq) = (frac(&sf, &|g| g.featured), frac(&q, &|g| g.featured));
    let (bsf, bq) = (
        median(sf.iter().map(|g| g.bulge_fraction[1]).collect()),
        median(q.iter().map(|g| g.bulge_fraction[1]).collect()),
    );
    let arms_sf = frac(&sf, &|g| g.arms.is_some());
    println!(
        "star-forming (n = {}): featured {fsf:.2}, arms {arms_sf:.2}, median B/T {bsf:.2}; \
         quiescent (n = {}): featured {fq:.2}, median B/T {bq:.2}",
        sf.len(),
        q.len()
    );
    assert!(fsf > 0.5 && fq < 0.15, "featured fractions {fsf} / {fq}");
    assert!(bq > bsf + 0.3, "B/T {bq} vs {bsf}");
    // Every edge-on or armed galaxy is a disk; arms are never drawn on edge-on disks.
    for g in &gals {
        assert!(!(g.edge_on && g.arms.is_some()));
        if g.arms.is_some() {
            assert!(g.featured);
        }
    }
    // Size–mass: massive galaxies are physically larger.
    let kpc = |lo: f64, hi: f64| {
        median(
            gals.iter()
                .filter(|g| g.log_mass >= lo && g.log_mass < hi)
                .map(|g| g.half_light_arcsec / g.arcsec_per_kpc)
                .collect(),
        )
    };
    let (small, big) = (kpc(9.5, 10.3), kpc(11.0, 11.8));
    println!("median r_half: {small:.2} kpc at log M 9.5–10.3, {big:.2} kpc at 11.0–11.8");
    assert!(big > 1.5 * small);
}
