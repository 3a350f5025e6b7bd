//! The `audit` table: every write made through the HTTP API or the CLI,
//! with who made it. Written in the same transaction as the write itself;
//! never holds a token or a secret (the caller names the actor).

use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

use super::{StoreError, millis};

/// One audited write.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditRow {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub job: Option<String>,
    pub detail: String,
}

/// A write to record.
#[derive(Debug, Clone)]
pub struct NewAudit<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub target: Option<String>,
    pub job: Option<String>,
    pub detail: serde_json::Value,
}

pub async fn record(
    conn: &mut AnyConnection,
    entry: &NewAudit<'_>,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        r#"INSERT INTO audit (at, actor, action, target, job, detail)
           VALUES ($1, $2, $3, $4, $5, $6)
           RETURNING id"#,
    )
    .bind(millis(now))
    .bind(entry.actor)
    .bind(entry.action)
    .bind(&entry.target)
    .bind(&entry.job)
    .bind(entry.detail.to_string())
    .fetch_one(&mut *conn)
    .await?)
}

/// Writes at or after `since`, oldest first.
pub async fn since(
    conn: &mut AnyConnection,
    since: DateTime<Utc>,
) -> Result<Vec<AuditRow>, StoreError> {
    Ok(sqlx::query_as::<_, AuditRow>(
        "SELECT id, at, actor, action, target, job, detail FROM audit WHERE at >= $1 ORDER BY id",
    )
    .bind(millis(since))
    .fetch_all(&mut *conn)
    .await?)
}
