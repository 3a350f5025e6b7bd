//! `latency`: incremental latency (milliseconds; "not applicable" ignored)
//! above `threshold`, held for `for`; resolves at or below `resolve_below`.
//! Between the two it keeps its current status (hysteresis).

use crate::dts::{State, Step};
use crate::rules::lifecycle::Condition;
use crate::text::latency_text;

pub fn check(threshold_ms: i64, resolve_below_ms: i64, step: &Step) -> Condition {
    match step.latency_ms {
        None if matches!(step.state, State::Finished | State::Failed) => Condition::Clear,
        None => Condition::Hold,
        Some(ms) if ms > threshold_ms => Condition::Holds {
            since: None,
            fingerprint: None,
        },
        Some(ms) if ms <= resolve_below_ms => Condition::Clear,
        Some(_) => Condition::Hold,
    }
}

pub fn summary(threshold_ms: i64, resolve_below_ms: i64, step: &Step) -> String {
    match step.latency_ms {
        None if matches!(step.state, State::Finished | State::Failed) => {
            format!("step ended ({})", step.state_raw)
        }
        None => "latency not reported".into(),
        Some(ms) if ms > threshold_ms => format!(
            "latency {} above {}",
            latency_text(Some(ms)),
            latency_text(Some(threshold_ms))
        ),
        Some(ms) if ms <= resolve_below_ms => format!("latency back to {}", latency_text(Some(ms))),
        Some(ms) => format!(
            "latency {} not yet below {}",
            latency_text(Some(ms)),
            latency_text(Some(resolve_below_ms))
        ),
    }
}
