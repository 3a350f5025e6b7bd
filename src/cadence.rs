//! How often each job's steps are fetched. DTS's API quota is per account
//! and region, so a large fleet cannot have `ListJobStep` for every job on
//! every tick. In adaptive mode a sweep (`DescribeDtsJobs`, thirty jobs a
//! call) reads the whole fleet's status, delay and errors every tick; a job
//! whose summary changed, fails or lags is fetched at once, one that is
//! failing, alerting, lagging or moving through a full load keeps its
//! regular schedule, and a quiet one is refreshed slowly (`poll.refresh`,
//! finished ones `poll.refresh_finished`). A job the sweep does not list,
//! or whose sweep failed, falls back to its regular schedule. Pure.

use crate::config::{RuleConfig, RuleKind};

/// What the sweep says about one job.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Summary {
    pub status: Option<String>,
    /// Incremental delay in milliseconds, as normalised from the sweep.
    pub delay_ms: Option<i64>,
    pub error: Option<String>,
    /// Error codes that are not success.
    pub codes: Vec<String>,
}

impl Summary {
    /// Failed as DTS says it: a failed status (`MigrationFailed`,
    /// `SynchronizationFailed`, `PrecheckFailed`, …), an error message or code.
    pub fn failing(&self) -> bool {
        self.status
            .as_deref()
            .is_some_and(|s| s.to_ascii_lowercase().contains("fail"))
            || self.error.as_deref().is_some_and(|e| !e.trim().is_empty())
            || !self.codes.is_empty()
    }

    pub fn finished(&self) -> bool {
        self.status
            .as_deref()
            .is_some_and(|s| matches!(s.to_ascii_lowercase().as_str(), "finished" | "completed"))
    }

    fn lagging(&self, lag_watch_ms: Option<i64>) -> bool {
        matches!((self.delay_ms, lag_watch_ms), (Some(delay), Some(watch)) if delay >= watch)
    }
}

/// What a sweep means for one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// Status, error or lag changed since the previous sweep. A job the
    /// sweep sees for the first time is no news: it is polled on its first
    /// tick anyway.
    pub changed: bool,
    /// Failing or lagging now.
    pub active: bool,
    pub finished: bool,
}

/// Reads a job's summary against the previous sweep's. A moving delay is
/// not a change: only crossing `lag_watch_ms` (half the lowest latency
/// threshold of the rules) is.
pub fn read(previous: Option<&Summary>, current: &Summary, lag_watch_ms: Option<i64>) -> Reading {
    let lagging = current.lagging(lag_watch_ms);
    let changed = match previous {
        None => false,
        Some(before) => {
            before.status != current.status
                || before.error != current.error
                || before.codes != current.codes
                || before.lagging(lag_watch_ms) != lagging
        }
    };
    Reading {
        changed,
        active: current.failing() || lagging,
        finished: current.finished(),
    }
}

/// What the job's last `ListJobStep` showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Facts {
    /// An alert of the job is pending or firing: its lifecycle needs every poll.
    pub alerting: bool,
    /// A step has failed or reports an error.
    pub failing: bool,
    /// A running step's progress moves (a full load): stalls are judged per poll.
    pub moving: bool,
}

/// How often a job is fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cadence {
    /// Every tick of its schedule.
    Every,
    /// Every `poll.refresh`.
    Refresh,
    /// Every `poll.refresh_finished`.
    Finished,
}

/// The cadence of a job from the latest sweep reading (`None`: no sweep
/// covers it, or the last one failed) and its last poll's facts.
pub fn cadence(reading: Option<Reading>, facts: Facts) -> Cadence {
    let Some(reading) = reading else {
        return Cadence::Every;
    };
    if facts.alerting || facts.failing || facts.moving || reading.active || reading.changed {
        Cadence::Every
    } else if reading.finished {
        Cadence::Finished
    } else {
        Cadence::Refresh
    }
}

/// The delay from which a sweep treats a job as lagging: half the lowest
/// threshold of the latency rules, so that a job is fetched every tick
/// before it crosses one (`None` without latency rules).
pub fn lag_watch(rules: &[RuleConfig]) -> Option<i64> {
    rules
        .iter()
        .filter_map(|r| match r.kind {
            RuleKind::Latency { threshold_ms, .. } => Some(threshold_ms / 2),
            _ => None,
        })
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(status: &str, delay_ms: i64, error: Option<&str>) -> Summary {
        Summary {
            status: Some(status.into()),
            delay_ms: Some(delay_ms),
            error: error.map(str::to_string),
            codes: Vec::new(),
        }
    }

    #[test]
    fn a_moving_delay_is_no_change_but_crossing_the_watch_is() {
        let watch = Some(150_000);
        let before = summary("Synchronizing", 1_200, None);
        let moved = summary("Synchronizing", 4_800, None);
        let r = read(Some(&before), &moved, watch);
        assert_eq!(
            r,
            Reading {
                changed: false,
                active: false,
                finished: false
            }
        );
        let lagging = summary("Synchronizing", 200_000, None);
        let r = read(Some(&moved), &lagging, watch);
        assert!(r.changed && r.active);
        assert!(
            !read(
                Some(&lagging),
                &summary("Synchronizing", 250_000, None),
                watch
            )
            .changed
        );
        assert!(
            !read(Some(&before), &lagging, None).active,
            "no latency rule, no lag"
        );
    }

    #[test]
    fn failures_errors_and_new_jobs_are_news() {
        let ok = summary("Synchronizing", 0, None);
        for now in [
            summary("SynchronizationFailed", 0, None),
            summary("Synchronizing", 0, Some("DTS-1020042 boom")),
            Summary {
                codes: vec!["DTS-1020042".into()],
                ..ok.clone()
            },
        ] {
            let r = read(Some(&ok), &now, None);
            assert!(r.changed && r.active, "{now:?}");
        }
        assert!(!read(None, &ok, None).changed, "first seen is no news");
        assert!(read(None, &summary("Failed", 0, None), None).active);
        assert!(read(Some(&ok), &summary("Finished", 0, None), None).finished);
    }

    #[test]
    fn quiet_jobs_are_refreshed_slowly_and_anything_else_every_tick() {
        let quiet = Reading {
            changed: false,
            active: false,
            finished: false,
        };
        assert_eq!(cadence(Some(quiet), Facts::default()), Cadence::Refresh);
        let done = Reading {
            finished: true,
            ..quiet
        };
        assert_eq!(cadence(Some(done), Facts::default()), Cadence::Finished);
        assert_eq!(cadence(None, Facts::default()), Cadence::Every);
        for facts in [
            Facts {
                alerting: true,
                ..Facts::default()
            },
            Facts {
                failing: true,
                ..Facts::default()
            },
            Facts {
                moving: true,
                ..Facts::default()
            },
        ] {
            assert_eq!(cadence(Some(quiet), facts), Cadence::Every);
        }
        let active = Reading {
            active: true,
            ..quiet
        };
        assert_eq!(cadence(Some(active), Facts::default()), Cadence::Every);
    }
}
