//! Google's REST request rate, shared by every instance of a deployment (`TESSERA_GOOGLE_RATE`): one
//! `rate_limits` row (GCRA) in the database holds the next free time. Every Wallet REST request takes its
//! turn here (`WalletApi` asks before each send, the retry after a 401 included); a round reserves its
//! requests in one statement (`prefill`) so that the requests themselves cost no database round trip.

use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use super::client::Permits;
use crate::store::{Store, StoreError};

/// The rate limit's name in the database.
const RATE: &str = "google_rest";
/// Up to one second's worth of unused rate may be spent at once.
const BURST_US: i64 = 1_000_000;
/// Turns that came and were not spent within this long lapse (a round's unsent requests), so they never
/// add up to a burst beyond the rate.
const TURN_LIFETIME_US: i64 = 1_000_000;

/// Turns whose time has come, not spent yet: how many, and until when they may be spent (unix µs).
#[derive(Default)]
struct Ready {
    turns: i64,
    until_us: i64,
}

pub struct SharedRate {
    store: Store,
    /// µs of the shared rate one request costs.
    cost_us: i64,
    ready: Mutex<Ready>,
}

impl SharedRate {
    pub fn new(store: Store, requests_per_second: f64) -> SharedRate {
        let cost_us = (1_000_000.0 / requests_per_second).ceil().max(1.0) as i64;
        SharedRate { store, cost_us, ready: Mutex::new(Ready::default()) }
    }

    /// Requests in one second of the rate.
    pub fn per_second(&self) -> i64 {
        1_000_000 / self.cost_us
    }

    /// Reserves `n` requests' turns and waits for them; answers false without waiting when the turn is
    /// more than `max_wait` away (the reservation is spent either way, so the rate holds).
    async fn wait_turn(&self, n: i64, max_wait: Duration) -> Result<bool, StoreError> {
        let start = self.store.reserve_rate(RATE, n * self.cost_us, BURST_US).await?;
        let wait = start - crate::time_fmt::now_unix_us();
        if wait > max_wait.as_micros().min(i64::MAX as u128) as i64 {
            return Ok(false);
        }
        if wait > 0 {
            tokio::time::sleep(Duration::from_micros(wait as u64)).await;
        }
        Ok(true)
    }

    /// Reserves `n` requests in one statement and waits for their turn; `take` then spends them (within
    /// a second, after which the unspent ones lapse).
    pub async fn prefill(&self, n: i64) -> Result<(), StoreError> {
        if n > 0 && self.wait_turn(n, Duration::MAX).await? {
            self.add_ready(n);
        }
        Ok(())
    }

    /// Reserves one request's turn if it comes within `max_wait`; answers whether it did.
    pub async fn prefill_within(&self, max_wait: Duration) -> Result<bool, StoreError> {
        let ready = self.wait_turn(1, max_wait).await?;
        if ready {
            self.add_ready(1);
        }
        Ok(ready)
    }

    fn add_ready(&self, n: i64) {
        let now = crate::time_fmt::now_unix_us();
        let mut ready = self.ready.lock().unwrap_or_else(|p| p.into_inner());
        if ready.until_us < now {
            ready.turns = 0;
        }
        ready.turns += n;
        ready.until_us = now + TURN_LIFETIME_US;
    }

    /// Spends a ready turn, if one is there and has not lapsed.
    fn spend_ready(&self) -> bool {
        let now = crate::time_fmt::now_unix_us();
        let mut ready = self.ready.lock().unwrap_or_else(|p| p.into_inner());
        if ready.turns > 0 && ready.until_us >= now {
            ready.turns -= 1;
            return true;
        }
        false
    }

    /// One request's turn: a ready one, else one reserved now and waited for.
    async fn take_turn(&self) -> Result<(), StoreError> {
        if self.spend_ready() {
            return Ok(());
        }
        self.wait_turn(1, Duration::MAX).await.map(|_| ())
    }
}

impl Permits for SharedRate {
    fn take(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>> {
        Box::pin(async move {
            self.take_turn().await.map_err(|e| format!("the shared request rate could not be reserved: {e}"))
        })
    }
}
