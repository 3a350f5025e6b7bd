//! The `polls` table: one row per poll, successful or not.

use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;

use super::{StoreError, millis};

/// A poll about to be recorded.
#[derive(Debug, Clone)]
pub struct NewPoll<'a> {
    pub job: i64,
    pub at: DateTime<Utc>,
    pub duration_ms: i64,
    /// `ok`, or the error class.
    pub outcome: &'a str,
    pub error_code: Option<&'a str>,
    pub error_text: Option<&'a str>,
    pub request_id: Option<&'a str>,
    pub attempts: u32,
    pub snapshot: Option<i64>,
    /// `None` when unchanged since the job's previous successful poll.
    pub volatile: Option<&'a [u8]>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PollRow {
    pub id: i64,
    pub job: i64,
    pub at: i64,
    pub duration_ms: i64,
    pub outcome: String,
    pub error_code: Option<String>,
    pub error_text: Option<String>,
    pub request_id: Option<String>,
    pub attempts: i64,
    pub snapshot: Option<i64>,
    pub volatile: Option<Vec<u8>>,
}

impl PollRow {
    pub fn is_ok(&self) -> bool {
        self.snapshot.is_some()
    }
}

/// `SELECT <every column> FROM polls <rest>`, as the `'static` SQL sqlx wants.
macro_rules! select_polls {
    ($rest:literal) => {
        concat!(
            "SELECT id, job, at, duration_ms, outcome, error_code, error_text, request_id, attempts, snapshot, volatile FROM polls ",
            $rest
        )
    };
}

pub async fn insert(conn: &mut SqliteConnection, poll: &NewPoll<'_>) -> Result<i64, StoreError> {
    let id = sqlx::query(
        r#"INSERT INTO polls (job, at, duration_ms, outcome, error_code, error_text, request_id, attempts, snapshot, volatile)
           VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"#,
    )
    .bind(poll.job)
    .bind(millis(poll.at))
    .bind(poll.duration_ms)
    .bind(poll.outcome)
    .bind(poll.error_code)
    .bind(poll.error_text)
    .bind(poll.request_id)
    .bind(i64::from(poll.attempts))
    .bind(poll.snapshot)
    .bind(poll.volatile)
    .execute(&mut *conn)
    .await?
    .last_insert_rowid();
    Ok(id)
}

/// The job's most recent successful poll.
pub async fn last_ok(conn: &mut SqliteConnection, job: i64) -> Result<Option<PollRow>, StoreError> {
    Ok(sqlx::query_as::<_, PollRow>(select_polls!(
        "WHERE job = ?1 AND snapshot IS NOT NULL ORDER BY id DESC LIMIT 1"
    ))
    .bind(job)
    .fetch_optional(&mut *conn)
    .await?)
}

/// The job's most recent poll, successful or not.
pub async fn last(conn: &mut SqliteConnection, job: i64) -> Result<Option<PollRow>, StoreError> {
    Ok(
        sqlx::query_as::<_, PollRow>(select_polls!("WHERE job = ?1 ORDER BY id DESC LIMIT 1"))
            .bind(job)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// Polls of `job` at or after `since`, oldest first.
pub async fn since(
    conn: &mut SqliteConnection,
    job: i64,
    since: DateTime<Utc>,
) -> Result<Vec<PollRow>, StoreError> {
    Ok(
        sqlx::query_as::<_, PollRow>(select_polls!("WHERE job = ?1 AND at >= ?2 ORDER BY id"))
            .bind(job)
            .bind(millis(since))
            .fetch_all(&mut *conn)
            .await?,
    )
}

/// The poll (of the same job) before `poll_id` that succeeded, for diffing the first poll of a window.
pub async fn ok_before(
    conn: &mut SqliteConnection,
    job: i64,
    poll_id: i64,
) -> Result<Option<PollRow>, StoreError> {
    Ok(sqlx::query_as::<_, PollRow>(select_polls!(
        "WHERE job = ?1 AND id < ?2 AND snapshot IS NOT NULL ORDER BY id DESC LIMIT 1"
    ))
    .bind(job)
    .bind(poll_id)
    .fetch_optional(&mut *conn)
    .await?)
}

/// The volatile blob in force at `poll_id`: its own, or the latest one stored before it.
pub async fn volatile_at(
    conn: &mut SqliteConnection,
    job: i64,
    poll_id: i64,
) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT volatile FROM polls WHERE job = ?1 AND id <= ?2 AND volatile IS NOT NULL ORDER BY id DESC LIMIT 1",
    )
    .bind(job)
    .bind(poll_id)
    .fetch_optional(&mut *conn)
    .await?)
}
