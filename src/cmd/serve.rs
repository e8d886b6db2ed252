//! `astrovec serve`: the HTTP API (and web page) over the collections in a
//! directory. `--db DIR` is either one collection (served under its directory
//! name) or a directory whose subdirectories are collections (each served under
//! its own name). Runs until SIGTERM or Ctrl-C, then finishes requests in flight.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use astrovec_server::limits;
use astrovec_server::{open_collections, AppState, ServerConfig};

/// Arguments of `astrovec serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A collection directory, or a directory holding collections as subdirectories
    /// (each served under its directory name).
    #[arg(long, value_name = "DIR")]
    db: PathBuf,
    /// Address to listen on (port 0 picks a free port; the bound address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// File holding the API key that writes (PUT / DELETE) must send as
    /// `Authorization: Bearer <key>`. Without it, writes are disabled.
    #[arg(long)]
    api_key_file: Option<PathBuf>,
    /// File holding a read key; when given, every read (except /, /health and
    /// /openapi.json) needs it (or the API key) as a bearer token.
    #[arg(long)]
    read_key_file: Option<PathBuf>,
    /// Largest request body, MiB.
    #[arg(long, default_value_t = limits::DEFAULT_MAX_BODY_MIB)]
    max_body_mb: usize,
    /// Largest `k` (results per query).
    #[arg(long, default_value_t = limits::DEFAULT_MAX_K)]
    max_k: usize,
    /// Largest `ef` (HNSW candidate list).
    #[arg(long, default_value_t = limits::DEFAULT_MAX_EF)]
    max_ef: usize,
    /// Most queries per batch request.
    #[arg(long, default_value_t = limits::DEFAULT_MAX_BATCH)]
    max_batch: usize,
    /// Most rows a cone search returns.
    #[arg(long, default_value_t = limits::DEFAULT_MAX_CONE_ROWS)]
    max_cone_rows: usize,
    /// Per-request time limit, seconds.
    #[arg(long, default_value_t = limits::DEFAULT_REQUEST_TIMEOUT_S as f64)]
    timeout_s: f64,
    /// Engine / encoder calls running at once (default: 2 × CPU cores).
    #[arg(long)]
    max_concurrency: Option<usize>,
}

fn read_key(path: &Path, what: &str) -> Result<String> {
    let key = std::fs::read_to_string(path)
        .with_context(|| format!("reading the {what} from {}", path.display()))?
        .trim()
        .to_string();
    if key.len() < 16 {
        bail!(
            "{}: the {what} must be at least 16 characters (got {})",
            path.display(),
            key.len()
        );
    }
    Ok(key)
}

/// Runs `astrovec serve`.
pub fn run(args: Args) -> Result<()> {
    if !(args.timeout_s.is_finite() && args.timeout_s > 0.0) {
        bail!("--timeout-s must be a positive number of seconds");
    }
    if args.max_k == 0 || args.max_k > astrovec_engine::MAX_K {
        bail!("--max-k must be in 1..={}", astrovec_engine::MAX_K);
    }
    if args.max_ef == 0 || args.max_ef > astrovec_engine::MAX_EF {
        bail!("--max-ef must be in 1..={}", astrovec_engine::MAX_EF);
    }
    let mut config = ServerConfig {
        max_body_bytes: args.max_body_mb.max(1) << 20,
        max_k: args.max_k,
        max_ef: args.max_ef,
        max_batch: args.max_batch.max(1),
        max_cone_rows: args.max_cone_rows.max(1),
        request_timeout: Duration::from_secs_f64(args.timeout_s),
        api_key: args
            .api_key_file
            .as_deref()
            .map(|p| read_key(p, "API key"))
            .transpose()?,
        read_key: args
            .read_key_file
            .as_deref()
            .map(|p| read_key(p, "read key"))
            .transpose()?,
        ..ServerConfig::default()
    };
    if let Some(n) = args.max_concurrency {
        config.max_concurrency = n.max(1);
    }
    let collections = open_collections(&args.db)
        .with_context(|| format!("opening the collections in {}", args.db.display()))?;
    if collections.is_empty() {
        bail!(
            "{}: no collections found (pass a collection directory or a directory of them)",
            args.db.display()
        );
    }
    let names: Vec<String> = collections.iter().map(|c| c.name.clone()).collect();
    let state = AppState::new(collections, config);
    astrovec_server::run_blocking(state, args.addr, |bound| {
        tracing::info!(
            "serving {} on http://{bound} (API description at /openapi.json)",
            names.join(", ")
        );
        // One JSON line on stdout so scripts (and tests using port 0) learn the address.
        println!(
            "{}",
            serde_json::json!({"listening": bound.to_string(), "collections": names})
        );
    })
    .context("running the server")?;
    tracing::info!("server stopped");
    Ok(())
}
