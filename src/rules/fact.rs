//! What an alert says, as facts rather than sentences: `state is Failed`,
//! `latency 340 s above 300 s`, `no DTS poll for 5 min`. Each rule kind
//! states its finding as a [`Fact`]; the English one-line summary for logs,
//! `history` and `once` is derived here, and messages put the same fact into
//! the channel's language (`notify::words`). Facts are stored with the event
//! in the outbox, so a message rendered later says what was true then.

use serde::{Deserialize, Serialize};

use crate::text::latency_text;

/// One finding about a step, a job, or dtswatch itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Fact {
    /// The step's state is one the rule watches (`failed`).
    StateIs {
        state: String,
    },
    /// The step's state is no longer one the rule watches.
    StateNow {
        state: String,
    },
    /// The error text: `ErrMsg`, else the failing `ErrorDetails` codes.
    Error {
        text: String,
    },
    ErrorCleared,
    /// The step still reports an error, but the rule's `pattern`/`ignore` no longer select it.
    ErrorNoLongerMatches,
    LatencyAbove {
        latency_ms: i64,
        threshold_ms: i64,
    },
    LatencyBack {
        latency_ms: i64,
    },
    LatencyNotYetBelow {
        latency_ms: i64,
        resolve_below_ms: i64,
    },
    LatencyUnreported,
    /// The step ended (finished or failed), so its latency no longer counts.
    StepEnded {
        state: String,
    },
    ProgressStuck {
        progress: i64,
    },
    ProgressMoved {
        progress: i64,
    },
    ProgressDone,
    ProgressUnreported,
    /// The step reports incremental latency: its progress is not expected to move.
    Replicating,
    /// An alert held back by a silence or inhibition that has ended, still firing.
    StillFiring,
    /// A one-shot state change (`transition`).
    Transition {
        from: String,
        to: String,
    },
    /// `ListJobStep` failed; `class` is the kind of failure (`auth`, `timeout`, …).
    Unreachable {
        class: String,
        error: String,
    },
    Reachable,
    StepGone,
    JobGone,
    /// No DTS poll has succeeded for this long.
    NoPoll {
        seconds: u64,
    },
    PollsAgain,
    /// Notifications were given up on: per channel, how many and why.
    DeadNotifications {
        detail: String,
    },
    NoDeadLeft,
    /// DTS throttles these accounts.
    Throttled {
        accounts: Vec<String>,
    },
    NotThrottled,
    /// The database file was replaced or removed under the daemon.
    DatabaseReplaced {
        detail: String,
    },
    DatabaseIsOurs,
    /// The database cannot be written, so nothing is recorded or queued.
    StoreUnwritable {
        problem: String,
    },
    StoreWritable,
    /// No instance has held the leader lease (seen by a standby).
    NoLeader {
        problem: String,
    },
    /// An instance leads again.
    LeaderAgain {
        instance: String,
    },
}

/// `5 min`, `2 h 5 min`, `40 s`: a span as the English summaries write it.
pub fn span_text(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s if s % 3600 < 60 => format!("{} h", s / 3600),
        s => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

impl Fact {
    /// The English one-line summary, for logs, `history` and the terminal.
    pub fn summary(&self) -> String {
        let latency = |ms: &i64| latency_text(Some(*ms));
        match self {
            Fact::StateIs { state } => format!("state is {state}"),
            Fact::StateNow { state } => format!("state is {state} now"),
            Fact::Error { text } => text.clone(),
            Fact::ErrorCleared => "the error cleared".into(),
            Fact::ErrorNoLongerMatches => "the error no longer matches the rule".into(),
            Fact::LatencyAbove {
                latency_ms,
                threshold_ms,
            } => format!(
                "latency {} above {}",
                latency(latency_ms),
                latency(threshold_ms)
            ),
            Fact::LatencyBack { latency_ms } => format!("latency back to {}", latency(latency_ms)),
            Fact::LatencyNotYetBelow {
                latency_ms,
                resolve_below_ms,
            } => format!(
                "latency {} not yet below {}",
                latency(latency_ms),
                latency(resolve_below_ms)
            ),
            Fact::LatencyUnreported => "latency not reported".into(),
            Fact::StepEnded { state } => format!("step ended ({state})"),
            Fact::ProgressStuck { progress } => format!("progress stuck at {progress}%"),
            Fact::ProgressMoved { progress } => format!("progress moved to {progress}%"),
            Fact::ProgressDone => "progress reached 100%".into(),
            Fact::ProgressUnreported => "progress not reported".into(),
            Fact::Replicating => "replicating (latency reported)".into(),
            Fact::StillFiring => "still firing after its silence or inhibition ended".into(),
            Fact::Transition { from, to } => format!("State: {from} → {to}"),
            Fact::Unreachable { error, .. } => format!("ListJobStep fails: {error}"),
            Fact::Reachable => "ListJobStep answers again".into(),
            Fact::StepGone => "the step is no longer listed".into(),
            Fact::JobGone => "resolved: the job is no longer listed".into(),
            Fact::NoPoll { seconds } => {
                format!("no DTS poll has succeeded for {}", span_text(*seconds))
            }
            Fact::PollsAgain => "resolved: polls succeed again".into(),
            Fact::DeadNotifications { detail } => format!("dead notifications: {detail}"),
            Fact::NoDeadLeft => "resolved: no dead notifications left".into(),
            Fact::Throttled { accounts } => format!(
                "DTS throttles account {}: polls of its jobs wait; lower poll frequency or raise the quota",
                accounts.join(", ")
            ),
            Fact::NotThrottled => "resolved: DTS answers without throttling".into(),
            Fact::DatabaseReplaced { detail } => detail.clone(),
            Fact::DatabaseIsOurs => "resolved: the database file is the one dtswatch writes".into(),
            Fact::StoreUnwritable { problem } => format!(
                "dtswatch cannot write its database, so it records no poll and queues no alert: {problem}"
            ),
            Fact::StoreWritable => "resolved: the database is written again".into(),
            Fact::NoLeader { problem } => format!(
                "no dtswatch instance leads, so no job is polled and no alert is sent: {problem}"
            ),
            Fact::LeaderAgain { instance } => format!("resolved: {instance} leads again"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_naturally() {
        assert_eq!(span_text(40), "40 s");
        assert_eq!(span_text(14 * 60 + 5), "14 min");
        assert_eq!(span_text(7200), "2 h");
        assert_eq!(span_text(7500), "2 h 5 min");
    }

    #[test]
    fn summaries_keep_the_wording_logs_and_history_show() {
        assert_eq!(
            Fact::StateIs {
                state: "Failed".into()
            }
            .summary(),
            "state is Failed"
        );
        assert_eq!(
            Fact::LatencyAbove {
                latency_ms: 340_000,
                threshold_ms: 300_000
            }
            .summary(),
            "latency 5m40s above 5m00s"
        );
        assert_eq!(
            Fact::LatencyBack { latency_ms: 2_000 }.summary(),
            "latency back to 2.0 s"
        );
    }
}
