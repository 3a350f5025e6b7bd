//! Rules: what a poll means for people. For one job and one poll, every rule
//! that matches the job is evaluated against every step it covers (or the job
//! itself, for `unreachable`); each alert — identified by (rule, job, step
//! path) — moves through the lifecycle in `lifecycle.rs`; then inhibition and
//! silences decide which notifications are held back. Pure: the caller loads
//! alert states and silences, and persists what comes out.

pub mod error;
pub mod failed;
pub mod fingerprint;
pub mod latency;
pub mod lifecycle;
pub mod silence;
pub mod stalled;
pub mod transition;
pub mod unreachable;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::aliyun::ApiError;
use crate::config::{JobConfig, RuleConfig, RuleKind, Severity};
use crate::diff::{Change, step_label};
use crate::dts::{ErrorDetail, JobSnapshot, Step};
pub use lifecycle::{AlertState, Condition, Reason, Status};
use silence::Silence;

/// The job an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobInfo {
    pub id: String,
    pub name: String,
    pub region: String,
}

impl JobInfo {
    pub fn from_config(job: &JobConfig) -> Self {
        Self {
            id: job.id.clone(),
            name: job.display_name().to_string(),
            region: job.region.clone(),
        }
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
}

impl StepInfo {
    fn new(path: &str, step: &Step, parent: Option<&Step>) -> Self {
        Self {
            path: path.to_string(),
            label: step_label(step, parent),
            name: step.name.clone(),
            code: step.code.clone(),
            sub_step_id: parent.and(step.id.clone()),
            parent_name: parent.map(|p| p.name.clone()),
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
    fn of(step: &Step) -> Self {
        Self {
            state: step.state_raw.clone(),
            progress: step.progress,
            latency_ms: step.latency_ms,
            err_msg: step.err_msg.clone(),
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

/// Everything a message needs about one alert notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub status: EventStatus,
    pub reason: Reason,
    pub rule: String,
    /// The rule kind: failed, error, latency, stalled, transition, unreachable.
    pub kind: String,
    pub severity: Severity,
    pub job: JobInfo,
    pub step: Option<StepInfo>,
    /// One line saying what is wrong (or right again).
    pub summary: String,
    /// What changed since the previous snapshot, e.g. `State: Running → Failed`.
    pub changes: Vec<String>,
    pub current: Option<StepValues>,
    /// When the condition was first seen.
    pub first_seen: DateTime<Utc>,
    pub at: DateTime<Utc>,
    pub runbook: Option<String>,
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

/// What a poll did to a job's alerts.
#[derive(Debug, Default)]
pub struct Evaluation {
    /// Alert states that changed (including ones back to inactive).
    pub updates: Vec<(AlertKey, AlertState)>,
    pub notices: Vec<Notice>,
}

/// What the poll found.
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
}

/// One step as a rule sees it.
pub struct StepContext<'a> {
    pub step: &'a Step,
    /// The same step in the previous snapshot.
    pub previous: Option<&'a Step>,
    pub previous_at: Option<DateTime<Utc>>,
    pub changes: Vec<&'a Change>,
}

/// A kind's verdict on one step or job.
pub struct Finding {
    pub condition: Condition,
    pub summary: String,
}

impl Finding {
    fn clear(summary: String) -> Self {
        Self {
            condition: Condition::Clear,
            summary,
        }
    }
}

/// One alert's verdict at this poll: its key, what the kind found, the step
/// it is about, the step's values, and the step's changes as text.
type Verdict = (
    AlertKey,
    Finding,
    Option<StepInfo>,
    Option<StepValues>,
    Vec<String>,
);

fn rule_matches_job(rule: &RuleConfig, job: &JobInfo) -> bool {
    rule.jobs
        .as_ref()
        .is_none_or(|m| m.matches_any([job.id.as_str(), job.name.as_str()]))
}

fn rule_matches_step(rule: &RuleConfig, step: &Step, parent: Option<&Step>) -> bool {
    if parent.is_some() && !rule.sub_steps {
        return false;
    }
    let Some(matcher) = &rule.steps else {
        return true;
    };
    let names = |s: &Step| {
        [Some(s.name.clone()), s.code.clone()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
    };
    let mut candidates = names(step);
    if let Some(p) = parent {
        candidates.extend(names(p));
    }
    matcher.matches_any(candidates.iter().map(String::as_str))
}

/// Evaluates every rule for one job at one poll.
pub fn evaluate_job(
    rules: &[RuleConfig],
    job: &JobInfo,
    existing: &BTreeMap<AlertKey, AlertState>,
    outcome: &Outcome<'_>,
    silences: &[Silence],
    now: DateTime<Utc>,
) -> Evaluation {
    let mut evaluation = Evaluation::default();
    let mut states: BTreeMap<AlertKey, AlertState> = existing.clone();
    let mut steps_by_path: HashMap<String, (StepInfo, Option<StepValues>)> = HashMap::new();
    let rules_by_name: HashMap<&str, &RuleConfig> =
        rules.iter().map(|r| (r.name.as_str(), r)).collect();

    for rule in rules.iter().filter(|r| rule_matches_job(r, job)) {
        let mut seen_paths: Vec<String> = Vec::new();
        let mut verdicts: Vec<Verdict> = Vec::new();
        match (&rule.kind, outcome) {
            (RuleKind::Unreachable, Outcome::Polled { .. }) => {
                verdicts.push((
                    key(rule, ""),
                    unreachable::check(None),
                    None,
                    None,
                    Vec::new(),
                ));
            }
            (RuleKind::Unreachable, Outcome::Failed(error)) => {
                verdicts.push((
                    key(rule, ""),
                    unreachable::check(Some(error)),
                    None,
                    None,
                    Vec::new(),
                ));
            }
            (
                _,
                Outcome::Polled {
                    snapshot,
                    previous,
                    changes,
                },
            ) => {
                for (path, step, parent) in snapshot.walk() {
                    if !rule_matches_step(rule, step, parent) {
                        continue;
                    }
                    let ctx = StepContext {
                        step,
                        previous: previous.and_then(|(p, _)| p.find(&path)),
                        previous_at: previous.map(|(_, at)| at),
                        changes: changes.iter().filter(|c| c.path == path).collect(),
                    };
                    let info = StepInfo::new(&path, step, parent);
                    let values = StepValues::of(step);
                    // "appeared" says only that dtswatch saw the step for the first time.
                    let change_lines: Vec<String> = ctx
                        .changes
                        .iter()
                        .filter(|c| c.kind != crate::diff::ChangeKind::Appeared)
                        .map(|c| c.kind.to_string())
                        .collect();
                    steps_by_path.insert(path.clone(), (info.clone(), Some(values.clone())));
                    if let RuleKind::Transition { from, to } = &rule.kind {
                        if let Some(change) = transition::matching(from, to, &ctx.changes) {
                            evaluation.notices.push(Notice {
                                key: key(rule, &path),
                                event: Event {
                                    status: EventStatus::Firing,
                                    reason: Reason::Transition,
                                    rule: rule.name.clone(),
                                    kind: rule.kind.name().into(),
                                    severity: rule.severity,
                                    job: job.clone(),
                                    step: Some(info),
                                    summary: change.kind.to_string(),
                                    changes: change_lines,
                                    current: Some(values),
                                    first_seen: now,
                                    at: now,
                                    runbook: rule.runbook.clone(),
                                },
                                suppressed: None,
                            });
                        }
                        continue;
                    }
                    let finding = match &rule.kind {
                        RuleKind::Failed { states } => failed::check(states, &ctx),
                        RuleKind::Error { pattern, ignore } => {
                            error::check(pattern.as_ref(), ignore.as_ref(), &ctx)
                        }
                        RuleKind::Latency {
                            threshold_ms,
                            resolve_below_ms,
                        } => latency::check(*threshold_ms, *resolve_below_ms, &ctx),
                        _ => stalled::check(&ctx),
                    };
                    seen_paths.push(path.clone());
                    verdicts.push((
                        key(rule, &path),
                        finding,
                        Some(info),
                        Some(values),
                        change_lines,
                    ));
                }
                // Alerts of this rule on steps not seen this poll: the step is gone.
                for alert_key in existing
                    .keys()
                    .filter(|k| k.rule == rule.name && !seen_paths.contains(&k.path))
                {
                    let info = previous.and_then(|(p, _)| {
                        p.walk()
                            .into_iter()
                            .find(|(path, _, _)| *path == alert_key.path)
                            .map(|(path, s, parent)| StepInfo::new(&path, s, parent))
                    });
                    verdicts.push((
                        alert_key.clone(),
                        Finding {
                            condition: Condition::Gone,
                            summary: "the step is no longer listed".into(),
                        },
                        info,
                        None,
                        vec!["appeared → disappeared".into()],
                    ));
                }
            }
            (_, Outcome::Failed(_)) => {
                // A failed poll is unknown for everything but `unreachable`.
                for alert_key in existing.keys().filter(|k| k.rule == rule.name) {
                    verdicts.push((
                        alert_key.clone(),
                        Finding {
                            condition: Condition::Unknown,
                            summary: String::new(),
                        },
                        None,
                        None,
                        Vec::new(),
                    ));
                }
            }
            (_, Outcome::Retired) => {
                for alert_key in existing.keys().filter(|k| k.rule == rule.name) {
                    verdicts.push((
                        alert_key.clone(),
                        Finding {
                            condition: Condition::Gone,
                            summary: "the job is no longer listed".into(),
                        },
                        None,
                        None,
                        Vec::new(),
                    ));
                }
            }
        }
        let gone_reason = if matches!(outcome, Outcome::Retired) {
            Reason::JobRetired
        } else {
            Reason::StepGone
        };
        for (alert_key, finding, info, values, change_lines) in verdicts {
            let before = states.get(&alert_key).cloned().unwrap_or_default();
            let (after, reason) =
                lifecycle::step(rule, &before, &finding.condition, now, gone_reason);
            if let Some(reason) = reason {
                let status = if reason.resolves() {
                    EventStatus::Resolved
                } else {
                    EventStatus::Firing
                };
                let mut summary = finding.summary.clone();
                if reason == Reason::JobRetired {
                    summary = "resolved: the job is no longer listed".into();
                }
                evaluation.notices.push(Notice {
                    key: alert_key.clone(),
                    event: Event {
                        status,
                        reason,
                        rule: rule.name.clone(),
                        kind: rule.kind.name().into(),
                        severity: rule.severity,
                        job: job.clone(),
                        step: info,
                        summary,
                        changes: change_lines,
                        current: values,
                        first_seen: before.since.or(after.since).unwrap_or(now),
                        at: now,
                        runbook: rule.runbook.clone(),
                    },
                    suppressed: if reason.resolves() && before.owed {
                        Some(Suppression::NeverNotified)
                    } else if reason.resolves() && !rule.send_resolved {
                        Some(Suppression::ResolvedNotWanted)
                    } else {
                        None
                    },
                });
            }
            states.insert(alert_key, after);
        }
    }

    // Firing alerts after this poll, for inhibition.
    let firing: Vec<(AlertKey, &RuleConfig)> = states
        .iter()
        .filter(|(_, s)| s.status == Status::Firing)
        .filter_map(|(k, _)| rules_by_name.get(k.rule.as_str()).map(|r| (k.clone(), *r)))
        .collect();
    // People who were told an alert fires are told when it ends, inhibited or
    // not; silences, which someone asked for, hold back both.
    let suppression = |rule: &RuleConfig,
                       path: &str,
                       step: Option<&StepInfo>,
                       resolving: bool|
     -> Option<Suppression> {
        for (source_key, source) in firing.iter().filter(|_| !resolving) {
            let inhibits = source.name != rule.name
                && (rule.inhibited_by.contains(&source.name)
                    || rule.inhibited_by.iter().any(|k| k == source.kind.name()))
                && source.severity > rule.severity
                && (source_key.path.is_empty()
                    || path == source_key.path
                    || path.starts_with(&format!("{}/", source_key.path)));
            if inhibits {
                return Some(Suppression::Inhibited(source.name.clone()));
            }
        }
        silences
            .iter()
            .find(|s| s.is_active(now) && s.matches(job, &rule.name, step))
            .map(|s| Suppression::Silenced(s.id.clone()))
    };

    for notice in &mut evaluation.notices {
        if notice.suppressed.is_some() {
            continue;
        }
        let Some(rule) = rules_by_name.get(notice.key.rule.as_str()) else {
            continue;
        };
        let resolving = notice.event.status == EventStatus::Resolved;
        notice.suppressed = suppression(
            rule,
            &notice.key.path,
            notice.event.step.as_ref(),
            resolving,
        );
        if let Some(state) = states.get_mut(&notice.key)
            && notice.event.status == EventStatus::Firing
            && notice.event.reason == Reason::FirstNotification
        {
            state.owed = notice.suppressed.is_some();
        }
    }

    // Firing alerts whose first notification was held back, now free to go.
    let owed: Vec<AlertKey> = states
        .iter()
        .filter(|(k, s)| {
            s.status == Status::Firing && s.owed && !evaluation.notices.iter().any(|n| &n.key == *k)
        })
        .map(|(k, _)| k.clone())
        .collect();
    for alert_key in owed {
        let Some(rule) = rules_by_name.get(alert_key.rule.as_str()) else {
            continue;
        };
        let (info, values) = steps_by_path
            .get(&alert_key.path)
            .cloned()
            .map(|(i, v)| (Some(i), v))
            .unwrap_or((None, None));
        if suppression(rule, &alert_key.path, info.as_ref(), false).is_some() {
            continue;
        }
        let Some(state) = states.get_mut(&alert_key) else {
            continue;
        };
        state.owed = false;
        state.last_notified = Some(now);
        evaluation.notices.push(Notice {
            key: alert_key.clone(),
            event: Event {
                status: EventStatus::Firing,
                reason: Reason::NoLongerSuppressed,
                rule: rule.name.clone(),
                kind: rule.kind.name().into(),
                severity: rule.severity,
                job: job.clone(),
                step: info.clone(),
                summary: "still firing after its silence or inhibition ended".into(),
                changes: Vec::new(),
                current: values,
                first_seen: state.since.unwrap_or(now),
                at: now,
                runbook: rule.runbook.clone(),
            },
            suppressed: None,
        });
    }

    for (alert_key, state) in states {
        if existing.get(&alert_key) != Some(&state)
            && (state != AlertState::default() || existing.contains_key(&alert_key))
        {
            evaluation.updates.push((alert_key, state));
        }
    }
    evaluation
}

fn key(rule: &RuleConfig, path: &str) -> AlertKey {
    AlertKey {
        rule: rule.name.clone(),
        path: path.to_string(),
    }
}

#[cfg(test)]
mod tests;
