//! `astrovec`: the command-line front end. Parses arguments, sets up logging and
//! hands each subcommand to its module under `cmd/`; the work itself lives in the
//! library crates (`astrovec-engine`, `astrovec-encoders`, `astrovec-indexer`).

mod cmd;
mod plot;

use clap::{Parser, Subcommand};

/// Cross-modal similarity search for galaxies (AstroCLIP image and spectrum embeddings).
#[derive(Debug, Parser)]
#[command(name = "astrovec", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build a mock catalog, embed it, index it and serve the web page.
    Demo(cmd::demo::Args),
    /// Generate a mock DESI x Legacy Survey catalog (images + spectra + labels).
    Mock(cmd::mock::Args),
    /// Embed images and/or spectra with the AstroCLIP encoders.
    Embed(cmd::embed::Args),
    /// Bulk-load catalog files (Parquet) into a collection: validate, encode, write, index.
    Ingest(cmd::ingest::Args),
    /// Combine shard collections (from `ingest --shard k/n`) into one.
    Merge(cmd::merge::Args),
    /// Serve the HTTP API (search, uploads, estimates, cone search) and the web page.
    Serve(cmd::serve::Args),
    /// Score a collection's embeddings with the AstroCLIP downstream protocol.
    Eval(cmd::eval::Args),
    /// Train or fine-tune a model: contrastive alignment or masked-spectrum pre-training.
    Train(cmd::train::Args),
    /// Manage and query collections directly (create, info, search, build the index).
    #[command(subcommand)]
    Collection(cmd::collection::Command),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Demo(args) => cmd::demo::run(args),
        Command::Mock(args) => cmd::mock::run(args),
        Command::Embed(args) => cmd::embed::run(args),
        Command::Ingest(args) => cmd::ingest::run(args),
        Command::Merge(args) => cmd::merge::run(args),
        Command::Serve(args) => cmd::serve::run(args),
        Command::Train(args) => cmd::train::run(args),
        Command::Eval(args) => cmd::eval::run(args),
        Command::Collection(command) => cmd::collection::run(command),
    }
}
