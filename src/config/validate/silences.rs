//! `[[silences]]` (fixed windows and recurring maintenance windows) and
//! `[watchdog]` (alerts about dtswatch itself).

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use super::super::raw::{RawInstant, RawSilence, RawWatchdog};
use super::super::{ChannelConfig, Severity, SilenceConfig, SilenceWindow, WatchdogConfig};
use super::errors::Errors;

fn instant(
    value: &Spanned<RawInstant>,
    owner: &str,
    field: &str,
    errors: &mut Errors,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let text = match value.get_ref() {
        RawInstant::Native(dt) => dt.to_string(),
        RawInstant::Text(t) => t.clone(),
    };
    match chrono::DateTime::parse_from_rfc3339(&text) {
        Ok(dt) => Some(dt.with_timezone(&chrono::Utc)),
        Err(_) => {
            errors.at(
                value.span(),
                format!("{owner}: {field} `{text}` is not a date-time with offset like 2026-12-01T02:00:00Z"),
            );
            None
        }
    }
}

pub(super) fn build_silences(
    raw: &[(Range<usize>, RawSilence)],
    zone: chrono_tz::Tz,
    errors: &mut Errors,
) -> Vec<SilenceConfig> {
    let mut silences = Vec::new();
    for (i, (span, s)) in raw.iter().enumerate() {
        let owner = format!("silences[{}]", i + 1);
        if s.jobs.is_none() && s.rules.is_none() && s.steps.is_none() {
            errors.at(
                span.clone(),
                format!("{owner}: a silence needs at least one matcher (jobs, rules or steps); use jobs = [\"*\"] to silence everything"),
            );
        }
        let recurring = s.cron.is_some() && s.duration.is_some();
        if let (Some(location), false) = (&s.location, recurring) {
            errors.at(
                location.span(),
                format!("{owner}: location applies to a recurring `cron` window; `starts` and `ends` carry their own offset"),
            );
        }
        let window = match (&s.starts, &s.ends, &s.cron, &s.duration) {
            (starts, Some(ends), None, None) => {
                let starts_at = starts
                    .as_ref()
                    .and_then(|v| instant(v, &owner, "starts", errors));
                let ends_at = instant(ends, &owner, "ends", errors);
                match (starts_at, ends_at) {
                    (Some(a), Some(b)) if b <= a => {
                        errors.at(ends.span(), format!("{owner}: ends must be after starts"));
                        None
                    }
                    (_, Some(ends_at)) => {
                        if ends_at <= chrono::Utc::now() {
                            errors.warn(
                                ends.span(),
                                format!("{owner}: ended already ({ends_at}); it silences nothing"),
                            );
                        }
                        Some(SilenceWindow::Fixed {
                            starts: starts_at,
                            ends: ends_at,
                        })
                    }
                    _ => None,
                }
            }
            (None, None, Some(_), Some(_)) => {
                let location =
                    super::messages::zone(&s.location, &format!("{owner}: location"), errors);
                let cron =
                    errors.cron(&s.cron, &format!("{owner}: cron"), location.unwrap_or(zone));
                let duration = errors.positive_duration(
                    &s.duration,
                    Duration::from_secs(3600),
                    &format!("{owner}: duration"),
                );
                cron.map(|cron| SilenceWindow::Recurring { cron, duration })
            }
            _ => {
                errors.at(
                    span.clone(),
                    format!("{owner}: give either `ends` (and optionally `starts`) or `cron` with `duration`"),
                );
                None
            }
        };
        let jobs = errors.matcher(&s.jobs, &format!("{owner}: jobs"));
        let rules = errors.matcher(&s.rules, &format!("{owner}: rules"));
        let steps = errors.matcher(&s.steps, &format!("{owner}: steps"));
        if let Some(window) = window {
            silences.push(SilenceConfig {
                jobs,
                rules,
                steps,
                window,
                comment: s
                    .comment
                    .as_ref()
                    .map(|c| c.get_ref().clone())
                    .unwrap_or_default(),
            });
        }
    }
    silences
}

pub(super) fn build_watchdog(
    raw: &RawWatchdog,
    channels: &BTreeMap<String, ChannelConfig>,
    errors: &mut Errors,
) -> WatchdogConfig {
    if raw.channels.get_ref().is_empty() {
        errors.at(
            raw.channels.span(),
            "watchdog: channels must name at least one channel",
        );
    }
    for c in raw.channels.get_ref() {
        if !channels.contains_key(c.get_ref()) {
            errors.at(
                c.span(),
                format!("watchdog: unknown channel `{}`", c.get_ref()),
            );
        }
    }
    WatchdogConfig {
        channels: raw
            .channels
            .get_ref()
            .iter()
            .map(|c| c.get_ref().clone())
            .collect(),
        no_successful_poll: errors.positive_duration(
            &raw.no_successful_poll,
            Duration::from_secs(600),
            "watchdog.no_successful_poll",
        ),
        dead_letters: raw.dead_letters.unwrap_or(true),
        severity: match &raw.severity {
            Some(s) => s.get_ref().parse().unwrap_or_else(|e| {
                errors.at(s.span(), format!("watchdog: {e}"));
                Severity::Critical
            }),
            None => Severity::Critical,
        },
    }
}
