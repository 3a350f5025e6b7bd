//! The DTS step-state vocabulary: one enum for the states DTS sends and the
//! states rules name (`states = ["Failed"]`, `to = ["Finished"]`), so the
//! config and the normalised model read state names the same way. A leaf:
//! it imports nothing but shared text.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::text::{Text, intern};

/// A step state. DTS sends `Finished`, `○ Finished`, `running`, `Running`,
/// `Failed`, `Pause`, `Schedule`, `Init`, `Catched`; anything else is kept as `Other`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum State {
    Init,
    Schedule,
    Running,
    /// Incremental replication has caught up ("Catched" on the wire).
    Catched,
    Pause,
    Finished,
    Failed,
    Other(Text),
}

impl State {
    /// Reads a wire state: ignores decoration such as `○ ` and letter case.
    pub fn parse(raw: &str) -> State {
        let trimmed = raw.trim_matches(|c: char| !c.is_alphanumeric());
        match trimmed.to_ascii_lowercase().as_str() {
            "init" | "initial" | "notstarted" => State::Init,
            "schedule" | "scheduled" => State::Schedule,
            "running" | "migrating" | "synchronizing" => State::Running,
            "catched" | "caught" => State::Catched,
            "pause" | "paused" | "suspending" => State::Pause,
            "finished" | "finish" | "completed" => State::Finished,
            "failed" | "fail" => State::Failed,
            _ => State::Other(intern(trimmed)),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            State::Init => "Init",
            State::Schedule => "Schedule",
            State::Running => "Running",
            State::Catched => "Catched",
            State::Pause => "Pause",
            State::Finished => "Finished",
            State::Failed => "Failed",
            State::Other(s) => s,
        }
    }

    /// Running or caught up: the step is doing work and should make progress.
    pub fn is_active(&self) -> bool {
        matches!(self, State::Running | State::Catched)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_parsing_is_forgiving() {
        assert_eq!(State::parse(" ○ Finished "), State::Finished);
        assert_eq!(State::parse("RUNNING"), State::Running);
        assert_eq!(State::parse("catched"), State::Catched);
        assert_eq!(State::parse("Failed"), State::Failed);
        assert_eq!(State::parse("Init"), State::Init);
        assert_eq!(State::parse("NewThing").as_str(), "NewThing");
    }
}
