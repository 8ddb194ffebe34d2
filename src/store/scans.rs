//! Staff scans: what a scan shows of a member (one statement), the scan recorded, a member's recent
//! scans.

use sqlx::Row;
use tokio::sync::{mpsc, oneshot};

use super::members::{MEMBER_COLUMN_COUNT, MEMBER_COLUMNS, member_from_row};
use super::{MemberRecord, Params, Store, StoreError, StoreResult};
use crate::domain::MemberId;

/// Scans written per statement at most.
const SCANS_PER_BATCH: usize = 500;

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
    pub async fn scan_target(&self, program: &str, member_id: &MemberId) -> StoreResult<Option<ScanTarget>> {
        let member_id = member_id.as_str();
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
            devices: row.try_get(MEMBER_COLUMN_COUNT)?,
            google_saved: row.try_get::<Option<i64>, _>(MEMBER_COLUMN_COUNT + 1)?.unwrap_or(0) != 0,
        }))
    }

    /// Deletes up to `limit` of the oldest scans recorded before `before_ms` (unix ms); answers how many
    /// went (fewer than `limit`: none are left).
    pub async fn prune_scans(&self, before_ms: i64, limit: i64) -> StoreResult<u64> {
        Ok(sqlx::query(
            "DELETE FROM scans WHERE id IN (SELECT id FROM scans WHERE scanned_at < $1 ORDER BY scanned_at LIMIT $2)",
        )
        .bind(before_ms)
        .bind(limit)
        .execute(&self.writer)
        .await?
        .rows_affected())
    }

    /// The member's most recent scans, newest first.
    pub async fn recent_scans(&self, program: &str, member_id: &MemberId, limit: i64) -> StoreResult<Vec<ScanRecord>> {
        let member_id = member_id.as_str();
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

/// A scan to record: (program, member id, the scan).
type Pending = ((String, String, ScanRecord), oneshot::Sender<Result<(), (String, bool)>>);

/// Records scans with group commit: each caller waits for its row to be committed, and the scans that
/// arrive while one batch is written go together in the next multi-row insert (on SQLite's single
/// writer one insert per scan capped the scan API at ~3,700/s; BENCHMARKS.md).
#[derive(Clone)]
pub struct ScanRecorder {
    queue: mpsc::Sender<Pending>,
}

impl ScanRecorder {
    /// Starts the writer task (on the current runtime).
    pub fn start(store: Store) -> ScanRecorder {
        let (queue, mut incoming) = mpsc::channel::<Pending>(4 * SCANS_PER_BATCH);
        tokio::spawn(async move {
            while let Some(first) = incoming.recv().await {
                let mut batch = vec![first];
                while batch.len() < SCANS_PER_BATCH {
                    match incoming.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                let (rows, waiters): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
                let result = store.insert_scans(&rows).await.map_err(|e| {
                    let unavailable = e.is_unavailable();
                    (format!("{:#}", anyhow::Error::new(e)), unavailable)
                });
                for waiter in waiters {
                    let _ = waiter.send(result.clone());
                }
            }
        });
        ScanRecorder { queue }
    }

    /// Records one scan; answers once it is committed.
    pub async fn record(&self, program: &str, member_id: &MemberId, scan: ScanRecord) -> StoreResult<()> {
        let (done, committed) = oneshot::channel();
        let gone = || StoreError::Corrupt("the scan recorder stopped".into());
        self.queue
            .send(((program.to_string(), member_id.as_str().to_owned(), scan), done))
            .await
            .map_err(|_| gone())?;
        match committed.await.map_err(|_| gone())? {
            Ok(()) => Ok(()),
            Err((message, unavailable)) => Err(StoreError::Batch { message, unavailable }),
        }
    }
}

impl Store {
    async fn insert_scans(&self, rows: &[(String, String, ScanRecord)]) -> StoreResult<()> {
        let mut p = Params::new(self.sqlite);
        let values = p.rows(rows.len(), &["{}", "{}", "CAST({} AS BIGINT)", "{}", "{}"]);
        let sql = format!("INSERT INTO scans (program, member_id, scanned_at, staff, location) VALUES {values}");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (program, member_id, scan) in rows {
            query = query
                .bind(program.clone())
                .bind(member_id.clone())
                .bind(scan.scanned_at)
                .bind(scan.staff.clone())
                .bind(scan.location.clone());
        }
        query.execute(&self.writer).await?;
        Ok(())
    }
}
