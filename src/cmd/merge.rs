//! `astrovec merge`: combines shard collections built with `astrovec ingest --shard
//! k/n` into one collection (objects, vectors, blobs), then builds its indexes.

use std::path::PathBuf;

/// Arguments of `astrovec merge`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Shard collection directories.
    #[arg(required = true, value_name = "DIR")]
    pub inputs: Vec<PathBuf>,
    /// The merged collection directory to create.
    #[arg(long = "db", short = 'o', alias = "out", value_name = "DIR")]
    pub db: PathBuf,
    /// Objects per write.
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
}

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<()> {
    let report = astrovec_indexer::ingest::merge(&args.inputs, &args.db, args.batch_size)?;
    eprintln!(
        "merged {} collection(s) into {}: {} objects ({} duplicate ids), {:.2} s copying",
        report.inputs.len(),
        report.output,
        report.objects,
        report.duplicates,
        report.copy_seconds
    );
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
