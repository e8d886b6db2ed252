//! `astrovec demo`: the whole path on one machine — a mock DESI × Legacy Survey catalog,
//! embedded with the shipped default model, indexed, and served with the web page.
//!
//! Everything is kept in `--dir`, so a second run skips straight to serving; a run
//! interrupted during the ingest resumes where it stopped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use astrovec_encoders::model::astroclip::{CONFIG_FILE, WEIGHTS_FILE};
use astrovec_encoders::{AstroClipConfig, BackendChoice};
use astrovec_engine::{AttrValue, Collection, SearchParams};
use astrovec_indexer::ingest::pipeline::REPORT_FILE;
use astrovec_indexer::ingest::{ingest, Embedder, IngestOptions};
use astrovec_indexer::mock::{MockConfig, MockSurvey};
use serde::{Deserialize, Serialize};

/// The shipped default model (`models/astrovec-small`), built into the binary so the
/// demo runs anywhere.
const DEFAULT_CONFIG: &str = include_str!("../../models/astrovec-small/config.json");
const DEFAULT_WEIGHTS: &[u8] = include_bytes!("../../models/astrovec-small/model.safetensors");

/// Name of the demo collection (its URL path segment).
const COLLECTION: &str = "galaxies";

/// Arguments of `astrovec demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Galaxies in the mock catalog.
    #[arg(short = 'n', long, default_value_t = 2000)]
    pub count: usize,
    /// Seed of the mock catalog.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Working directory (catalog, model, collection); reused by later runs.
    #[arg(long, default_value = "astrovec-demo")]
    pub dir: PathBuf,
    /// Address of the web page and API.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Build everything and run one search, but do not start the server.
    #[arg(long)]
    pub no_serve: bool,
    /// Use this model directory (config.json + model.safetensors) instead of the
    /// built-in default model.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Throw away what an earlier run left in --dir and start over.
    #[arg(long)]
    pub fresh: bool,
}

/// What a finished build looked like, so a later run knows whether it can reuse it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Stamp {
    count: usize,
    seed: u64,
    model: String,
}

fn stage(n: usize, what: &str) {
    eprintln!("\n[{n}/4] {what}");
}

/// Runs the demo.
pub fn run(args: Args) -> Result<()> {
    let started = Instant::now();
    if args.count < 20 || args.count > 200_000 {
        bail!(
            "--count must be between 20 and 200000 galaxies (got {})",
            args.count
        );
    }
    if args.fresh && args.dir.exists() {
        std::fs::remove_dir_all(&args.dir)
            .with_context(|| format!("removing {}", args.dir.display()))?;
    }
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let catalog = args.dir.join("catalog.parquet");
    let db = args.dir.join("db");
    let collection = db.join(COLLECTION);
    let stamp_path = args.dir.join("demo.json");
    let model_dir = match &args.model {
        Some(dir) => dir.clone(),
        None => write_default_model(&args.dir.join("model"))?,
    };
    let stamp = Stamp {
        count: args.count,
        seed: args.seed,
        model: model_dir.display().to_string(),
    };
    let previous: Option<Stamp> = std::fs::read(&stamp_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let reusable = previous.as_ref() == Some(&stamp) && collection.join(REPORT_FILE).exists();

    if reusable {
        eprintln!(
            "reusing the collection built earlier in {} ({} galaxies; --fresh rebuilds it)",
            args.dir.display(),
            args.count
        );
    } else {
        if previous.is_some() && previous.as_ref() != Some(&stamp) {
            // Another size, seed or model: the old files describe something else.
            for p in [&catalog, &collection] {
                if p.is_dir() {
                    std::fs::remove_dir_all(p)?;
                } else if p.exists() {
                    std::fs::remove_file(p)?;
                }
            }
        }
        std::fs::remove_file(&stamp_path).ok();
        if !catalog.exists() {
            stage(
                1,
                &format!(
                    "generating a mock catalog of {} galaxies (images + spectra)",
                    args.count
                ),
            );
            let survey = MockSurvey::new(MockConfig {
                count: args.count,
                seed: args.seed,
                ..MockConfig::default()
            })?;
            let tmp = args.dir.join("catalog.parquet.part");
            survey.write_parquet(&tmp, true)?;
            std::fs::rename(&tmp, &catalog)?;
        } else {
            stage(1, "mock catalog already written");
        }
        stage(
            2,
            "embedding images and spectra with the default model, writing the collection",
        );
        std::fs::create_dir_all(&db)?;
        let config = AstroClipConfig::load_json(model_dir.join(CONFIG_FILE))?;
        let mut opts = IngestOptions::new(
            vec![catalog.clone()],
            collection.clone(),
            Embedder::Model {
                config: Box::new(config),
                weights: Some(model_dir.join(WEIGHTS_FILE)),
                backend: BackendChoice::Cpu,
                batch_size: 32,
                name: "astrovec-small".into(),
            },
        );
        opts.progress = true;
        opts.resume = collection.exists();
        let report = ingest(&opts).context("ingesting the mock catalog")?;
        eprintln!("{}", report.summary());
        stage(3, "indexes built (HNSW per modality)");
        std::fs::write(&stamp_path, serde_json::to_vec_pretty(&stamp)?)?;
    }

    // Cross-modal searches, so the run shows the system working even without a browser.
    let coll = Collection::open(&collection)?;
    let mut ids = coll.ids();
    ids.sort_unstable();
    let query = *ids.first().context("the demo collection is empty")?;
    let mut params = SearchParams::new(10);
    params.include_self = true;
    let sample = &ids[..ids.len().min(200)];
    let mut found = 0usize;
    for &id in sample {
        let hits = coll.search_by_id(id, "image", "spectrum", &params)?;
        found += usize::from(hits.iter().any(|h| h.id == id));
    }
    println!(
        "cross-modal check: {found} of {} galaxies find their own spectrum among the 10 nearest \
         of {} by image (by chance about {:.1} would)",
        sample.len(),
        coll.len(),
        sample.len() as f64 * 10.0 / coll.len() as f64
    );
    let hits = coll.search_by_id(query, "image", "spectrum", &params)?;
    eprintln!("image → spectrum search for galaxy {query}, top 3:");
    for h in hits.iter().take(3) {
        let z = match coll.get(h.id)?.attributes.get("redshift") {
            Some(AttrValue::Float(z)) => format!("{z:.4}"),
            _ => "?".into(),
        };
        eprintln!("  id {}  cosine {:.3}  redshift {z}", h.id, h.score);
    }
    eprintln!(
        "\nready in {:.0} s (collection: {})",
        started.elapsed().as_secs_f64(),
        collection.display()
    );
    if args.no_serve {
        return Ok(());
    }
    stage(4, "serving");
    let base = format!("http://{}", args.addr);
    eprintln!(
        "open {base}/ in a browser. Three searches from the command line:\n\
         \n  # galaxies whose spectra match galaxy {query}'s image (cross-modal)\n  \
         curl -s {base}/v1/collections/{COLLECTION}/search -H 'content-type: application/json' \\\n    \
         -d '{{\"id\": {query}, \"from\": \"image\", \"to\": \"spectrum\", \"k\": 5}}'\n\
         \n  # look-alike images at redshift below 0.2\n  \
         curl -s {base}/v1/collections/{COLLECTION}/search -H 'content-type: application/json' \\\n    \
         -d '{{\"id\": {query}, \"from\": \"image\", \"to\": \"image\", \"k\": 5, \"filter\": \"redshift < 0.2\"}}'\n\
         \n  # k-NN redshift estimate from the spectrum embedding\n  \
         curl -s {base}/v1/collections/{COLLECTION}/predict -H 'content-type: application/json' \\\n    \
         -d '{{\"id\": {query}, \"from\": \"spectrum\", \"to\": \"spectrum\", \"attributes\": [\"redshift\"], \"k\": 64}}'\n\
         \nCtrl-C stops the server; the next `astrovec demo` starts in seconds."
    );
    drop(coll);
    let collections = astrovec_server::open_collections(&db)
        .with_context(|| format!("opening {}", db.display()))?;
    let state =
        astrovec_server::AppState::new(collections, astrovec_server::ServerConfig::default());
    astrovec_server::run_blocking(state, args.addr, |bound| {
        eprintln!("listening on http://{bound}");
    })
    .context("running the server")?;
    Ok(())
}

/// Writes the built-in default model to `dir` (once) and returns `dir`.
fn write_default_model(dir: &Path) -> Result<PathBuf> {
    let weights = dir.join(WEIGHTS_FILE);
    let current = std::fs::read(&weights).ok();
    if current.as_deref() != Some(DEFAULT_WEIGHTS) {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join(CONFIG_FILE), DEFAULT_CONFIG)?;
        std::fs::write(&weights, DEFAULT_WEIGHTS)?;
    }
    Ok(dir.to_path_buf())
}
