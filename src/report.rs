//! `dtswatch status` and `dtswatch history`: read-only views of the database
//! that work while the daemon runs (WAL lets readers and the writer coexist).

use std::collections::HashMap;

use chrono::{DateTime, Local, Utc};
use serde::Serialize;

use crate::diff::{self, Change};
use crate::dts::JobSnapshot;
use crate::output;
use crate::rules::Event;
use crate::store::{Store, StoreError, alerts, from_millis, jobs, polls, snapshots};

/// One line of a job's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineEntry {
    pub at: DateTime<Utc>,
    /// `change`, `poll_failed`, `poll_recovered`, or an alert event kind.
    pub kind: String,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
}

/// Local wall-clock time for people reading a terminal.
pub fn local_time(at: DateTime<Utc>) -> String {
    at.with_timezone(&Local)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// Rebuilds snapshots of stored polls, caching structures by snapshot id.
struct SnapshotCache {
    structures: HashMap<i64, Vec<snapshots::StoredStep>>,
}

impl SnapshotCache {
    async fn load(
        &mut self,
        conn: &mut sqlx::SqliteConnection,
        snapshot_id: i64,
        volatile: &[u8],
    ) -> Result<JobSnapshot, StoreError> {
        let structure = match self.structures.entry(snapshot_id) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(snapshots::load_structure(conn, snapshot_id).await?)
            }
        };
        snapshots::join(structure, &snapshots::decode_volatile(volatile)?)
    }
}

/// The job's timeline since `since`: changes between consecutive successful
/// polls, poll failures and recoveries, oldest first. Latency and progress
/// changes only with `volatile`.
pub async fn timeline(
    store: &Store,
    job: &jobs::JobRow,
    since: DateTime<Utc>,
    volatile: bool,
) -> Result<Vec<TimelineEntry>, StoreError> {
    let mut conn = store.pool().acquire().await?;
    let rows = polls::since(&mut conn, job.id, since).await?;
    let mut cache = SnapshotCache {
        structures: HashMap::new(),
    };
    let mut entries = Vec::new();
    // The baseline: the last successful poll before the window.
    let mut previous: Option<(i64, Vec<u8>, JobSnapshot)> = None;
    if let Some(first) = rows.first()
        && let Some(before) = polls::ok_before(&mut conn, job.id, first.id).await?
        && let Some(snapshot_id) = before.snapshot
    {
        let volatile_bytes = polls::volatile_at(&mut conn, job.id, before.id)
            .await?
            .unwrap_or_default();
        let snapshot = cache.load(&mut conn, snapshot_id, &volatile_bytes).await?;
        previous = Some((snapshot_id, volatile_bytes, snapshot));
    }
    let mut failing_since: Option<DateTime<Utc>> = None;
    for row in rows {
        let at = from_millis(row.at);
        let Some(snapshot_id) = row.snapshot else {
            if failing_since.is_none() {
                failing_since = Some(at);
            }
            entries.push(TimelineEntry {
                at,
                kind: "poll_failed".into(),
                text: format!(
                    "poll failed after {} attempt(s): {}",
                    row.attempts,
                    row.error_text
                        .clone()
                        .unwrap_or_else(|| row.outcome.clone())
                ),
                change: None,
            });
            continue;
        };
        if let Some(start) = failing_since.take() {
            entries.push(TimelineEntry {
                at,
                kind: "poll_recovered".into(),
                text: format!("polls succeed again (failing since {})", local_time(start)),
                change: None,
            });
        }
        // An unchanged poll: same structure, no new volatile numbers.
        if row.volatile.is_none()
            && let Some((prev_id, _, _)) = &previous
            && *prev_id == snapshot_id
        {
            continue;
        }
        let volatile_bytes = match &row.volatile {
            Some(v) => v.clone(),
            None => polls::volatile_at(&mut conn, job.id, row.id)
                .await?
                .unwrap_or_default(),
        };
        let snapshot = cache.load(&mut conn, snapshot_id, &volatile_bytes).await?;
        for change in diff::diff(previous.as_ref().map(|(_, _, s)| s), &snapshot) {
            if change.is_volatile() && !volatile {
                continue;
            }
            entries.push(TimelineEntry {
                at,
                kind: "change".into(),
                text: change.to_string(),
                change: Some(change),
            });
        }
        previous = Some((snapshot_id, volatile_bytes, snapshot));
    }
    for row in alerts::events_for_job(&mut conn, job.id, since).await? {
        let event: Event =
            serde_json::from_str(&row.payload).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        entries.push(TimelineEntry {
            at: from_millis(row.at),
            kind: row.status.clone(),
            text: event_line(&event, row.suppressed.as_deref()),
            change: None,
        });
    }
    // Stable: a poll's changes come before the alerts they caused.
    entries.sort_by_key(|e| {
        (
            e.at,
            e.kind != "change" && e.kind != "poll_failed" && e.kind != "poll_recovered",
        )
    });
    Ok(entries)
}

/// `FIRING critical "step failed" 全量迁移 (03) › orders: state is Failed (not sent: silenced:3)`.
pub fn event_line(event: &Event, suppressed: Option<&str>) -> String {
    let held = suppressed
        .map(|s| format!(" (not sent: {s})"))
        .unwrap_or_default();
    let subject = event
        .step
        .as_ref()
        .map(|s| s.label.as_str())
        .unwrap_or("job");
    format!(
        "{} {} \"{}\" {subject}: {}{held}",
        event.status.as_str().to_uppercase(),
        event.severity,
        event.rule,
        event.summary
    )
}

/// `dtswatch history` as text.
pub fn render_timeline(job: &jobs::JobRow, entries: &[TimelineEntry]) -> String {
    let mut out = format!(
        "{} ({}, {})\n",
        job.display_name(),
        job.dts_job_id,
        job.region
    );
    if entries.is_empty() {
        out.push_str("  nothing happened in this window\n");
    }
    for entry in entries {
        out.push_str(&format!("  {}  {}\n", local_time(entry.at), entry.text));
    }
    out
}

/// `dtswatch status`: every job's last poll and current steps.
pub async fn status(store: &Store) -> Result<String, StoreError> {
    let mut conn = store.pool().acquire().await?;
    let all = jobs::all(&mut conn).await?;
    if all.is_empty() {
        return Ok("no jobs recorded yet: run `dtswatch once` or `dtswatch run` first\n".into());
    }
    let mut summary = Vec::new();
    let mut steps = Vec::new();
    let mut cache = SnapshotCache {
        structures: HashMap::new(),
    };
    for job in &all {
        let last = polls::last(&mut conn, job.id).await?;
        let last_ok = polls::last_ok(&mut conn, job.id).await?;
        let (when, outcome) = match &last {
            Some(p) if p.is_ok() => (local_time(from_millis(p.at)), "ok".to_string()),
            Some(p) => (
                local_time(from_millis(p.at)),
                format!(
                    "{} ({})",
                    p.outcome,
                    p.error_code.clone().unwrap_or_default()
                ),
            ),
            None => ("never".into(), "-".into()),
        };
        summary.push(vec![
            job.display_name().to_string(),
            job.dts_job_id.clone(),
            job.region.clone(),
            when,
            outcome,
            if job.retired_at.is_some() {
                "retired".into()
            } else {
                job.source.clone()
            },
        ]);
        if job.retired_at.is_some() {
            continue;
        }
        if let Some(ok) = last_ok
            && let Some(snapshot_id) = ok.snapshot
        {
            let volatile = polls::volatile_at(&mut conn, job.id, ok.id)
                .await?
                .unwrap_or_default();
            let snapshot = cache.load(&mut conn, snapshot_id, &volatile).await?;
            let config = crate::config::JobConfig {
                id: job.dts_job_id.clone(),
                region: job.region.clone(),
                account: job.account.clone(),
                name: job.name.clone(),
                schedule: None,
                zero_etl: None,
                resource_group_id: None,
            };
            steps.extend(output::snapshot_rows(&config, &snapshot));
        }
    }
    let mut out = output::table(
        &["JOB", "ID", "REGION", "LAST POLL", "OUTCOME", "SOURCE"],
        &summary,
    );
    if !steps.is_empty() {
        out.push('\n');
        out.push_str(&output::table(&output::SNAPSHOT_HEADER, &steps));
    }
    out.push('\n');
    out.push_str(&alerts_table(&mut conn).await?);
    out.push('\n');
    out.push_str(&outbox_table(&mut conn).await?);
    Ok(out)
}

/// Pending and firing alerts.
async fn alerts_table(conn: &mut sqlx::SqliteConnection) -> Result<String, StoreError> {
    let active = alerts::active(conn).await?;
    if active.is_empty() {
        return Ok("no alerts pending or firing\n".into());
    }
    let rows: Vec<Vec<String>> = active
        .iter()
        .map(|a| {
            let state: crate::rules::AlertState =
                serde_json::from_str(&a.state).unwrap_or_default();
            vec![
                a.status.to_uppercase(),
                a.severity.clone(),
                a.rule.clone(),
                a.job_name.clone().unwrap_or_else(|| a.dts_job_id.clone()),
                if a.path.is_empty() {
                    "(job)".into()
                } else {
                    a.path.clone()
                },
                state.since.map(local_time).unwrap_or_default(),
            ]
        })
        .collect();
    Ok(output::table(
        &["ALERT", "SEVERITY", "RULE", "JOB", "STEP", "SINCE"],
        &rows,
    ))
}

/// Channels with notifications waiting or dead, and their last error.
async fn outbox_table(conn: &mut sqlx::SqliteConnection) -> Result<String, StoreError> {
    let channels = crate::store::outbox::counts(conn).await?;
    if channels.is_empty() {
        return Ok("outbox empty: every notification delivered\n".into());
    }
    let rows: Vec<Vec<String>> = channels
        .iter()
        .map(|c| {
            vec![
                c.channel.clone(),
                c.pending.to_string(),
                c.dead.to_string(),
                output::ellipsize(c.last_error.as_deref().unwrap_or(""), 90),
            ]
        })
        .collect();
    Ok(output::table(
        &["CHANNEL", "PENDING", "DEAD", "LAST ERROR"],
        &rows,
    ))
}
