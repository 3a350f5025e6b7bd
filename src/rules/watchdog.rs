//! The watchdog's rules: checks on dtswatch itself (no successful poll for a
//! while, dead notifications) that go through the same lifecycle,
//! suppression and outbox as any alert, on the pseudo-job `dtswatch`. The
//! daemon measures; this file turns `[watchdog]` into rules and a
//! measurement into a condition.

use std::time::Duration;

use super::lifecycle::Condition;
use crate::config::{RuleConfig, RuleKind, WatchdogConfig};

/// No DTS poll has succeeded for `watchdog.no_successful_poll`.
pub const NO_POLL_RULE: &str = "watchdog: no successful poll";
/// Notifications were given up on.
pub const DEAD_RULE: &str = "watchdog: dead notifications";

/// One measurement of dtswatch's own health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchdogCheck {
    /// [`NO_POLL_RULE`] or [`DEAD_RULE`].
    pub rule: &'static str,
    pub holds: bool,
    /// What is wrong, while it holds.
    pub summary: String,
}

/// The rules `[watchdog]` asks for: both checks, to the watchdog's channels.
pub fn rules(config: &WatchdogConfig) -> Vec<RuleConfig> {
    [NO_POLL_RULE, DEAD_RULE]
        .into_iter()
        .map(|name| RuleConfig {
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
        })
        .collect()
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

pub fn summary(check: &WatchdogCheck) -> String {
    match (check.holds, check.rule) {
        (true, _) => check.summary.clone(),
        (false, NO_POLL_RULE) => "resolved: polls succeed again".into(),
        (false, _) => "resolved: no dead notifications left".into(),
    }
}
