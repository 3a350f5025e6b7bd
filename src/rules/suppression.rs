//! Which notifications are held back, and which held-back ones are now owed.
//! Inhibition: while a higher-severity alert that a rule is `inhibited_by`
//! fires on the same job (job-level) or the same step (or its parent), the
//! rule's firing notices are recorded, not sent. Silences hold back both
//! firing and resolved notices. People who were told an alert fires are told
//! when it ends, inhibited or not. A firing alert whose first notice was held
//! back is owed one once nothing holds it back any more. Pure.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use super::verdict::PollView;
use super::{
    AlertKey, AlertState, EventStatus, JobInfo, Notice, Reason, Status, StepInfo, StepValues,
    Suppression, silence::Silence,
};
use crate::config::RuleConfig;

/// Marks the notices that are held back, and adds the owed ones.
pub(super) fn apply(
    notices: &mut Vec<Notice>,
    states: &mut BTreeMap<AlertKey, AlertState>,
    rules: &HashMap<&str, &RuleConfig>,
    view: &PollView<'_>,
    job: &JobInfo,
    silences: &[Silence],
    now: DateTime<Utc>,
) {
    // Firing alerts after this observation, for inhibition.
    let firing: Vec<(AlertKey, &RuleConfig)> = states
        .iter()
        .filter(|(_, s)| s.status == Status::Firing)
        .filter_map(|(k, _)| rules.get(k.rule.as_str()).map(|r| (k.clone(), *r)))
        .collect();
    let held = Holds {
        firing: &firing,
        job,
        silences,
        now,
    };
    for notice in notices.iter_mut() {
        if notice.suppressed.is_some() {
            continue;
        }
        let Some(rule) = rules.get(notice.key.rule.as_str()) else {
            continue;
        };
        let resolving = notice.event.status == EventStatus::Resolved;
        notice.suppressed = held.reason(
            rule,
            &notice.key.path,
            notice.event.step.as_ref(),
            resolving,
        );
        // A held-back first notice is owed; any firing notice that goes
        // out pays what was owed (one notification per suppression change).
        if let Some(state) = states.get_mut(&notice.key)
            && notice.event.status == EventStatus::Firing
        {
            if notice.suppressed.is_none() {
                state.owed = false;
            } else if notice.event.reason == Reason::FirstNotification {
                state.owed = true;
            }
        }
    }
    let owed = owed_notices(notices, states, rules, view, &held);
    notices.extend(owed);
}

/// What can hold a notice back at this observation.
struct Holds<'a> {
    firing: &'a [(AlertKey, &'a RuleConfig)],
    job: &'a JobInfo,
    silences: &'a [Silence],
    now: DateTime<Utc>,
}

impl Holds<'_> {
    fn reason(
        &self,
        rule: &RuleConfig,
        path: &str,
        step: Option<&StepInfo>,
        resolving: bool,
    ) -> Option<Suppression> {
        if !resolving
            && let Some((_, source)) = self
                .firing
                .iter()
                .find(|(source_key, source)| inhibits(source_key, source, rule, path))
        {
            return Some(Suppression::Inhibited(source.name.clone()));
        }
        self.silences
            .iter()
            .find(|s| s.is_active(self.now) && s.matches(self.job, &rule.name, step))
            .map(|s| Suppression::Silenced(s.id.clone()))
    }
}

/// True when the firing alert `source` holds back `rule`'s alert at `path`.
fn inhibits(source_key: &AlertKey, source: &RuleConfig, rule: &RuleConfig, path: &str) -> bool {
    source.name != rule.name
        && (rule.inhibited_by.contains(&source.name)
            || rule.inhibited_by.iter().any(|k| k == source.kind.name()))
        && source.severity > rule.severity
        && (source_key.path.is_empty()
            || path == source_key.path
            || path
                .strip_prefix(source_key.path.as_str())
                .is_some_and(|rest| rest.starts_with('/')))
}

/// Firing alerts whose first notification was held back, now free to go.
fn owed_notices(
    notices: &[Notice],
    states: &mut BTreeMap<AlertKey, AlertState>,
    rules: &HashMap<&str, &RuleConfig>,
    view: &PollView<'_>,
    held: &Holds<'_>,
) -> Vec<Notice> {
    let owed: Vec<AlertKey> = states
        .iter()
        .filter(|(k, s)| {
            s.status == Status::Firing && s.owed && !notices.iter().any(|n| &n.key == *k)
        })
        .map(|(k, _)| k.clone())
        .collect();
    let mut out = Vec::new();
    for alert_key in owed {
        let Some(rule) = rules.get(alert_key.rule.as_str()) else {
            continue;
        };
        let step_on_poll = view.pairs.iter().find(|pair| pair.is_at(&alert_key.path));
        let (info, values, fact) = match step_on_poll {
            Some(pair) => (
                Some(StepInfo::new(&alert_key.path, pair.step, pair.parent)),
                Some(StepValues::of(pair.step)),
                super::verdict::step_fact(
                    rule,
                    pair.step,
                    &super::Condition::Holds {
                        since: None,
                        fingerprint: None,
                    },
                ),
            ),
            None => (None, None, super::Fact::StillFiring),
        };
        if held
            .reason(rule, &alert_key.path, info.as_ref(), false)
            .is_some()
        {
            continue;
        }
        let Some(state) = states.get_mut(&alert_key) else {
            continue;
        };
        state.owed = false;
        state.last_notified = Some(held.now);
        let verdict = super::verdict::Verdict {
            key: alert_key.clone(),
            judgement: super::verdict::Judgement::OneShot(Reason::NoLongerSuppressed),
            step: info,
            values,
            fact,
            changes: Vec::new(),
            folded: Vec::new(),
        };
        let first_seen = state.since.unwrap_or(held.now);
        out.push(Notice {
            key: alert_key,
            event: verdict.into_event(
                rule,
                Reason::NoLongerSuppressed,
                held.job,
                first_seen,
                held.now,
            ),
            suppressed: None,
        });
    }
    out
}
