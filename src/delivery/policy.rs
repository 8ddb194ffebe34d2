//! When a failed delivery is tried again: one policy for every channel, with its parameters per channel.
//! Pure (the randomness is passed in), so the schedule is tested without a clock or a database.

use std::time::Duration;

/// How long to wait before each retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delays {
    /// `base_ms`, doubling per attempt up to `cap_ms`.
    Doubling { base_ms: i64, cap_ms: i64 },
    /// The n-th retry waits the n-th entry (the last one repeats): a fixed schedule such as the Standard
    /// Webhooks one.
    Schedule(&'static [i64]),
}

/// A channel's retry parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub delays: Delays,
    /// Attempts before a job is given up; `None` retries for as long as it takes (the job holds an
    /// absolute state, and a later change would only send the same thing).
    pub budget: Option<i64>,
    /// The longest `Retry-After` honoured; a longer one is cut to this.
    pub max_retry_after_ms: i64,
    /// While the destination refuses our credentials (403), one probe this often.
    pub forbidden_probe_ms: i64,
}

/// Every delay is spread by up to this much either way, so instances that failed together do not retry
/// in step.
const JITTER: f64 = 0.2;

impl RetryPolicy {
    /// Whether an attempt that failed after `attempts` earlier ones spends the budget.
    pub fn exhausted(&self, attempts: i64) -> bool {
        self.budget.is_some_and(|budget| attempts + 1 >= budget)
    }

    /// The delay before the next try of a job that failed after `attempts` earlier ones: the
    /// destination's `Retry-After` when it gave one (up to `max_retry_after_ms`), else the channel's
    /// delays, spread by ±20 % with `jitter` (0.0..1.0, the caller's randomness).
    pub fn delay_ms(&self, attempts: i64, retry_after: Option<Duration>, jitter: f64) -> i64 {
        if let Some(after) = retry_after {
            return (after.as_millis().min(i64::MAX as u128) as i64).min(self.max_retry_after_ms);
        }
        let planned = match self.delays {
            Delays::Doubling { base_ms, cap_ms } => base_ms.saturating_mul(1_i64 << attempts.clamp(0, 40)).min(cap_ms),
            Delays::Schedule(delays) => {
                let at = usize::try_from(attempts).unwrap_or(0).min(delays.len().saturating_sub(1));
                delays.get(at).copied().unwrap_or(0)
            }
        };
        (planned as f64 * (1.0 - JITTER + 2.0 * JITTER * jitter.clamp(0.0, 1.0))) as i64
    }

    /// The delay before retrying a round that could not be prepared: the first retry's, whatever the
    /// job's history (it was not sent).
    pub fn postpone_ms(&self, jitter: f64) -> i64 {
        self.delay_ms(0, None, jitter).max(1000)
    }
}

/// A fraction in [0, 1) from OpenSSL's generator, for jitter.
pub fn random_fraction() -> f64 {
    let mut b = [0u8; 2];
    let _ = openssl::rand::rand_bytes(&mut b);
    u16::from_le_bytes(b) as f64 / 65536.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        delays: Delays::Doubling { base_ms: 1000, cap_ms: 300_000 },
        budget: Some(12),
        max_retry_after_ms: 3_600_000,
        forbidden_probe_ms: 60_000,
    };

    #[test]
    fn delays_double_to_the_cap_spread_by_a_fifth_either_way() {
        assert_eq!(POLICY.delay_ms(0, None, 0.0), 800);
        assert_eq!(POLICY.delay_ms(0, None, 0.5), 1000);
        assert_eq!(POLICY.delay_ms(3, None, 1.0), 9600);
        for attempts in 0..100 {
            let (low, high) = (POLICY.delay_ms(attempts, None, 0.0), POLICY.delay_ms(attempts, None, 0.999));
            assert!(800 <= low && low <= high && high < 360_000, "{attempts}: {low}..{high}");
        }
        assert_eq!(POLICY.delay_ms(60, None, 0.5), 300_000);
        // Twelve attempts, eleven waits: about eighteen minutes of retries.
        let total: i64 = (0..11).map(|n| POLICY.delay_ms(n, None, 0.5)).sum();
        assert_eq!(total, 1_111_000);
    }

    #[test]
    fn a_schedule_is_followed_and_its_last_entry_repeats() {
        const WEBHOOKS: &[i64] = &[0, 5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000];
        let policy = RetryPolicy { delays: Delays::Schedule(WEBHOOKS), budget: Some(8), ..POLICY };
        let waits: Vec<i64> = (0..9).map(|n| policy.delay_ms(n, None, 0.5)).collect();
        assert_eq!(&waits[..7], WEBHOOKS);
        assert_eq!(waits[7..], [36_000_000, 36_000_000]);
        let ten_hours = policy.delay_ms(6, None, 0.0);
        assert_eq!(ten_hours, 28_800_000, "a 10 h wait is spread to 8-12 h, not halved");
    }

    #[test]
    fn retry_after_is_honoured_up_to_its_bound() {
        assert_eq!(POLICY.delay_ms(5, Some(Duration::from_secs(7)), 0.3), 7000);
        assert_eq!(POLICY.delay_ms(0, Some(Duration::ZERO), 0.3), 0);
        assert_eq!(POLICY.delay_ms(0, Some(Duration::from_secs(86_400)), 0.3), 3_600_000);
    }

    #[test]
    fn the_budget_counts_this_attempt() {
        assert!(!POLICY.exhausted(10));
        assert!(POLICY.exhausted(11));
        assert!(!RetryPolicy { budget: None, ..POLICY }.exhausted(1_000_000));
    }
}
