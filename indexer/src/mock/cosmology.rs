//! Flat ΛCDM distances and ages (H0 = 70 km s⁻¹ Mpc⁻¹, Ωm = 0.3, ΩΛ = 0.7), the
//! cosmology kcorrect assumes for its masses.

/// Hubble constant (km s⁻¹ Mpc⁻¹).
pub const H0: f64 = 70.0;
/// Matter density parameter.
pub const OMEGA_M: f64 = 0.3;
/// Speed of light (km s⁻¹).
const C_KM_S: f64 = 299_792.458;
/// One parsec in cm.
pub const PARSEC_CM: f64 = 3.085_677_581e18;
/// Hubble time 1/H0 in Gyr (977.8 / H0).
const HUBBLE_TIME_GYR: f64 = 977.792_221 / H0;

/// Comoving distance to redshift `z`, in Mpc (Simpson's rule on 1/E(z); the
/// integrand is smooth, so 64 intervals give ~1e-9 relative accuracy for z < 2).
pub fn comoving_distance_mpc(z: f64) -> f64 {
    let e_inv = |zz: f64| 1.0 / (OMEGA_M * (1.0 + zz).powi(3) + (1.0 - OMEGA_M)).sqrt();
    let n = 64;
    let h = z / n as f64;
    let mut s = e_inv(0.0) + e_inv(z);
    for i in 1..n {
        s += e_inv(i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
    }
    C_KM_S / H0 * s * h / 3.0
}

/// Luminosity distance (Mpc).
pub fn luminosity_distance_mpc(z: f64) -> f64 {
    (1.0 + z) * comoving_distance_mpc(z)
}

/// Angular-diameter distance (Mpc).
pub fn angular_diameter_distance_mpc(z: f64) -> f64 {
    comoving_distance_mpc(z) / (1.0 + z)
}

/// Age of the universe at redshift `z` (Gyr), closed form for flat ΛCDM.
pub fn age_gyr(z: f64) -> f64 {
    let ol = 1.0 - OMEGA_M;
    2.0 / (3.0 * ol.sqrt())
        * HUBBLE_TIME_GYR
        * ((ol / OMEGA_M).sqrt() * (1.0 + z).powf(-1.5)).asinh()
}

/// `(D_L / 10 pc)²`: the factor turning kcorrect coefficients (solar masses at
/// 10 pc) into solar masses.
pub fn distance_factor(z: f64) -> f64 {
    let dl_pc = luminosity_distance_mpc(z) * 1e6;
    (dl_pc / 10.0).powi(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_match_astropy() {
        // astropy FlatLambdaCDM(H0=70, Om0=0.3): D_L(0.1) = 460.3 Mpc, D_A(0.5) = 1259.0 Mpc,
        // age(0) = 13.47 Gyr.
        assert!((luminosity_distance_mpc(0.1) - 460.3).abs() < 0.2);
        assert!((angular_diameter_distance_mpc(0.5) - 1259.0).abs() < 1.5);
        assert!((age_gyr(0.0) - 13.47).abs() < 0.02);
    }
}
