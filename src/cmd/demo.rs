//! `astrovec demo`: the end-to-end demonstration (mock catalog → embed → index → serve).

/// Arguments of `astrovec demo`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs the demo.
pub fn run(_args: Args) -> anyhow::Result<()> {
    println!(
        "astrovec demo: not yet — the demo needs the encoders, mock survey, ingest and server.\n\
         What works today: `astrovec collection --help` (create, insert, search, build-index)."
    );
    Ok(())
}
