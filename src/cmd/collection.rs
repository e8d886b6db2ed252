//! `astrovec collection …`: direct access to a collection on disk — create one,
//! load objects from JSON lines, build or rebuild its HNSW graphs, inspect it,
//! search it and check it. Every command prints JSON on stdout.

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use astrovec_engine::{
    AttrValue, AttributeDef, AttributeKind, Collection, CollectionConfig, Filter, HnswConfig,
    ModalityConfig, Object, SearchParams, Strategy,
};
use serde::Deserialize;

/// Subcommands of `astrovec collection`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create an empty collection.
    Create {
        /// Collection directory (must not exist or be empty).
        #[arg(long, value_name = "DIR")]
        db: PathBuf,
        /// Modalities, comma-separated.
        #[arg(long, default_value = "image,spectrum", value_delimiter = ',')]
        modalities: Vec<String>,
        /// Embedding dimension of every modality.
        #[arg(long, default_value_t = 1024)]
        dim: usize,
        /// Attribute declarations `name:float|int|category[:unit]`, repeatable.
        #[arg(long = "attribute")]
        attributes: Vec<String>,
        /// HNSW neighbours per node (M).
        #[arg(long, default_value_t = HnswConfig::default().m)]
        m: usize,
        /// HNSW candidate list size while building.
        #[arg(long, default_value_t = HnswConfig::default().ef_construction)]
        ef_construction: usize,
        /// Default HNSW candidate list size while searching.
        #[arg(long, default_value_t = HnswConfig::default().ef_search)]
        ef_search: usize,
    },
    /// Insert or replace objects from a JSON-lines file
    /// (`{"id":1,"ra":150.1,"dec":2.2,"attributes":{"redshift":0.1},"embeddings":{"image":[...]}}`).
    Insert {
        /// Collection directory.
        #[arg(long, value_name = "DIR")]
        db: PathBuf,
        /// JSON-lines file (`-` for standard input).
        #[arg(long)]
        jsonl: PathBuf,
        /// Objects per atomic batch.
        #[arg(long, default_value_t = 1000)]
        batch: usize,
    },
    /// Fold new vectors into the HNSW graphs.
    BuildIndex {
        /// Collection directory.
        #[arg(long, value_name = "DIR")]
        db: PathBuf,
    },
    /// Rebuild the HNSW graphs from live vectors only (drops deleted nodes).
    Optimize {
        /// Collection directory.
        #[arg(long, value_name = "DIR")]
        db: PathBuf,
    },
    /// Print sizes, modalities and index state.
    Info {
        /// Collection directory.
        #[arg(long, value_name = "DIR")]
        db: PathBuf,
    },
    /// Check every stored vector against its checksum.
    Verify {
        /// Collection directory.
        #[arg(long, value_name = "DIR")]
        db: PathBuf,
    },
    /// Nearest neighbours of a stored object (cross-modal with --from/--to).
    Search {
        /// Collection directory.
        #[arg(long, value_name = "DIR")]
        db: PathBuf,
        /// Query object id.
        #[arg(long)]
        id: u64,
        /// Modality of the query embedding.
        #[arg(long, default_value = "image")]
        from: String,
        /// Modality searched.
        #[arg(long, default_value = "spectrum")]
        to: String,
        /// Number of results.
        #[arg(short, long, default_value_t = 10)]
        k: usize,
        /// HNSW candidate list size.
        #[arg(long)]
        ef: Option<usize>,
        /// Filter, e.g. "redshift < 0.3 and mag_r < 19".
        #[arg(long)]
        filter: Option<String>,
        /// Scan exactly instead of using the graph.
        #[arg(long)]
        exact: bool,
    },
    /// Objects within a radius of a sky position.
    Cone {
        /// Collection directory.
        #[arg(long, value_name = "DIR")]
        db: PathBuf,
        /// Right ascension of the centre, ICRS degrees.
        #[arg(long, allow_hyphen_values = true)]
        ra: f64,
        /// Declination of the centre, ICRS degrees.
        #[arg(long, allow_hyphen_values = true)]
        dec: f64,
        /// Radius, degrees.
        #[arg(long)]
        radius: f64,
        /// Maximum number of objects.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Delete a collection directory.
    Drop {
        /// Collection directory.
        #[arg(long, value_name = "DIR")]
        db: PathBuf,
    },
}

#[derive(Deserialize)]
struct JsonObject {
    id: u64,
    ra: f64,
    dec: f64,
    #[serde(default)]
    attributes: std::collections::BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    embeddings: std::collections::BTreeMap<String, Vec<f32>>,
}

fn open(db: &PathBuf) -> Result<Collection> {
    Collection::open(db).with_context(|| format!("opening collection {}", db.display()))
}

fn print(value: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn parse_attribute(spec: &str) -> Result<AttributeDef> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (name, kind, unit) = match parts.as_slice() {
        [n, k] => (*n, *k, ""),
        [n, k, u] => (*n, *k, *u),
        _ => bail!("--attribute `{spec}`: expected name:float|int|category[:unit]"),
    };
    let kind = match kind {
        "float" => AttributeKind::Float,
        "int" => AttributeKind::Int,
        "category" => AttributeKind::Category,
        other => bail!("--attribute `{spec}`: unknown type `{other}` (float, int or category)"),
    };
    Ok(AttributeDef {
        name: name.into(),
        kind,
        unit: unit.into(),
    })
}

fn to_object(config: &CollectionConfig, j: JsonObject, line: usize) -> Result<Object> {
    let mut o = Object::new(j.id, j.ra, j.dec);
    for (name, value) in j.attributes {
        let kind = config
            .attribute_index(&name)
            .map(|a| config.attributes[a].kind)
            .with_context(|| format!("line {line}"))?;
        let v = match (kind, &value) {
            (AttributeKind::Float, serde_json::Value::Number(n)) => {
                n.as_f64().map(AttrValue::Float)
            }
            (AttributeKind::Int, serde_json::Value::Number(n)) => n.as_i64().map(AttrValue::Int),
            (AttributeKind::Category, serde_json::Value::String(s)) => {
                Some(AttrValue::Category(s.clone()))
            }
            (_, serde_json::Value::Null) => continue,
            _ => None,
        };
        let v = v.with_context(|| {
            format!(
                "line {line}: attribute `{name}` = {value} is not a {}",
                kind.name()
            )
        })?;
        o.attributes.insert(name, v);
    }
    o.embeddings = j.embeddings;
    Ok(o)
}

/// Runs a `collection` subcommand.
pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Create {
            db,
            modalities,
            dim,
            attributes,
            m,
            ef_construction,
            ef_search,
        } => {
            let config = CollectionConfig {
                modalities: modalities
                    .into_iter()
                    .map(|name| ModalityConfig { name, dim })
                    .collect(),
                attributes: attributes
                    .iter()
                    .map(|a| parse_attribute(a))
                    .collect::<Result<_>>()?,
                hnsw: HnswConfig {
                    m,
                    ef_construction,
                    ef_search,
                },
                ..CollectionConfig::astroclip()
            };
            let coll = Collection::create(&db, config)
                .with_context(|| format!("creating {}", db.display()))?;
            print(&coll.stats())
        }
        Command::Insert { db, jsonl, batch } => {
            if batch == 0 {
                bail!("--batch must be at least 1");
            }
            let coll = open(&db)?;
            let reader: Box<dyn BufRead> = if jsonl.as_os_str() == "-" {
                Box::new(std::io::stdin().lock())
            } else {
                Box::new(std::io::BufReader::new(
                    std::fs::File::open(&jsonl)
                        .with_context(|| format!("opening {}", jsonl.display()))?,
                ))
            };
            let mut pending = Vec::new();
            let mut written = 0u64;
            for (i, line) in reader.lines().enumerate() {
                let line = line.with_context(|| format!("reading {}", jsonl.display()))?;
                if line.trim().is_empty() {
                    continue;
                }
                let j: JsonObject = serde_json::from_str(&line).with_context(|| {
                    format!("{} line {}: not a valid object", jsonl.display(), i + 1)
                })?;
                pending.push(to_object(coll.config(), j, i + 1)?);
                if pending.len() == batch {
                    coll.upsert_batch(&pending).with_context(|| {
                        format!("{} batch ending at line {}", jsonl.display(), i + 1)
                    })?;
                    written += pending.len() as u64;
                    pending.clear();
                }
            }
            coll.upsert_batch(&pending)?;
            written += pending.len() as u64;
            print(&serde_json::json!({ "written": written, "objects": coll.len() }))
        }
        Command::BuildIndex { db } => print(&open(&db)?.build_index()?),
        Command::Optimize { db } => print(&open(&db)?.optimize()?),
        Command::Info { db } => {
            let coll = open(&db)?;
            print(&serde_json::json!({ "config": coll.config(), "stats": coll.stats() }))
        }
        Command::Verify { db } => {
            let rows = open(&db)?.verify()?;
            print(&serde_json::json!({ "rows_checked": rows, "ok": true }))
        }
        Command::Search {
            db,
            id,
            from,
            to,
            k,
            ef,
            filter,
            exact,
        } => {
            let coll = open(&db)?;
            let mut params = SearchParams::new(k);
            params.ef = ef;
            if let Some(f) = filter {
                params.filter = Some(Filter::parse(&f).context("--filter")?);
            }
            if exact {
                params.strategy = Strategy::Exact;
            }
            print(&coll.search_by_id(id, &from, &to, &params)?)
        }
        Command::Cone {
            db,
            ra,
            dec,
            radius,
            limit,
        } => print(&open(&db)?.cone_search(ra, dec, radius, limit)?),
        Command::Drop { db } => {
            Collection::drop_collection(&db)?;
            print(&serde_json::json!({ "dropped": db }))
        }
    }
}
