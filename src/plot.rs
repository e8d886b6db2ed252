//! PNG plots (plotters, bitmap backend): training loss curves and evaluation
//! figures. Text is drawn with the DejaVu Sans font from the system (Debian
//! `fonts-dejavu-core`, installed by the set-up script).

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{anyhow, Context, Result};
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

/// Where the font is read from.
const FONT_PATHS: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

/// Registers the font once per process.
fn ensure_font() -> Result<()> {
    static DONE: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        let bytes = FONT_PATHS
            .iter()
            .find_map(|p| std::fs::read(p).ok())
            .ok_or_else(|| {
                format!(
                    "no font for plot labels: install Debian's fonts-dejavu-core ({})",
                    FONT_PATHS[0]
                )
            })?;
        // plotters keeps a 'static reference; the font lives for the whole process.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        register_font("sans-serif", FontStyle::Normal, bytes)
            .map_err(|_| "the DejaVu Sans font file is not a valid TrueType font".to_string())
    })
    .clone()
    .map_err(|e| anyhow!(e))
}

type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;
type Canvas<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

/// Draws on an in-memory RGB canvas of `size` (width, height in pixels) and writes it
/// to `path` as a PNG. The PNG is encoded with the `png` crate the rest of the
/// workspace uses, not plotters' encoder, which would build a second image library.
fn png_canvas(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&Canvas<'_>) -> DrawResult,
) -> Result<()> {
    let mut rgb = vec![0u8; size.0 as usize * size.1 as usize * 3];
    let drawn = (|| -> DrawResult {
        let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
        draw(&root)?;
        root.present()?;
        Ok(())
    })();
    drawn.map_err(|e| anyhow!("drawing {}: {e}", path.display()))?;
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut png = png::Encoder::new(std::io::BufWriter::new(file), size.0, size.1);
    png.set_color(png::ColorType::Rgb);
    png.set_depth(png::BitDepth::Eight);
    png.write_header()
        .and_then(|mut w| w.write_image_data(&rgb))
        .with_context(|| format!("writing {}", path.display()))
}

/// The curves of a training run.
#[derive(Debug, Clone, Default)]
pub struct LossCurves {
    /// (optimiser step, mean training loss over the logging interval).
    pub train_steps: Vec<(f64, f64)>,
    /// (optimiser step at the end of the epoch, validation loss).
    pub val_epochs: Vec<(f64, f64)>,
    /// (step, image→spectrum top-10, spectrum→image top-10) on the validation split.
    pub retrieval_top10: Vec<(f64, f64, f64)>,
}

/// Draws the loss curves (left) and validation retrieval (right) to a PNG.
pub fn loss_curves(path: &Path, c: &LossCurves) -> Result<()> {
    ensure_font()?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    png_canvas(path, (1200, 450), |root| {
        root.fill(&WHITE)?;
        let (left, right) = root.split_horizontally(640);
        let max_step = c
            .train_steps
            .iter()
            .chain(&c.val_epochs)
            .map(|p| p.0)
            .fold(1.0f64, f64::max);
        let losses = c.train_steps.iter().chain(&c.val_epochs).map(|p| p.1);
        let (lo, hi) = losses.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
        let (lo, hi) = if lo.is_finite() && hi > lo {
            (lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
        } else {
            (0.0, 1.0)
        };
        let mut chart = ChartBuilder::on(&left)
            .caption("Loss", ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..max_step, lo..hi)?;
        chart
            .configure_mesh()
            .x_desc("optimiser step")
            .y_desc("loss")
            .draw()?;
        chart
            .draw_series(LineSeries::new(c.train_steps.iter().copied(), &BLUE))?
            .label("training (interval mean)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLUE));
        chart
            .draw_series(LineSeries::new(c.val_epochs.iter().copied(), &RED))?
            .label("validation (per epoch)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], RED));
        chart.draw_series(
            c.val_epochs
                .iter()
                .map(|&p| Circle::new(p, 3, RED.filled())),
        )?;
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;

        let mut chart = ChartBuilder::on(&right)
            .caption("Validation retrieval (top-10)", ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..max_step, 0.0..1.0)?;
        chart
            .configure_mesh()
            .x_desc("optimiser step")
            .y_desc("fraction of partners in the top 10")
            .draw()?;
        chart
            .draw_series(LineSeries::new(
                c.retrieval_top10.iter().map(|&(s, a, _)| (s, a)),
                &GREEN,
            ))?
            .label("image → spectrum")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], GREEN));
        chart
            .draw_series(LineSeries::new(
                c.retrieval_top10.iter().map(|&(s, _, b)| (s, b)),
                &MAGENTA,
            ))?
            .label("spectrum → image")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], MAGENTA));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    })
}

/// Predicted against true values, one panel per `(title, truth, prediction, score)`
/// (the score's text, e.g. "R² = 0.84 ± 0.02", goes into the caption), with the 1:1 line.
pub fn pred_vs_true(
    path: &Path,
    quantity: &str,
    panels: &[(String, Vec<f64>, Vec<f64>, String)],
) -> Result<()> {
    ensure_font()?;
    let width = 480 * panels.len().max(1) as u32;
    png_canvas(path, (width, 480), |root| {
        root.fill(&WHITE)?;
        let areas = root.split_evenly((1, panels.len().max(1)));
        for ((title, truth, pred, score), area) in panels.iter().zip(areas) {
            let (lo, hi) = truth
                .iter()
                .chain(pred.iter())
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                    (a.min(v), b.max(v))
                });
            let (lo, hi) = if hi > lo { (lo, hi) } else { (0.0, 1.0) };
            let mut chart = ChartBuilder::on(&area)
                .caption(format!("{title} ({score})"), ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(50)
                .build_cartesian_2d(lo..hi, lo..hi)?;
            chart
                .configure_mesh()
                .x_desc(format!("true {quantity}"))
                .y_desc(format!("predicted {quantity}"))
                .draw()?;
            chart.draw_series(LineSeries::new(vec![(lo, lo), (hi, hi)], &BLACK))?;
            chart.draw_series(
                truth
                    .iter()
                    .zip(pred)
                    .map(|(&t, &p)| Circle::new((t, p), 2, BLUE.mix(0.4).filled())),
            )?;
        }
        Ok(())
    })
}

/// Histograms of 1-based partner ranks (log-spaced bins), one panel per direction.
pub fn rank_histograms(
    path: &Path,
    panels: &[(String, Vec<usize>)],
    candidates: usize,
) -> Result<()> {
    ensure_font()?;
    // Bins: 1, 2–3, 4–10, 11–30, 31–100, …, up to the number of candidates.
    let mut edges = vec![1usize, 2, 4, 11];
    while *edges.last().expect("non-empty") <= candidates {
        // 11 → 31 → 101 → 301 → 1001 …: alternate ×3 and ×10/3 on (edge − 1).
        let v = *edges.last().expect("non-empty") - 1;
        let power_of_ten = v
            .to_string()
            .trim_start_matches('1')
            .chars()
            .all(|c| c == '0');
        edges.push(if power_of_ten {
            3 * v + 1
        } else {
            v / 3 * 10 + 1
        });
    }
    let labels: Vec<String> = edges
        .windows(2)
        .map(|w| {
            if w[1] - w[0] == 1 {
                w[0].to_string()
            } else {
                format!("{}–{}", w[0], w[1] - 1)
            }
        })
        .collect();
    png_canvas(path, (960, 420), |root| {
        root.fill(&WHITE)?;
        let areas = root.split_evenly((1, panels.len().max(1)));
        for ((title, ranks), area) in panels.iter().zip(areas) {
            let counts: Vec<usize> = edges
                .windows(2)
                .map(|w| {
                    ranks
                        .iter()
                        .filter(|&&r| r + 1 >= w[0] && r + 1 < w[1])
                        .count()
                })
                .collect();
            let top = counts.iter().copied().max().unwrap_or(1).max(1) as f64 * 1.1;
            let mut chart = ChartBuilder::on(&area)
                .caption(
                    format!("{title}: rank of the true partner"),
                    ("sans-serif", 18),
                )
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(50)
                .build_cartesian_2d(0.0..counts.len() as f64, 0.0..top)?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(counts.len())
                .x_label_formatter(&|x| {
                    let i = x.floor() as usize;
                    if (x - x.floor()).abs() < 1e-9 && i < labels.len() {
                        labels[i].clone()
                    } else {
                        String::new()
                    }
                })
                .x_desc(format!("rank among {candidates}"))
                .y_desc("queries")
                .draw()?;
            chart.draw_series(counts.iter().enumerate().map(|(i, &c)| {
                Rectangle::new(
                    [(i as f64 + 0.1, 0.0), (i as f64 + 0.9, c as f64)],
                    BLUE.mix(0.6).filled(),
                )
            }))?;
        }
        Ok(())
    })
}
