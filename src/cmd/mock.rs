//! `astrovec mock`: writes a mock DESI × Legacy Survey catalog (images, spectra,
//! physical labels) as Parquet, and optionally a PNG contact sheet of it. The
//! generator lives in `astrovec_indexer::mock`; this module only parses and checks
//! the arguments and reports what was written.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use astrovec_indexer::mock::{MockConfig, MockError, MockSurvey, MAX_COUNT};

/// Arguments of `astrovec mock`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Number of objects to generate (1 to 100,000,000; about 300 KB each).
    #[arg(long, short = 'n', value_name = "N")]
    pub count: usize,
    /// Random seed; the same seed and count give a byte-identical file.
    #[arg(long, default_value_t = 0, value_name = "S")]
    pub seed: u64,
    /// Write objects START .. START+N of the seed's catalog instead of 0 .. N: a slice of
    /// a larger catalog, identical to those rows of the full file (for held-out sets
    /// whose galaxies differ from a training file's first START rows, or split builds).
    #[arg(long, default_value_t = 0, value_name = "START")]
    pub start: usize,
    /// Output Parquet file.
    #[arg(long, short = 'o', value_name = "FILE.parquet")]
    pub out: PathBuf,
    /// Also write a PNG contact sheet (25 cutouts and 5 spectra) to this file.
    #[arg(long, value_name = "FILE.png")]
    pub preview: Option<PathBuf>,
    /// targetid of the first object (the others follow consecutively).
    #[arg(long, value_name = "ID", allow_hyphen_values = true)]
    pub first_targetid: Option<i64>,
    /// Noise-free images and spectra (models only).
    #[arg(long)]
    pub no_noise: bool,
    /// No neighbouring galaxies or stars in the cutouts.
    #[arg(long)]
    pub no_neighbours: bool,
    /// Hide the progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Checks that `path` ends in `ext` and that its directory exists, naming `flag`.
fn check_path(flag: &str, path: &Path, ext: &str) -> anyhow::Result<()> {
    if path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
        != Some(ext)
    {
        bail!(
            "invalid {flag} {}: the file name must end in .{ext}",
            path.display()
        );
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            bail!(
                "invalid {flag} {}: directory {} does not exist",
                path.display(),
                dir.display()
            );
        }
    }
    Ok(())
}

/// Maps library argument errors to the CLI flag names.
fn flag_error(err: MockError) -> anyhow::Error {
    match err {
        MockError::InvalidArgument { name, reason } => {
            anyhow::anyhow!("invalid --{}: {reason}", name.replace('_', "-"))
        }
        other => other.into(),
    }
}

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<()> {
    if args.count == 0 || args.count > MAX_COUNT {
        bail!(
            "invalid --count {}: must be between 1 and {MAX_COUNT}",
            args.count
        );
    }
    let total = args.start.saturating_add(args.count);
    if total > MAX_COUNT {
        bail!(
            "invalid --start {}: START + N must not exceed {MAX_COUNT}",
            args.start
        );
    }
    check_path("--out", &args.out, "parquet")?;
    if let Some(p) = &args.preview {
        check_path("--preview", p, "png")?;
    }
    let defaults = MockConfig::default();
    let config = MockConfig {
        count: total,
        seed: args.seed,
        first_targetid: args.first_targetid.unwrap_or(defaults.first_targetid),
        noise: !args.no_noise,
        neighbours: !args.no_neighbours,
    };
    config.validate().map_err(flag_error)?;
    let started = Instant::now();
    let survey = MockSurvey::new(config).map_err(flag_error)?;
    tracing::info!(
        count = survey.len(),
        seed = args.seed,
        parents = survey.parent_count(),
        "generating mock survey"
    );
    survey
        .write_parquet_range(&args.out, args.start..total, !args.quiet)
        .with_context(|| format!("writing {}", args.out.display()))?;
    tracing::info!(
        path = %args.out.display(),
        seconds = started.elapsed().as_secs_f64(),
        "wrote {} objects",
        args.count
    );
    if let Some(p) = &args.preview {
        survey
            .write_preview(p)
            .with_context(|| format!("writing {}", p.display()))?;
        tracing::info!(path = %p.display(), "wrote preview");
    }
    Ok(())
}
