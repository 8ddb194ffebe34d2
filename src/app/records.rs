//! Per-instance cache of the pass lookups behind the Apple web service's authenticated endpoints (by
//! serial) and the member's .pkpass link (by public id).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::metrics::Metrics;
use crate::store::{MemberRecord, Store, StoreResult};

type Entries = quick_cache::sync::Cache<String, (u64, Arc<MemberRecord>)>;

/// An entry is used only while no pass changed since it was read (the store's change generation, which
/// every store on one SQLite file in this process shares), so it is never stale on a single instance;
/// with several instances (PostgreSQL), where another instance's change would not move this generation,
/// it is bypassed. Bounded in entries (a record is well under a kilobyte), so each map stays a few
/// megabytes beside the signed-pass cache's budget.
pub struct RecordCache {
    by_serial: Entries,
    by_public_id: Entries,
    metrics: Arc<Metrics>,
}

const MAX_ENTRIES: usize = 10_000;

impl RecordCache {
    /// Counts its hits in `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> RecordCache {
        RecordCache { by_serial: Entries::new(MAX_ENTRIES), by_public_id: Entries::new(MAX_ENTRIES), metrics }
    }

    /// The pass with this serial number (the web service's lookup).
    pub async fn get(&self, store: &Store, serial: &str) -> StoreResult<Option<Arc<MemberRecord>>> {
        cached(&self.by_serial, &self.metrics.record_cache_hits, store, serial, store.member_by_serial(serial)).await
    }

    /// The member behind this public id (the .pkpass link's lookup).
    pub async fn by_public_id(&self, store: &Store, public_id: &str) -> StoreResult<Option<Arc<MemberRecord>>> {
        cached(
            &self.by_public_id,
            &self.metrics.record_cache_hits,
            store,
            public_id,
            store.member_by_public_id(public_id),
        )
        .await
    }
}

/// The entry for `key` if it is as new as the store's generation, else what `read` finds (kept).
async fn cached(
    entries: &Entries,
    hits: &AtomicU64,
    store: &Store,
    key: &str,
    read: impl Future<Output = StoreResult<Option<MemberRecord>>>,
) -> StoreResult<Option<Arc<MemberRecord>>> {
    let cacheable = store.is_sqlite();
    // Read before the lookup: a change committed meanwhile moves it, so the entry is never newer than its stamp.
    let generation = store.change_generation();
    if cacheable
        && let Some((g, record)) = entries.get(key)
        && g == generation
    {
        hits.fetch_add(1, Ordering::Relaxed);
        return Ok(Some(record));
    }
    let Some(record) = read.await? else { return Ok(None) };
    let record = Arc::new(record);
    if cacheable {
        entries.insert(key.to_string(), (generation, record.clone()));
    }
    Ok(Some(record))
}
