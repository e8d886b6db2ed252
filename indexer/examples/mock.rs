//! Same as `astrovec mock`, without the rest of the binary:
//! `cargo run --release -p astrovec-indexer --example mock -- COUNT SEED OUT.parquet [PREVIEW.png]`
//! (an OUT of `-` skips the Parquet file).

use std::path::Path;
use std::time::Instant;

use astrovec_indexer::mock::{MockConfig, MockSurvey};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        return Err("usage: mock COUNT SEED OUT.parquet|- [PREVIEW.png]".into());
    }
    let config = MockConfig {
        count: args[0].parse()?,
        seed: args[1].parse()?,
        ..Default::default()
    };
    let survey = MockSurvey::new(config)?;
    let t = Instant::now();
    if args[2] != "-" {
        survey.write_parquet(Path::new(&args[2]), true)?;
        eprintln!(
            "wrote {} objects to {} in {:.1?}",
            survey.len(),
            args[2],
            t.elapsed()
        );
    }
    if let Some(p) = args.get(3) {
        survey.write_preview(Path::new(p))?;
        eprintln!("wrote preview {p}");
    }
    Ok(())
}
