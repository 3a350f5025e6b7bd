//! DTS: the wire model (`model`), the normalised snapshot (`snapshot`), step
//! identity across polls (`identity`) and the two operations dtswatch calls (`api`).

pub mod api;
pub mod identity;
pub mod model;
pub mod snapshot;

pub use snapshot::{ErrorDetail, JobSnapshot, State, Step, Text};
