//! What dtswatch shows of its state, the same to the command line
//! (`--format json`) and the HTTP API: the JSON shapes (`json.rs`), the
//! fleet with its jobs and steps (`status.rs`) and a job's history
//! (`history.rs`). Reads the store; decides nothing.

pub mod alerts;
pub mod history;
pub mod json;
pub mod series;
pub mod silences;
pub mod status;
