//! What changed between two snapshots of a job, as typed changes. Pure: no
//! I/O, no clock. Steps are matched by their key (`JobStepId`, else `Code` +
//! `JobStepName`), sub-steps within their parent the same way, so reordering
//! is not a change and volatile fields never make a step appear twice.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::dts::snapshot::Counterparts;
use crate::dts::{ErrorDetail, JobSnapshot, State, Step, Text};
use crate::text::latency_text;

/// What changed about one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChangeKind {
    Appeared,
    Disappeared,
    State {
        from: State,
        to: State,
        from_raw: Text,
        to_raw: Text,
    },
    ErrorAppeared {
        message: Text,
    },
    ErrorChanged {
        from: Text,
        to: Text,
    },
    ErrorCleared {
        previous: Text,
    },
    ErrorDetails {
        from: Vec<ErrorDetail>,
        to: Vec<ErrorDetail>,
    },
    Latency {
        from: Option<i64>,
        to: Option<i64>,
    },
    Progress {
        from: Option<i64>,
        to: Option<i64>,
    },
    NeedAcceleration {
        from: Option<bool>,
        to: Option<bool>,
    },
    RedisPhase {
        from: Option<Text>,
        to: Option<Text>,
    },
}

/// One change to one step or sub-step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// `stepkey` or `stepkey/subkey`.
    pub path: Text,
    /// How people know the step: `全量迁移 (03)`, or `全量迁移 (03) › orders` for a sub-step.
    pub label: Text,
    #[serde(flatten)]
    pub kind: ChangeKind,
}

impl Change {
    /// Latency and progress move all the time; the rest is news.
    pub fn is_volatile(&self) -> bool {
        matches!(
            self.kind,
            ChangeKind::Latency { .. } | ChangeKind::Progress { .. }
        )
    }
}

fn quoted(text: &str) -> String {
    format!("\"{text}\"")
}

fn option_text<T: ToString>(value: &Option<T>) -> String {
    value
        .as_ref()
        .map(|v| v.to_string())
        .unwrap_or_else(|| "—".into())
}

/// `12.0 s`, or `—` when DTS reports no latency.
fn latency_or_dash(ms: Option<i64>) -> String {
    ms.map(|ms| latency_text(Some(ms)))
        .unwrap_or_else(|| "—".into())
}

fn details_text(details: &[ErrorDetail]) -> String {
    let codes: Vec<&str> = details.iter().filter_map(|d| d.code.as_deref()).collect();
    if codes.is_empty() {
        "—".into()
    } else {
        codes.join(", ")
    }
}

impl fmt::Display for ChangeKind {
    /// `State: Running → Failed`, `ErrMsg: — → "…"`, `Latency: 12 s → 340 s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChangeKind::Appeared => f.write_str("appeared"),
            ChangeKind::Disappeared => f.write_str("disappeared"),
            ChangeKind::State {
                from_raw, to_raw, ..
            } => write!(f, "State: {from_raw} → {to_raw}"),
            ChangeKind::ErrorAppeared { message } => write!(f, "ErrMsg: — → {}", quoted(message)),
            ChangeKind::ErrorChanged { from, to } => {
                write!(f, "ErrMsg: {} → {}", quoted(from), quoted(to))
            }
            ChangeKind::ErrorCleared { previous } => write!(f, "ErrMsg: {} → —", quoted(previous)),
            ChangeKind::ErrorDetails { from, to } => write!(
                f,
                "ErrorDetails: {} → {}",
                details_text(from),
                details_text(to)
            ),
            ChangeKind::Latency { from, to } => write!(
                f,
                "Latency: {} → {}",
                latency_or_dash(*from),
                latency_or_dash(*to)
            ),
            ChangeKind::Progress { from, to } => {
                write!(f, "Progress: {} → {}", option_text(from), option_text(to))
            }
            ChangeKind::NeedAcceleration { from, to } => {
                write!(
                    f,
                    "NeedAcceleration: {} → {}",
                    option_text(from),
                    option_text(to)
                )
            }
            ChangeKind::RedisPhase { from, to } => write!(
                f,
                "redisPhaseType: {} → {}",
                option_text(from),
                option_text(to)
            ),
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.label, self.kind)
    }
}

/// The label of a step or of a sub-step under its parent.
pub fn step_label(step: &Step, parent: Option<&Step>) -> String {
    match parent {
        None => step.label(),
        Some(p) => format!("{} › {}", p.label(), step.name),
    }
}

/// Every change from `previous` to `current`; with no previous snapshot every step "appeared".
pub fn diff(previous: Option<&JobSnapshot>, current: &JobSnapshot) -> Vec<Change> {
    let empty = JobSnapshot::default();
    let previous = previous.unwrap_or(&empty);
    let mut changes = Vec::new();
    diff_level(&previous.steps, &current.steps, None, None, &mut changes);
    changes
}

fn diff_level(
    previous: &[Step],
    current: &[Step],
    previous_parent: Option<&Step>,
    current_parent: Option<&Step>,
    changes: &mut Vec<Change>,
) {
    let path = |step: &Step, parent: Option<&Step>| -> Text {
        match parent {
            Some(p) => Text::from(format!("{}/{}", p.key, step.key)),
            None => step.key.clone(),
        }
    };
    let label = |step: &Step, parent: Option<&Step>| Text::from(step_label(step, parent));
    let before = Counterparts::new(previous);
    let mut matched = 0;
    for (position, step) in current.iter().enumerate() {
        match before.find(position, &step.key) {
            None => {
                changes.push(Change {
                    path: path(step, current_parent),
                    label: label(step, current_parent),
                    kind: ChangeKind::Appeared,
                });
                // Its sub-steps appear with it.
                diff_level(&[], &step.sub_steps, None, Some(step), changes);
            }
            Some(old) => {
                matched += 1;
                let kinds = step_changes(old, step);
                if !kinds.is_empty() {
                    let (step_path, step_label) =
                        (path(step, current_parent), label(step, current_parent));
                    for kind in kinds {
                        changes.push(Change {
                            path: step_path.clone(),
                            label: step_label.clone(),
                            kind,
                        });
                    }
                }
                if current_parent.is_none() {
                    diff_level(
                        &old.sub_steps,
                        &step.sub_steps,
                        Some(old),
                        Some(step),
                        changes,
                    );
                }
            }
        }
    }
    if matched == previous.len() {
        return;
    }
    let now = Counterparts::new(current);
    for (position, old) in previous.iter().enumerate() {
        if now.find(position, &old.key).is_none() {
            changes.push(Change {
                path: path(old, previous_parent),
                label: label(old, previous_parent),
                kind: ChangeKind::Disappeared,
            });
        }
    }
}

fn step_changes(old: &Step, new: &Step) -> Vec<ChangeKind> {
    let mut kinds = Vec::new();
    if old.state != new.state {
        kinds.push(ChangeKind::State {
            from: old.state.clone(),
            to: new.state.clone(),
            from_raw: old.state_raw.clone(),
            to_raw: new.state_raw.clone(),
        });
    }
    match (&old.err_msg, &new.err_msg) {
        (None, Some(message)) => kinds.push(ChangeKind::ErrorAppeared {
            message: message.clone(),
        }),
        (Some(previous), None) => kinds.push(ChangeKind::ErrorCleared {
            previous: previous.clone(),
        }),
        (Some(from), Some(to)) if from != to => kinds.push(ChangeKind::ErrorChanged {
            from: from.clone(),
            to: to.clone(),
        }),
        _ => {}
    }
    if old.error_details != new.error_details {
        kinds.push(ChangeKind::ErrorDetails {
            from: old.error_details.clone(),
            to: new.error_details.clone(),
        });
    }
    if old.latency_ms != new.latency_ms {
        kinds.push(ChangeKind::Latency {
            from: old.latency_ms,
            to: new.latency_ms,
        });
    }
    if old.progress != new.progress {
        kinds.push(ChangeKind::Progress {
            from: old.progress,
            to: new.progress,
        });
    }
    if old.need_acceleration != new.need_acceleration {
        kinds.push(ChangeKind::NeedAcceleration {
            from: old.need_acceleration,
            to: new.need_acceleration,
        });
    }
    if old.redis_phase != new.redis_phase {
        kinds.push(ChangeKind::RedisPhase {
            from: old.redis_phase.clone(),
            to: new.redis_phase.clone(),
        });
    }
    kinds
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(key: &str, state: &str) -> Step {
        Step {
            key: key.into(),
            id: Some(key.into()),
            name: format!("name-{key}").into(),
            code: Some("01".into()),
            serial: None,
            state: State::parse(state),
            state_raw: state.into(),
            progress: Some(10),
            latency_ms: Some(1000),
            err_msg: None,
            error_details: vec![],
            need_acceleration: None,
            redis_phase: None,
            sub_job_count: None,
            sub_steps: vec![],
        }
    }

    fn snap(steps: Vec<Step>) -> JobSnapshot {
        JobSnapshot { steps }
    }

    fn kinds(changes: &[Change]) -> Vec<(String, String)> {
        changes
            .iter()
            .map(|c| (c.path.to_string(), c.kind.to_string()))
            .collect()
    }

    #[test]
    fn first_snapshot_reports_every_step_and_sub_step_as_appeared() {
        let mut a = step("a", "Running");
        a.sub_steps = vec![step("x", "Running")];
        let changes = diff(None, &snap(vec![a]));
        assert_eq!(
            kinds(&changes),
            [
                ("a".into(), "appeared".into()),
                ("a/x".into(), "appeared".into())
            ]
        );
        assert_eq!(&*changes[1].label, "name-a (01) › name-x");
    }

    #[test]
    fn identical_snapshots_have_no_changes() {
        let s = snap(vec![step("a", "Running"), step("b", "Init")]);
        assert!(diff(Some(&s), &s).is_empty());
    }

    #[test]
    fn every_change_type() {
        let mut before = step("a", "Running");
        before.err_msg = Some("old".into());
        before.need_acceleration = Some(false);
        before.redis_phase = Some("full".into());
        let mut after = before.clone();
        after.state = State::Failed;
        after.state_raw = "Failed".into();
        after.err_msg = Some("new".into());
        after.error_details = vec![ErrorDetail {
            code: Some("DTS-1".into()),
            help_url: None,
        }];
        after.latency_ms = Some(340_000);
        after.progress = Some(63);
        after.need_acceleration = Some(true);
        after.redis_phase = Some("incr".into());
        let changes = diff(Some(&snap(vec![before])), &snap(vec![after]));
        let texts: Vec<String> = changes.iter().map(|c| c.kind.to_string()).collect();
        assert_eq!(
            texts,
            [
                "State: Running → Failed",
                "ErrMsg: \"old\" → \"new\"",
                "ErrorDetails: — → DTS-1",
                "Latency: 1.0 s → 5m40s",
                "Progress: 10 → 63",
                "NeedAcceleration: false → true",
                "redisPhaseType: full → incr",
            ]
        );
    }

    #[test]
    fn error_appears_and_clears() {
        let before = step("a", "Running");
        let mut after = before.clone();
        after.err_msg = Some("boom".into());
        assert_eq!(
            kinds(&diff(
                Some(&snap(vec![before.clone()])),
                &snap(vec![after.clone()])
            ))[0]
                .1,
            "ErrMsg: — → \"boom\""
        );
        assert_eq!(
            kinds(&diff(Some(&snap(vec![after])), &snap(vec![before])))[0].1,
            "ErrMsg: \"boom\" → —"
        );
    }

    #[test]
    fn reordered_steps_are_not_changes() {
        let a = snap(vec![step("a", "Running"), step("b", "Init")]);
        let b = snap(vec![step("b", "Init"), step("a", "Running")]);
        assert!(diff(Some(&a), &b).is_empty());
    }

    #[test]
    fn id_less_steps_match_by_code_and_name() {
        let mut s = step("03:全量迁移", "Running");
        s.id = None;
        let mut moved = s.clone();
        moved.progress = Some(50);
        let changes = diff(Some(&snap(vec![s])), &snap(vec![moved]));
        assert_eq!(
            kinds(&changes),
            [("03:全量迁移".into(), "Progress: 10 → 50".into())]
        );
    }

    #[test]
    fn a_step_that_disappears_and_comes_back() {
        let both = snap(vec![step("a", "Running"), step("b", "Running")]);
        let one = snap(vec![step("a", "Running")]);
        assert_eq!(
            kinds(&diff(Some(&both), &one)),
            [("b".into(), "disappeared".into())]
        );
        assert_eq!(
            kinds(&diff(Some(&one), &both)),
            [("b".into(), "appeared".into())]
        );
    }

    #[test]
    fn sub_steps_are_matched_within_their_parent() {
        let mut a = step("a", "Running");
        a.sub_steps = vec![step("x", "Running"), step("y", "Running")];
        let mut b = a.clone();
        b.sub_steps = vec![step("y", "Failed"), step("z", "Running")];
        let changes = kinds(&diff(Some(&snap(vec![a])), &snap(vec![b])));
        assert_eq!(
            changes,
            [
                ("a/y".into(), "State: Running → Failed".into()),
                ("a/z".into(), "appeared".into()),
                ("a/x".into(), "disappeared".into()),
            ]
        );
    }

    #[test]
    fn nothing_changed_but_latency() {
        let before = snap(vec![step("a", "Running")]);
        let mut after = before.clone();
        after.steps[0].latency_ms = Some(2500);
        let changes = diff(Some(&before), &after);
        assert_eq!(changes.len(), 1);
        assert!(changes[0].is_volatile());
        assert_eq!(changes[0].kind.to_string(), "Latency: 1.0 s → 2.5 s");
    }

    #[test]
    fn raw_state_spelling_changes_alone_are_not_state_changes() {
        let before = snap(vec![step("a", "○ Finished")]);
        let after = snap(vec![step("a", "Finished")]);
        assert!(diff(Some(&before), &after).is_empty());
    }

    #[test]
    fn reordered_sub_steps_are_not_changes_and_a_missing_one_is() {
        let mut a = step("a", "Running");
        a.sub_steps = vec![step("x", "Running"), step("y", "Running")];
        let b = step("b", "Finished");
        let mut a2 = a.clone();
        a2.sub_steps.reverse();
        assert!(
            diff(
                Some(&snap(vec![a.clone(), b.clone()])),
                &snap(vec![b.clone(), a2])
            )
            .is_empty()
        );
        let mut a3 = a.clone();
        a3.sub_steps.remove(0);
        let changes = diff(Some(&snap(vec![a, b.clone()])), &snap(vec![b, a3]));
        assert_eq!(
            kinds(&changes),
            [("a/x".to_string(), "disappeared".to_string())]
        );
    }
}
