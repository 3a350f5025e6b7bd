//! `latency`: incremental latency (milliseconds; "not applicable" ignored)
//! above `threshold`, held for `for`; resolves at or below `resolve_below`.
//! Between the two it keeps its current status (hysteresis).

use crate::dts::{State, Step};
use crate::rules::fact::Fact;
use crate::rules::lifecycle::Condition;

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

pub fn fact(threshold_ms: i64, resolve_below_ms: i64, step: &Step) -> Fact {
    match step.latency_ms {
        None if matches!(step.state, State::Finished | State::Failed) => Fact::StepEnded {
            state: step.state_raw.to_string(),
        },
        None => Fact::LatencyUnreported,
        Some(ms) if ms > threshold_ms => Fact::LatencyAbove {
            latency_ms: ms,
            threshold_ms,
        },
        Some(ms) if ms <= resolve_below_ms => Fact::LatencyBack { latency_ms: ms },
        Some(ms) => Fact::LatencyNotYetBelow {
            latency_ms: ms,
            resolve_below_ms,
        },
    }
}
