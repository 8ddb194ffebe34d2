//! Prometheus text-format metrics, kept in atomics and a small map (no registry crate needed).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

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
        header(out, name, "histogram", help);
        self.render_series(out, name, "");
    }

    /// The series' lines; `labels` (`channel="apns",` with its trailing comma, or empty) go before `le`.
    fn render_series(&self, out: &mut String, name: &str, labels: &str) {
        for (bound, bucket) in self.bounds.iter().zip(&self.buckets) {
            let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{bound}\"}} {}", bucket.load(Ordering::Relaxed));
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {count}");
        let plain = labels.trim_end_matches(',');
        let braces = if plain.is_empty() { String::new() } else { format!("{{{plain}}}") };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

const LATENCY_BOUNDS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Webhook to push can take minutes when APNs is slow or a push is retried: alerts need those buckets.
const PUSH_LATENCY_BOUNDS: &[f64] =
    &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0];

/// One delivery channel's series, labelled `channel` (`apns`, `google_objects`, …).
pub struct ChannelMetrics {
    /// Attempts by result (`delivered`, `retrying`, `forbidden`, `gave-up`, or the channel's drops).
    results: Mutex<BTreeMap<&'static str, u64>>,
    /// Jobs waiting in the channel's outbox (every instance's), refreshed when the worker goes idle.
    pub depth: AtomicU64,
    /// 1 while the destination refuses our credentials (403); jobs wait and a probe goes out now and then.
    pub forbidden: AtomicU64,
    /// From the committed change (the oldest one waiting) to the destination accepting it.
    pub latency: Histogram,
}

impl ChannelMetrics {
    fn new() -> ChannelMetrics {
        ChannelMetrics {
            results: Mutex::new(BTreeMap::new()),
            depth: AtomicU64::new(0),
            forbidden: AtomicU64::new(0),
            latency: Histogram::new(PUSH_LATENCY_BOUNDS),
        }
    }

    pub fn count(&self, result: &'static str) {
        *self.results.lock().unwrap_or_else(|p| p.into_inner()).entry(result).or_default() += 1;
    }

    pub fn is_forbidden(&self) -> bool {
        self.forbidden.load(Ordering::Relaxed) == 1
    }

    fn results(&self) -> Vec<(&'static str, u64)> {
        self.results.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|(k, v)| (*k, *v)).collect()
    }
}

/// The channel names of the delivery engine (the `channel` label).
pub const APNS: &str = "apns";
pub const GOOGLE_OBJECTS: &str = "google_objects";
pub const GOOGLE_OFFERS: &str = "google_offers";

pub struct Metrics {
    http_requests: Mutex<BTreeMap<(String, u16), u64>>,
    webhook_events: Mutex<BTreeMap<&'static str, u64>>,
    channels: Mutex<BTreeMap<&'static str, Arc<ChannelMetrics>>>,
    pub http_duration: Histogram,
    /// Passes built and signed (each one RSA signature).
    pub passes_built: AtomicU64,
    /// Passes served from the signed-pass cache, no signature.
    pub pass_cache_hits: AtomicU64,
    /// Pass lookups (web service, .pkpass link) answered from the record cache, no database read.
    pub record_cache_hits: AtomicU64,
    /// Wrong admin or staff tokens (API and staff sign-in), counted against the sender's address.
    pub auth_failures: AtomicU64,
    /// Requests refused because their client address was over a per-address limit.
    pub address_limited: AtomicU64,
    pub pass_build_failures: AtomicU64,
    pub pass_build_duration: Histogram,
    google_requests: Mutex<BTreeMap<&'static str, u64>>,
    google_callbacks: Mutex<BTreeMap<&'static str, u64>>,
    /// 1 when Google Wallet is configured (the Google series are meaningful).
    pub google_enabled: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            http_requests: Mutex::new(BTreeMap::new()),
            webhook_events: Mutex::new(BTreeMap::new()),
            // APNs is always a channel (its series show, at zero, on an instance that does not push).
            channels: Mutex::new(BTreeMap::from([(APNS, Arc::new(ChannelMetrics::new()))])),
            http_duration: Histogram::new(LATENCY_BOUNDS),
            passes_built: AtomicU64::new(0),
            pass_cache_hits: AtomicU64::new(0),
            record_cache_hits: AtomicU64::new(0),
            auth_failures: AtomicU64::new(0),
            address_limited: AtomicU64::new(0),
            pass_build_failures: AtomicU64::new(0),
            pass_build_duration: Histogram::new(LATENCY_BOUNDS),
            google_requests: Mutex::new(BTreeMap::new()),
            google_callbacks: Mutex::new(BTreeMap::new()),
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

    /// The series of delivery channel `name`, made on first use.
    pub fn channel(&self, name: &'static str) -> Arc<ChannelMetrics> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        channels.entry(name).or_insert_with(|| Arc::new(ChannelMetrics::new())).clone()
    }

    fn channels(&self) -> Vec<(&'static str, Arc<ChannelMetrics>)> {
        self.channels.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|(k, v)| (*k, v.clone())).collect()
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
    }

    /// The delivery engine's series, one per channel.
    fn render_delivery(&self, out: &mut String) {
        let channels = self.channels();
        header(out, "tessera_deliveries_total", "counter", "Delivery attempts by channel and result.");
        for (channel, m) in &channels {
            for (result, n) in m.results() {
                let _ = writeln!(out, "tessera_deliveries_total{{channel=\"{channel}\",result=\"{result}\"}} {n}");
            }
        }
        header(out, "tessera_delivery_outbox_depth", "gauge", "Jobs waiting in each channel's outbox.");
        for (channel, m) in &channels {
            let _ = writeln!(
                out,
                "tessera_delivery_outbox_depth{{channel=\"{channel}\"}} {}",
                m.depth.load(Ordering::Relaxed)
            );
        }
        let help = "1 while the channel's destination refuses tessera's credentials (403); its jobs wait.";
        header(out, "tessera_delivery_forbidden", "gauge", help);
        for (channel, m) in &channels {
            let _ = writeln!(
                out,
                "tessera_delivery_forbidden{{channel=\"{channel}\"}} {}",
                m.forbidden.load(Ordering::Relaxed)
            );
        }
        let name = "tessera_delivery_latency_seconds";
        header(out, name, "histogram", "From the committed change to the destination accepting it, by channel.");
        for (channel, m) in &channels {
            m.latency.render_series(out, name, &format!("channel=\"{channel}\","));
        }
    }

    /// The names the APNs and Google series had before the delivery engine labelled them by channel, kept
    /// for existing dashboards and alerts.
    fn render_legacy(&self, out: &mut String) {
        let apns = self.channel(APNS);
        header(
            out,
            "tessera_pushes_total",
            "counter",
            "APNs pushes by result (tessera_deliveries_total{channel=\"apns\"}).",
        );
        for (result, n) in apns.results() {
            let _ = writeln!(out, "tessera_pushes_total{{result=\"{result}\"}} {n}");
        }
        header(out, "tessera_outbox_depth", "gauge", "Push jobs waiting.");
        let _ = writeln!(out, "tessera_outbox_depth {}", apns.depth.load(Ordering::Relaxed));
        header(
            out,
            "tessera_apns_forbidden",
            "gauge",
            "1 while APNs refuses tessera's credentials (403); pushes wait.",
        );
        let _ = writeln!(out, "tessera_apns_forbidden {}", apns.forbidden.load(Ordering::Relaxed));
        apns.latency.render(
            out,
            "tessera_webhook_to_push_seconds",
            "From the committed change to APNs accepting the push.",
        );
        if self.google_enabled.load(Ordering::Relaxed) == 1 {
            let google = self.channel(GOOGLE_OBJECTS);
            header(out, "tessera_google_outbox_depth", "gauge", "Google object updates waiting.");
            let _ = writeln!(out, "tessera_google_outbox_depth {}", google.depth.load(Ordering::Relaxed));
            header(
                out,
                "tessera_google_forbidden",
                "gauge",
                "1 while Google refuses the service account (403); updates wait.",
            );
            let _ = writeln!(out, "tessera_google_forbidden {}", google.forbidden.load(Ordering::Relaxed));
        }
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
            "# HELP tessera_record_cache_hits_total Pass lookups answered from the per-instance record cache, without the database.\n# TYPE tessera_record_cache_hits_total counter"
        );
        let _ = writeln!(out, "tessera_record_cache_hits_total {}", self.record_cache_hits.load(Ordering::Relaxed));
        let _ = writeln!(
            out,
            "# HELP tessera_auth_failures_total Wrong admin or staff tokens received.\n# TYPE tessera_auth_failures_total counter"
        );
        let _ = writeln!(out, "tessera_auth_failures_total {}", self.auth_failures.load(Ordering::Relaxed));
        let _ = writeln!(
            out,
            "# HELP tessera_address_limited_total Requests answered 429 because their client address was over a per-address limit (token guessing, Wallet logs).\n# TYPE tessera_address_limited_total counter"
        );
        let _ = writeln!(out, "tessera_address_limited_total {}", self.address_limited.load(Ordering::Relaxed));
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
        self.render_delivery(&mut out);
        self.render_legacy(&mut out);
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

    #[test]
    fn delivery_series_are_labelled_by_channel_and_kept_under_their_old_names() {
        let m = Metrics::default();
        let apns = m.channel(APNS);
        apns.count("delivered");
        apns.count("delivered");
        apns.latency.observe(0.02);
        m.channel(GOOGLE_OBJECTS).count("retrying");
        m.channel(GOOGLE_OBJECTS).forbidden.store(1, Ordering::Relaxed);
        m.google_enabled.store(1, Ordering::Relaxed);
        let text = m.render();
        assert!(text.contains("tessera_deliveries_total{channel=\"apns\",result=\"delivered\"} 2"), "{text}");
        assert!(text.contains("tessera_deliveries_total{channel=\"google_objects\",result=\"retrying\"} 1"));
        assert!(text.contains("tessera_delivery_forbidden{channel=\"google_objects\"} 1"));
        assert!(text.contains("tessera_delivery_latency_seconds_bucket{channel=\"apns\",le=\"0.025\"} 1"));
        assert!(text.contains("tessera_delivery_latency_seconds_count{channel=\"apns\"} 1"));
        assert!(text.contains("tessera_pushes_total{result=\"delivered\"} 2"));
        assert!(text.contains("tessera_webhook_to_push_seconds_count 1"));
        assert!(text.contains("tessera_google_forbidden 1"));
    }
}
