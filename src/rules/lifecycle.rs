//! The alert lifecycle as a pure state machine: inactive → pending (the
//! condition holds, `for` and `after` not yet met) → firing (notify) →
//! re-notify every `repeat` or when the error's fingerprint changes →
//! resolved after `resolve_after` clean polls. A poll that could not be made
//! is `Unknown` and moves nothing.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::RuleConfig;

/// Where an alert stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Inactive,
    Pending,
    Firing,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Inactive => "inactive",
            Status::Pending => "pending",
            Status::Firing => "firing",
        }
    }
}

/// Everything remembered about one alert between polls (stored in SQLite).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertState {
    pub status: Status,
    /// When the condition started holding (start of `for`).
    pub since: Option<DateTime<Utc>>,
    /// Consecutive polls the condition held.
    pub matching_polls: u32,
    /// Consecutive clean polls while firing.
    pub clean_polls: u32,
    pub fired_at: Option<DateTime<Utc>>,
    pub last_notified: Option<DateTime<Utc>>,
    /// What the condition was about when last notified (masked error text, state, …).
    pub fingerprint: Option<String>,
    /// Firing, but the firing notification was held back (silenced or
    /// inhibited) and is still owed once that ends.
    pub owed: bool,
}

impl Default for AlertState {
    fn default() -> Self {
        Self {
            status: Status::Inactive,
            since: None,
            matching_polls: 0,
            clean_polls: 0,
            fired_at: None,
            last_notified: None,
            fingerprint: None,
            owed: false,
        }
    }
}

/// What a rule's condition says at one poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// The condition holds; `since` overrides when it started (stalls date back
    /// to when progress stopped moving); `fingerprint` identifies what holds.
    Holds {
        since: Option<DateTime<Utc>>,
        fingerprint: Option<String>,
    },
    /// The condition does not hold.
    Clear,
    /// In the hysteresis band: keeps a firing alert firing, resets a pending one.
    Hold,
    /// The poll failed: nothing can be said.
    Unknown,
    /// The step is gone or the job retired: resolve now.
    Gone,
}

/// Why the lifecycle asks for a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// `for` and `after` are met: the alert fires.
    FirstNotification,
    /// Still firing after `repeat`.
    Repeat,
    /// Still firing, but about something new (a different error).
    FingerprintChanged,
    /// The condition cleared for `resolve_after` polls.
    Resolved,
    /// The step disappeared from the job.
    StepGone,
    /// Discovery no longer lists the job.
    JobRetired,
    /// A one-shot `transition` rule matched a state change.
    Transition,
    /// A held-back firing notification, sent now that its silence or inhibition ended.
    NoLongerSuppressed,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::FirstNotification => "first_notification",
            Reason::Repeat => "repeat",
            Reason::FingerprintChanged => "fingerprint_changed",
            Reason::Resolved => "resolved",
            Reason::StepGone => "step_gone",
            Reason::JobRetired => "job_retired",
            Reason::Transition => "transition",
            Reason::NoLongerSuppressed => "no_longer_suppressed",
        }
    }

    /// True for the reasons that end an alert.
    pub fn resolves(self) -> bool {
        matches!(
            self,
            Reason::Resolved | Reason::StepGone | Reason::JobRetired
        )
    }
}

/// Advances one alert by one poll. Returns the new state and, when people
/// should hear about it, why. `gone_reason` names why a `Gone` resolves.
pub fn step(
    rule: &RuleConfig,
    state: &AlertState,
    condition: &Condition,
    now: DateTime<Utc>,
    gone_reason: Reason,
) -> (AlertState, Option<Reason>) {
    let mut next = state.clone();
    match condition {
        Condition::Unknown => (next, None),
        Condition::Holds { since, fingerprint } => {
            next.matching_polls = next.matching_polls.saturating_add(1);
            next.clean_polls = 0;
            match state.status {
                Status::Inactive => {
                    next.status = Status::Pending;
                    next.since = Some(since.unwrap_or(now));
                    next.fingerprint = fingerprint.clone();
                    fire_if_due(rule, next, now)
                }
                Status::Pending => {
                    next.fingerprint = fingerprint.clone();
                    fire_if_due(rule, next, now)
                }
                Status::Firing => {
                    if fingerprint.is_some() && *fingerprint != state.fingerprint {
                        next.fingerprint = fingerprint.clone();
                        next.last_notified = Some(now);
                        return (next, Some(Reason::FingerprintChanged));
                    }
                    match (rule.repeat, state.last_notified) {
                        (Some(repeat), Some(last))
                            if now - last
                                >= chrono::Duration::from_std(repeat)
                                    .unwrap_or(chrono::Duration::MAX) =>
                        {
                            next.last_notified = Some(now);
                            (next, Some(Reason::Repeat))
                        }
                        _ => (next, None),
                    }
                }
            }
        }
        Condition::Hold => match state.status {
            Status::Firing => {
                next.clean_polls = 0;
                (next, None)
            }
            _ => (AlertState::default(), None),
        },
        Condition::Clear => match state.status {
            Status::Firing => {
                next.matching_polls = 0;
                next.clean_polls = next.clean_polls.saturating_add(1);
                if next.clean_polls >= rule.resolve_after {
                    (AlertState::default(), Some(Reason::Resolved))
                } else {
                    (next, None)
                }
            }
            _ => (AlertState::default(), None),
        },
        Condition::Gone => match state.status {
            Status::Firing => (AlertState::default(), Some(gone_reason)),
            _ => (AlertState::default(), None),
        },
    }
}

fn fire_if_due(
    rule: &RuleConfig,
    mut next: AlertState,
    now: DateTime<Utc>,
) -> (AlertState, Option<Reason>) {
    let held_for = now - next.since.unwrap_or(now);
    let enough_time =
        held_for >= chrono::Duration::from_std(rule.for_).unwrap_or(chrono::Duration::MAX);
    if enough_time && next.matching_polls >= rule.after {
        next.status = Status::Firing;
        next.fired_at = Some(now);
        next.last_notified = Some(now);
        (next, Some(Reason::FirstNotification))
    } else {
        (next, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{RuleKind, Severity};
    use std::time::Duration;

    fn rule(for_secs: u64, after: u32, resolve_after: u32, repeat: Option<u64>) -> RuleConfig {
        RuleConfig {
            name: "r".into(),
            kind: RuleKind::Stalled,
            severity: Severity::Warning,
            channels: vec![],
            jobs: None,
            steps: None,
            sub_steps: true,
            for_: Duration::from_secs(for_secs),
            repeat: repeat.map(Duration::from_secs),
            send_resolved: true,
            after,
            resolve_after,
            inhibited_by: vec![],
            runbook: None,
            fold_sub_steps: true,
        }
    }

    fn t(seconds: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-30T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
            + chrono::Duration::seconds(seconds)
    }

    fn holds() -> Condition {
        Condition::Holds {
            since: None,
            fingerprint: None,
        }
    }

    /// Runs conditions at 30 s intervals and returns the reasons emitted, per poll.
    fn run(rule: &RuleConfig, conditions: &[Condition]) -> (AlertState, Vec<Option<Reason>>) {
        let mut state = AlertState::default();
        let mut reasons = Vec::new();
        for (i, c) in conditions.iter().enumerate() {
            let (next, reason) = step(rule, &state, c, t(i as i64 * 30), Reason::StepGone);
            state = next;
            reasons.push(reason);
        }
        (state, reasons)
    }

    #[test]
    fn fires_at_once_without_for_or_after() {
        let (state, reasons) = run(&rule(0, 1, 1, None), &[holds()]);
        assert_eq!(reasons, [Some(Reason::FirstNotification)]);
        assert_eq!(state.status, Status::Firing);
    }

    #[test]
    fn for_not_yet_elapsed_stays_pending() {
        let r = rule(90, 1, 1, None);
        let (state, reasons) = run(&r, &[holds(), holds(), holds()]);
        assert_eq!(reasons, [None, None, None], "60 s held of 90 s");
        assert_eq!(state.status, Status::Pending);
        let (_, reasons) = run(&r, &[holds(), holds(), holds(), holds()]);
        assert_eq!(reasons[3], Some(Reason::FirstNotification), "90 s held");
    }

    #[test]
    fn after_counts_consecutive_matching_polls() {
        let r = rule(0, 3, 1, None);
        let (_, reasons) = run(
            &r,
            &[
                holds(),
                holds(),
                Condition::Clear,
                holds(),
                holds(),
                holds(),
            ],
        );
        assert_eq!(
            reasons,
            [
                None,
                None,
                None,
                None,
                None,
                Some(Reason::FirstNotification)
            ]
        );
    }

    #[test]
    fn repeat_timing() {
        let r = rule(0, 1, 1, Some(60));
        let (_, reasons) = run(&r, &[holds(), holds(), holds(), holds(), holds()]);
        assert_eq!(
            reasons,
            [
                Some(Reason::FirstNotification),
                None,
                Some(Reason::Repeat),
                None,
                Some(Reason::Repeat)
            ]
        );
    }

    #[test]
    fn resolves_after_clean_polls() {
        let r = rule(0, 1, 2, None);
        let (state, reasons) = run(
            &r,
            &[
                holds(),
                Condition::Clear,
                holds(),
                Condition::Clear,
                Condition::Clear,
            ],
        );
        assert_eq!(
            reasons,
            [
                Some(Reason::FirstNotification),
                None,
                None,
                None,
                Some(Reason::Resolved)
            ]
        );
        assert_eq!(state, AlertState::default());
    }

    #[test]
    fn flapping_without_damping_notifies_every_flip_and_with_damping_not_at_all() {
        let flaps: Vec<Condition> = (0..6)
            .map(|i| {
                if i % 2 == 0 {
                    holds()
                } else {
                    Condition::Clear
                }
            })
            .collect();
        let (_, reasons) = run(&rule(0, 1, 1, None), &flaps);
        assert_eq!(reasons.iter().flatten().count(), 6);
        let (state, reasons) = run(&rule(0, 2, 2, None), &flaps);
        assert!(reasons.iter().all(Option::is_none));
        assert_ne!(state.status, Status::Firing);
    }

    #[test]
    fn unknown_neither_fires_nor_resolves() {
        let r = rule(0, 1, 1, None);
        let (state, reasons) = run(&r, &[holds(), Condition::Unknown, Condition::Unknown]);
        assert_eq!(reasons, [Some(Reason::FirstNotification), None, None]);
        assert_eq!(state.status, Status::Firing);
        let pending_rule = rule(60, 1, 1, None);
        let (state, _) = run(&pending_rule, &[holds(), Condition::Unknown]);
        assert_eq!(
            state.status,
            Status::Pending,
            "unknown does not reset a pending alert"
        );
    }

    #[test]
    fn hysteresis_band_keeps_firing_but_resets_pending() {
        let r = rule(0, 1, 1, None);
        let (state, reasons) = run(&r, &[holds(), Condition::Hold, Condition::Hold]);
        assert_eq!(reasons, [Some(Reason::FirstNotification), None, None]);
        assert_eq!(state.status, Status::Firing);
        let (state, _) = run(&rule(60, 1, 1, None), &[holds(), Condition::Hold]);
        assert_eq!(state.status, Status::Inactive);
    }

    #[test]
    fn a_new_fingerprint_while_firing_notifies_again_and_the_same_does_not() {
        let r = rule(0, 1, 1, None);
        let with = |f: &str| Condition::Holds {
            since: None,
            fingerprint: Some(f.into()),
        };
        let (_, reasons) = run(&r, &[with("a #"), with("a #"), with("b")]);
        assert_eq!(
            reasons,
            [
                Some(Reason::FirstNotification),
                None,
                Some(Reason::FingerprintChanged)
            ]
        );
    }

    #[test]
    fn gone_resolves_a_firing_alert_with_the_given_reason() {
        let r = rule(0, 1, 1, None);
        let (state, _) = run(&r, &[holds()]);
        let (next, reason) = step(&r, &state, &Condition::Gone, t(60), Reason::StepGone);
        assert_eq!(reason, Some(Reason::StepGone));
        assert_eq!(next.status, Status::Inactive);
        let (_, reason) = step(
            &r,
            &AlertState::default(),
            &Condition::Gone,
            t(60),
            Reason::JobRetired,
        );
        assert_eq!(reason, None, "nothing to resolve");
    }

    #[test]
    fn a_condition_that_dates_back_counts_from_then() {
        let r = rule(120, 1, 1, None);
        let since = Condition::Holds {
            since: Some(t(-100)),
            fingerprint: None,
        };
        let (state, reason) = step(&r, &AlertState::default(), &since, t(0), Reason::StepGone);
        assert_eq!(reason, None, "100 s of 120 s");
        let (_, reason) = step(&r, &state, &since, t(30), Reason::StepGone);
        assert_eq!(reason, Some(Reason::FirstNotification));
    }
}
