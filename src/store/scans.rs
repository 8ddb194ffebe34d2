//! Staff scans: what a scan shows of a member (one statement), the scan recorded, a member's recent
//! scans.

use sqlx::Row;

use super::members::{MEMBER_COLUMNS, member_from_row};
use super::{MemberRecord, Store, StoreResult};

/// A member as a scan shows it.
#[derive(Debug, Clone)]
pub struct ScanTarget {
    pub member: MemberRecord,
    /// Devices that registered the Apple pass.
    pub devices: i64,
    /// Whether the member has the card in Google Wallet (callbacks).
    pub google_saved: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanRecord {
    /// Unix milliseconds.
    pub scanned_at: i64,
    pub staff: String,
    pub location: Option<String>,
}

impl Store {
    /// The member, its device count and Google state, in one statement.
    pub async fn scan_target(&self, program: &str, member_id: &str) -> StoreResult<Option<ScanTarget>> {
        let sql = format!(
            "SELECT {MEMBER_COLUMNS}, \
             (SELECT COUNT(*) FROM registrations r WHERE r.serial_number = p.serial_number), \
             (SELECT g.saved FROM google_objects g WHERE g.program = m.program AND g.member_id = m.member_id) \
             FROM members m JOIN apple_passes p ON p.program = m.program AND p.member_id = m.member_id \
             WHERE m.program = $1 AND m.member_id = $2"
        );
        let row =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(program).bind(member_id).fetch_optional(&self.reader).await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(ScanTarget {
            member: member_from_row(&row)?,
            devices: row.try_get(19)?,
            google_saved: row.try_get::<Option<i64>, _>(20)?.unwrap_or(0) != 0,
        }))
    }

    pub async fn record_scan(&self, program: &str, member_id: &str, scan: &ScanRecord) -> StoreResult<()> {
        sqlx::query("INSERT INTO scans (program, member_id, scanned_at, staff, location) VALUES ($1, $2, $3, $4, $5)")
            .bind(program)
            .bind(member_id)
            .bind(scan.scanned_at)
            .bind(scan.staff.as_str())
            .bind(scan.location.as_deref())
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// The member's most recent scans, newest first.
    pub async fn recent_scans(&self, program: &str, member_id: &str, limit: i64) -> StoreResult<Vec<ScanRecord>> {
        let rows = sqlx::query(
            "SELECT scanned_at, staff, location FROM scans WHERE program = $1 AND member_id = $2 \
             ORDER BY scanned_at DESC, id DESC LIMIT $3",
        )
        .bind(program)
        .bind(member_id)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| Ok(ScanRecord { scanned_at: r.try_get(0)?, staff: r.try_get(1)?, location: r.try_get(2)? }))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }
}
