//! One module per subcommand: argument types (clap) and the glue that turns them
//! into calls on the library crates.

pub mod collection;
pub mod demo;
pub mod embed;
pub mod eval;
pub mod ingest;
pub mod merge;
pub mod mock;
pub mod serve;
pub mod train;
