//! The `outbox` table: notifications waiting to be delivered, written in the
//! poll's transaction and worked off by the delivery worker.

use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;

use super::{StoreError, millis};

/// Queues a notification; a second row with the same `dedup_key` is ignored.
/// Returns the new row's id, or `None` for a duplicate.
pub async fn enqueue(
    conn: &mut SqliteConnection,
    channel: &str,
    dedup_key: &str,
    job: Option<i64>,
    payload: &str,
    now: DateTime<Utc>,
) -> Result<Option<i64>, StoreError> {
    let result = sqlx::query(
        r#"INSERT INTO outbox (channel, dedup_key, job, payload, created_at, next_attempt_at)
           VALUES (?1, ?2, ?3, ?4, ?5, ?5)
           ON CONFLICT (dedup_key) DO NOTHING"#,
    )
    .bind(channel)
    .bind(dedup_key)
    .bind(job)
    .bind(payload)
    .bind(millis(now))
    .execute(&mut *conn)
    .await?;
    Ok((result.rows_affected() == 1).then(|| result.last_insert_rowid()))
}
