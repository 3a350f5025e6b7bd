//! The alerts pending or firing, as `status --format json`, `/api/v1/alerts`
//! and the status page show them: with whether their notifications go out
//! now, and if not, why (a silence in force, or the inhibiting rule named
//! by the latest held-back notification).

use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

use super::json::AlertJson;
use crate::config::SilenceConfig;
use crate::rules::silence::Silence;
use crate::rules::{AlertState, Event, JobInfo, Status};
use crate::store::StoreError;
use crate::store::alerts::{self, ActiveAlert};

/// Every alert pending or firing, firing first.
pub async fn list(
    conn: &mut AnyConnection,
    configured: &[SilenceConfig],
    now: DateTime<Utc>,
) -> Result<Vec<AlertJson>, StoreError> {
    let silences = super::silences::in_force(conn, configured, now).await?;
    Ok(alerts::active(conn)
        .await?
        .iter()
        .map(|row| describe(row, &silences, now))
        .collect())
}

/// The latest event of every alert firing whose notifications go out now
/// (not silenced, not inhibited): what receivers that must be told again
/// and again (Alertmanager) are re-sent.
pub async fn firing_events(
    conn: &mut AnyConnection,
    configured: &[SilenceConfig],
    now: DateTime<Utc>,
) -> Result<Vec<Event>, StoreError> {
    let silences = super::silences::in_force(conn, configured, now).await?;
    Ok(alerts::active(conn)
        .await?
        .iter()
        .filter(|row| describe(row, &silences, now).state == "firing")
        .filter_map(|row| row.event.as_deref())
        .filter_map(|json| serde_json::from_str::<Event>(json).ok())
        .filter(|event| event.status == crate::rules::EventStatus::Firing)
        .collect())
}

/// One alert with its state at `now`. Pure.
pub fn describe(row: &ActiveAlert, silences: &[Silence], now: DateTime<Utc>) -> AlertJson {
    let state: AlertState = serde_json::from_str(&row.state).unwrap_or_default();
    let event: Option<Event> = row
        .event
        .as_deref()
        .and_then(|json| serde_json::from_str(json).ok());
    let job = event.as_ref().map(|e| e.job.clone()).unwrap_or(JobInfo {
        id: row.dts_job_id.clone(),
        name: row
            .job_name
            .clone()
            .unwrap_or_else(|| row.dts_job_id.clone()),
        region: row.region.clone(),
        console_url: None,
    });
    let step = event.as_ref().and_then(|e| e.step.as_ref());
    let silenced_by = silences
        .iter()
        .find(|s| s.is_active(now) && s.matches(&job, &row.rule, step))
        .map(|s| s.id.clone());
    let inhibited_by = row
        .suppressed
        .as_deref()
        .and_then(|s| s.strip_prefix("inhibited:"))
        .filter(|_| state.owed)
        .map(str::to_string);
    let (shown, suppressed_by) = match (state.status, silenced_by, inhibited_by) {
        (Status::Firing, Some(id), _) => ("silenced", Some(id)),
        (Status::Firing, None, Some(rule)) => ("inhibited", Some(rule)),
        _ => (row.status.as_str(), None),
    };
    AlertJson {
        status: row.status.clone(),
        state: shown.to_string(),
        suppressed_by,
        severity: row.severity.clone(),
        rule: row.rule.clone(),
        job_id: row.dts_job_id.clone(),
        job_name: row.job_name.clone(),
        region: row.region.clone(),
        path: row.path.clone(),
        step: step.map(|s| s.label.clone()),
        summary: event.as_ref().map(|e| e.summary.clone()),
        error: event
            .as_ref()
            .and_then(|e| e.current.as_ref())
            .and_then(|c| c.err_msg.clone()),
        fingerprint: event.as_ref().map(Event::fingerprint),
        since: state.since,
        fired_at: state.fired_at,
        last_notified: state.last_notified,
        event: event.map(Box::new),
    }
}
