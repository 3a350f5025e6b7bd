//! `latency`: incremental latency (milliseconds; "not applicable" ignored)
//! above `threshold`, held for `for`; resolves at or below `resolve_below`.
//! Between the two it keeps its current status (hysteresis).

use super::{Finding, StepContext};
use crate::dts::State;
use crate::output::latency_text;
use crate::rules::lifecycle::Condition;

pub fn check(threshold_ms: i64, resolve_below_ms: i64, ctx: &StepContext<'_>) -> Finding {
    match ctx.step.latency_ms {
        None if matches!(ctx.step.state, State::Finished | State::Failed) => {
            Finding::clear(format!("step ended ({})", ctx.step.state_raw))
        }
        None => Finding {
            condition: Condition::Hold,
            summary: "latency not reported".into(),
        },
        Some(ms) if ms > threshold_ms => Finding {
            condition: Condition::Holds {
                since: None,
                fingerprint: None,
            },
            summary: format!(
                "latency {} above {}",
                latency_text(Some(ms)),
                latency_text(Some(threshold_ms))
            ),
        },
        Some(ms) if ms <= resolve_below_ms => {
            Finding::clear(format!("latency back to {}", latency_text(Some(ms))))
        }
        Some(ms) => Finding {
            condition: Condition::Hold,
            summary: format!(
                "latency {} not yet below {}",
                latency_text(Some(ms)),
                latency_text(Some(resolve_below_ms))
            ),
        },
    }
}
