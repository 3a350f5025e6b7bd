//! Whether polling works, as every poll reports it: consecutive failures
//! per job (dtswatch is unhealthy only when every job keeps failing), the
//! last success (the watchdog's measure) and whether polls can be written.
//! Read by `/healthz` and the watchdog; written only by `poll_one`.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::text::utc_time;

#[derive(Debug, Default)]
struct HealthState {
    /// Consecutive failed polls per job.
    failing: HashMap<String, u32>,
    last_error: Option<String>,
    last_success: Option<DateTime<Utc>>,
    /// Why the last poll could not be written, until one is.
    storage_error: Option<(DateTime<Utc>, String)>,
    /// Every watched job: how often it should be polled, and when it last
    /// was (or, until then, since when it is watched).
    schedule: HashMap<String, (Duration, DateTime<Utc>)>,
}

/// Slack on top of twice a job's period before it counts as not polled
/// (scheduling jitter and a slow answer lengthen a poll).
const OVERDUE_SLACK: Duration = Duration::from_secs(5);

/// Whether polling works: fed by every poll.
pub struct Health {
    state: Mutex<HealthState>,
    /// Polls in a row that must fail, for every job, before dtswatch is unhealthy.
    unhealthy_after: u32,
    pub started: DateTime<Utc>,
}

impl Health {
    pub fn new(unhealthy_after: u32, started: DateTime<Utc>) -> Self {
        Self {
            state: Mutex::new(HealthState::default()),
            unhealthy_after,
            started,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HealthState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn record(&self, job: &str, error: Option<String>, at: DateTime<Utc>) {
        let mut state = self.lock();
        if let Some((_, last)) = state.schedule.get_mut(job) {
            *last = at;
        }
        match error {
            None => {
                state.failing.insert(job.to_string(), 0);
                state.last_success = Some(at);
            }
            Some(e) => {
                *state.failing.entry(job.to_string()).or_default() += 1;
                state.last_error = Some(e);
            }
        }
    }

    /// A poll could not be written to the database (disk full, locked too long, …).
    pub fn storage_failed(&self, error: String, at: DateTime<Utc>) {
        self.lock().storage_error = Some((at, error));
    }

    /// A poll was written: the database works again.
    pub fn storage_ok(&self) {
        self.lock().storage_error = None;
    }

    /// `Err(reason)` while the last poll could not be written.
    pub fn storage(&self) -> Result<(), String> {
        match &self.lock().storage_error {
            Some((at, error)) => Err(format!(
                "polls cannot be written since {}: {error}",
                utc_time(*at)
            )),
            None => Ok(()),
        }
    }

    /// The jobs watched now, each with how often it is polled: jobs no
    /// longer watched stop counting, new ones count from `now`.
    pub fn watch(&self, watched: &[(&str, Duration)], now: DateTime<Utc>) {
        let mut state = self.lock();
        let ids: HashSet<&str> = watched.iter().map(|(id, _)| *id).collect();
        state.failing.retain(|job, _| ids.contains(job.as_str()));
        let mut schedule = HashMap::with_capacity(watched.len());
        for (id, period) in watched {
            let last = state.schedule.get(*id).map_or(now, |(_, last)| *last);
            schedule.insert(id.to_string(), (*period, last));
        }
        state.schedule = schedule;
    }

    /// `Err(reason)` when jobs were not polled within twice their period:
    /// the budget, the scheduler or a stuck poll keeps them waiting.
    pub fn schedule(&self, now: DateTime<Utc>) -> Result<(), String> {
        let state = self.lock();
        let mut overdue: Vec<&str> = state
            .schedule
            .iter()
            .filter(|(_, (period, last))| {
                let allowed = period.saturating_mul(2).saturating_add(OVERDUE_SLACK);
                (now - *last).to_std().is_ok_and(|waited| waited > allowed)
            })
            .map(|(job, _)| job.as_str())
            .collect();
        if overdue.is_empty() {
            return Ok(());
        }
        overdue.sort();
        let examples = overdue
            .iter()
            .take(5)
            .copied()
            .collect::<Vec<_>>()
            .join(", ");
        Err(format!(
            "{} of {} jobs were not polled within twice their period (e.g. {examples}); see `dtswatch_polls_skipped_total` and poll.max_rps",
            overdue.len(),
            state.schedule.len()
        ))
    }

    pub fn last_success(&self) -> Option<DateTime<Utc>> {
        self.lock().last_success
    }

    /// `Err(reason)` when every polled job failed its last `unhealthy_after` polls.
    pub fn polling(&self) -> Result<(), String> {
        let state = self.lock();
        if state.failing.is_empty() || state.failing.values().any(|n| *n < self.unhealthy_after) {
            return Ok(());
        }
        Err(format!(
            "the last {} polls of every job failed; last error: {}",
            self.unhealthy_after,
            state.last_error.clone().unwrap_or_default()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unhealthy_only_when_every_job_keeps_failing() {
        let health = Health::new(3, Utc::now());
        assert!(health.polling().is_ok(), "nothing polled yet");
        for _ in 0..3 {
            health.record("a", Some("Throttling.User".into()), Utc::now());
        }
        health.record("b", None, Utc::now());
        assert!(health.polling().is_ok(), "b works");
        for _ in 0..3 {
            health.record("b", Some("ServiceUnavailable".into()), Utc::now());
        }
        let reason = health.polling().unwrap_err();
        assert!(
            reason.contains("last error: ServiceUnavailable"),
            "{reason}"
        );
        health.record("a", None, Utc::now());
        assert!(health.polling().is_ok());
        health.watch(&[("a", Duration::from_secs(30))], Utc::now());
        assert!(health.polling().is_ok());
    }

    #[test]
    fn jobs_not_polled_within_twice_their_period_are_reported() {
        let health = Health::new(3, Utc::now());
        let t0 = Utc::now();
        let period = Duration::from_secs(10);
        health.watch(&[("a", period), ("b", period)], t0);
        let at = |s: i64| t0 + chrono::Duration::seconds(s);
        assert!(
            health.schedule(at(25)).is_ok(),
            "twice the period plus slack"
        );
        health.record("a", None, at(20));
        let reason = health.schedule(at(26)).unwrap_err();
        assert!(reason.starts_with("1 of 2 jobs"), "{reason}");
        assert!(reason.contains("e.g. b"), "{reason}");
        health.watch(&[("a", period)], at(26));
        assert!(health.schedule(at(45)).is_ok(), "b is no longer watched");
    }
}
