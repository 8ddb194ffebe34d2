//! Per-instance cache of the pass lookups behind the Apple web service's authenticated endpoints.

use std::sync::Arc;

use crate::store::{MemberRecord, Store, StoreResult};

/// An entry is used only while no pass changed since it was read (the store's change generation), so it
/// is never stale on a single instance; with several instances (PostgreSQL), where another instance's
/// change would not move this generation, it is bypassed. Bounded in entries (a record is well under a
/// kilobyte), so it stays a few megabytes beside the signed-pass cache's budget.
pub struct RecordCache {
    entries: quick_cache::sync::Cache<String, (u64, Arc<MemberRecord>)>,
}

const MAX_ENTRIES: usize = 10_000;

impl Default for RecordCache {
    fn default() -> Self {
        RecordCache { entries: quick_cache::sync::Cache::new(MAX_ENTRIES) }
    }
}

impl RecordCache {
    pub async fn get(&self, store: &Store, serial: &str) -> StoreResult<Option<Arc<MemberRecord>>> {
        let cacheable = store.is_sqlite();
        let generation = store.change_generation();
        if cacheable
            && let Some((g, record)) = self.entries.get(serial)
            && g == generation
        {
            return Ok(Some(record));
        }
        let Some(record) = store.member_by_serial(serial).await? else { return Ok(None) };
        let record = Arc::new(record);
        if cacheable {
            self.entries.insert(serial.to_string(), (generation, record.clone()));
        }
        Ok(Some(record))
    }
}
