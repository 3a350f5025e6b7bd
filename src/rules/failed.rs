//! `failed`: a step's state is in the rule's `states` (default `Failed`);
//! resolves when it leaves them.

use crate::dts::{State, Step};
use crate::rules::lifecycle::Condition;

pub fn check(states: &[State], step: &Step) -> Condition {
    if states.contains(&step.state) {
        Condition::Holds {
            since: None,
            fingerprint: Some(step.state.as_str().to_string()),
        }
    } else {
        Condition::Clear
    }
}

pub fn summary(states: &[State], step: &Step) -> String {
    if states.contains(&step.state) {
        format!("state is {}", step.state_raw)
    } else {
        format!("state is {} now", step.state_raw)
    }
}
