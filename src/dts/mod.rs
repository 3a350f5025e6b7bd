//! DTS: the wire model (`model`), the normalised snapshot (`snapshot`) and the
//! two operations dtswatch calls (`api`).

pub mod api;
pub mod model;
pub mod snapshot;

pub use snapshot::{ErrorDetail, JobSnapshot, State, Step, Text};
