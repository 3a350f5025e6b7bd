//! When each job is polled: its cron schedule (the global one unless the job
//! overrides it) shifted by a small deterministic per-job offset, so that a
//! thousand jobs on `*/30 * * * * *` do not all fire in the same millisecond.
//! Pure: every function takes `now`.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::CronSchedule;

/// `at + by`, saturating at the end of time instead of panicking: `by` may
/// come from a peer (`Retry-After`) or from arithmetic on user durations.
pub fn later(at: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(by)
        .ok()
        .and_then(|by| at.checked_add_signed(by))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `at - by`, saturating at the start of time.
pub fn earlier(at: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(by)
        .ok()
        .and_then(|by| at.checked_sub_signed(by))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// A stable offset in `[0, max)` derived from the job id (FNV-1a), so restarts keep it.
pub fn jitter_for(job_id: &str, max: Duration) -> Duration {
    if max.is_zero() {
        return Duration::ZERO;
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in job_id.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let max_ms = max.as_millis().max(1) as u64;
    Duration::from_millis(hash % max_ms)
}

/// How long a loop sleeps until `next` (the earliest thing due): nothing if
/// that is already past (the loop fell behind), `idle` if nothing is due at all.
pub fn sleep_until(next: Option<DateTime<Utc>>, now: DateTime<Utc>, idle: Duration) -> Duration {
    match next {
        Some(at) => (at - now).to_std().unwrap_or(Duration::ZERO),
        None => idle,
    }
}

/// The jitter actually used: at most `max`, and at most half the schedule's period.
pub fn effective_jitter(
    job_id: &str,
    schedule: &CronSchedule,
    max: Duration,
    now: DateTime<Utc>,
) -> Duration {
    let cap = schedule.period(now).map(|p| p / 2).unwrap_or(max).min(max);
    jitter_for(job_id, cap)
}

/// The first fire time strictly after `now`: a cron tick plus the job's jitter.
pub fn next_fire(
    schedule: &CronSchedule,
    jitter: Duration,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let jitter = chrono::Duration::from_std(jitter).ok()?;
    schedule
        .next_after(now - jitter)
        .map(|tick| tick + jitter)
        .filter(|fire| *fire > now)
        .or_else(|| schedule.next_after(now).map(|tick| tick + jitter))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    #[test]
    fn a_loop_that_fell_behind_does_not_sleep() {
        let now = Utc.timestamp_opt(1_790_000_000, 0).single().unwrap();
        let idle = Duration::from_secs(60);
        let past = now - chrono::Duration::milliseconds(5);
        assert_eq!(sleep_until(Some(past), now, idle), Duration::ZERO);
        let soon = now + chrono::Duration::milliseconds(250);
        assert_eq!(
            sleep_until(Some(soon), now, idle),
            Duration::from_millis(250)
        );
        assert_eq!(sleep_until(None, now, idle), idle);
    }

    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn jitter_is_stable_and_bounded() {
        let max = Duration::from_secs(2);
        let a = jitter_for("dtsjob1", max);
        assert_eq!(a, jitter_for("dtsjob1", max));
        assert!(a < max);
        let distinct: std::collections::BTreeSet<_> = (0..100)
            .map(|i| jitter_for(&format!("job{i}"), max))
            .collect();
        assert!(
            distinct.len() > 50,
            "offsets spread out: {}",
            distinct.len()
        );
        assert_eq!(jitter_for("x", Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn fires_on_ticks_shifted_by_jitter() {
        let schedule = CronSchedule::parse("*/30 * * * * *").unwrap();
        let jitter = Duration::from_millis(1500);
        let now = at("2026-11-30T10:00:00Z");
        assert_eq!(
            next_fire(&schedule, jitter, now),
            Some(at("2026-11-30T10:00:01.500Z"))
        );
        let later = at("2026-11-30T10:00:01.500Z");
        assert_eq!(
            next_fire(&schedule, jitter, later),
            Some(at("2026-11-30T10:00:31.500Z"))
        );
    }

    #[test]
    fn a_long_sleep_fires_once_at_the_next_tick_not_for_every_missed_one() {
        let schedule = CronSchedule::parse("*/30 * * * * *").unwrap();
        let woke = at("2026-11-30T13:07:10Z");
        assert_eq!(
            next_fire(&schedule, Duration::ZERO, woke),
            Some(at("2026-11-30T13:07:30Z"))
        );
    }

    #[test]
    fn jitter_never_exceeds_half_the_period() {
        let schedule = CronSchedule::parse("* * * * * *").unwrap();
        let now = at("2026-11-30T10:00:00Z");
        assert_eq!(schedule.period(now), Some(Duration::from_secs(1)));
        for i in 0..50 {
            assert!(
                effective_jitter(&format!("j{i}"), &schedule, Duration::from_secs(10), now)
                    < Duration::from_millis(500)
            );
        }
    }
}
