//! Whether polling works, as every poll reports it: consecutive failures
//! per job (dtswatch is unhealthy only when every job keeps failing), the
//! last success (the watchdog's measure) and whether polls can be written.
//! Read by `/healthz` and the watchdog; written only by `poll_one`.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

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
}

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

    /// Jobs no longer watched stop counting.
    pub fn forget_except(&self, watched: &HashSet<&str>) {
        self.lock()
            .failing
            .retain(|job, _| watched.contains(job.as_str()));
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
        health.forget_except(&HashSet::from(["a"]));
        assert!(health.polling().is_ok());
    }
}
