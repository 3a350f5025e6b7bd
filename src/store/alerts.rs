//! The `alerts` and `alert_events` tables: each alert's lifecycle state, and
//! every notification decision (sent or held back) with its event.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

use super::{StoreError, millis};
use crate::config::Severity;
use crate::rules::{AlertKey, AlertState, Event};

/// Loads the stored state of every alert of a job.
pub async fn load_for_job(
    conn: &mut AnyConnection,
    job: i64,
) -> Result<BTreeMap<AlertKey, AlertState>, StoreError> {
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT rule, path, state FROM alerts WHERE job = $1")
            .bind(job)
            .fetch_all(&mut *conn)
            .await?;
    let mut states = BTreeMap::new();
    for (rule, path, state) in rows {
        let state: AlertState = serde_json::from_str(&state)
            .map_err(|e| StoreError::Corrupt(format!("alert {rule}/{path}: {e}")))?;
        states.insert(AlertKey { rule, path }, state);
    }
    Ok(states)
}

/// Writes an alert's state, creating its row if needed; returns the row id.
pub async fn save(
    conn: &mut AnyConnection,
    job: i64,
    key: &AlertKey,
    severity: Severity,
    state: &AlertState,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    let json = serde_json::to_string(state).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(sqlx::query_scalar(
        r#"INSERT INTO alerts (rule, job, path, status, severity, state, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (rule, job, path) DO UPDATE SET
               status = excluded.status, severity = excluded.severity,
               state = excluded.state, updated_at = excluded.updated_at
           RETURNING id"#,
    )
    .bind(&key.rule)
    .bind(job)
    .bind(&key.path)
    .bind(state.status.as_str())
    .bind(severity.as_str())
    .bind(json)
    .bind(millis(now))
    .fetch_one(&mut *conn)
    .await?)
}

/// The row id of an alert, creating an inactive row if there is none (one-shot rules have no state).
pub async fn ensure(
    conn: &mut AnyConnection,
    job: i64,
    key: &AlertKey,
    severity: Severity,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    let existing: Option<i64> =
        sqlx::query_scalar("SELECT id FROM alerts WHERE rule = $1 AND job = $2 AND path = $3")
            .bind(&key.rule)
            .bind(job)
            .bind(&key.path)
            .fetch_optional(&mut *conn)
            .await?;
    match existing {
        Some(id) => Ok(id),
        None => save(conn, job, key, severity, &AlertState::default(), now).await,
    }
}

/// Records a notification decision; `suppressed` says why it was held back.
pub async fn insert_event(
    conn: &mut AnyConnection,
    alert: i64,
    poll: Option<i64>,
    event: &Event,
    suppressed: Option<&str>,
) -> Result<i64, StoreError> {
    let payload = serde_json::to_string(event).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(sqlx::query_scalar(
        r#"INSERT INTO alert_events (alert, poll, at, status, reason, suppressed, payload)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           RETURNING id"#,
    )
    .bind(alert)
    .bind(poll)
    .bind(millis(event.at))
    .bind(event.status.as_str())
    .bind(event.reason.as_str())
    .bind(suppressed)
    .bind(payload)
    .fetch_one(&mut *conn)
    .await?)
}

/// An alert that is pending or firing, with its latest notification
/// decision, for `status`, the API and the status page.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ActiveAlert {
    pub rule: String,
    pub dts_job_id: String,
    pub job_name: Option<String>,
    pub region: String,
    pub path: String,
    pub status: String,
    pub severity: String,
    pub state: String,
    /// The latest event as JSON (absent for a pending alert never notified).
    pub event: Option<String>,
    /// Why the latest event was held back, if it was (`silenced:ID`, `inhibited:RULE`).
    pub suppressed: Option<String>,
}

pub async fn active(conn: &mut AnyConnection) -> Result<Vec<ActiveAlert>, StoreError> {
    Ok(sqlx::query_as::<_, ActiveAlert>(
        r#"SELECT a.rule, j.dts_job_id, j.name AS job_name, j.region, a.path, a.status,
                  a.severity, a.state, e.payload AS event, e.suppressed
           FROM alerts a JOIN jobs j ON j.id = a.job
           LEFT JOIN alert_events e
                  ON e.id = (SELECT MAX(id) FROM alert_events WHERE alert = a.id)
           WHERE a.status != 'inactive'
           ORDER BY a.status = 'firing' DESC, a.severity, j.dts_job_id, a.rule, a.path"#,
    )
    .fetch_all(&mut *conn)
    .await?)
}

/// A recorded notification decision, for `history` and tests.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EventRow {
    pub id: i64,
    pub rule: String,
    pub path: String,
    pub at: i64,
    pub status: String,
    pub reason: String,
    pub suppressed: Option<String>,
    pub payload: String,
}

/// A job's notification decisions at or after `since`, oldest first.
pub async fn events_for_job(
    conn: &mut AnyConnection,
    job: i64,
    since: DateTime<Utc>,
) -> Result<Vec<EventRow>, StoreError> {
    Ok(sqlx::query_as::<_, EventRow>(
        r#"SELECT e.id, a.rule, a.path, e.at, e.status, e.reason, e.suppressed, e.payload
           FROM alert_events e JOIN alerts a ON a.id = e.alert
           WHERE a.job = $1 AND e.at >= $2
           ORDER BY e.id"#,
    )
    .bind(job)
    .bind(millis(since))
    .fetch_all(&mut *conn)
    .await?)
}

/// How many alerts of a rule are pending or firing, for metrics.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AlertCount {
    pub rule: String,
    pub severity: String,
    pub status: String,
    pub count: i64,
}

pub async fn counts(conn: &mut AnyConnection) -> Result<Vec<AlertCount>, StoreError> {
    Ok(sqlx::query_as::<_, AlertCount>(
        "SELECT rule, severity, status, COUNT(*) AS count FROM alerts WHERE status != 'inactive' GROUP BY rule, severity, status ORDER BY rule, severity, status",
    )
    .fetch_all(&mut *conn)
    .await?)
}
