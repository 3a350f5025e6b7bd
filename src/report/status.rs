//! The fleet as `dtswatch status --format json` and `/api/v1/jobs` show it:
//! every job with its last poll and its steps as of the last successful
//! one, the alerts pending or firing, the outbox per channel.

use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

use super::json;
use crate::config::{HaConfig, SilenceConfig};
use crate::store::snapshots::SnapshotCache;
use crate::store::{Backend, Store, StoreError, backend, from_millis, jobs, lease, outbox, polls};

/// `status --format json`: every job with its last poll and steps, the
/// active alerts, the outbox per channel.
#[derive(Debug, serde::Serialize)]
pub struct StatusJson {
    /// Instances sharing a PostgreSQL database: who leads, who stands by.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ha: Option<HaJson>,
    pub jobs: Vec<JobJson>,
    pub alerts: Vec<json::AlertJson>,
    pub outbox: Vec<json::ChannelJson>,
}

#[derive(Debug, serde::Serialize)]
pub struct JobJson {
    pub id: String,
    pub name: Option<String>,
    pub region: String,
    /// `config`, `discover`, …
    pub source: String,
    pub retired: bool,
    pub last_poll: Option<json::PollJson>,
    /// As of the last successful poll.
    pub steps: Vec<json::StepJson>,
}

/// The leader lease and the instances seen lately.
#[derive(Debug, serde::Serialize)]
pub struct HaJson {
    /// The instance holding an unexpired lease, if any.
    pub leader: Option<String>,
    pub term: i64,
    /// How long the leader's lease runs without a renewal.
    pub lease_left_ms: Option<i64>,
    pub instances: Vec<InstanceJson>,
}

#[derive(Debug, serde::Serialize)]
pub struct InstanceJson {
    pub instance: String,
    /// `leader` or `standby`.
    pub role: &'static str,
    pub started_at: DateTime<Utc>,
    pub seen_ms_ago: i64,
}

/// The lease and the instances seen within twice `ha.failover` (PostgreSQL
/// only; `None` on SQLite, where one daemon owns the file).
pub async fn ha(conn: &mut AnyConnection, config: &HaConfig) -> Result<Option<HaJson>, StoreError> {
    if backend(conn) != Backend::Postgres {
        return Ok(None);
    }
    let lease = lease::read(conn).await?;
    let window = i64::try_from(config.failover.as_millis().saturating_mul(2)).unwrap_or(i64::MAX);
    let held = lease.held();
    let instances = lease::instances(conn, window)
        .await?
        .into_iter()
        .map(|i| InstanceJson {
            role: if held && i.holder == lease.holder {
                "leader"
            } else {
                "standby"
            },
            seen_ms_ago: lease.now.saturating_sub(i.seen_at),
            started_at: from_millis(i.started_at),
            instance: i.instance,
        })
        .collect();
    Ok(Some(HaJson {
        leader: held.then(|| lease.instance.clone()),
        term: lease.term,
        lease_left_ms: held.then(|| lease.expires_at.saturating_sub(lease.now)),
        instances,
    }))
}

/// Every job, then the alerts (silenced as `configured` and the database
/// say at `now`), then the outbox; and the instances, on PostgreSQL.
pub async fn status(
    store: &Store,
    configured: &[SilenceConfig],
    ha_config: &HaConfig,
    now: DateTime<Utc>,
) -> Result<StatusJson, StoreError> {
    let mut conn = store.pool().acquire().await?;
    Ok(StatusJson {
        ha: ha(&mut conn, ha_config).await?,
        jobs: jobs_in(&mut conn).await?,
        alerts: super::alerts::list(&mut conn, configured, now).await?,
        outbox: outbox::counts(&mut conn)
            .await?
            .iter()
            .map(Into::into)
            .collect(),
    })
}

/// Every job with its last poll and steps.
pub async fn jobs(store: &Store) -> Result<Vec<JobJson>, StoreError> {
    let mut conn = store.pool().acquire().await?;
    jobs_in(&mut conn).await
}

/// One job by DTS job id or name.
pub async fn job(store: &Store, id_or_name: &str) -> Result<Option<JobJson>, StoreError> {
    let mut conn = store.pool().acquire().await?;
    let Some(row) = jobs::find(&mut conn, id_or_name).await? else {
        return Ok(None);
    };
    Ok(Some(
        job_json(&mut conn, &mut SnapshotCache::default(), &row).await?,
    ))
}

async fn jobs_in(conn: &mut AnyConnection) -> Result<Vec<JobJson>, StoreError> {
    let mut cache = SnapshotCache::default();
    let mut out = Vec::new();
    for job in jobs::all(conn).await? {
        out.push(job_json(conn, &mut cache, &job).await?);
    }
    Ok(out)
}

async fn job_json(
    conn: &mut AnyConnection,
    cache: &mut SnapshotCache,
    job: &jobs::JobRow,
) -> Result<JobJson, StoreError> {
    let last_poll = polls::last(conn, job.id).await?.map(|p| json::PollJson {
        at: from_millis(p.at),
        outcome: p.outcome.clone(),
        error_code: p.error_code.clone(),
    });
    let mut steps = Vec::new();
    if job.retired_at.is_none()
        && let Some(ok) = polls::last_ok(conn, job.id).await?
        && let Some(snapshot_id) = ok.snapshot
    {
        let volatile = polls::volatile_at(conn, job.id, ok.id)
            .await?
            .unwrap_or_default();
        steps = json::StepJson::all(&cache.load(conn, snapshot_id, &volatile).await?);
    }
    Ok(JobJson {
        id: job.dts_job_id.clone(),
        name: job.name.clone(),
        region: job.region.clone(),
        source: job.source.clone(),
        retired: job.retired_at.is_some(),
        last_poll,
        steps,
    })
}
