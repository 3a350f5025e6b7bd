//! Rules: what an observation of a job means for people. For one job and one
//! observation (a poll, a failed poll, the job's retirement, the watchdog's
//! checks), `evaluate_job` is a short pipeline: every rule that matches the
//! job gives its verdicts on the steps it covers (`verdict.rs`, one file per
//! kind for the conditions); each alert — identified by (rule, job, step
//! path) — moves through the lifecycle (`lifecycle.rs`); then inhibition and
//! silences decide which notifications are held back (`suppression.rs`).
//! Pure: the caller loads alert states and silences, and persists what comes out.

pub mod error;
pub mod fact;
pub mod failed;
pub mod fingerprint;
mod fold;
pub mod latency;
pub mod lifecycle;
pub mod silence;
pub mod stalled;
mod suppression;
pub mod transition;
pub mod unreachable;
mod verdict;
pub mod watchdog;

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::aliyun::ApiError;
use crate::config::{JobConfig, RuleConfig, RuleKind, Severity};
use crate::diff::{Change, ChangeKind, step_label};
use crate::dts::{ErrorDetail, JobSnapshot, Step};
pub use fact::Fact;
pub use lifecycle::{AlertState, Condition, Reason, Status};
use silence::Silence;
use verdict::{Judgement, PollView, Verdict};
pub use watchdog::WatchdogCheck;

/// The job an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobInfo {
    pub id: String,
    pub name: String,
    pub region: String,
    /// The job in the DTS console (`[messages] console_url`, or the account's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_url: Option<String>,
}

impl JobInfo {
    /// The job as messages name it, with no console link.
    pub fn from_config(job: &JobConfig) -> Self {
        Self {
            id: job.id.clone(),
            name: job.display_name().to_string(),
            region: job.region.clone(),
            console_url: None,
        }
    }

    /// The job as messages name it, linked to the DTS console as `config` says.
    pub fn for_job(job: &JobConfig, config: &crate::config::Config) -> Self {
        Self::from_config(job).with_console(config.console_url_for(job))
    }

    /// The job with its console link from `template` (`{region}` and
    /// `{job_id}`, each percent-encoded: discovered ids come from DTS).
    pub fn with_console(mut self, template: &str) -> Self {
        // RFC 3986 unreserved characters stay; everything else is encoded.
        const COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
            .remove(b'-')
            .remove(b'.')
            .remove(b'_')
            .remove(b'~');
        let encode = |s: &str| percent_encoding::utf8_percent_encode(s, COMPONENT).to_string();
        self.console_url = Some(
            template
                .replace("{region}", &encode(&self.region))
                .replace("{job_id}", &encode(&self.id)),
        );
        self
    }
}

/// The step an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepInfo {
    /// `stepkey` or `stepkey/subkey`.
    pub path: String,
    /// `全量迁移 (03)` or `全量迁移 (03) › orders`.
    pub label: String,
    pub name: String,
    pub code: Option<String>,
    /// The sub-step's `JobStepId`, for a sub-step.
    pub sub_step_id: Option<String>,
    /// The parent step's name, for a sub-step.
    pub parent_name: Option<String>,
    /// The parent step's code, for a sub-step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_code: Option<String>,
}

impl StepInfo {
    pub(crate) fn new(path: &str, step: &Step, parent: Option<&Step>) -> Self {
        Self {
            path: path.to_string(),
            label: step_label(step, parent),
            name: step.name.to_string(),
            code: step.code.as_deref().map(str::to_string),
            sub_step_id: parent.and(step.id.as_deref().map(str::to_string)),
            parent_name: parent.map(|p| p.name.to_string()),
            parent_code: parent.and_then(|p| p.code.as_deref().map(str::to_string)),
        }
    }
}

/// A sub-step whose alert said the same as its step's, named inside the step's alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoldedStep {
    pub name: String,
    /// Its `JobStepId`.
    pub id: Option<String>,
    pub state: String,
    pub err_msg: Option<String>,
}

/// One line of "what changed": typed, or (in rows queued by older
/// versions) already written out in English.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ChangeNote {
    Kind(ChangeKind),
    Text(String),
}

impl std::fmt::Display for ChangeNote {
    /// `State: running → Failed`, in English (logs, the webhook document).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChangeNote::Kind(kind) => kind.fmt(f),
            ChangeNote::Text(text) => f.write_str(text),
        }
    }
}

/// A step's values at the time of the event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepValues {
    pub state: String,
    pub progress: Option<i64>,
    pub latency_ms: Option<i64>,
    pub err_msg: Option<String>,
    pub error_details: Vec<ErrorDetail>,
    pub need_acceleration: Option<bool>,
}

impl StepValues {
    pub(crate) fn of(step: &Step) -> Self {
        Self {
            state: step.state_raw.to_string(),
            progress: step.progress,
            latency_ms: step.latency_ms,
            err_msg: step.err_msg.as_deref().map(str::to_string),
            error_details: step.error_details.clone(),
            need_acceleration: step.need_acceleration,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    Firing,
    Resolved,
}

impl EventStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Firing => "firing",
            EventStatus::Resolved => "resolved",
        }
    }
}

/// What kind of rule an event comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Failed,
    Error,
    Latency,
    Stalled,
    Transition,
    Unreachable,
    /// dtswatch about itself: no successful poll, dead notifications.
    Watchdog,
}

impl EventKind {
    pub fn of(kind: &RuleKind) -> Self {
        match kind {
            RuleKind::Failed { .. } => EventKind::Failed,
            RuleKind::Error { .. } => EventKind::Error,
            RuleKind::Latency { .. } => EventKind::Latency,
            RuleKind::Stalled => EventKind::Stalled,
            RuleKind::Transition { .. } => EventKind::Transition,
            RuleKind::Unreachable => EventKind::Unreachable,
            RuleKind::Watchdog => EventKind::Watchdog,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Failed => "failed",
            EventKind::Error => "error",
            EventKind::Latency => "latency",
            EventKind::Stalled => "stalled",
            EventKind::Transition => "transition",
            EventKind::Unreachable => "unreachable",
            EventKind::Watchdog => "watchdog",
        }
    }
}

/// Everything a message needs about one alert notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub status: EventStatus,
    pub reason: Reason,
    pub rule: String,
    pub kind: EventKind,
    pub severity: Severity,
    pub job: JobInfo,
    pub step: Option<StepInfo>,
    /// One line saying what is wrong (or right again), in English: logs, `history`.
    pub summary: String,
    /// The same as a fact, which messages put in their own language
    /// (absent in rows queued by older versions: the summary stands in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fact: Option<Fact>,
    /// What changed since the previous snapshot, e.g. `State: Running → Failed`.
    pub changes: Vec<ChangeNote>,
    pub current: Option<StepValues>,
    /// Sub-steps folded into this step's alert (they said the same).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub folded: Vec<FoldedStep>,
    /// When the condition was first seen.
    pub first_seen: DateTime<Utc>,
    pub at: DateTime<Utc>,
    pub runbook: Option<String>,
}

impl Event {
    /// The same for every notification of one alert (firing, repeats,
    /// resolved): a hash of job, rule and step, for receivers that dedup.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        for part in [
            self.job.id.as_str(),
            self.rule.as_str(),
            self.step.as_ref().map(|s| s.path.as_str()).unwrap_or(""),
        ] {
            hash.update(part.as_bytes());
            hash.update([0]);
        }
        hex::encode(&hash.finalize()[..8])
    }

    /// `FIRING critical "step failed" 全量迁移 (03) › orders: state is Failed (not sent: silenced:3)`,
    /// for logs and the terminal.
    pub fn line(&self, suppressed: Option<&str>) -> String {
        let held = suppressed
            .map(|s| format!(" (not sent: {s})"))
            .unwrap_or_default();
        let subject = self
            .step
            .as_ref()
            .map(|s| s.label.as_str())
            .unwrap_or("job");
        format!(
            "{} {} \"{}\" {subject}: {}{held}",
            self.status.as_str().to_uppercase(),
            self.severity,
            self.rule,
            self.summary
        )
    }
}

/// The events of one job from one poll for one channel: one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub job: JobInfo,
    pub events: Vec<Event>,
}

/// Which alert: (rule, step path); the job is implied by the evaluation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AlertKey {
    pub rule: String,
    /// `""` for job-level alerts.
    pub path: String,
}

/// Why a notification is recorded but not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Suppression {
    Silenced(String),
    Inhibited(String),
    /// A resolved notice for a rule with `send_resolved = false`.
    ResolvedNotWanted,
    /// A resolved notice for an alert whose firing was never sent.
    NeverNotified,
}

impl Suppression {
    pub fn describe(&self) -> String {
        match self {
            Suppression::Silenced(id) => format!("silenced:{id}"),
            Suppression::Inhibited(rule) => format!("inhibited:{rule}"),
            Suppression::ResolvedNotWanted => "send_resolved_off".into(),
            Suppression::NeverNotified => "never_notified".into(),
        }
    }
}

/// A notification decision.
#[derive(Debug, Clone)]
pub struct Notice {
    pub key: AlertKey,
    pub event: Event,
    pub suppressed: Option<Suppression>,
}

impl Notice {
    /// The event's line, saying why it was not sent if it was held back.
    pub fn line(&self) -> String {
        let held = self.suppressed.as_ref().map(Suppression::describe);
        self.event.line(held.as_deref())
    }
}

/// What a poll did to a job's alerts.
#[derive(Debug, Default)]
pub struct Evaluation {
    /// Alert states that changed (including ones back to inactive).
    pub updates: Vec<(AlertKey, AlertState)>,
    pub notices: Vec<Notice>,
}

/// What was observed of a job.
pub enum Outcome<'a> {
    Polled {
        snapshot: &'a JobSnapshot,
        /// The previous successful snapshot and when it was taken.
        previous: Option<(&'a JobSnapshot, DateTime<Utc>)>,
        changes: &'a [Change],
    },
    Failed(&'a ApiError),
    /// Discovery no longer lists the job.
    Retired,
    /// The watchdog's checks on dtswatch itself (its pseudo-job).
    Watchdog(&'a [WatchdogCheck]),
}

/// Evaluates every rule for one job at one observation. Steps with no
/// alert state whose condition does not hold are skipped before anything is
/// allocated: a healthy job costs little.
pub fn evaluate_job(
    rules: &[RuleConfig],
    job: &JobInfo,
    existing: &BTreeMap<AlertKey, AlertState>,
    outcome: &Outcome<'_>,
    silences: &[Silence],
    now: DateTime<Utc>,
) -> Evaluation {
    let view = PollView::new(outcome);
    let mut with_state: HashMap<&str, HashSet<&str>> = HashMap::new();
    for key in existing.keys() {
        with_state
            .entry(key.rule.as_str())
            .or_default()
            .insert(key.path.as_str());
    }
    let mut states = existing.clone();
    let mut notices = Vec::new();
    for rule in rules.iter().filter(|r| verdict::rule_matches_job(r, job)) {
        let stateful = with_state.get(rule.name.as_str());
        for verdict in verdict::judge(rule, &view, outcome, stateful) {
            if let Some(notice) = advance(rule, verdict, &mut states, &view, job, now) {
                notices.push(notice);
            }
        }
    }
    let rules_by_name: HashMap<&str, &RuleConfig> =
        rules.iter().map(|r| (r.name.as_str(), r)).collect();
    suppression::apply(
        &mut notices,
        &mut states,
        &rules_by_name,
        &view,
        job,
        silences,
        now,
    );
    let updates = states
        .into_iter()
        .filter(|(key, state)| {
            existing.get(key) != Some(state)
                && (*state != AlertState::default() || existing.contains_key(key))
        })
        .collect();
    Evaluation { updates, notices }
}

/// Moves one alert by its verdict; returns the notice people should get, if any.
fn advance(
    rule: &RuleConfig,
    verdict: Verdict,
    states: &mut BTreeMap<AlertKey, AlertState>,
    view: &PollView<'_>,
    job: &JobInfo,
    now: DateTime<Utc>,
) -> Option<Notice> {
    let condition = match verdict.judgement {
        Judgement::OneShot(reason) => {
            let key = verdict.key.clone();
            let event = verdict.into_event(rule, reason, job, now, now);
            return Some(Notice {
                key,
                event,
                suppressed: None,
            });
        }
        Judgement::Lifecycle(ref condition) => condition.clone(),
    };
    let before = states.get(&verdict.key).cloned().unwrap_or_default();
    let (after, reason) = lifecycle::step(rule, &before, &condition, now, view.gone_reason());
    let key = verdict.key.clone();
    states.insert(key.clone(), after.clone());
    let reason = reason?;
    let first_seen = before.since.or(after.since).unwrap_or(now);
    let suppressed = if reason.resolves() && before.owed {
        Some(Suppression::NeverNotified)
    } else if reason.resolves() && !rule.send_resolved {
        Some(Suppression::ResolvedNotWanted)
    } else {
        None
    };
    Some(Notice {
        key,
        event: verdict.into_event(rule, reason, job, first_seen, now),
        suppressed,
    })
}

fn key(rule: &RuleConfig, path: &str) -> AlertKey {
    AlertKey {
        rule: rule.name.clone(),
        path: path.to_string(),
    }
}

#[cfg(test)]
mod tests;
