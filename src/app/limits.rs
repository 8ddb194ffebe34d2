//! Request limits kept in memory (GCRA: one theoretical arrival time per key), per staff credential or
//! per client address. Per instance: behind a load balancer the limit applies at each instance.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

/// Keys kept at most; past it idle keys are forgotten, and while every kept key is busy a new one is let
/// through untracked rather than letting an attacker with many addresses grow the map.
const CAPACITY: usize = 50_000;

/// Wrong admin or staff tokens one client address may send a minute before it gets 429 for a while.
pub const AUTH_FAILURES_PER_MINUTE: u32 = 10;
/// What `POST /v1/log` writes for one client address a minute, at most: lines, and bytes of body.
pub const LOG_LINES_PER_MINUTE: u32 = 100;
pub const LOG_BYTES_PER_MINUTE: u32 = 64 * 1024;

pub struct RateLimiter<K = String> {
    /// µs of the rate one unit costs.
    interval_us: i64,
    /// How far ahead of the rate a key may run (a burst of `burst_us / interval_us` units).
    burst_us: i64,
    next: Mutex<HashMap<K, i64>>,
}

impl<K: Hash + Eq> RateLimiter<K> {
    /// `rate` units a second, with bursts of two seconds' worth.
    pub fn new(rate: f64) -> RateLimiter<K> {
        let interval_us = (1_000_000.0 / rate).max(1.0) as i64;
        RateLimiter { interval_us, burst_us: 2_000_000, next: Mutex::new(HashMap::new()) }
    }

    /// `units` a minute: all of them at once, then one every minute / `units`.
    pub fn per_minute(units: u32) -> RateLimiter<K> {
        let interval_us = (60_000_000 / i64::from(units.max(1))).max(1);
        RateLimiter { interval_us, burst_us: 60_000_000 - interval_us, next: Mutex::new(HashMap::new()) }
    }

    /// Takes `units` from the key's budget, or answers how long until they would be there (taking nothing).
    pub fn take<Q>(&self, key: &Q, units: u32) -> Result<(), Duration>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        self.take_at(key, units, crate::time_fmt::now_unix_us())
    }

    /// Whether one unit is there, taking nothing: a key that used its budget up waits for the answer.
    pub fn check<Q>(&self, key: &Q) -> Result<(), Duration>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let now = crate::time_fmt::now_unix_us();
        let next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        let tat = next.get(key).copied().unwrap_or(now).max(now);
        self.wait(tat + self.interval_us, now)
    }

    fn wait(&self, new_tat: i64, now: i64) -> Result<(), Duration> {
        let over = new_tat - self.interval_us - self.burst_us - now;
        if over > 0 { Err(Duration::from_micros(over as u64)) } else { Ok(()) }
    }

    fn take_at<Q>(&self, key: &Q, units: u32, now: i64) -> Result<(), Duration>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        let tat = next.get(key).copied().unwrap_or(now).max(now);
        let new_tat = tat + self.interval_us * i64::from(units);
        self.wait(new_tat, now)?;
        if next.len() >= CAPACITY && !next.contains_key(key) {
            next.retain(|_, t| *t > now);
            if next.len() >= CAPACITY {
                return Ok(());
            }
        }
        next.insert(key.to_owned(), new_tat);
        Ok(())
    }
}

/// The key a client address is limited by: IPv4 addresses one by one, IPv6 by their /64 (one
/// subscriber's whole prefix, which a single host can cycle through).
pub fn address_key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(prefix.into())
        }
        IpAddr::V6(v6) => IpAddr::V4(v6.to_ipv4_mapped().expect("checked")),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate_per_credential() {
        let limiter = RateLimiter::<String>::new(10.0);
        let t0 = 1_000_000_000;
        let a = "a";
        let allowed = (0..100).filter(|_| limiter.take_at(a, 1, t0).is_ok()).count();
        assert_eq!(allowed, 21, "two seconds' worth at once (and the one on time)");
        assert!(limiter.take_at("b", 1, t0).is_ok(), "another credential has its own budget");
        assert!(limiter.take_at(a, 1, t0 + 50_000).is_err());
        assert!(limiter.take_at(a, 1, t0 + 100_000).is_ok(), "one more each tenth of a second");
    }

    #[test]
    fn per_minute_allows_the_count_at_once_then_says_how_long_to_wait() {
        let limiter = RateLimiter::<u8>::per_minute(10);
        let t0 = 5_000_000_000;
        assert!((0..10).all(|_| limiter.take_at(&1, 1, t0).is_ok()));
        let wait = limiter.take_at(&1, 1, t0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(6), "one more every six seconds");
        assert_eq!(crate::error::retry_after_secs(wait), 6);
        assert!(limiter.take_at(&1, 1, t0 + 6_000_000).is_ok());
        assert!(limiter.take_at(&2, 10, t0).is_ok(), "a cost of the whole budget at once");
        assert!(limiter.take_at(&3, 11, t0).is_err(), "more than the budget never passes");
        assert!(limiter.take_at(&3, 10, t0).is_ok(), "a refused take took nothing");
    }

    #[test]
    fn ipv6_addresses_share_their_64_and_mapped_ipv4_is_ipv4() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }
}
