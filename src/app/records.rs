//! Per-instance cache of the pass lookups behind the Apple web service's authenticated endpoints (by
//! serial) and the member's .pkpass link (by public id).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::metrics::Metrics;
use crate::store::{MemberRecord, Store, StoreResult};

type Entries = quick_cache::sync::Cache<String, (u64, Arc<MemberRecord>)>;

/// An entry is used only while no pass changed since it was read (the store's change generation, which
/// every store on one SQLite file in this process shares), so it is never stale on a single instance;
/// with several instances (PostgreSQL), where another instance's change would not move this generation,
/// it is bypassed. Bounded in entries: a record with its keys takes about 1.5 KB, so the two maps (which
/// share their records) stay within about 6 MB beside the signed-pass cache's budget, enough for the
/// devices and links in use at once; the 20,000-pass memory test holds the sum.
pub struct RecordCache {
    by_serial: Entries,
    by_public_id: Entries,
    metrics: Arc<Metrics>,
}

const MAX_ENTRIES: usize = 4_096;

impl RecordCache {
    /// Counts its hits in `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> RecordCache {
        RecordCache { by_serial: Entries::new(MAX_ENTRIES), by_public_id: Entries::new(MAX_ENTRIES), metrics }
    }

    /// The pass with this serial number (the web service's lookup).
    pub async fn get(&self, store: &Store, serial: &str) -> StoreResult<Option<Arc<MemberRecord>>> {
        self.cached(&self.by_serial, store, serial, store.member_by_serial(serial)).await
    }

    /// The member behind this public id (the .pkpass link's lookup).
    pub async fn by_public_id(&self, store: &Store, public_id: &str) -> StoreResult<Option<Arc<MemberRecord>>> {
        self.cached(&self.by_public_id, store, public_id, store.member_by_public_id(public_id)).await
    }

    /// The entry for `key` in `entries` if it is as new as the store's generation, else what `read` finds,
    /// kept in both maps as one allocation: a member whose link was opened is asked for by serial next (by
    /// the device that added the pass), and two copies of every record would double the maps' memory.
    async fn cached(
        &self,
        entries: &Entries,
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
            self.metrics.record_cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Some(record));
        }
        let Some(record) = read.await? else { return Ok(None) };
        let record = Arc::new(record);
        if cacheable {
            self.by_serial.insert(record.serial_number.clone(), (generation, record.clone()));
            self.by_public_id.insert(record.public_id.clone(), (generation, record.clone()));
        }
        Ok(Some(record))
    }
}
