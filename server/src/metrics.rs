//! Prometheus metrics: request counts by route, method and status, latency
//! histograms by route, and collection sizes, written in the text exposition
//! format at `GET /metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;

use parking_lot::Mutex;

/// Upper bounds of the latency histogram buckets, seconds.
pub const LATENCY_BUCKETS_S: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS_S.len()],
    count: u64,
    sum_s: f64,
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
}

/// Request counters and latency histograms (one short lock per request).
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    /// Records one finished request. `route` is the matched route template
    /// (e.g. `/v1/collections/{c}/search`), never the raw path, so the number of
    /// series stays bounded.
    pub fn record(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let mut g = self.inner.lock();
        *g.requests
            .entry((route.to_string(), method.to_string(), status))
            .or_insert(0) += 1;
        let h = g.latency.entry(route.to_string()).or_default();
        h.count += 1;
        h.sum_s += seconds;
        for (b, le) in h.buckets.iter_mut().zip(LATENCY_BUCKETS_S) {
            if seconds <= le {
                *b += 1;
            }
        }
    }

    /// The exposition text; `sizes` lists (collection, modality or "", objects or vectors).
    pub fn render(&self, sizes: &[(String, String, u64)]) -> String {
        let g = self.inner.lock();
        let mut out = String::new();
        out.push_str("# HELP astrovec_http_requests_total HTTP requests answered, by route template, method and status.\n");
        out.push_str("# TYPE astrovec_http_requests_total counter\n");
        for ((route, method, status), n) in &g.requests {
            let _ = writeln!(
                out,
                "astrovec_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}",
                escape(route),
                escape(method)
            );
        }
        out.push_str("# HELP astrovec_http_request_duration_seconds Time to answer a request, seconds, by route template.\n");
        out.push_str("# TYPE astrovec_http_request_duration_seconds histogram\n");
        for (route, h) in &g.latency {
            let r = escape(route);
            for (le, n) in LATENCY_BUCKETS_S.iter().zip(h.buckets) {
                let _ = writeln!(
                    out,
                    "astrovec_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"{le}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "astrovec_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "astrovec_http_request_duration_seconds_sum{{route=\"{r}\"}} {}",
                h.sum_s
            );
            let _ = writeln!(
                out,
                "astrovec_http_request_duration_seconds_count{{route=\"{r}\"}} {}",
                h.count
            );
        }
        out.push_str("# HELP astrovec_collection_objects Live objects per collection.\n");
        out.push_str("# TYPE astrovec_collection_objects gauge\n");
        for (c, _, n) in sizes.iter().filter(|s| s.1.is_empty()) {
            let _ = writeln!(
                out,
                "astrovec_collection_objects{{collection=\"{}\"}} {n}",
                escape(c)
            );
        }
        out.push_str(
            "# HELP astrovec_collection_vectors Live embeddings per collection and modality.\n",
        );
        out.push_str("# TYPE astrovec_collection_vectors gauge\n");
        for (c, m, n) in sizes.iter().filter(|s| !s.1.is_empty()) {
            let _ = writeln!(
                out,
                "astrovec_collection_vectors{{collection=\"{}\",modality=\"{}\"}} {n}",
                escape(c),
                escape(m)
            );
        }
        out
    }
}

/// Escapes a label value (backslash, quote, newline).
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.record("/health", "GET", 200, 0.003);
        m.record("/health", "GET", 200, 0.2);
        let text = m.render(&[("g".into(), String::new(), 5)]);
        assert!(text.contains(
            "astrovec_http_requests_total{route=\"/health\",method=\"GET\",status=\"200\"} 2"
        ));
        assert!(text.contains(
            "astrovec_http_request_duration_seconds_bucket{route=\"/health\",le=\"0.005\"} 1"
        ));
        assert!(text.contains(
            "astrovec_http_request_duration_seconds_bucket{route=\"/health\",le=\"0.25\"} 2"
        ));
        assert!(text.contains("astrovec_collection_objects{collection=\"g\"} 5"));
    }
}
