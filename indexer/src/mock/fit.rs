//! Non-negative least squares fits of the kcorrect basis to SDSS ugriz photometry.

use super::catalog::Catalog;
use super::filters::Filter;
use super::sed::{Templates, NT};

/// SDSS → AB offsets in magnitudes (u_AB = u_SDSS − 0.04, z_AB = z_SDSS + 0.02;
/// Abazajian et al. 2004, as applied by kcorrect's `sdss_to_maggies`).
const AB_OFFSET: [f64; 5] = [-0.04, 0.0, 0.0, 0.0, 0.02];
/// Error floors (mag) added in quadrature, as kcorrect does for SDSS model fluxes,
/// so calibration errors and template mismatch don't let one band dominate.
const ERROR_FLOOR: [f64; 5] = [0.05, 0.02, 0.02, 0.02, 0.03];

/// One real SDSS galaxy and its template fit.
#[derive(Debug, Clone)]
pub struct FittedGalaxy {
    /// Row in the bundled SDSS catalog.
    pub index: usize,
    /// Right ascension (deg, J2000).
    pub ra: f64,
    /// Declination (deg, J2000).
    pub dec: f64,
    /// Spectroscopic redshift.
    pub z: f64,
    /// Extinction-corrected AB maggies in u, g, r, i, z (observed).
    pub maggies: [f64; 5],
    /// Inverse variances of `maggies` (maggies⁻²), error floors included.
    pub ivar: [f64; 5],
    /// Fitted coefficients (M⊙ formed, at 10 pc).
    pub coeffs: [f64; NT],
    /// χ² of the fit over the five bands.
    pub chi2: f64,
}

impl FittedGalaxy {
    /// Whether the fit is usable as a parent for mock galaxies.
    pub fn usable(&self) -> bool {
        self.coeffs.iter().sum::<f64>() > 0.0 && self.chi2.is_finite() && self.maggies[2] > 0.0
    }
}

/// Fits every catalog row (rayon-parallel; deterministic since rows are independent).
pub(crate) fn fit_catalog(cat: &Catalog, t: &Templates, sdss: &[Filter; 5]) -> Vec<FittedGalaxy> {
    use rayon::prelude::*;
    (0..cat.len())
        .into_par_iter()
        .map(|i| {
            let mut maggies = [0.0; 5];
            let mut ivar = [0.0; 5];
            for b in 0..5 {
                // Nanomaggies → maggies, undo Galactic extinction, SDSS → AB.
                let corr = 10f64.powf(0.4 * (cat.extinction[i][b] - AB_OFFSET[b]));
                let f = cat.modelflux[i][b] * 1e-9 * corr;
                let var_meas = if cat.ivar[i][b] > 0.0 {
                    1.0 / (cat.ivar[i][b] * 1e18) * corr * corr
                } else {
                    f64::INFINITY
                };
                let floor = ERROR_FLOOR[b] * 0.4 * std::f64::consts::LN_10 * f.abs();
                maggies[b] = f;
                ivar[b] = 1.0 / (var_meas + floor * floor);
            }
            let z = cat.z[i];
            let a: Vec<[f64; NT]> = sdss.iter().map(|f| t.band_maggies(f, z)).collect();
            let coeffs = nnls_weighted(&a, &maggies, &ivar);
            let chi2 = (0..5)
                .map(|b| {
                    let m: f64 = a[b].iter().zip(&coeffs).map(|(x, c)| x * c).sum();
                    (maggies[b] - m).powi(2) * ivar[b]
                })
                .sum();
            FittedGalaxy {
                index: i,
                ra: cat.ra[i],
                dec: cat.dec[i],
                z,
                maggies,
                ivar,
                coeffs,
                chi2,
            }
        })
        .collect()
}

/// Minimises `Σ_b ivar_b (y_b − Σ_k A_bk x_k)²` subject to `x ≥ 0`.
pub(crate) fn nnls_weighted(a: &[[f64; NT]], y: &[f64], ivar: &[f64]) -> [f64; NT] {
    let m = a.len();
    // Whiten rows, then scale columns to unit norm so the tolerances are meaningful
    // (template maggies span many decades).
    let mut aw: Vec<[f64; NT]> = Vec::with_capacity(m);
    let mut yw = Vec::with_capacity(m);
    for b in 0..m {
        let s = ivar[b].max(0.0).sqrt();
        aw.push(a[b].map(|v| v * s));
        yw.push(y[b] * s);
    }
    let mut scale = [0.0; NT];
    for (k, sc) in scale.iter_mut().enumerate() {
        let norm = aw.iter().map(|r| r[k] * r[k]).sum::<f64>().sqrt();
        *sc = if norm > 0.0 { 1.0 / norm } else { 0.0 };
    }
    for r in &mut aw {
        for k in 0..NT {
            r[k] *= scale[k];
        }
    }
    let x = nnls(&aw, &yw);
    let mut out = [0.0; NT];
    for k in 0..NT {
        out[k] = x[k] * scale[k];
    }
    out
}

/// Lawson & Hanson (1974) active-set NNLS for a handful of columns.
pub(crate) fn nnls(a: &[[f64; NT]], y: &[f64]) -> [f64; NT] {
    let tol = 1e-12;
    let mut x = [0.0; NT];
    let mut passive = [false; NT];
    let grad = |x: &[f64; NT]| {
        let mut w = [0.0; NT];
        for (row, &yb) in a.iter().zip(y) {
            let r = yb - row.iter().zip(x).map(|(p, q)| p * q).sum::<f64>();
            for k in 0..NT {
                w[k] += row[k] * r;
            }
        }
        w
    };
    for _outer in 0..3 * NT {
        let w = grad(&x);
        let candidate = (0..NT)
            .filter(|&k| !passive[k] && w[k] > tol)
            .max_by(|&i, &j| w[i].total_cmp(&w[j]));
        let Some(t) = candidate else { break };
        passive[t] = true;
        for _inner in 0..3 * NT {
            let s = lstsq_passive(a, y, &passive);
            if (0..NT).all(|k| !passive[k] || s[k] > 0.0) {
                x = s;
                break;
            }
            // Step back towards the feasible region and drop the variables that hit zero.
            let mut alpha = f64::INFINITY;
            for k in 0..NT {
                if passive[k] && s[k] <= 0.0 {
                    alpha = alpha.min(x[k] / (x[k] - s[k]));
                }
            }
            for k in 0..NT {
                x[k] += alpha * (s[k] - x[k]);
                if passive[k] && x[k] <= tol {
                    passive[k] = false;
                    x[k] = 0.0;
                }
            }
        }
    }
    x
}

/// Unconstrained least squares on the passive columns (normal equations, Gaussian
/// elimination with partial pivoting); inactive columns are zero.
fn lstsq_passive(a: &[[f64; NT]], y: &[f64], passive: &[bool; NT]) -> [f64; NT] {
    let idx: Vec<usize> = (0..NT).filter(|&k| passive[k]).collect();
    let n = idx.len();
    let mut m = vec![vec![0.0; n + 1]; n];
    for (i, &ki) in idx.iter().enumerate() {
        for (j, &kj) in idx.iter().enumerate() {
            m[i][j] = a.iter().map(|r| r[ki] * r[kj]).sum();
        }
        m[i][n] = a.iter().zip(y).map(|(r, yb)| r[ki] * yb).sum();
    }
    for col in 0..n {
        let piv = (col..n)
            .max_by(|&p, &q| m[p][col].abs().total_cmp(&m[q][col].abs()))
            .unwrap_or(col);
        m.swap(col, piv);
        let d = m[col][col];
        if d.abs() < 1e-300 {
            continue;
        }
        let pivot_row = m[col].clone();
        for (row, r) in m.iter_mut().enumerate() {
            if row != col {
                let f = r[col] / d;
                for (v, p) in r.iter_mut().zip(&pivot_row).skip(col) {
                    *v -= f * p;
                }
            }
        }
    }
    let mut out = [0.0; NT];
    for (i, &k) in idx.iter().enumerate() {
        out[k] = if m[i][i].abs() > 1e-300 {
            m[i][n] / m[i][i]
        } else {
            0.0
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nnls_recovers_a_non_negative_solution_and_clips_negative_ones() {
        let a = vec![
            [1.0, 0.0, 0.0, 0.0, 0.0],
            [0.0, 1.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 1.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 1.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 1.0],
            [1.0, 1.0, 1.0, 1.0, 1.0],
        ];
        let x = nnls(&a, &[1.0, 2.0, 3.0, 4.0, 5.0, 15.0]);
        for (k, v) in x.iter().enumerate() {
            assert!((v - (k + 1) as f64).abs() < 1e-9);
        }
        let x = nnls(&a, &[-1.0, 2.0, 3.0, 4.0, 5.0, 13.0]);
        assert_eq!(x[0], 0.0);
        assert!(x.iter().all(|v| *v >= 0.0));
    }
}
