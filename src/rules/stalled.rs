//! `stalled`: a running step whose progress is below 100 and has not moved
//! since the previous poll; the stall dates from that poll, so `for` counts
//! from when progress stopped. Resolves when progress moves or the step ends.
//! Steps that report incremental latency are replicating, and their progress
//! does not move while they do: a `latency` rule watches those instead.

use chrono::{DateTime, Utc};

use crate::dts::Step;
use crate::rules::fact::Fact;
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

pub fn fact(step: &Step, condition: &Condition) -> Fact {
    if !step.state.is_active() {
        return Fact::StateNow {
            state: step.state_raw.to_string(),
        };
    }
    if step.latency_ms.is_some() {
        return Fact::Replicating;
    }
    match (step.progress, condition) {
        (Some(progress), Condition::Holds { .. }) => Fact::ProgressStuck { progress },
        (Some(p), _) if p >= 100 => Fact::ProgressDone,
        (Some(progress), _) => Fact::ProgressMoved { progress },
        (None, _) => Fact::ProgressUnreported,
    }
}
