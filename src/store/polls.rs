//! The `polls` table: one row per poll, successful or not.

use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

use super::batch::Deferred;
use super::{Backend, StoreError, Tx, backend, millis};

/// A poll about to be recorded.
#[derive(Debug, Clone)]
pub struct NewPoll {
    pub job: i64,
    pub at: DateTime<Utc>,
    pub duration_ms: i64,
    /// `ok`, or the error class.
    pub outcome: &'static str,
    pub error_code: Option<String>,
    pub error_text: Option<String>,
    pub request_id: Option<String>,
    pub attempts: u32,
    pub snapshot: Option<i64>,
    /// `None` when unchanged since the job's previous successful poll.
    pub volatile: Option<Vec<u8>>,
}

/// Polls queued in a transaction and written together just before it
/// commits (see `store::batch`). Ids are handed out as polls are queued, so
/// rows that refer to a poll can be written before it: the transaction defers
/// its foreign-key checks to the commit.
#[derive(Debug, Default)]
pub struct PendingPolls {
    next_id: i64,
    rows: Vec<NewPoll>,
}

/// Rows per `INSERT` (11 parameters each, far below SQLite's limit).
const ROWS_PER_INSERT: usize = 64;

impl PendingPolls {
    /// Queues a poll; returns the id it will have.
    pub fn push(&mut self, poll: NewPoll) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        self.rows.push(poll);
        id
    }
}

/// Columns of one `polls` row as the batched `INSERT` writes them.
const POLL_COLUMNS: usize = 11;

/// `INSERT INTO polls (…) VALUES ($1, …, $11), ($12, …)` for `rows` rows;
/// numbered parameters, which both engines read.
fn insert_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO polls (id, job, at, duration_ms, outcome, error_code, error_text, request_id, attempts, snapshot, volatile) VALUES ",
    );
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..POLL_COLUMNS {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", row * POLL_COLUMNS + column + 1));
        }
        sql.push(')');
    }
    sql
}

impl Deferred for PendingPolls {
    async fn begin(&mut self, tx: &mut Tx) -> Result<(), StoreError> {
        match backend(tx) {
            Backend::Sqlite => {
                sqlx::query("PRAGMA defer_foreign_keys = ON")
                    .execute(&mut **tx)
                    .await?;
            }
            // References to polls are deferrable there; the lock keeps
            // another writer (`once` beside the leader) off these ids.
            Backend::Postgres => {
                sqlx::query("LOCK TABLE polls IN SHARE ROW EXCLUSIVE MODE")
                    .execute(&mut **tx)
                    .await?;
            }
        }
        // Inside the write lock, so no other writer can take these ids.
        let last: Option<i64> = sqlx::query_scalar("SELECT max(id) FROM polls")
            .fetch_one(&mut **tx)
            .await?;
        self.next_id = last.unwrap_or(0) + 1;
        self.rows.clear();
        Ok(())
    }

    async fn flush(&mut self, tx: &mut Tx) -> Result<(), StoreError> {
        let first_id = self.next_id - self.rows.len() as i64;
        for (chunk_index, chunk) in self.rows.chunks(ROWS_PER_INSERT).enumerate() {
            let base = first_id + (chunk_index * ROWS_PER_INSERT) as i64;
            let mut query = sqlx::query(sqlx::AssertSqlSafe(insert_sql(chunk.len())));
            for (i, poll) in chunk.iter().enumerate() {
                query = query
                    .bind(base + i as i64)
                    .bind(poll.job)
                    .bind(millis(poll.at))
                    .bind(poll.duration_ms)
                    .bind(poll.outcome)
                    .bind(poll.error_code.as_deref())
                    .bind(poll.error_text.as_deref())
                    .bind(poll.request_id.as_deref())
                    .bind(i64::from(poll.attempts))
                    .bind(poll.snapshot)
                    .bind(poll.volatile.as_deref());
            }
            query.execute(&mut **tx).await?;
        }
        self.rows.clear();
        Ok(())
    }
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

/// The job's most recent successful poll.
pub async fn last_ok(conn: &mut AnyConnection, job: i64) -> Result<Option<PollRow>, StoreError> {
    Ok(sqlx::query_as::<_, PollRow>(select_polls!(
        "WHERE job = $1 AND snapshot IS NOT NULL ORDER BY id DESC LIMIT 1"
    ))
    .bind(job)
    .fetch_optional(&mut *conn)
    .await?)
}

/// The job's most recent poll, successful or not.
pub async fn last(conn: &mut AnyConnection, job: i64) -> Result<Option<PollRow>, StoreError> {
    Ok(
        sqlx::query_as::<_, PollRow>(select_polls!("WHERE job = $1 ORDER BY id DESC LIMIT 1"))
            .bind(job)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// Polls of `job` at or after `since`, oldest first.
pub async fn since(
    conn: &mut AnyConnection,
    job: i64,
    since: DateTime<Utc>,
) -> Result<Vec<PollRow>, StoreError> {
    Ok(
        sqlx::query_as::<_, PollRow>(select_polls!("WHERE job = $1 AND at >= $2 ORDER BY id"))
            .bind(job)
            .bind(millis(since))
            .fetch_all(&mut *conn)
            .await?,
    )
}

/// The poll (of the same job) before `poll_id` that succeeded, for diffing the first poll of a window.
pub async fn ok_before(
    conn: &mut AnyConnection,
    job: i64,
    poll_id: i64,
) -> Result<Option<PollRow>, StoreError> {
    Ok(sqlx::query_as::<_, PollRow>(select_polls!(
        "WHERE job = $1 AND id < $2 AND snapshot IS NOT NULL ORDER BY id DESC LIMIT 1"
    ))
    .bind(job)
    .bind(poll_id)
    .fetch_optional(&mut *conn)
    .await?)
}

/// The volatile blob in force at `poll_id`: its own, or the latest one stored before it.
pub async fn volatile_at(
    conn: &mut AnyConnection,
    job: i64,
    poll_id: i64,
) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT volatile FROM polls WHERE job = $1 AND id <= $2 AND volatile IS NOT NULL ORDER BY id DESC LIMIT 1",
    )
    .bind(job)
    .bind(poll_id)
    .fetch_optional(&mut *conn)
    .await?)
}

/// Every stored poll, of every job.
pub async fn count(conn: &mut AnyConnection) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM polls")
        .fetch_one(&mut *conn)
        .await?)
}
