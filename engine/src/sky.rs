//! Sky geometry: angular separations, position checks and the HEALPix cell index
//! (nested scheme, `cdshealpix`) used to pre-select objects for cone filters.

use std::collections::BTreeMap;

use roaring::RoaringBitmap;

use crate::error::{Error, Result};

/// HEALPix depth of the per-object cell index (nside 1024, cells about 3.4′ across):
/// fine enough that arcminute cones touch few cells, coarse enough that the index
/// stays small.
pub(crate) const INDEX_DEPTH: u8 = 10;

/// Checks an ICRS position in degrees.
pub(crate) fn check_position(ra: f64, dec: f64) -> Result<()> {
    if !ra.is_finite() || !(0.0..=360.0).contains(&ra) {
        return Err(Error::invalid(
            "ra (degrees)",
            format!("{ra} is outside [0, 360]"),
        ));
    }
    if !dec.is_finite() || !(-90.0..=90.0).contains(&dec) {
        return Err(Error::invalid(
            "dec (degrees)",
            format!("{dec} is outside [-90, 90]"),
        ));
    }
    Ok(())
}

/// Checks a cone radius in degrees.
pub(crate) fn check_radius(radius: f64) -> Result<()> {
    if !radius.is_finite() || radius <= 0.0 || radius > 180.0 {
        return Err(Error::invalid(
            "radius (degrees)",
            format!("{radius} is outside (0, 180]"),
        ));
    }
    Ok(())
}

/// The index cell of a position.
pub(crate) fn cell(ra: f64, dec: f64) -> u64 {
    cdshealpix::nested::hash(INDEX_DEPTH, ra.to_radians(), dec.to_radians())
}

/// Great-circle separation in degrees (haversine form, accurate at small angles).
pub fn separation_deg(ra1: f64, dec1: f64, ra2: f64, dec2: f64) -> f64 {
    let (ra1, dec1, ra2, dec2) = (
        ra1.to_radians(),
        dec1.to_radians(),
        ra2.to_radians(),
        dec2.to_radians(),
    );
    let sd = ((dec2 - dec1) / 2.0).sin();
    let sr = ((ra2 - ra1) / 2.0).sin();
    let h = sd * sd + dec1.cos() * dec2.cos() * sr * sr;
    (2.0 * h.sqrt().min(1.0).asin()).to_degrees()
}

/// Slots in the cells that a cone may touch (a superset of the cone's members).
pub(crate) fn candidates(
    index: &BTreeMap<u64, RoaringBitmap>,
    ra: f64,
    dec: f64,
    radius: f64,
) -> RoaringBitmap {
    let mut out = RoaringBitmap::new();
    if radius >= 30.0 {
        // A large cone covers a sizeable part of the sky: scanning every cell is
        // cheaper than enumerating its coverage.
        for b in index.values() {
            out |= b;
        }
        return out;
    }
    // Coverage at a depth whose cells are a few times smaller than the cone keeps the
    // number of cells small; each coverage cell is a contiguous range of index cells.
    let depth = cdshealpix::best_starting_depth(radius.to_radians())
        .saturating_add(2)
        .min(INDEX_DEPTH);
    let bmoc = cdshealpix::nested::cone_coverage_approx(
        depth,
        ra.to_radians(),
        dec.to_radians(),
        radius.to_radians(),
    );
    for raw in bmoc.iter() {
        let c = bmoc.from_raw_value(*raw);
        let shift = 2 * (INDEX_DEPTH - c.depth.min(INDEX_DEPTH)) as u32;
        let (lo, hi) = if c.depth <= INDEX_DEPTH {
            (c.hash << shift, (c.hash + 1) << shift)
        } else {
            let h = c.hash >> (2 * (c.depth - INDEX_DEPTH) as u32);
            (h, h + 1)
        };
        for (_, b) in index.range(lo..hi) {
            out |= b;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separation_known_values() {
        assert!((separation_deg(0.0, 0.0, 90.0, 0.0) - 90.0).abs() < 1e-9);
        assert!((separation_deg(10.0, 89.0, 190.0, 89.0) - 2.0).abs() < 1e-9);
        // 1 arcsec in declination.
        assert!(
            (separation_deg(150.0, 2.0, 150.0, 2.0 + 1.0 / 3600.0) * 3600.0 - 1.0).abs() < 1e-6
        );
    }

    #[test]
    fn candidates_cover_every_member_of_a_cone() {
        let mut index: BTreeMap<u64, RoaringBitmap> = BTreeMap::new();
        let mut pos = Vec::new();
        for i in 0..4000u32 {
            let ra = (i as f64 * 0.618_034 * 360.0) % 360.0;
            let dec = ((i as f64 * 0.414_214) % 1.0) * 20.0 - 10.0;
            pos.push((ra, dec));
            index.entry(cell(ra, dec)).or_default().insert(i);
        }
        for &(cra, cdec, r) in &[
            (10.0, 0.0, 3.0),
            (359.5, -5.0, 2.0),
            (180.0, 9.0, 0.2),
            (45.0, 1.0, 40.0),
        ] {
            let cands = candidates(&index, cra, cdec, r);
            for (i, &(ra, dec)) in pos.iter().enumerate() {
                if separation_deg(cra, cdec, ra, dec) <= r {
                    assert!(
                        cands.contains(i as u32),
                        "cone ({cra}, {cdec}, {r}) missed {i}"
                    );
                }
            }
        }
    }
}
