//! What the templates show, built from the `report` shapes: names and
//! states in the page's language, times in `[messages] timezone`, links.
//! Pure; the templates escape every value.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::config::{Locale, Severity};
use crate::notify::view::words;
use crate::report::json::{AlertJson, StepJson};
use crate::text::zoned_time;

/// How the page speaks: language and time zone.
#[derive(Debug, Clone, Copy)]
pub struct Speech {
    pub locale: Locale,
    pub zone: Tz,
}

impl Speech {
    pub fn time(&self, at: Option<DateTime<Utc>>) -> String {
        at.map(|t| zoned_time(t, self.zone)).unwrap_or_default()
    }

    pub fn latency(&self, ms: Option<i64>) -> String {
        ms.map(|ms| words::latency(ms, self.locale))
            .unwrap_or_else(|| "—".into())
    }

    pub fn state(&self, raw: &str) -> String {
        words::state(raw, self.locale)
    }

    pub fn severity(&self, severity: &str) -> String {
        severity
            .parse::<Severity>()
            .map(|s| words::severity(s, self.locale).to_string())
            .unwrap_or_else(|_| severity.to_string())
    }
}

/// The link to a job's page (the id is percent-encoded).
pub fn job_href(id: &str) -> String {
    format!(
        "/jobs/{}",
        percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC)
    )
}

/// An alert as a table row.
#[derive(Debug, Serialize)]
pub struct AlertView {
    /// `firing`, `pending`, `silenced`, `inhibited`: the CSS class too.
    pub state: String,
    pub suppressed_by: Option<String>,
    /// `critical`, `warning`, `info`: the CSS class too.
    pub severity: String,
    pub severity_text: String,
    pub rule: String,
    pub job_id: String,
    pub job_name: String,
    pub href: String,
    /// The step's path (what a silence matches), empty for the job.
    pub path: String,
    pub step: String,
    pub summary: String,
    pub error: String,
    pub since: String,
}

impl AlertView {
    pub fn of(alert: &AlertJson, speech: Speech) -> Self {
        Self {
            state: alert.state.clone(),
            suppressed_by: alert.suppressed_by.clone(),
            severity: alert.severity.clone(),
            severity_text: speech.severity(&alert.severity),
            rule: alert.rule.clone(),
            job_id: alert.job_id.clone(),
            job_name: alert
                .job_name
                .clone()
                .unwrap_or_else(|| alert.job_id.clone()),
            href: job_href(&alert.job_id),
            path: alert.path.clone(),
            step: alert.step.clone().unwrap_or_default(),
            // In the page's language where the event says enough.
            summary: alert
                .event
                .as_deref()
                .map(|event| {
                    crate::notify::syntax::PLAIN.write(&crate::notify::view::event_summary(
                        event,
                        crate::notify::view::Style {
                            locale: speech.locale,
                            zone: speech.zone,
                        },
                    ))
                })
                .or_else(|| alert.summary.clone())
                .unwrap_or_default(),
            // Said once: many summaries are the error itself.
            error: alert.error.clone().unwrap_or_default(),
            since: speech.time(alert.since),
        }
    }
}

/// A step or sub-step as a table row.
#[derive(Debug, Serialize)]
pub struct StepView {
    pub name: String,
    pub sub: bool,
    /// Normalised state, lower case: the CSS class.
    pub class: String,
    pub state: String,
    pub progress: String,
    pub latency: String,
    pub error: String,
}

impl StepView {
    pub fn of(step: &StepJson, speech: Speech) -> Self {
        let sub = step.parent.is_some();
        Self {
            name: words::step_name(&step.name, !sub, speech.locale),
            sub,
            class: step.state.to_lowercase(),
            state: speech.state(&step.state_raw),
            // A replicating step reports latency; its progress stays 0.
            progress: step
                .progress
                .filter(|_| step.latency_ms.is_none())
                .map(|p| format!("{p}%"))
                .unwrap_or_default(),
            latency: speech.latency(step.latency_ms),
            error: step.error.clone().unwrap_or_default(),
        }
    }
}

/// Severity rank for ordering: critical first.
pub fn severity_rank(severity: &str) -> u8 {
    match severity.parse::<Severity>() {
        Ok(Severity::Critical) => 0,
        Ok(Severity::Warning) => 1,
        Ok(Severity::Info) => 2,
        Err(_) => 3,
    }
}
