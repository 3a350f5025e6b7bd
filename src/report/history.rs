//! A job's history: the changes between consecutive successful polls, poll
//! failures and recoveries, and alert notifications, oldest first, as
//! `dtswatch history` and `/api/v1/jobs/{id}/history` show them.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::Matcher;
use crate::diff::{self, Change};
use crate::dts::JobSnapshot;
use crate::rules::Event;
use crate::store::snapshots::SnapshotCache;
use crate::store::{Store, StoreError, alerts, audit, from_millis, jobs, polls};
use crate::text::utc_time;

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
    /// For writes made through the API or the CLI (`silence_add`,
    /// `silence_expire`, `outbox_retry`, `reload`): who made them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

impl TimelineEntry {
    pub fn new(at: DateTime<Utc>, kind: &str, text: String) -> Self {
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
            actor: None,
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
    for row in audit::since(&mut conn, since).await? {
        if let Some(text) = audit_line(&row, job) {
            entries.push(TimelineEntry {
                actor: Some(row.actor.clone()),
                ..TimelineEntry::new(from_millis(row.at), &row.action, text)
            });
        }
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

/// How an audited write reads in `job`'s history, if it concerns the job:
/// a silence whose job matchers match it (or that has none), a retried
/// notification about it, any config reload.
fn audit_line(row: &audit::AuditRow, job: &jobs::JobRow) -> Option<String> {
    let detail: serde_json::Value = serde_json::from_str(&row.detail).unwrap_or_default();
    let target = row.target.as_deref().unwrap_or("?");
    match row.action.as_str() {
        "silence_add" | "silence_expire" => {
            let patterns: Vec<String> =
                serde_json::from_value(detail["jobs"].clone()).unwrap_or_default();
            let concerns = patterns.is_empty()
                || Matcher::new(&patterns)
                    .is_ok_and(|m| m.matches_any([job.dts_job_id.as_str(), job.display_name()]));
            concerns.then(|| match row.action.as_str() {
                "silence_add" => format!(
                    "silence {target} added by {} until {}: {}",
                    row.actor,
                    detail["ends"].as_str().unwrap_or("?"),
                    detail["comment"].as_str().unwrap_or("")
                ),
                _ => format!("silence {target} expired by {}", row.actor),
            })
        }
        "outbox_retry" => (row.job.as_deref() == Some(job.dts_job_id.as_str()))
            .then(|| format!("notification {target} queued again by {}", row.actor)),
        "reload" => Some(match detail["ok"].as_bool() {
            Some(true) => format!("config reloaded by {}", row.actor),
            _ => format!(
                "config reload by {} rejected: {}",
                row.actor,
                detail["error"].as_str().unwrap_or("")
            ),
        }),
        _ => None,
    }
}
