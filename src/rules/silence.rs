//! Silences: matchers plus a time window, from the config (fixed or a
//! recurring cron window) or added at run time. A silenced notification is
//! recorded, not sent. Pure: activity is a function of `now`.

use chrono::{DateTime, Utc};

use super::{JobInfo, StepInfo};
use crate::config::{Matcher, SilenceConfig, SilenceWindow};

/// A silence ready to match notifications.
#[derive(Debug, Clone)]
pub struct Silence {
    /// `config-N` for config silences, the database id otherwise.
    pub id: String,
    pub jobs: Option<Matcher>,
    pub rules: Option<Matcher>,
    pub steps: Option<Matcher>,
    pub window: SilenceWindow,
    pub comment: String,
}

/// A silence's state at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Active,
    /// Starts later (a fixed window ahead, or between a recurring window's ticks).
    Waiting,
    /// Over, and will not start again.
    Ended,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Active => "active",
            Phase::Waiting => "waiting",
            Phase::Ended => "ended",
        }
    }
}

impl Silence {
    pub fn from_config(index: usize, config: &SilenceConfig) -> Self {
        Self {
            id: format!("config-{}", index + 1),
            jobs: config.jobs.clone(),
            rules: config.rules.clone(),
            steps: config.steps.clone(),
            window: config.window.clone(),
            comment: config.comment.clone(),
        }
    }

    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        match &self.window {
            SilenceWindow::Fixed { starts, ends } => starts.is_none_or(|s| s <= now) && now < *ends,
            SilenceWindow::Recurring { cron, duration } => {
                let Ok(duration) = chrono::Duration::from_std(*duration) else {
                    return false;
                };
                // The first window start after `now - duration` is active if it has begun.
                cron.next_after(now - duration)
                    .is_some_and(|start| start <= now)
            }
        }
    }

    /// Where the silence is in its life at `now`, as `silence list` shows it.
    pub fn phase(&self, now: DateTime<Utc>) -> Phase {
        if self.is_active(now) {
            return Phase::Active;
        }
        let ended = match &self.window {
            SilenceWindow::Fixed { ends, .. } => *ends <= now,
            SilenceWindow::Recurring { cron, .. } => cron.next_after(now).is_none(),
        };
        if ended { Phase::Ended } else { Phase::Waiting }
    }

    /// All given matchers must match; a `steps` silence never matches job-level alerts.
    pub fn matches(&self, job: &JobInfo, rule: &str, step: Option<&StepInfo>) -> bool {
        let job_ok = self
            .jobs
            .as_ref()
            .is_none_or(|m| m.matches_any([job.id.as_str(), job.name.as_str()]));
        let rule_ok = self.rules.as_ref().is_none_or(|m| m.matches_any([rule]));
        let step_ok = match (&self.steps, step) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(m), Some(s)) => m.matches_any(
                [
                    Some(s.name.as_str()),
                    s.code.as_deref(),
                    Some(s.path.as_str()),
                    s.parent_name.as_deref(),
                ]
                .into_iter()
                .flatten(),
            ),
        };
        job_ok && rule_ok && step_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn silence(window: SilenceWindow) -> Silence {
        Silence {
            id: "s".into(),
            jobs: Some(Matcher::new(&["orders*".to_string()]).unwrap()),
            rules: None,
            steps: None,
            window,
            comment: String::new(),
        }
    }

    #[test]
    fn fixed_windows() {
        let s = silence(SilenceWindow::Fixed {
            starts: Some(at("2026-12-01T02:00:00Z")),
            ends: at("2026-12-01T04:00:00Z"),
        });
        assert!(!s.is_active(at("2026-12-01T01:59:59Z")));
        assert!(s.is_active(at("2026-12-01T02:00:00Z")));
        assert!(!s.is_active(at("2026-12-01T04:00:00Z")));
    }

    #[test]
    fn recurring_maintenance_windows() {
        let s = silence(SilenceWindow::Recurring {
            cron: crate::config::CronSchedule::parse("0 0 3 * * Sun").unwrap(),
            duration: std::time::Duration::from_secs(7200),
        });
        // 2026-11-29 is a Sunday.
        assert!(s.is_active(at("2026-11-29T03:00:00Z")));
        assert!(s.is_active(at("2026-11-29T04:59:59Z")));
        assert!(!s.is_active(at("2026-11-29T05:00:00Z")));
        assert!(!s.is_active(at("2026-11-30T03:30:00Z")), "Monday");
    }

    #[test]
    fn matchers_all_apply() {
        let s = silence(SilenceWindow::Fixed {
            starts: None,
            ends: at("2099-01-01T00:00:00Z"),
        });
        let job = JobInfo {
            id: "dts1".into(),
            name: "orders mysql".into(),
            region: "cn-hangzhou".into(),
            console_url: None,
        };
        let other = JobInfo {
            name: "billing".into(),
            ..job.clone()
        };
        assert!(s.matches(&job, "any", None));
        assert!(!s.matches(&other, "any", None));
        let mut with_steps = s.clone();
        with_steps.steps = Some(Matcher::new(&["全量*".to_string()]).unwrap());
        assert!(
            !with_steps.matches(&job, "any", None),
            "steps silences skip job-level alerts"
        );
        let step = StepInfo {
            path: "st03".into(),
            label: "全量迁移 (03)".into(),
            name: "全量迁移".into(),
            code: Some("03".into()),
            sub_step_id: None,
            parent_name: None,
            parent_code: None,
        };
        assert!(with_steps.matches(&job, "any", Some(&step)));
    }
}
