//! What each rule says about each alert of a job at one observation: a
//! [`Verdict`] per alert it covers (its key, its condition or one-shot
//! reason, the step and its values, a summary and the change lines). The
//! conditions themselves are one file per kind; this file decides which
//! steps each kind looks at. Pure.

use std::cell::OnceCell;
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::fold;
use super::{
    AlertKey, ChangeNote, Event, EventKind, EventStatus, Fact, FoldedStep, JobInfo, Outcome,
    Reason, StepInfo, StepValues, WatchdogCheck, error, failed, key, latency, lifecycle::Condition,
    stalled, transition, unreachable, watchdog,
};
use crate::config::{RuleConfig, RuleKind};
use crate::diff::{Change, ChangeKind};
use crate::dts::Step;
use crate::dts::snapshot::{StepPair, pair_steps};

/// The observation, prepared once for every rule: each step with its
/// previous self, and the changes by step (grouped only if a rule needs them).
pub(super) struct PollView<'a> {
    pub pairs: Vec<StepPair<'a>>,
    changes: &'a [Change],
    previous_at: Option<DateTime<Utc>>,
    changes_by_path: OnceCell<HashMap<&'a str, Vec<&'a Change>>>,
    retired: bool,
}

impl<'a> PollView<'a> {
    pub fn new(outcome: &'a Outcome<'a>) -> Self {
        let (pairs, changes, previous_at) = match outcome {
            Outcome::Polled {
                snapshot,
                previous,
                changes,
            } => (
                pair_steps(snapshot, previous.map(|(p, _)| p)),
                *changes,
                previous.map(|(_, at)| at),
            ),
            _ => (Vec::new(), &[][..], None),
        };
        Self {
            pairs,
            changes,
            previous_at,
            changes_by_path: OnceCell::new(),
            retired: matches!(outcome, Outcome::Retired),
        }
    }

    fn changes_at(&self, path: &str) -> Option<&Vec<&'a Change>> {
        self.changes_by_path
            .get_or_init(|| {
                let mut grouped: HashMap<&str, Vec<&Change>> = HashMap::new();
                for change in self.changes {
                    grouped.entry(&*change.path).or_default().push(change);
                }
                grouped
            })
            .get(path)
    }

    /// Why an alert whose subject disappeared resolves.
    pub fn gone_reason(&self) -> Reason {
        if self.retired {
            Reason::JobRetired
        } else {
            Reason::StepGone
        }
    }
}

/// How a verdict moves its alert.
pub(super) enum Judgement {
    /// Through the lifecycle, with this condition.
    Lifecycle(Condition),
    /// A one-shot notice (a transition): no lifecycle, no resolution.
    OneShot(Reason),
}

/// What a rule says about one alert.
pub(super) struct Verdict {
    pub key: AlertKey,
    pub judgement: Judgement,
    pub step: Option<StepInfo>,
    pub values: Option<StepValues>,
    pub fact: Fact,
    pub changes: Vec<ChangeNote>,
    /// Sub-steps that said the same and are named in this alert instead.
    pub folded: Vec<FoldedStep>,
}

impl Verdict {
    fn job_level(key: AlertKey, condition: Condition, fact: Fact) -> Self {
        Self {
            key,
            judgement: Judgement::Lifecycle(condition),
            step: None,
            values: None,
            fact,
            changes: Vec::new(),
            folded: Vec::new(),
        }
    }

    pub fn into_event(
        self,
        rule: &RuleConfig,
        reason: Reason,
        job: &JobInfo,
        first_seen: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Event {
        Event {
            status: if reason.resolves() {
                EventStatus::Resolved
            } else {
                EventStatus::Firing
            },
            reason,
            rule: rule.name.clone(),
            kind: EventKind::of(&rule.kind),
            severity: rule.severity,
            job: job.clone(),
            step: self.step,
            summary: self.fact.summary(),
            fact: Some(self.fact),
            changes: self.changes,
            current: self.values,
            folded: self.folded,
            first_seen,
            at: now,
            runbook: rule.runbook.clone(),
        }
    }
}

pub(super) fn rule_matches_job(rule: &RuleConfig, job: &JobInfo) -> bool {
    rule.jobs
        .as_ref()
        .is_none_or(|m| m.matches_any([job.id.as_str(), job.name.as_str()]))
}

pub(super) fn rule_matches_step(rule: &RuleConfig, step: &Step, parent: Option<&Step>) -> bool {
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

/// What a snapshot-based kind says about one step.
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
        RuleKind::Transition { .. } | RuleKind::Unreachable | RuleKind::Watchdog => {
            Condition::Clear
        }
    }
}

pub(super) fn step_fact(rule: &RuleConfig, step: &Step, condition: &Condition) -> Fact {
    match &rule.kind {
        RuleKind::Failed { states } => failed::fact(states, step),
        RuleKind::Error { pattern, ignore } => error::fact(pattern.as_ref(), ignore.as_ref(), step),
        RuleKind::Latency {
            threshold_ms,
            resolve_below_ms,
        } => latency::fact(*threshold_ms, *resolve_below_ms, step),
        RuleKind::Stalled => stalled::fact(step, condition),
        RuleKind::Transition { .. } | RuleKind::Unreachable | RuleKind::Watchdog => {
            Fact::StateNow {
                state: step.state_raw.to_string(),
            }
        }
    }
}

/// The changes of one step ("appeared" says only that dtswatch saw it first).
fn change_notes(changes: Option<&Vec<&Change>>) -> Vec<ChangeNote> {
    changes
        .into_iter()
        .flatten()
        .filter(|c| c.kind != ChangeKind::Appeared)
        .map(|c| ChangeNote::Kind(c.kind.clone()))
        .collect()
}

/// Every verdict of `rule` at this observation; `stateful` are the paths
/// where the rule has an alert already.
pub(super) fn judge(
    rule: &RuleConfig,
    view: &PollView<'_>,
    outcome: &Outcome<'_>,
    stateful: Option<&HashSet<&str>>,
) -> Vec<Verdict> {
    match (&rule.kind, outcome) {
        (RuleKind::Watchdog, Outcome::Watchdog(checks)) => watchdog_verdicts(rule, checks),
        (RuleKind::Watchdog, _) | (_, Outcome::Watchdog(_)) => Vec::new(),
        (RuleKind::Unreachable, Outcome::Polled { .. }) => {
            if stateful.is_some_and(|s| s.contains("")) {
                vec![Verdict::job_level(
                    key(rule, ""),
                    unreachable::check(None),
                    unreachable::fact(None),
                )]
            } else {
                Vec::new()
            }
        }
        (RuleKind::Unreachable, Outcome::Failed(error)) => vec![Verdict::job_level(
            key(rule, ""),
            unreachable::check(Some(error)),
            unreachable::fact(Some(error)),
        )],
        (RuleKind::Transition { from, to }, Outcome::Polled { .. }) => {
            fold::fold_sub_steps(rule, transitions(rule, from, to, view), stateful)
        }
        (
            _,
            Outcome::Polled {
                snapshot, previous, ..
            },
        ) => {
            let mut verdicts =
                fold::fold_sub_steps(rule, step_verdicts(rule, view, stateful), stateful);
            // Alerts of this rule on steps no longer listed (or no longer
            // matching the rule): the step is gone.
            for path in stateful.into_iter().flatten().filter(|p| !p.is_empty()) {
                let listed = snapshot
                    .find_with_parent(path)
                    .is_some_and(|(step, parent)| rule_matches_step(rule, step, parent));
                if listed {
                    continue;
                }
                let step = previous
                    .and_then(|(p, _)| p.find_with_parent(path))
                    .map(|(s, parent)| StepInfo::new(path, s, parent));
                verdicts.push(Verdict {
                    step,
                    ..Verdict::job_level(key(rule, path), Condition::Gone, Fact::StepGone)
                });
            }
            verdicts
        }
        // A failed poll is unknown for everything but `unreachable`: nothing moves.
        (_, Outcome::Failed(_)) => Vec::new(),
        (_, Outcome::Retired) => stateful
            .into_iter()
            .flatten()
            .map(|path| Verdict::job_level(key(rule, path), Condition::Gone, Fact::JobGone))
            .collect(),
    }
}

/// The verdicts of a snapshot-based rule on the steps it covers.
fn step_verdicts(
    rule: &RuleConfig,
    view: &PollView<'_>,
    stateful: Option<&HashSet<&str>>,
) -> Vec<Verdict> {
    let mut verdicts = Vec::new();
    for pair in &view.pairs {
        if !rule_matches_step(rule, pair.step, pair.parent) {
            continue;
        }
        let condition = step_condition(rule, pair.step, pair.previous, view.previous_at);
        let has_state = stateful.is_some_and(|s| s.iter().any(|p| pair.is_at(p)));
        if !has_state && !matches!(condition, Condition::Holds { .. }) {
            continue;
        }
        let path = pair.path();
        verdicts.push(Verdict {
            fact: step_fact(rule, pair.step, &condition),
            changes: change_notes(view.changes_at(&path)),
            step: Some(StepInfo::new(&path, pair.step, pair.parent)),
            values: Some(StepValues::of(pair.step)),
            judgement: Judgement::Lifecycle(condition),
            key: key(rule, &path),
            folded: Vec::new(),
        });
    }
    verdicts
}

/// One-shot notices for the state changes a transition rule matches.
fn transitions(
    rule: &RuleConfig,
    from: &[crate::dts::State],
    to: &[crate::dts::State],
    view: &PollView<'_>,
) -> Vec<Verdict> {
    let mut verdicts = Vec::new();
    // Only a step whose state changed can match, so start from the changes.
    for pair in &view.pairs {
        if !view
            .changes
            .iter()
            .any(|c| matches!(c.kind, ChangeKind::State { .. }) && pair.is_at(&c.path))
        {
            continue;
        }
        if !rule_matches_step(rule, pair.step, pair.parent) {
            continue;
        }
        let path = pair.path();
        let step_changes = view.changes_at(&path);
        let Some(change) = step_changes.and_then(|c| transition::matching(from, to, c)) else {
            continue;
        };
        let fact = match &change.kind {
            ChangeKind::State {
                from_raw, to_raw, ..
            } => Fact::Transition {
                from: from_raw.to_string(),
                to: to_raw.to_string(),
            },
            _ => step_fact(rule, pair.step, &Condition::Clear),
        };
        verdicts.push(Verdict {
            fact,
            changes: change_notes(step_changes),
            step: Some(StepInfo::new(&path, pair.step, pair.parent)),
            values: Some(StepValues::of(pair.step)),
            judgement: Judgement::OneShot(Reason::Transition),
            key: key(rule, &path),
            folded: Vec::new(),
        });
    }
    verdicts
}

/// The watchdog rule's verdict from its check.
fn watchdog_verdicts(rule: &RuleConfig, checks: &[WatchdogCheck]) -> Vec<Verdict> {
    checks
        .iter()
        .filter(|check| check.rule == rule.name)
        .map(|check| {
            Verdict::job_level(
                key(rule, ""),
                watchdog::condition(check),
                watchdog::fact(check),
            )
        })
        .collect()
}
