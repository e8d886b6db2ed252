//! The server's defaults and bounds, each written once: the limits a
//! [`ServerConfig`](crate::ServerConfig) starts from (and `astrovec serve` offers
//! as its flag defaults), the per-request defaults the handlers fill in, and the
//! fixed bounds of request parameters. The OpenAPI document quotes these values.

use std::time::Duration;

/// Default largest request body, MiB.
pub const DEFAULT_MAX_BODY_MIB: usize = 16;
/// Default largest `k` a request may ask for (at most the engine's
/// [`MAX_K`](astrovec_engine::MAX_K)).
pub const DEFAULT_MAX_K: usize = 1000;
/// Default largest `ef` (HNSW candidate list) a request may ask for.
pub const DEFAULT_MAX_EF: usize = 4000;
/// Default most queries in one batch request.
pub const DEFAULT_MAX_BATCH: usize = 256;
/// Default most rows a cone search returns.
pub const DEFAULT_MAX_CONE_ROWS: usize = 10_000;
/// Default per-request time limit, seconds.
pub const DEFAULT_REQUEST_TIMEOUT_S: u64 = 30;

/// Default engine / encoder calls running at once: two per CPU core, so a core is
/// never idle while another call waits on storage (4 when the count is unknown).
pub fn default_max_concurrency() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get() * 2)
        .unwrap_or(4)
}

/// Default per-request time limit.
pub const fn default_request_timeout() -> Duration {
    Duration::from_secs(DEFAULT_REQUEST_TIMEOUT_S)
}

/// Results of a search when the request gives no `k`.
pub const DEFAULT_K: usize = 10;
/// Neighbours of a k-NN estimate when the request gives no `k`.
pub const DEFAULT_PREDICT_K: usize = 16;

/// Match radius of a position query when the request gives none, arcsec.
pub const DEFAULT_MATCH_RADIUS_ARCSEC: f64 = 5.0;
/// Largest match radius of a position query, arcsec (one degree).
pub const MAX_MATCH_RADIUS_ARCSEC: f64 = 3600.0;

/// Embedding-map sample size when the request gives none.
pub const DEFAULT_MAP_POINTS: usize = 5000;
/// Largest sample an embedding map may ask for.
pub const MAX_MAP_POINTS: usize = 20_000;

/// Widest boxcar a spectrum may be smoothed with, pixels.
pub const MAX_SMOOTH_PIXELS: usize = 201;
/// Fewest points a spectrum may be down-sampled to.
pub const MIN_SPECTRUM_POINTS: usize = 16;
