//! The `jobs` table: every job dtswatch watches or has watched, from config
//! or discovery. Other tables refer to its integer id.

use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

use super::{StoreError, millis};
use crate::config::JobConfig;

/// Where a watched job comes from; the `source` column holds [`JobSource::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobSource {
    /// A `[[jobs]]` entry.
    Config,
    /// Found by a `[[discover]]` entry.
    Discovery,
    /// The pseudo-job the watchdog's alerts about dtswatch itself belong to.
    Watchdog,
}

impl JobSource {
    pub fn as_str(self) -> &'static str {
        match self {
            JobSource::Config => "config",
            JobSource::Discovery => "discover",
            JobSource::Watchdog => "watchdog",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [JobSource::Config, JobSource::Discovery, JobSource::Watchdog]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct JobRow {
    pub id: i64,
    pub dts_job_id: String,
    pub region: String,
    pub account: String,
    pub name: Option<String>,
    pub source: String,
    pub first_seen: i64,
    pub retired_at: Option<i64>,
}

impl JobRow {
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.dts_job_id)
    }

    pub fn source(&self) -> Option<JobSource> {
        JobSource::parse(&self.source)
    }

    /// The job as the config would describe it (schedule and options are not stored).
    pub fn to_config(&self) -> JobConfig {
        JobConfig {
            id: self.dts_job_id.clone(),
            region: self.region.clone(),
            account: self.account.clone(),
            name: self.name.clone(),
            schedule: None,
            zero_etl: None,
            resource_group_id: None,
        }
    }
}

/// Inserts the job or refreshes its details (and un-retires it); returns its row id.
pub async fn ensure(
    conn: &mut AnyConnection,
    job: &JobConfig,
    source: JobSource,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    let id: i64 = sqlx::query_scalar(
        r#"INSERT INTO jobs (dts_job_id, region, account, name, source, first_seen)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (dts_job_id) DO UPDATE SET
               region = excluded.region, account = excluded.account, name = excluded.name,
               source = excluded.source, retired_at = NULL
           RETURNING id"#,
    )
    .bind(&job.id)
    .bind(&job.region)
    .bind(&job.account)
    .bind(&job.name)
    .bind(source.as_str())
    .bind(millis(now))
    .fetch_one(&mut *conn)
    .await?;
    Ok(id)
}

pub async fn all(conn: &mut AnyConnection) -> Result<Vec<JobRow>, StoreError> {
    Ok(sqlx::query_as::<_, JobRow>(
        r#"SELECT id, dts_job_id, region, account, name, source, first_seen, retired_at
           FROM jobs ORDER BY retired_at IS NOT NULL, COALESCE(name, dts_job_id)"#,
    )
    .fetch_all(&mut *conn)
    .await?)
}

/// A job by DTS job id or by name.
pub async fn find(
    conn: &mut AnyConnection,
    id_or_name: &str,
) -> Result<Option<JobRow>, StoreError> {
    Ok(sqlx::query_as::<_, JobRow>(
        r#"SELECT id, dts_job_id, region, account, name, source, first_seen, retired_at
           FROM jobs WHERE dts_job_id = $1 OR name = $1 ORDER BY dts_job_id = $1 DESC LIMIT 1"#,
    )
    .bind(id_or_name)
    .fetch_optional(&mut *conn)
    .await?)
}

pub async fn retire(
    conn: &mut AnyConnection,
    id: i64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE jobs SET retired_at = $2 WHERE id = $1 AND retired_at IS NULL")
        .bind(id)
        .bind(millis(now))
        .execute(&mut *conn)
        .await?;
    Ok(())
}
