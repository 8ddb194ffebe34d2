//! Per-instance cache of the pass lookups behind the Apple web service's authenticated endpoints.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::store::{MemberRecord, Store, StoreResult};

/// An entry is used only while no pass changed since it was read (the store's change generation), so it
/// is never stale on a single instance; with several instances (PostgreSQL), where another instance's
/// change would not move this generation, it is bypassed.
#[derive(Default)]
pub struct RecordCache {
    entries: RwLock<HashMap<String, (u64, Arc<MemberRecord>)>>,
}

const MAX_ENTRIES: usize = 100_000;

impl RecordCache {
    pub async fn get(&self, store: &Store, serial: &str) -> StoreResult<Option<Arc<MemberRecord>>> {
        let cacheable = store.is_sqlite();
        let generation = store.change_generation();
        if cacheable {
            let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
            if let Some((g, record)) = entries.get(serial)
                && *g == generation
            {
                return Ok(Some(record.clone()));
            }
        }
        let Some(record) = store.member_by_serial(serial).await? else { return Ok(None) };
        let record = Arc::new(record);
        if cacheable {
            let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(serial.to_string(), (generation, record.clone()));
        }
        Ok(Some(record))
    }
}
