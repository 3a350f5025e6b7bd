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

use std::cell::OnceCell;
use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::aliyun::ApiError;
use crate::config::{JobConfig, RuleConfig, RuleKind, Severity};
use crate::diff::{Change, ChangeKind, step_label};
use crate::dts::snapshot::pair_steps;
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
            name: step.name.to_string(),
            code: step.code.as_deref().map(str::to_string),
            sub_step_id: parent.and(step.id.as_deref().map(str::to_string)),
            parent_name: parent.map(|p| p.name.to_string()),
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
    let names = [
        Some(&*step.name),
        step.code.as_deref(),
        parent.map(|p| &*p.name),
        parent.and_then(|p| p.code.as_deref()),
    ];
    matcher.matches_any(names.into_iter().flatten())
}

/// What a snapshot-based kind says about one step, and in words.
fn step_condition(
    rule: &RuleConfig,
    step: &Step,
    previous: Option<&Step>,
    previous_at: Option<DateTime<Utc>>,
) -> Condition {
    match &rule.kind {
        RuleKind::Failed { states } => failed::check(states, step),
        RuleKind::Error { pattern, ignore } => {
            error::check(pattern.as_ref(), ignore.as_ref(), step)
        }
        RuleKind::Latency {
            threshold_ms,
            resolve_below_ms,
        } => latency::check(*threshold_ms, *resolve_below_ms, step),
        RuleKind::Stalled => stalled::check(step, previous, previous_at),
        RuleKind::Transition { .. } | RuleKind::Unreachable => Condition::Clear,
    }
}

fn step_summary(rule: &RuleConfig, step: &Step, condition: &Condition) -> String {
    match &rule.kind {
        RuleKind::Failed { states } => failed::summary(states, step),
        RuleKind::Error { pattern, ignore } => {
            error::summary(pattern.as_ref(), ignore.as_ref(), step)
        }
        RuleKind::Latency {
            threshold_ms,
            resolve_below_ms,
        } => latency::summary(*threshold_ms, *resolve_below_ms, step),
        RuleKind::Stalled => stalled::summary(step, condition),
        RuleKind::Transition { .. } | RuleKind::Unreachable => String::new(),
    }
}

/// Builds events; shared by every path through the evaluation.
struct EventFactory<'a> {
    job: &'a JobInfo,
    now: DateTime<Utc>,
}

impl EventFactory<'_> {
    #[allow(clippy::too_many_arguments)] // the fields of the event, each from a different place
    fn event(
        &self,
        rule: &RuleConfig,
        reason: Reason,
        step: Option<StepInfo>,
        summary: String,
        changes: Vec<String>,
        current: Option<StepValues>,
        first_seen: DateTime<Utc>,
    ) -> Event {
        Event {
            status: if reason.resolves() {
                EventStatus::Resolved
            } else {
                EventStatus::Firing
            },
            reason,
            rule: rule.name.clone(),
            kind: rule.kind.name().into(),
            severity: rule.severity,
            job: self.job.clone(),
            step,
            summary,
            changes,
            current,
            first_seen,
            at: self.now,
            runbook: rule.runbook.clone(),
        }
    }
}

/// The changes of one step as message lines ("appeared" says only that dtswatch saw it first).
fn change_lines(changes: Option<&Vec<&Change>>) -> Vec<String> {
    changes
        .into_iter()
        .flatten()
        .filter(|c| c.kind != crate::diff::ChangeKind::Appeared)
        .map(|c| c.kind.to_string())
        .collect()
}

/// What a rule says about one alert at one poll: its key, the condition, the
/// step and its values, the summary and the change lines.
type Verdict = (
    AlertKey,
    Condition,
    Option<(StepInfo, Option<StepValues>)>,
    String,
    Vec<String>,
);

/// Evaluates every rule for one job at one poll. Steps with no alert state
/// whose condition does not hold are skipped before anything is allocated:
/// a healthy job costs little.
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
    let factory = EventFactory { job, now };
    let rules_by_name: HashMap<&str, &RuleConfig> =
        rules.iter().map(|r| (r.name.as_str(), r)).collect();
    let mut with_state: HashMap<&str, HashSet<&str>> = HashMap::new();
    for key in existing.keys() {
        with_state
            .entry(key.rule.as_str())
            .or_default()
            .insert(key.path.as_str());
    }
    // Per poll, not per rule: every step with its previous self. The changes
    // by path are grouped only if a verdict needs them (most polls raise none).
    let (pairs, changes) = match outcome {
        Outcome::Polled {
            snapshot,
            previous,
            changes,
        } => (pair_steps(snapshot, previous.map(|(p, _)| p)), *changes),
        _ => (Vec::new(), &[][..]),
    };
    let previous_at = match outcome {
        Outcome::Polled {
            previous: Some((_, at)),
            ..
        } => Some(*at),
        _ => None,
    };
    let changes_by_path: OnceCell<HashMap<&str, Vec<&Change>>> = OnceCell::new();
    let changes_at = |path: &str| {
        changes_by_path
            .get_or_init(|| {
                let mut grouped: HashMap<&str, Vec<&Change>> = HashMap::new();
                for change in changes {
                    grouped.entry(&*change.path).or_default().push(change);
                }
                grouped
            })
            .get(path)
    };
    let mut info_by_path: HashMap<String, (StepInfo, Option<StepValues>)> = HashMap::new();
    let gone_reason = if matches!(outcome, Outcome::Retired) {
        Reason::JobRetired
    } else {
        Reason::StepGone
    };

    for rule in rules.iter().filter(|r| rule_matches_job(r, job)) {
        let stateful = with_state.get(rule.name.as_str());
        let mut verdicts: Vec<Verdict> = Vec::new();
        match (&rule.kind, outcome) {
            (RuleKind::Unreachable, Outcome::Polled { .. }) => {
                if stateful.is_some_and(|s| s.contains("")) {
                    verdicts.push((
                        key(rule, ""),
                        unreachable::check(None),
                        None,
                        unreachable::summary(None),
                        Vec::new(),
                    ));
                }
            }
            (RuleKind::Unreachable, Outcome::Failed(error)) => {
                verdicts.push((
                    key(rule, ""),
                    unreachable::check(Some(error)),
                    None,
                    unreachable::summary(Some(error)),
                    Vec::new(),
                ));
            }
            (RuleKind::Transition { from, to }, Outcome::Polled { .. }) => {
                // Only a step whose state changed can match, so start from the changes.
                for pair in &pairs {
                    if !changes
                        .iter()
                        .any(|c| matches!(c.kind, ChangeKind::State { .. }) && pair.is_at(&c.path))
                    {
                        continue;
                    }
                    if !rule_matches_step(rule, pair.step, pair.parent) {
                        continue;
                    }
                    let path = pair.path();
                    let step_changes = changes_at(&path);
                    let Some(change) = step_changes.and_then(|c| transition::matching(from, to, c))
                    else {
                        continue;
                    };
                    let event = factory.event(
                        rule,
                        Reason::Transition,
                        Some(StepInfo::new(&path, pair.step, pair.parent)),
                        change.kind.to_string(),
                        change_lines(step_changes),
                        Some(StepValues::of(pair.step)),
                        now,
                    );
                    evaluation.notices.push(Notice {
                        key: key(rule, &path),
                        event,
                        suppressed: None,
                    });
                }
            }
            (
                _,
                Outcome::Polled {
                    snapshot, previous, ..
                },
            ) => {
                for pair in &pairs {
                    if !rule_matches_step(rule, pair.step, pair.parent) {
                        continue;
                    }
                    let condition = step_condition(rule, pair.step, pair.previous, previous_at);
                    let has_state = stateful.is_some_and(|s| s.iter().any(|p| pair.is_at(p)));
                    if !has_state && !matches!(condition, Condition::Holds { .. }) {
                        continue;
                    }
                    let path = pair.path();
                    let summary = step_summary(rule, pair.step, &condition);
                    let info = info_by_path
                        .entry(path.clone())
                        .or_insert_with(|| {
                            (
                                StepInfo::new(&path, pair.step, pair.parent),
                                Some(StepValues::of(pair.step)),
                            )
                        })
                        .clone();
                    let lines = change_lines(changes_at(&path));
                    verdicts.push((key(rule, &path), condition, Some(info), summary, lines));
                }
                // Alerts of this rule on steps no longer listed (or no longer
                // matching the rule): the step is gone.
                for path in stateful.into_iter().flatten().filter(|p| !p.is_empty()) {
                    let listed = snapshot
                        .find_with_parent(path)
                        .is_some_and(|(step, parent)| rule_matches_step(rule, step, parent));
                    if listed {
                        continue;
                    }
                    let info = previous
                        .and_then(|(p, _)| p.find_with_parent(path))
                        .map(|(s, parent)| (StepInfo::new(path, s, parent), None));
                    verdicts.push((
                        key(rule, path),
                        Condition::Gone,
                        info,
                        "the step is no longer listed".into(),
                        Vec::new(),
                    ));
                }
            }
            (_, Outcome::Failed(_)) => {
                // A failed poll is unknown for everything but `unreachable`: nothing moves.
            }
            (_, Outcome::Retired) => {
                for path in stateful.into_iter().flatten() {
                    verdicts.push((
                        key(rule, path),
                        Condition::Gone,
                        None,
                        "resolved: the job is no longer listed".into(),
                        Vec::new(),
                    ));
                }
            }
        }
        for (alert_key, condition, info, summary, lines) in verdicts {
            let before = states.get(&alert_key).cloned().unwrap_or_default();
            let (after, reason) = lifecycle::step(rule, &before, &condition, now, gone_reason);
            if let Some(reason) = reason {
                let (step, current) = match info {
                    Some((step, current)) => (Some(step), current),
                    None => (None, None),
                };
                let event = factory.event(
                    rule,
                    reason,
                    step,
                    summary,
                    lines,
                    current,
                    before.since.or(after.since).unwrap_or(now),
                );
                let suppressed = if reason.resolves() && before.owed {
                    Some(Suppression::NeverNotified)
                } else if reason.resolves() && !rule.send_resolved {
                    Some(Suppression::ResolvedNotWanted)
                } else {
                    None
                };
                evaluation.notices.push(Notice {
                    key: alert_key.clone(),
                    event,
                    suppressed,
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
        let step_on_poll = pairs.iter().find(|pair| pair.is_at(&alert_key.path));
        let (info, values) = match step_on_poll {
            Some(pair) => (
                Some(StepInfo::new(&alert_key.path, pair.step, pair.parent)),
                Some(StepValues::of(pair.step)),
            ),
            None => (None, None),
        };
        if suppression(rule, &alert_key.path, info.as_ref(), false).is_some() {
            continue;
        }
        let Some(state) = states.get_mut(&alert_key) else {
            continue;
        };
        state.owed = false;
        state.last_notified = Some(now);
        let first_seen = state.since.unwrap_or(now);
        let event = factory.event(
            rule,
            Reason::NoLongerSuppressed,
            info,
            "still firing after its silence or inhibition ended".into(),
            Vec::new(),
            values,
            first_seen,
        );
        evaluation.notices.push(Notice {
            key: alert_key,
            event,
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
