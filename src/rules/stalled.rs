//! `stalled`: a running step whose progress is below 100 and has not moved
//! since the previous poll; the stall dates from that poll, so `for` counts
//! from when progress stopped. Resolves when progress moves or the step ends.
//! Steps that report incremental latency are replicating, and their progress
//! does not move while they do: a `latency` rule watches those instead.

use chrono::{DateTime, Utc};

use crate::dts::Step;
use crate::rules::lifecycle::Condition;

pub fn check(
    step: &Step,
    previous: Option<&Step>,
    previous_at: Option<DateTime<Utc>>,
) -> Condition {
    if !step.state.is_active() || step.latency_ms.is_some() {
        return Condition::Clear;
    }
    let Some(progress) = step.progress.filter(|p| *p < 100) else {
        return Condition::Clear;
    };
    match (previous, previous_at) {
        (Some(previous), Some(at))
            if previous.state.is_active() && previous.progress == Some(progress) =>
        {
            Condition::Holds {
                since: Some(at),
                fingerprint: None,
            }
        }
        _ => Condition::Clear,
    }
}

pub fn summary(step: &Step, condition: &Condition) -> String {
    if !step.state.is_active() {
        return format!("state is {} now", step.state_raw);
    }
    if step.latency_ms.is_some() {
        return "replicating (latency reported)".into();
    }
    match (step.progress, condition) {
        (Some(p), Condition::Holds { .. }) => format!("progress stuck at {p}%"),
        (Some(p), _) if p >= 100 => "progress reached 100%".into(),
        (Some(p), _) => format!("progress moved to {p}%"),
        (None, _) => "progress not reported".into(),
    }
}
