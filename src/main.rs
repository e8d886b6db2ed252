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

/// Keeps large tensor buffers on glibc's heap instead of fresh `mmap`s.
///
/// The encoders allocate and free buffers of several MB for every layer (attention
/// weights alone are batch × heads × tokens² floats). Above its dynamic mmap threshold
/// glibc serves each with `mmap` and returns it with `munmap`, so the kernel zero-fills
/// every page again on the next layer. A fixed 32 MB threshold (glibc's largest) and a
/// generous trim threshold let freed buffers be reused: measured here, one 1,000-pair
/// training epoch of the `small` preset took 31–33 s instead of 39–40 s (jemalloc with
/// its default decay was slower than either: 60 s).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator() {
    const MB: libc::c_int = 1 << 20;
    // SAFETY: mallopt only adjusts allocator parameters and is called before any other
    // thread exists. A rejected value (return 0) leaves glibc's default in place.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 * MB);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 * MB);
        libc::mallopt(libc::M_TOP_PAD, 64 * MB);
    }
}

/// Other platforms keep their allocator's defaults.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}

fn main() -> anyhow::Result<()> {
    tune_allocator();
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
