//! The `outbox` table: notifications waiting to be delivered, written in the
//! poll's transaction and worked off by the delivery worker; and the
//! summaries of it that health checks, metrics and the watchdog read.

use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

use super::{Backend, StoreError, backend, millis};

/// Where a row stands; the `status` column holds [`OutboxStatus::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxStatus {
    Pending,
    Delivered,
    Dead,
}

impl OutboxStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Delivered => "delivered",
            OutboxStatus::Dead => "dead",
        }
    }
}

/// Queues a notification; a second row with the same `dedup_key` is ignored.
/// Returns the new row's id, or `None` for a duplicate.
pub async fn enqueue(
    conn: &mut AnyConnection,
    channel: &str,
    dedup_key: &str,
    job: Option<i64>,
    payload: &str,
    now: DateTime<Utc>,
) -> Result<Option<i64>, StoreError> {
    Ok(sqlx::query_scalar(
        r#"INSERT INTO outbox (channel, dedup_key, job, payload, created_at, next_attempt_at)
           VALUES ($1, $2, $3, $4, $5, $5)
           ON CONFLICT (dedup_key) DO NOTHING
           RETURNING id"#,
    )
    .bind(channel)
    .bind(dedup_key)
    .bind(job)
    .bind(payload)
    .bind(millis(now))
    .fetch_optional(&mut *conn)
    .await?)
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: i64,
    pub channel: String,
    pub dedup_key: String,
    pub job: Option<i64>,
    pub payload: String,
    pub status: String,
    pub created_at: i64,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub delivered_at: Option<i64>,
    pub dead_at: Option<i64>,
}

macro_rules! select_outbox {
    ($rest:literal) => {
        concat!(
            "SELECT id, channel, dedup_key, job, payload, status, created_at, attempts, next_attempt_at, last_error, delivered_at, dead_at FROM outbox ",
            $rest
        )
    };
}

/// How a delivery reads the rows it is about to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Plain reads (SQLite: the only writer is this process).
    Read,
    /// `FOR UPDATE SKIP LOCKED` (PostgreSQL): the rows stay locked by the
    /// delivery's transaction until they are marked, and another instance
    /// passes over them instead of sending them again.
    Lock,
}

impl Claim {
    fn suffix(self) -> &'static str {
        match self {
            Claim::Read => "",
            Claim::Lock => " FOR UPDATE SKIP LOCKED",
        }
    }
}

/// The oldest pending row of a channel: it decides when the channel may send next.
pub async fn oldest_pending(
    conn: &mut AnyConnection,
    channel: &str,
    claim: Claim,
) -> Result<Option<OutboxRow>, StoreError> {
    let sql = format!(
        "{}{}",
        select_outbox!("WHERE status = 'pending' AND channel = $1 ORDER BY id LIMIT 1"),
        claim.suffix()
    );
    Ok(sqlx::query_as::<_, OutboxRow>(sqlx::AssertSqlSafe(sql))
        .bind(channel)
        .fetch_optional(&mut *conn)
        .await?)
}

/// Pending rows of a channel from `first_id` on, created up to `created_until`, due by `now`.
pub async fn batch(
    conn: &mut AnyConnection,
    channel: &str,
    (first_id, created_until): (i64, i64),
    now: DateTime<Utc>,
    limit: i64,
    claim: Claim,
) -> Result<Vec<OutboxRow>, StoreError> {
    let sql = format!(
        "{}{}",
        select_outbox!(
            "WHERE status = 'pending' AND channel = $1 AND id >= $2 AND created_at <= $3 AND next_attempt_at <= $4 ORDER BY id LIMIT $5"
        ),
        claim.suffix()
    );
    Ok(sqlx::query_as::<_, OutboxRow>(sqlx::AssertSqlSafe(sql))
        .bind(channel)
        .bind(first_id)
        .bind(created_until)
        .bind(millis(now))
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?)
}

fn id_list(ids: &[i64]) -> String {
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".into())
}

pub async fn mark_delivered(
    conn: &mut AnyConnection,
    ids: &[i64],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(match backend(conn) {
        Backend::Sqlite => {
            r#"UPDATE outbox SET status = 'delivered', delivered_at = $2, attempts = attempts + 1, last_error = NULL
               WHERE id IN (SELECT value FROM json_each($1))"#
        }
        Backend::Postgres => {
            r#"UPDATE outbox SET status = 'delivered', delivered_at = $2, attempts = attempts + 1, last_error = NULL
               WHERE id IN (SELECT value::bigint FROM jsonb_array_elements_text($1::jsonb))"#
        }
    })
    .bind(id_list(ids))
    .bind(millis(now))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn mark_retry(
    conn: &mut AnyConnection,
    ids: &[i64],
    next_attempt: DateTime<Utc>,
    error: &str,
) -> Result<(), StoreError> {
    sqlx::query(match backend(conn) {
        Backend::Sqlite => {
            r#"UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $2, last_error = $3
               WHERE id IN (SELECT value FROM json_each($1))"#
        }
        Backend::Postgres => {
            r#"UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $2, last_error = $3
               WHERE id IN (SELECT value::bigint FROM jsonb_array_elements_text($1::jsonb))"#
        }
    })
    .bind(id_list(ids))
    .bind(millis(next_attempt))
    .bind(error)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn mark_dead(
    conn: &mut AnyConnection,
    ids: &[i64],
    now: DateTime<Utc>,
    error: &str,
) -> Result<(), StoreError> {
    sqlx::query(match backend(conn) {
        Backend::Sqlite => {
            r#"UPDATE outbox SET status = 'dead', dead_at = $2, attempts = attempts + 1, last_error = $3
               WHERE id IN (SELECT value FROM json_each($1))"#
        }
        Backend::Postgres => {
            r#"UPDATE outbox SET status = 'dead', dead_at = $2, attempts = attempts + 1, last_error = $3
               WHERE id IN (SELECT value::bigint FROM jsonb_array_elements_text($1::jsonb))"#
        }
    })
    .bind(id_list(ids))
    .bind(millis(now))
    .bind(error)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Rows waiting for a channel the config no longer has become dead, with the reason.
pub async fn bury_unknown_channels(
    conn: &mut AnyConnection,
    known: &[String],
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    Ok(sqlx::query(match backend(conn) {
        Backend::Sqlite => {
            r#"UPDATE outbox SET status = 'dead', dead_at = $2,
                   last_error = 'channel `' || channel || '` is not in the config any more'
               WHERE status = 'pending' AND channel NOT IN (SELECT value FROM json_each($1))"#
        }
        Backend::Postgres => {
            r#"UPDATE outbox SET status = 'dead', dead_at = $2,
                   last_error = 'channel `' || channel || '` is not in the config any more'
               WHERE status = 'pending' AND channel NOT IN (SELECT jsonb_array_elements_text($1::jsonb))"#
        }
    })
    .bind(serde_json::to_string(known).unwrap_or_else(|_| "[]".into()))
    .bind(millis(now))
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

/// Rows with `status`, oldest first.
pub async fn list(
    conn: &mut AnyConnection,
    status: OutboxStatus,
) -> Result<Vec<OutboxRow>, StoreError> {
    Ok(
        sqlx::query_as::<_, OutboxRow>(select_outbox!("WHERE status = $1 ORDER BY id"))
            .bind(status.as_str())
            .fetch_all(&mut *conn)
            .await?,
    )
}

/// The DTS job a row is about, if it still exists.
pub async fn job_of(conn: &mut AnyConnection, id: i64) -> Result<Option<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT j.dts_job_id FROM outbox o JOIN jobs j ON j.id = o.job WHERE o.id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?)
}

/// Puts a dead (or stuck) row back in the queue, due now, with a fresh max age.
pub async fn retry(
    conn: &mut AnyConnection,
    id: i64,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    Ok(sqlx::query(
        r#"UPDATE outbox SET status = 'pending', next_attempt_at = $2, created_at = $2, dead_at = NULL
           WHERE id = $1 AND status != 'delivered'"#,
    )
    .bind(id)
    .bind(millis(now))
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1)
}

/// Per channel: pending rows, dead rows, and the most recent error.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ChannelCounts {
    pub channel: String,
    pub pending: i64,
    pub dead: i64,
    pub last_error: Option<String>,
}

pub async fn counts(conn: &mut AnyConnection) -> Result<Vec<ChannelCounts>, StoreError> {
    Ok(sqlx::query_as::<_, ChannelCounts>(
        r#"SELECT channel,
                  COUNT(*) FILTER (WHERE status = 'pending') AS pending,
                  COUNT(*) FILTER (WHERE status = 'dead') AS dead,
                  (SELECT o2.last_error FROM outbox o2 WHERE o2.channel = o.channel AND o2.last_error IS NOT NULL
                   ORDER BY o2.id DESC LIMIT 1) AS last_error
           FROM outbox o WHERE status != 'delivered' GROUP BY channel ORDER BY channel"#,
    )
    .fetch_all(&mut *conn)
    .await?)
}

/// Pending rows, all of them or only those due by `due_by`.
pub async fn pending_count(
    conn: &mut AnyConnection,
    due_by: Option<DateTime<Utc>>,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND next_attempt_at <= $1",
    )
    .bind(due_by.map(millis).unwrap_or(i64::MAX))
    .fetch_one(&mut *conn)
    .await?)
}

/// The oldest pending row that has already failed at least once: how long
/// delivery has been stuck, on which channel, and why.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StuckRow {
    pub created_at: i64,
    pub channel: String,
    pub last_error: Option<String>,
}

pub async fn oldest_retried(conn: &mut AnyConnection) -> Result<Option<StuckRow>, StoreError> {
    Ok(sqlx::query_as::<_, StuckRow>(
        "SELECT created_at, channel, last_error FROM outbox WHERE status = 'pending' AND attempts > 0 ORDER BY id LIMIT 1",
    )
    .fetch_optional(&mut *conn)
    .await?)
}
