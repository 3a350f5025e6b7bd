//! The watchdog's rules: checks on dtswatch itself (no successful poll for a
//! while, dead notifications, the database file replaced) that go through
//! the same lifecycle, suppression and outbox as any alert, on the
//! pseudo-job `dtswatch`. The daemon measures; this file turns `[watchdog]`
//! into rules and a measurement into a condition. One alert cannot go
//! through the store — that the store cannot be written — and is built here
//! as a bare event for the daemon to send straight to the channels.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::lifecycle::{Condition, Reason};
use super::{Event, EventKind, EventStatus, Fact, JobInfo};
use crate::config::{RuleConfig, RuleKind, WatchdogConfig};

/// No DTS poll has succeeded for `watchdog.no_successful_poll`.
pub const NO_POLL_RULE: &str = "watchdog: no successful poll";
/// Notifications were given up on.
pub const DEAD_RULE: &str = "watchdog: dead notifications";
/// DTS has been throttling an account for a while (one alert, not one per job).
pub const THROTTLE_RULE: &str = "watchdog: DTS throttling";
/// The database file was deleted or replaced under the running daemon.
pub const FILE_RULE: &str = "watchdog: database file replaced";
/// The database cannot be written (sent around the store, not through it).
pub const STORE_RULE: &str = "watchdog: database cannot be written";
/// No instance has held the leader lease for twice `ha.failover`: sent by a
/// standby around the store, since no leader writes or delivers.
pub const NO_LEADER_RULE: &str = "watchdog: no leader";

/// One measurement of dtswatch's own health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchdogCheck {
    /// [`NO_POLL_RULE`], [`DEAD_RULE`], [`FILE_RULE`] or [`THROTTLE_RULE`].
    pub rule: &'static str,
    pub holds: bool,
    /// What is wrong, while it holds.
    pub fact: Fact,
}

/// The rules `[watchdog]` asks for: both checks, to the watchdog's channels.
pub fn rules(config: &WatchdogConfig) -> Vec<RuleConfig> {
    [NO_POLL_RULE, DEAD_RULE, FILE_RULE, THROTTLE_RULE]
        .into_iter()
        .map(|name| rule(name, config))
        .collect()
}

fn rule(name: &str, config: &WatchdogConfig) -> RuleConfig {
    RuleConfig {
        name: name.into(),
        kind: RuleKind::Watchdog,
        severity: config.severity,
        channels: config.channels.clone(),
        jobs: None,
        steps: None,
        sub_steps: false,
        for_: Duration::ZERO,
        repeat: None,
        send_resolved: true,
        after: 1,
        resolve_after: 1,
        inhibited_by: Vec::new(),
        runbook: None,
        fold_sub_steps: false,
    }
}

pub fn condition(check: &WatchdogCheck) -> Condition {
    if check.holds {
        Condition::Holds {
            since: None,
            fingerprint: None,
        }
    } else {
        Condition::Clear
    }
}

pub fn fact(check: &WatchdogCheck) -> Fact {
    match (check.holds, check.rule) {
        (true, _) => check.fact.clone(),
        (false, NO_POLL_RULE) => Fact::PollsAgain,
        (false, FILE_RULE) => Fact::DatabaseIsOurs,
        (false, THROTTLE_RULE) => Fact::NotThrottled,
        (false, _) => Fact::NoDeadLeft,
    }
}

/// The [`STORE_RULE`] event, firing (with what is wrong) or resolved, for
/// the daemon to send without the store.
pub fn store_event(
    config: &WatchdogConfig,
    job: JobInfo,
    problem: Option<String>,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Event {
    let fact = match problem {
        Some(problem) => Ok(Fact::StoreUnwritable { problem }),
        None => Err(Fact::StoreWritable),
    };
    direct_event(STORE_RULE, config, job, fact, since, now)
}

/// The [`NO_LEADER_RULE`] event, firing (with what the standby saw) or
/// resolved (naming the instance that leads again), sent by a standby.
pub fn no_leader_event(
    config: &WatchdogConfig,
    job: JobInfo,
    state: Result<String, String>,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Event {
    let fact = match state {
        Ok(problem) => Ok(Fact::NoLeader { problem }),
        Err(instance) => Err(Fact::LeaderAgain { instance }),
    };
    direct_event(NO_LEADER_RULE, config, job, fact, since, now)
}

/// An event sent around the store: `Ok(fact)` fires, `Err(fact)` resolves.
fn direct_event(
    rule_name: &str,
    config: &WatchdogConfig,
    job: JobInfo,
    fact: Result<Fact, Fact>,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Event {
    let rule = rule(rule_name, config);
    let (status, reason, fact) = match fact {
        Ok(fact) => (EventStatus::Firing, Reason::FirstNotification, fact),
        Err(fact) => (EventStatus::Resolved, Reason::Resolved, fact),
    };
    Event {
        status,
        reason,
        rule: rule.name,
        kind: EventKind::Watchdog,
        severity: rule.severity,
        job,
        step: None,
        summary: fact.summary(),
        fact: Some(fact),
        changes: Vec::new(),
        current: None,
        folded: Vec::new(),
        first_seen: since,
        at: now,
        runbook: None,
    }
}
