//! `dtswatch history JOB`: the timeline of one job — changes between
//! consecutive successful polls, poll failures and recoveries, and alert
//! notifications — as text or JSON. Read-only; works while the daemon runs
//! (WAL lets readers and the writer coexist).

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::args::OutputFormat;
use super::open_store_read_only;
use crate::config::Config;
use crate::diff::{self, Change};
use crate::dts::JobSnapshot;
use crate::notify::escape::terminal;
use crate::rules::Event;
use crate::store::snapshots::SnapshotCache;
use crate::store::{Store, StoreError, alerts, from_millis, jobs, polls};
use crate::text::{utc_time, zoned_time};

/// `dtswatch history`.
pub async fn history(
    config: &Config,
    job: &str,
    since: std::time::Duration,
    format: OutputFormat,
    all: bool,
) -> anyhow::Result<ExitCode> {
    let store = open_store_read_only(config).await?;
    let row = {
        let mut conn = store.pool().acquire().await?;
        jobs::find(&mut conn, job).await?
    };
    let Some(row) = row else {
        eprintln!("no job `{job}` in the database (use its DTS job id or name)");
        return Ok(ExitCode::FAILURE);
    };
    let since = crate::scheduler::earlier(Utc::now(), since);
    let entries = timeline(&store, &row, since, all).await?;
    match format {
        OutputFormat::Text => crate::out!(
            "{}",
            render_timeline(&row, &entries, config.messages.timezone)
        ),
        OutputFormat::Json => crate::outln!("{}", serde_json::to_string_pretty(&entries)?),
    };
    Ok(ExitCode::SUCCESS)
}

/// One line of a job's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineEntry {
    pub at: DateTime<Utc>,
    /// `change`, `poll_failed`, `poll_recovered`, or an alert event kind.
    pub kind: String,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
    /// The step or sub-step (`key` or `parent/key`) a change or alert is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// For alert events: the rule, its severity, why it was (not) sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<String>,
    /// For failed polls: DTS's error code and its class (`throttled`, `server`, `auth`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_class: Option<String>,
}

impl TimelineEntry {
    fn new(at: DateTime<Utc>, kind: &str, text: String) -> Self {
        Self {
            at,
            kind: kind.into(),
            text,
            change: None,
            path: None,
            rule: None,
            severity: None,
            reason: None,
            suppressed: None,
            error_code: None,
            error_class: None,
        }
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
    let mut cache = SnapshotCache::default();
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
            let text = format!(
                "poll failed after {} attempt(s): {}",
                row.attempts,
                row.error_text
                    .clone()
                    .unwrap_or_else(|| row.outcome.clone())
            );
            entries.push(TimelineEntry {
                error_code: row.error_code.clone(),
                error_class: Some(row.outcome.clone()),
                ..TimelineEntry::new(at, "poll_failed", text)
            });
            continue;
        };
        if let Some(start) = failing_since.take() {
            entries.push(TimelineEntry::new(
                at,
                "poll_recovered",
                format!("polls succeed again (failing since {})", utc_time(start)),
            ));
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
            let text = change.to_string();
            entries.push(TimelineEntry {
                path: Some(change.path.to_string()),
                change: Some(change),
                ..TimelineEntry::new(at, "change", text)
            });
        }
        previous = Some((snapshot_id, volatile_bytes, snapshot));
    }
    for row in alerts::events_for_job(&mut conn, job.id, since).await? {
        let event: Event =
            serde_json::from_str(&row.payload).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        entries.push(TimelineEntry {
            path: Some(row.path.clone()).filter(|p| !p.is_empty()),
            rule: Some(row.rule.clone()),
            severity: Some(event.severity.as_str().to_string()),
            reason: Some(row.reason.clone()),
            suppressed: row.suppressed.clone(),
            ..TimelineEntry::new(
                from_millis(row.at),
                &row.status,
                event.line(row.suppressed.as_deref()),
            )
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

/// `dtswatch history` as text.
pub fn render_timeline(
    job: &jobs::JobRow,
    entries: &[TimelineEntry],
    zone: chrono_tz::Tz,
) -> String {
    let mut out = format!(
        "{} ({}, {})\n",
        terminal(job.display_name()),
        terminal(&job.dts_job_id),
        terminal(&job.region)
    );
    if entries.is_empty() {
        out.push_str("  nothing happened in this window\n");
    }
    for entry in entries {
        out.push_str(&format!(
            "  {}  {}\n",
            zoned_time(entry.at, zone),
            terminal(&entry.text)
        ));
    }
    out
}
