//! `transition`: a one-shot notice when a step's state changes `from` one of
//! the given states `to` one of the given states (either side may be left
//! open). It has no pending or resolved phase.

use crate::diff::{Change, ChangeKind};
use crate::dts::State;

/// The matching state change at this step, if any.
pub fn matching<'a>(from: &[State], to: &[State], changes: &[&'a Change]) -> Option<&'a Change> {
    changes.iter().copied().find(|c| match &c.kind {
        ChangeKind::State {
            from: old, to: new, ..
        } => (from.is_empty() || from.contains(old)) && (to.is_empty() || to.contains(new)),
        _ => false,
    })
}
