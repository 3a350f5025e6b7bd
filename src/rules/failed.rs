//! `failed`: a step's state is in the rule's `states` (default `Failed`);
//! resolves when it leaves them.

use crate::dts::{State, Step};
use crate::rules::fact::Fact;
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

pub fn fact(states: &[State], step: &Step) -> Fact {
    let state = step.state_raw.to_string();
    if states.contains(&step.state) {
        Fact::StateIs { state }
    } else {
        Fact::StateNow { state }
    }
}
