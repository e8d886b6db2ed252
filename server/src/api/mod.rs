//! The JSON API under `/v1`: collections, search (single and batch), k-NN
//! estimates, objects (attributes, image, spectrum) and writes.
//!
//! `wire` holds the request types; each other module holds the handlers of one
//! resource. Every handler does its engine and encoder work inside
//! [`AppState::blocking`](crate::AppState::blocking).

mod collections;
mod objects;
mod search;
mod wire;
mod writes;

pub use crate::attributes::{AttributeSummaries, AttributeSummary};
pub use collections::{collection_info, list_collections};
pub use objects::{get_object, object_image, object_spectrum};
pub use search::{predict, search, search_batch};
pub use wire::{
    BatchRequest, FormatParam, ImageParams, Position, PredictRequest, PutObject, QuerySpec,
    SearchOptions, SearchRequest, SpectrumParams,
};
pub use writes::{delete_object, put_object};
