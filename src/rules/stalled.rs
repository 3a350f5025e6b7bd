//! `stalled`: a running step whose progress is below 100 and has not moved
//! since the previous poll; the stall dates from that poll, so `for` counts
//! from when progress stopped. Resolves when progress moves or the step ends.
//! Steps that report incremental latency are replicating, and their progress
//! does not move while they do: a `latency` rule watches those instead.

use super::{Finding, StepContext};
use crate::rules::lifecycle::Condition;

pub fn check(ctx: &StepContext<'_>) -> Finding {
    let step = ctx.step;
    if !step.state.is_active() {
        return Finding::clear(format!("state is {} now", step.state_raw));
    }
    if step.latency_ms.is_some() {
        return Finding::clear("replicating (latency reported)".into());
    }
    let Some(progress) = step.progress.filter(|p| *p < 100) else {
        return Finding::clear("progress reached 100%".into());
    };
    match (ctx.previous, ctx.previous_at) {
        (Some(previous), Some(at))
            if previous.state.is_active() && previous.progress == Some(progress) =>
        {
            Finding {
                condition: Condition::Holds {
                    since: Some(at),
                    fingerprint: None,
                },
                summary: format!("progress stuck at {progress}%"),
            }
        }
        _ => Finding::clear(format!("progress moved to {progress}%")),
    }
}
