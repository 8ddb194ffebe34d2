//! Apple web-service registrations: which device holds which pass, with its push token.

use sqlx::Row;

use super::{Store, StoreError, StoreResult};
use crate::domain::{DeviceLibraryId, PushToken};

/// Rounds of insert-then-update a registration tries while concurrent unregistrations keep removing it.
const RACE_ATTEMPTS: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    pub registered_at: i64,
    pub last_push_at: Option<i64>,
    pub last_push_result: Option<String>,
    pub last_push_reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    Created,
    AlreadyRegistered,
}

impl Store {
    /// Upserts a registration; the push token of an existing one is replaced. Each statement is atomic on
    /// its own, so concurrent calls (on several instances too) never fail on the primary key: of N first
    /// registrations, the one whose insert lands is `Created` (on PostgreSQL the others wait for it, then
    /// see the conflict) and the rest update it. An update that finds nothing, because an unregistration
    /// came between the two statements, inserts again (a few times; then the caller is told to retry).
    pub async fn register_device(
        &self,
        device: &DeviceLibraryId,
        pass_type: &str,
        serial: &str,
        push_token: &PushToken,
    ) -> StoreResult<Registered> {
        let (device, push_token) = (device.as_str(), push_token.as_str());
        for _ in 0..RACE_ATTEMPTS {
            let inserted = sqlx::query(
                "INSERT INTO registrations (device_library_id, pass_type_id, serial_number, push_token, registered_at) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (device_library_id, pass_type_id, serial_number) DO NOTHING",
            )
            .bind(device)
            .bind(pass_type)
            .bind(serial)
            .bind(push_token)
            .bind(crate::time_fmt::now_unix())
            .execute(&self.writer)
            .await?;
            if inserted.rows_affected() > 0 {
                return Ok(Registered::Created);
            }
            let updated = sqlx::query(
                "UPDATE registrations SET push_token = $1 \
                 WHERE device_library_id = $2 AND pass_type_id = $3 AND serial_number = $4",
            )
            .bind(push_token)
            .bind(device)
            .bind(pass_type)
            .bind(serial)
            .execute(&self.writer)
            .await?;
            if updated.rows_affected() > 0 {
                return Ok(Registered::AlreadyRegistered);
            }
        }
        Err(StoreError::Batch {
            message: "the registration kept changing under concurrent requests".into(),
            unavailable: true,
        })
    }

    pub async fn unregister_device(
        &self,
        device: &DeviceLibraryId,
        pass_type: &str,
        serial: &str,
    ) -> StoreResult<bool> {
        let device = device.as_str();
        let done = sqlx::query(
            "DELETE FROM registrations WHERE device_library_id = $1 AND pass_type_id = $2 AND serial_number = $3",
        )
        .bind(device)
        .bind(pass_type)
        .bind(serial)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The serials registered to a device for a pass type that changed after `since` (all of them when
    /// `since` is `None`), and the tag that covers them. One statement, so on PostgreSQL the serials and
    /// the tag come from one snapshot: the counter is bumped under a row lock inside every changing
    /// transaction, so a committed counter value covers only committed changes.
    pub async fn updated_serials(
        &self,
        device: &DeviceLibraryId,
        pass_type: &str,
        since: Option<i64>,
    ) -> StoreResult<(Vec<String>, i64)> {
        let device = device.as_str();
        let rows = sqlx::query(
            "SELECT c.value, r.serial_number, COALESCE(p.update_tag, cp.update_tag) FROM counters c \
             LEFT JOIN registrations r ON r.device_library_id = $1 AND r.pass_type_id = $2 \
             LEFT JOIN apple_passes p ON p.serial_number = r.serial_number \
             LEFT JOIN coupons cp ON cp.serial_number = r.serial_number \
             WHERE c.name = 'pass_update_tag' ORDER BY r.serial_number",
        )
        .bind(device)
        .bind(pass_type)
        .fetch_all(&self.reader)
        .await?;
        let mut current = 0;
        let mut serials = Vec::new();
        for row in &rows {
            current = row.try_get::<i64, _>(0)?;
            let serial: Option<String> = row.try_get(1)?;
            let tag: Option<i64> = row.try_get(2)?;
            if let (Some(serial), Some(tag)) = (serial, tag) {
                // A tag from the future (a restored database) cannot be trusted: answer everything.
                if since.is_none_or(|s| s > current || tag > s) {
                    serials.push(serial);
                }
            }
        }
        Ok((serials, current))
    }

    pub async fn devices_of(&self, serial: &str) -> StoreResult<Vec<DeviceRecord>> {
        let rows = sqlx::query(
            "SELECT registered_at, last_push_at, last_push_result, last_push_reason FROM registrations \
             WHERE serial_number = $1 ORDER BY registered_at, device_library_id",
        )
        .bind(serial)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DeviceRecord {
                    registered_at: r.try_get(0)?,
                    last_push_at: r.try_get(1)?,
                    last_push_result: r.try_get(2)?,
                    last_push_reason: r.try_get(3)?,
                })
            })
            .collect()
    }
}
