//! The JSON shapes the CLI (`--format json`) and the HTTP API (`/api/v1/`)
//! share: one object per thing, with stable field names (documented in the
//! README and `openapi.json`). Times are RFC 3339 in UTC; absent values are
//! `null`, never an empty string.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::dts::{JobSnapshot, Step};
use crate::rules::silence::Silence;
use crate::store::from_millis;
use crate::store::outbox::{ChannelCounts, OutboxRow};

/// One step or sub-step as the last successful poll saw it.
#[derive(Debug, Serialize)]
pub struct StepJson {
    /// `key` or `parent/key`: the identity alerts and history use.
    pub path: String,
    pub name: String,
    pub code: Option<String>,
    /// The parent step's name, for a sub-step.
    pub parent: Option<String>,
    /// Normalised: `Running`, `Failed`, `Finished`, …
    pub state: String,
    /// As DTS sent it.
    pub state_raw: String,
    pub progress: Option<i64>,
    pub latency_ms: Option<i64>,
    pub error: Option<String>,
}

impl StepJson {
    pub fn all(snapshot: &JobSnapshot) -> Vec<StepJson> {
        snapshot
            .walk()
            .into_iter()
            .map(|(path, step, parent)| StepJson::of(path, step, parent))
            .collect()
    }

    fn of(path: String, step: &Step, parent: Option<&Step>) -> Self {
        Self {
            path,
            name: step.name.to_string(),
            code: step.code.as_deref().map(str::to_string),
            parent: parent.map(|p| p.name.to_string()),
            state: step.state.as_str().to_string(),
            state_raw: step.state_raw.to_string(),
            progress: step.progress,
            latency_ms: step.latency_ms,
            error: step.err_msg.as_deref().map(str::to_string),
        }
    }
}

/// A poll: when, and how it ended.
#[derive(Debug, Serialize)]
pub struct PollJson {
    pub at: DateTime<Utc>,
    /// `ok`, or the error class (`throttled`, `server`, `client`, …).
    pub outcome: String,
    pub error_code: Option<String>,
}

/// A pending or firing alert, and whether its notifications go out.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct AlertJson {
    /// `pending` or `firing`: the rule's lifecycle.
    pub status: String,
    /// What the on-call person sees: `pending`, `firing`, or `silenced` /
    /// `inhibited` (firing, notifications held back).
    pub state: String,
    /// The silence id or the inhibiting rule, when held back.
    pub suppressed_by: Option<String>,
    pub severity: String,
    pub rule: String,
    pub job_id: String,
    pub job_name: Option<String>,
    pub region: String,
    /// Empty for a job-level alert.
    pub path: String,
    /// The step as people name it (`Full data (03) › orders`).
    pub step: Option<String>,
    /// One line saying what is wrong, in English.
    pub summary: Option<String>,
    /// DTS's error message, when the alert carries one.
    pub error: Option<String>,
    /// Stable across the alert's notifications (as in the webhook document).
    pub fingerprint: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub fired_at: Option<DateTime<Utc>>,
    pub last_notified: Option<DateTime<Utc>>,
    /// The latest event itself, for views that word it in their own
    /// language (the status page); not part of the JSON.
    #[serde(skip)]
    pub event: Option<Box<crate::rules::Event>>,
}

/// A channel's share of the outbox.
#[derive(Debug, Serialize)]
pub struct ChannelJson {
    pub channel: String,
    pub pending: i64,
    pub dead: i64,
    pub last_error: Option<String>,
}

impl From<&ChannelCounts> for ChannelJson {
    fn from(c: &ChannelCounts) -> Self {
        Self {
            channel: c.channel.clone(),
            pending: c.pending,
            dead: c.dead,
            last_error: c.last_error.clone(),
        }
    }
}

/// One outbox row.
#[derive(Debug, Serialize)]
pub struct OutboxJson {
    pub id: i64,
    pub channel: String,
    /// `pending` or `dead`.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub attempts: i64,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub dead_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// The notification as it will be rendered (job, events).
    pub notification: serde_json::Value,
}

impl From<&OutboxRow> for OutboxJson {
    fn from(row: &OutboxRow) -> Self {
        let dead = row.dead_at.is_some();
        Self {
            id: row.id,
            channel: row.channel.clone(),
            status: row.status.clone(),
            created_at: from_millis(row.created_at),
            attempts: row.attempts,
            next_attempt_at: (!dead).then(|| from_millis(row.next_attempt_at)),
            dead_at: row.dead_at.map(from_millis),
            last_error: row.last_error.clone(),
            notification: serde_json::from_str(&row.payload).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// A silence, added at run time (`source: "runtime"`, by the CLI or the API) or from the config.
#[derive(Debug, Serialize)]
pub struct SilenceJson {
    pub id: String,
    pub source: &'static str,
    pub jobs: Vec<String>,
    pub rules: Vec<String>,
    pub steps: Vec<String>,
    pub starts: Option<DateTime<Utc>>,
    pub ends: Option<DateTime<Utc>>,
    pub cron: Option<String>,
    pub duration_seconds: Option<u64>,
    /// `active`, `waiting` or `ended`.
    pub state: &'static str,
    pub comment: String,
    pub author: Option<String>,
}

impl SilenceJson {
    pub fn of(
        silence: &Silence,
        source: &'static str,
        author: Option<String>,
        now: DateTime<Utc>,
    ) -> Self {
        let patterns = |m: &Option<crate::config::Matcher>| {
            m.as_ref().map(|m| m.patterns.clone()).unwrap_or_default()
        };
        let (starts, ends, cron, duration) = match &silence.window {
            crate::config::SilenceWindow::Fixed { starts, ends } => {
                (*starts, Some(*ends), None, None)
            }
            crate::config::SilenceWindow::Recurring { cron, duration } => (
                None,
                None,
                Some(cron.source.clone()),
                Some(duration.as_secs()),
            ),
        };
        Self {
            id: silence.id.clone(),
            source,
            jobs: patterns(&silence.jobs),
            rules: patterns(&silence.rules),
            steps: patterns(&silence.steps),
            starts,
            ends,
            cron,
            duration_seconds: duration,
            state: silence.phase(now).as_str(),
            comment: silence.comment.clone(),
            author,
        }
    }
}
