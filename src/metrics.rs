//! Prometheus text-format metrics, kept in atomics and a small map (no registry crate needed).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// A histogram with fixed buckets (seconds).
pub struct Histogram {
    bounds: &'static [f64],
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    /// Sum in microseconds.
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, seconds: f64) {
        for (bound, bucket) in self.bounds.iter().zip(&self.buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bound, bucket) in self.bounds.iter().zip(&self.buckets) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {}", bucket.load(Ordering::Relaxed));
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {}", self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count {count}");
    }
}

const LATENCY_BOUNDS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Webhook to push can take minutes when APNs is slow or a push is retried: alerts need those buckets.
const PUSH_LATENCY_BOUNDS: &[f64] =
    &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0];

pub struct Metrics {
    http_requests: Mutex<BTreeMap<(String, u16), u64>>,
    webhook_events: Mutex<BTreeMap<&'static str, u64>>,
    pushes: Mutex<BTreeMap<&'static str, u64>>,
    /// From the change's commit (the oldest waiting) to APNs answering 200.
    pub push_latency: Histogram,
    pub outbox_depth: AtomicU64,
    /// 1 while APNs refuses our credentials (403).
    pub apns_forbidden: AtomicU64,
    pub http_duration: Histogram,
    /// Passes built and signed (each one RSA signature).
    pub passes_built: AtomicU64,
    /// Passes served from the signed-pass cache, no signature.
    pub pass_cache_hits: AtomicU64,
    pub pass_build_failures: AtomicU64,
    pub pass_build_duration: Histogram,
    google_requests: Mutex<BTreeMap<&'static str, u64>>,
    google_callbacks: Mutex<BTreeMap<&'static str, u64>>,
    /// 1 while Google refuses the service account (403); object updates wait.
    pub google_forbidden: AtomicU64,
    pub google_outbox_depth: AtomicU64,
    /// 1 when Google Wallet is configured (the Google series are meaningful).
    pub google_enabled: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            http_requests: Mutex::new(BTreeMap::new()),
            webhook_events: Mutex::new(BTreeMap::new()),
            pushes: Mutex::new(BTreeMap::new()),
            push_latency: Histogram::new(PUSH_LATENCY_BOUNDS),
            outbox_depth: AtomicU64::new(0),
            apns_forbidden: AtomicU64::new(0),
            http_duration: Histogram::new(LATENCY_BOUNDS),
            passes_built: AtomicU64::new(0),
            pass_cache_hits: AtomicU64::new(0),
            pass_build_failures: AtomicU64::new(0),
            pass_build_duration: Histogram::new(LATENCY_BOUNDS),
            google_requests: Mutex::new(BTreeMap::new()),
            google_callbacks: Mutex::new(BTreeMap::new()),
            google_forbidden: AtomicU64::new(0),
            google_outbox_depth: AtomicU64::new(0),
            google_enabled: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    pub fn record_request(&self, route: &str, status: u16, seconds: f64) {
        let mut map = self.http_requests.lock().unwrap_or_else(|p| p.into_inner());
        *map.entry((route.to_string(), status)).or_default() += 1;
        drop(map);
        self.http_duration.observe(seconds);
    }

    pub fn webhook_event(&self, result: &'static str) {
        *self.webhook_events.lock().unwrap_or_else(|p| p.into_inner()).entry(result).or_default() += 1;
    }

    pub fn push(&self, result: &'static str) {
        *self.pushes.lock().unwrap_or_else(|p| p.into_inner()).entry(result).or_default() += 1;
    }

    pub fn google_request(&self, result: &'static str) {
        *self.google_requests.lock().unwrap_or_else(|p| p.into_inner()).entry(result).or_default() += 1;
    }

    pub fn google_callback(&self, result: &'static str) {
        *self.google_callbacks.lock().unwrap_or_else(|p| p.into_inner()).entry(result).or_default() += 1;
    }

    fn render_google(&self, out: &mut String) {
        if self.google_enabled.load(Ordering::Relaxed) == 0 {
            return;
        }
        let _ = writeln!(
            out,
            "# HELP tessera_google_requests_total Google Wallet REST requests by result.\n# TYPE tessera_google_requests_total counter"
        );
        for (result, n) in self.google_requests.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(out, "tessera_google_requests_total{{result=\"{result}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP tessera_google_callbacks_total Google save/delete callbacks by result.\n# TYPE tessera_google_callbacks_total counter"
        );
        for (result, n) in self.google_callbacks.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(out, "tessera_google_callbacks_total{{result=\"{result}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP tessera_google_outbox_depth Google object updates waiting.\n# TYPE tessera_google_outbox_depth gauge"
        );
        let _ = writeln!(out, "tessera_google_outbox_depth {}", self.google_outbox_depth.load(Ordering::Relaxed));
        let _ = writeln!(
            out,
            "# HELP tessera_google_forbidden 1 while Google refuses the service account (403); updates wait.\n# TYPE tessera_google_forbidden gauge"
        );
        let _ = writeln!(out, "tessera_google_forbidden {}", self.google_forbidden.load(Ordering::Relaxed));
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP tessera_http_requests_total HTTP requests by route and status.\n# TYPE tessera_http_requests_total counter"
        );
        for ((route, status), n) in self.http_requests.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(
                out,
                "tessera_http_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                route.replace('"', "'")
            );
        }
        self.http_duration.render(&mut out, "tessera_http_request_duration_seconds", "HTTP request latency.");
        let _ = writeln!(
            out,
            "# HELP tessera_passes_built_total Apple passes built and signed.\n# TYPE tessera_passes_built_total counter"
        );
        let _ = writeln!(out, "tessera_passes_built_total {}", self.passes_built.load(Ordering::Relaxed));
        let _ = writeln!(
            out,
            "# HELP tessera_pass_cache_hits_total Passes served from the signed-pass cache, without signing.\n# TYPE tessera_pass_cache_hits_total counter"
        );
        let _ = writeln!(out, "tessera_pass_cache_hits_total {}", self.pass_cache_hits.load(Ordering::Relaxed));
        let _ = writeln!(
            out,
            "# HELP tessera_pass_build_failures_total Apple passes that failed to build.\n# TYPE tessera_pass_build_failures_total counter"
        );
        let _ = writeln!(out, "tessera_pass_build_failures_total {}", self.pass_build_failures.load(Ordering::Relaxed));
        self.pass_build_duration.render(
            &mut out,
            "tessera_pass_build_duration_seconds",
            "Time to render, sign and zip one pass.",
        );
        let _ = writeln!(
            out,
            "# HELP tessera_webhook_events_total Ledger events by result.\n# TYPE tessera_webhook_events_total counter"
        );
        for (result, n) in self.webhook_events.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(out, "tessera_webhook_events_total{{result=\"{result}\"}} {n}");
        }
        let _ =
            writeln!(out, "# HELP tessera_pushes_total APNs pushes by result.\n# TYPE tessera_pushes_total counter");
        for (result, n) in self.pushes.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(out, "tessera_pushes_total{{result=\"{result}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP tessera_outbox_depth Push jobs waiting.\n# TYPE tessera_outbox_depth gauge");
        let _ = writeln!(out, "tessera_outbox_depth {}", self.outbox_depth.load(Ordering::Relaxed));
        let _ = writeln!(
            out,
            "# HELP tessera_apns_forbidden 1 while APNs refuses tessera's credentials (403); pushes wait.\n# TYPE tessera_apns_forbidden gauge"
        );
        let _ = writeln!(out, "tessera_apns_forbidden {}", self.apns_forbidden.load(Ordering::Relaxed));
        self.push_latency.render(
            &mut out,
            "tessera_webhook_to_push_seconds",
            "From the committed change to APNs accepting the push.",
        );
        self.render_google(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.record_request("/api/v1/members/{member_id}", 201, 0.003);
        m.record_request("/api/v1/members/{member_id}", 201, 0.2);
        let text = m.render();
        assert!(text.contains("tessera_http_requests_total{route=\"/api/v1/members/{member_id}\",status=\"201\"} 2"));
        assert!(text.contains("tessera_http_request_duration_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("tessera_http_request_duration_seconds_bucket{le=\"0.25\"} 2"));
        assert!(text.contains("tessera_http_request_duration_seconds_count 2"));
    }
}
