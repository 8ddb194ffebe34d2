//! Per-credential request limits kept in memory (GCRA: one theoretical arrival time per credential).
//! Per instance: behind a load balancer the limit applies at each instance.

use std::collections::HashMap;
use std::sync::Mutex;

pub struct RateLimiter {
    /// µs of the rate one request costs.
    interval_us: i64,
    /// How far ahead of the rate requests may run (a burst of `burst_us / interval_us`).
    burst_us: i64,
    next: Mutex<HashMap<String, i64>>,
}

impl RateLimiter {
    /// `rate` requests a second, with bursts of two seconds' worth.
    pub fn new(rate: f64) -> RateLimiter {
        let interval_us = (1_000_000.0 / rate).max(1.0) as i64;
        RateLimiter { interval_us, burst_us: 2_000_000, next: Mutex::new(HashMap::new()) }
    }

    pub fn allow(&self, credential: &str) -> bool {
        self.allow_at(credential, crate::time_fmt::now_unix_us())
    }

    fn allow_at(&self, credential: &str, now: i64) -> bool {
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        let tat = next.get(credential).copied().unwrap_or(now).max(now);
        if tat - now > self.burst_us {
            return false;
        }
        if next.len() > 10_000 && !next.contains_key(credential) {
            // Only a few credentials exist; forget idle ones rather than grow.
            next.retain(|_, t| *t > now);
        }
        next.insert(credential.to_string(), tat + self.interval_us);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::RateLimiter;

    #[test]
    fn a_burst_then_the_rate_per_credential() {
        let limiter = RateLimiter::new(10.0);
        let t0 = 1_000_000_000;
        let allowed = (0..100).filter(|_| limiter.allow_at("a", t0)).count();
        assert_eq!(allowed, 21, "two seconds' worth at once (and the one on time)");
        assert!(limiter.allow_at("b", t0), "another credential has its own budget");
        assert!(!limiter.allow_at("a", t0 + 50_000));
        assert!(limiter.allow_at("a", t0 + 100_000), "one more each tenth of a second");
    }
}
