//! `failed`: a step's state is in the rule's `states` (default `Failed`);
//! resolves when it leaves them.

use super::{Finding, StepContext};
use crate::dts::State;
use crate::rules::lifecycle::Condition;

pub fn check(states: &[State], ctx: &StepContext<'_>) -> Finding {
    if states.contains(&ctx.step.state) {
        Finding {
            condition: Condition::Holds {
                since: None,
                fingerprint: Some(ctx.step.state.as_str().to_string()),
            },
            summary: format!("state is {}", ctx.step.state_raw),
        }
    } else {
        Finding::clear(format!("state is {} now", ctx.step.state_raw))
    }
}
