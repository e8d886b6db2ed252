//! Spectra on their way to the spectrum encoder: flux on the model's grid (DESI coadd
//! grid, λᵢ = 3600 + 0.8·i Å, observed frame, 10⁻¹⁷ erg s⁻¹ cm⁻² Å⁻¹) from values, a
//! `.npy`, a FITS file (an image HDU holding the flux, or a DESI coadd) or a CSV.

use std::path::Path;

use super::desi::{self, GRID_START_A, GRID_STEP_A};
use super::fits::FitsFile;
use super::{check_finite, extension, Array, InputError, Result};

/// Spectrum formats a file or upload can be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpectrumFormat {
    /// A 1-d `.npy` array of flux on the grid.
    Npy,
    /// FITS: a DESI coadd, or a file whose first image HDU is the flux.
    Fits,
    /// CSV text: one flux column on the grid, or wavelength (Å) and flux columns.
    Csv,
}

impl SpectrumFormat {
    /// The format a file name's extension names.
    pub fn from_extension(path: &Path) -> Option<SpectrumFormat> {
        match extension(path).as_str() {
            "npy" => Some(SpectrumFormat::Npy),
            "fits" | "fit" => Some(SpectrumFormat::Fits),
            "csv" | "txt" | "tsv" => Some(SpectrumFormat::Csv),
            _ => None,
        }
    }
}

/// Flux values as the encoder takes them: exactly `length` finite values. Arrays may
/// carry unit axes (`[7781, 1]`).
pub fn from_array(what: &str, array: Array, length: usize) -> Result<Vec<f32>> {
    if array.shape.iter().filter(|&&d| d != 1).count() > 1 {
        return Err(InputError::new(
            what,
            "a 1-d flux array",
            format!("shape {:?}", array.shape),
        ));
    }
    from_values(what, array.data, length)
}

/// Checks flux values: `length` of them, all finite.
pub fn from_values(what: &str, flux: Vec<f32>, length: usize) -> Result<Vec<f32>> {
    if flux.len() != length {
        return Err(InputError::new(
            what,
            format!(
                "{length} flux values (the model's grid: {GRID_START_A}–{:.0} Å in {GRID_STEP_A} Å steps)",
                GRID_START_A + GRID_STEP_A * (length as f64 - 1.0)
            ),
            format!("{} values", flux.len()),
        ));
    }
    check_finite(what, &flux)?;
    Ok(flux)
}

/// Parses a CSV spectrum: one flux column on the grid (`length` rows), or wavelength (Å)
/// and flux columns, linearly interpolated onto the grid (zero outside the file's
/// range). Separators: comma, semicolon, tab or spaces; `#` comments and a header line
/// are allowed.
pub fn from_csv(what: &str, text: &str, length: usize) -> Result<Vec<f32>> {
    let mut rows: Vec<Vec<f64>> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let cells: std::result::Result<Vec<f64>, _> = line
            .split([',', ';', '\t', ' '])
            .filter(|c| !c.is_empty())
            .map(str::parse::<f64>)
            .collect();
        match cells {
            Ok(c) if c.iter().all(|v| v.is_finite()) => rows.push(c),
            // A header line before the first numbers.
            _ if rows.is_empty() => continue,
            _ => {
                return Err(InputError::new(
                    format!("{what}, line {}", i + 1),
                    "numbers",
                    format!("\"{}\"", line.chars().take(40).collect::<String>()),
                ))
            }
        }
    }
    let first = rows
        .first()
        .ok_or_else(|| InputError::new(what, "rows of numbers", "none"))?;
    if first.len() == 1 {
        let flux: Vec<f32> = rows.iter().map(|r| r[0] as f32).collect();
        return from_values(what, flux, length);
    }
    let mut pts: Vec<(f64, f64)> = rows
        .iter()
        .map(|r| (r[0], *r.get(1).unwrap_or(&f64::NAN)))
        .collect();
    if pts.iter().any(|p| !p.1.is_finite()) {
        return Err(InputError::new(
            what,
            "wavelength and flux on every row",
            "a row with one value",
        ));
    }
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (lo, hi) = (pts[0].0, pts[pts.len() - 1].0);
    let grid_end = GRID_START_A + GRID_STEP_A * (length as f64 - 1.0);
    if hi < GRID_START_A || lo > grid_end {
        return Err(InputError::new(
            what,
            format!("wavelengths (Å, first column) overlapping {GRID_START_A}–{grid_end:.0} Å"),
            format!("{lo}–{hi} Å"),
        ));
    }
    let mut out = vec![0.0f32; length];
    let mut j = 0;
    for (i, o) in out.iter_mut().enumerate() {
        let w = GRID_START_A + GRID_STEP_A * i as f64;
        if w < lo || w > hi {
            continue;
        }
        while j + 2 < pts.len() && pts[j + 1].0 < w {
            j += 1;
        }
        let (w0, f0) = pts[j];
        let (w1, f1) = *pts.get(j + 1).unwrap_or(&pts[j]);
        *o = if w1 > w0 {
            (f0 + (f1 - f0) * (w - w0) / (w1 - w0)) as f32
        } else {
            f0 as f32
        };
    }
    Ok(out)
}

/// Flux from a FITS file: a DESI coadd (the spectrum of `targetid`, which may be left
/// out when the file holds one spectrum), else the first image HDU with data.
pub fn from_fits(
    what: &str,
    fits: &FitsFile,
    targetid: Option<u64>,
    length: usize,
) -> Result<Vec<f32>> {
    if desi::is_coadd(fits) {
        let combined = desi::coadd_spectrum(what, fits, targetid)?;
        return from_values(what, combined.flux, length);
    }
    let hdu = fits
        .hdus()
        .iter()
        .find(|h| {
            !h.is_table()
                && h.shape()
                    .is_ok_and(|s| !s.is_empty() && s.iter().product::<usize>() > 0)
        })
        .ok_or_else(|| {
            InputError::new(
                what,
                "a FITS image HDU holding the flux, or a DESI coadd",
                "neither",
            )
        })?;
    let shape = hdu
        .shape()
        .map_err(|e| InputError::new(what, "a FITS image", e.to_string()))?;
    if shape.iter().product::<usize>() != length {
        return Err(InputError::new(
            what,
            format!("{length} flux values"),
            format!("an image HDU of shape {shape:?}"),
        ));
    }
    let img = hdu
        .image()
        .map_err(|e| InputError::new(what, "a FITS image", e.to_string()))?;
    let data = img.values.iter().map(|&v| v as f32).collect();
    from_array(what, Array { shape, data }, length)
}

/// Decodes a spectrum file's bytes.
pub fn decode(
    what: &str,
    bytes: &[u8],
    format: SpectrumFormat,
    targetid: Option<u64>,
    length: usize,
) -> Result<Vec<f32>> {
    match format {
        SpectrumFormat::Npy => {
            let array = super::npy::read(what, bytes, length)?;
            from_array(what, array, length)
        }
        SpectrumFormat::Csv => {
            let text = std::str::from_utf8(bytes)
                .map_err(|_| InputError::new(what, "UTF-8 text", "bytes that are not"))?;
            from_csv(what, text, length)
        }
        SpectrumFormat::Fits => {
            let fits = FitsFile::from_bytes(what, bytes.to_vec())
                .map_err(|e| InputError::new(what, "a FITS file", e.to_string()))?;
            from_fits(what, &fits, targetid, length)
        }
    }
}

/// Reads a spectrum file, its format told by its extension (`.npy`, `.fits`, `.fit`,
/// `.csv`, `.txt`, `.tsv`).
pub fn read_file(path: &Path, targetid: Option<u64>, length: usize) -> Result<Vec<f32>> {
    let what = path.display().to_string();
    let format = SpectrumFormat::from_extension(path).ok_or_else(|| {
        InputError::new(
            &what,
            "a spectrum file (.npy, .fits, .fit, .csv, .txt or .tsv)",
            format!("extension `.{}`", extension(path)),
        )
    })?;
    if format == SpectrumFormat::Fits {
        let fits = FitsFile::open(path)
            .map_err(|e| InputError::new(&what, "a FITS file", e.to_string()))?;
        return from_fits(&what, &fits, targetid, length);
    }
    let bytes = std::fs::read(path)
        .map_err(|e| InputError::new(&what, "a readable file", e.to_string()))?;
    decode(&what, &bytes, format, targetid, length)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_wavelengths_is_interpolated_onto_the_grid() {
        let text = "wavelength,flux\n3600,1\n3601.6,3\n9824,5\n";
        let f = from_csv("s.csv", text, 7781).unwrap();
        assert_eq!(f[0], 1.0);
        assert!((f[1] - 2.0).abs() < 1e-5, "{}", f[1]);
        assert_eq!(f[2], 3.0);
        assert!((f[7780] - 5.0).abs() < 1e-5);
        let one_column: String = (0..7781).map(|i| format!("{i}\n")).collect();
        assert_eq!(from_csv("s.csv", &one_column, 7781).unwrap()[7780], 7780.0);
        let e = from_csv("s.csv", "1\n2\n", 7781).unwrap_err();
        assert!(e.expected.contains("7781"), "{e}");
        let e = from_csv("s.csv", "1,2\nx,3\n", 7781).unwrap_err();
        assert_eq!(e.what, "s.csv, line 2");
        let e = from_csv("s.csv", "100,1\n200,2\n", 7781).unwrap_err();
        assert!(e.got.contains("100–200"), "{e}");
    }

    #[test]
    fn arrays_keep_unit_axes_only() {
        let a = Array {
            shape: vec![4, 1],
            data: vec![1.0; 4],
        };
        assert_eq!(from_array("s", a, 4).unwrap().len(), 4);
        let a = Array {
            shape: vec![2, 2],
            data: vec![1.0; 4],
        };
        assert!(from_array("s", a, 4).unwrap_err().got.contains("[2, 2]"));
        assert_eq!(
            from_values("s", vec![1.0, f32::NAN], 2).unwrap_err().what,
            "s[1]"
        );
    }
}
