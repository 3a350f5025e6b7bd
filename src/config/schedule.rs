//! `CronSchedule`: when something happens, as people write it in the config
//! (cron with seconds, five-field cron, or `@every 30s`). Parsing and "next
//! tick after" only; the scheduler decides what to do with the ticks.

use std::str::FromStr;
use std::time::Duration;

use super::parse_duration;

/// When something happens: a cron expression with seconds (`sec min hour dom
/// mon dow [year]`; five-field expressions get `0` seconds prepended), or
/// `@every <duration>` for fixed intervals, sub-second ones included.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    pub source: String,
    kind: ScheduleKind,
    /// The zone whose wall clock a cron expression reads (`0 0 3 * * *` is
    /// 03:00 there): `[messages] timezone`, or a silence's `location`.
    zone: chrono_tz::Tz,
}

#[derive(Debug, Clone)]
enum ScheduleKind {
    Cron(Box<cron::Schedule>),
    /// Ticks at multiples of the interval since the Unix epoch.
    Every(Duration),
}

impl PartialEq for CronSchedule {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl CronSchedule {
    pub fn parse(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        if let Some(interval) = trimmed.strip_prefix("@every") {
            let every = parse_duration(interval).map_err(|e| format!("`{trimmed}`: {e}"))?;
            if every < Duration::from_millis(10) {
                return Err(format!("`{trimmed}` is too often; use at least 10ms"));
            }
            return Ok(Self {
                source: trimmed.to_string(),
                kind: ScheduleKind::Every(every),
                zone: chrono_tz::UTC,
            });
        }
        let fields = trimmed.split_whitespace().count();
        let expression = match fields {
            5 => format!("0 {trimmed}"),
            6 | 7 => trimmed.to_string(),
            _ => {
                return Err(format!(
                    "`{trimmed}` is not a cron expression: expected 6 fields (sec min hour day month weekday) or `@every 30s`, got {fields}"
                ));
            }
        };
        let schedule = cron::Schedule::from_str(&expression).map_err(|e| {
            // The cron crate draws a caret under the expression; the reason is its last line.
            let detail = e.to_string();
            let reason = detail
                .lines()
                .last()
                .unwrap_or("invalid")
                .trim()
                .to_string();
            format!("`{trimmed}` is not a valid cron expression: {reason}")
        })?;
        Ok(Self {
            source: trimmed.to_string(),
            kind: ScheduleKind::Cron(Box::new(schedule)),
            zone: chrono_tz::UTC,
        })
    }

    /// The same schedule read on `zone`'s wall clock (intervals do not care).
    pub fn in_zone(mut self, zone: chrono_tz::Tz) -> Self {
        self.zone = zone;
        self
    }

    pub fn zone(&self) -> chrono_tz::Tz {
        self.zone
    }

    /// The time between the next two ticks after `now` (None: fewer than two remain).
    pub fn period(&self, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
        let first = self.next_after(now)?;
        let second = self.next_after(first)?;
        (second - first).to_std().ok()
    }

    /// The first tick strictly after `after`.
    pub fn next_after(
        &self,
        after: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        match &self.kind {
            ScheduleKind::Cron(schedule) => schedule
                .after(&after.with_timezone(&self.zone))
                .next()
                .map(|at| at.with_timezone(&chrono::Utc)),
            ScheduleKind::Every(every) => {
                let every_ms = every.as_millis().max(1) as i64;
                let next = (after.timestamp_millis().div_euclid(every_ms) + 1) * every_ms;
                chrono::DateTime::from_timestamp_millis(next)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_accepts_six_and_five_fields() {
        assert!(CronSchedule::parse("*/30 * * * * *").is_ok());
        assert_eq!(
            CronSchedule::parse("*/5 * * * *").unwrap().source,
            "*/5 * * * *"
        );
        let error = CronSchedule::parse("61 * * * * *").unwrap_err();
        assert!(!error.contains('\n'), "one line: {error}");
        assert!(CronSchedule::parse("* *").unwrap_err().contains("got 2"));
        let every = CronSchedule::parse("@every 500ms").unwrap();
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-30T10:00:00.200Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(
            every.next_after(t).unwrap().timestamp_millis() - t.timestamp_millis(),
            300
        );
        assert!(CronSchedule::parse("@every 1ms").is_err());
        assert!(CronSchedule::parse("@every soon").is_err());
    }

    #[test]
    fn cron_reads_the_wall_clock_of_its_zone() {
        let at = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .with_timezone(&chrono::Utc)
        };
        let three_am = CronSchedule::parse("0 0 3 * * *").unwrap();
        assert_eq!(
            three_am.next_after(at("2026-12-01T00:00:00Z")),
            Some(at("2026-12-01T03:00:00Z"))
        );
        let shanghai = three_am.in_zone(chrono_tz::Asia::Shanghai);
        assert_eq!(
            shanghai.next_after(at("2026-12-01T00:00:00Z")),
            Some(at("2026-12-01T19:00:00Z")),
            "03:00 in Shanghai is 19:00 UTC the day before"
        );
    }
}
