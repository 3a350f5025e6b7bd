//! The `silences` table: silences added at run time. A running daemon reads
//! it at every poll, so `dtswatch silence add` takes effect without a restart.

use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

use super::{StoreError, from_millis, millis};
use crate::config::Matcher;
use crate::config::SilenceWindow;
use crate::rules::silence::Silence;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SilenceRow {
    pub id: i64,
    pub jobs: Option<String>,
    pub rules: Option<String>,
    pub steps: Option<String>,
    pub starts: i64,
    pub ends: i64,
    pub comment: String,
    pub created_by: Option<String>,
    pub created_at: i64,
}

/// A silence to add.
#[derive(Debug, Clone)]
pub struct NewSilence {
    pub jobs: Vec<String>,
    pub rules: Vec<String>,
    pub steps: Vec<String>,
    pub starts: DateTime<Utc>,
    pub ends: DateTime<Utc>,
    pub comment: String,
    pub created_by: Option<String>,
}

fn list_json(values: &[String]) -> Option<String> {
    (!values.is_empty()).then(|| serde_json::to_string(values).unwrap_or_default())
}

pub async fn add(
    conn: &mut AnyConnection,
    silence: &NewSilence,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        r#"INSERT INTO silences (jobs, rules, steps, starts, ends, comment, created_by, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           RETURNING id"#,
    )
    .bind(list_json(&silence.jobs))
    .bind(list_json(&silence.rules))
    .bind(list_json(&silence.steps))
    .bind(millis(silence.starts))
    .bind(millis(silence.ends))
    .bind(&silence.comment)
    .bind(&silence.created_by)
    .bind(millis(now))
    .fetch_one(&mut *conn)
    .await?)
}

/// Silences that have not ended yet (active or upcoming).
pub async fn current(
    conn: &mut AnyConnection,
    now: DateTime<Utc>,
) -> Result<Vec<SilenceRow>, StoreError> {
    Ok(sqlx::query_as::<_, SilenceRow>(
        "SELECT id, jobs, rules, steps, starts, ends, comment, created_by, created_at FROM silences WHERE ends > $1 ORDER BY id",
    )
    .bind(millis(now))
    .fetch_all(&mut *conn)
    .await?)
}

/// One silence by id, ended or not.
pub async fn get(conn: &mut AnyConnection, id: i64) -> Result<Option<SilenceRow>, StoreError> {
    Ok(sqlx::query_as::<_, SilenceRow>(
        "SELECT id, jobs, rules, steps, starts, ends, comment, created_by, created_at FROM silences WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?)
}

/// Ends a silence now; false when there is no such unexpired silence.
pub async fn expire(
    conn: &mut AnyConnection,
    id: i64,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    Ok(
        sqlx::query("UPDATE silences SET ends = $2 WHERE id = $1 AND ends > $2")
            .bind(id)
            .bind(millis(now))
            .execute(&mut *conn)
            .await?
            .rows_affected()
            == 1,
    )
}

fn matcher(json: &Option<String>) -> Result<Option<Matcher>, StoreError> {
    match json {
        None => Ok(None),
        Some(text) => {
            let patterns: Vec<String> =
                serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            Matcher::new(&patterns)
                .map(Some)
                .map_err(StoreError::Corrupt)
        }
    }
}

impl SilenceRow {
    pub fn to_silence(&self) -> Result<Silence, StoreError> {
        Ok(Silence {
            id: self.id.to_string(),
            jobs: matcher(&self.jobs)?,
            rules: matcher(&self.rules)?,
            steps: matcher(&self.steps)?,
            window: SilenceWindow::Fixed {
                starts: Some(from_millis(self.starts)),
                ends: from_millis(self.ends),
            },
            comment: self.comment.clone(),
        })
    }
}
