//! "At most `count` events in any `per` window": the DTS per-account request
//! limit (`max_rps`) and the chat platforms' per-robot limits (DingTalk 20/min,
//! Slack 1/s, …). A sliding log of the last `count` event times, plus for
//! per-second limits an even spacing of `1/rps` between events: DTS counts
//! arrivals per window, so a burst of `rps` requests followed by another a
//! second later can land in one window on its side. The decision is a pure
//! function of the log and `now`.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// How many events may happen in which window, and how far apart.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub count: u32,
    pub per: Duration,
    /// The least time between two events.
    pub spacing: Duration,
}

impl Limit {
    /// At most `rps` requests in any second as the receiver counts them,
    /// evenly spaced; fractional rates included (0.5 → 1 per 2 s).
    pub fn per_second(rps: f64) -> Self {
        let rps = rps.clamp(0.001, 1_000_000.0);
        let spacing = Duration::from_secs_f64(1.0 / rps);
        if rps >= 1.0 {
            Limit {
                count: rps.floor() as u32,
                per: Duration::from_secs(1) + ARRIVAL_MARGIN,
                spacing,
            }
        } else {
            Limit {
                count: 1,
                per: spacing,
                spacing,
            }
        }
    }
}

/// When the next event may happen, given the times of recent ones (oldest first).
/// Pure: `log` holds at most `count` entries.
pub fn next_slot(log: &VecDeque<Instant>, now: Instant, limit: Limit) -> Instant {
    let spaced = log
        .back()
        .map_or(now, |last| (*last + limit.spacing).max(now));
    if (log.len() as u32) < limit.count {
        return spaced;
    }
    match log.front() {
        Some(oldest) => (*oldest + limit.per).max(spaced),
        None => spaced,
    }
}

/// Slack added to the one-second window of `per_second`: requests leave
/// here on time but arrive at DTS with a little jitter, and no window on
/// DTS's side may hold more than `max_rps` of them.
const ARRIVAL_MARGIN: Duration = Duration::from_millis(100);

#[derive(Debug)]
struct Log {
    events: VecDeque<Instant>,
}

/// A shareable limiter; `acquire` waits for a slot and books it.
#[derive(Debug)]
pub struct RateLimiter {
    limit: Limit,
    log: std::sync::Mutex<Log>,
}

impl RateLimiter {
    /// At most `count` in any `per`, in bursts if they come in bursts (the
    /// chat platforms' per-minute limits allow that).
    pub fn new(count: u32, per: Duration) -> Self {
        Self::with_limit(Limit {
            count: count.max(1),
            per,
            spacing: Duration::ZERO,
        })
    }

    fn with_limit(limit: Limit) -> Self {
        Self {
            limit,
            // Not preallocated: `count` may be a generous `max_rps` that is never reached.
            log: std::sync::Mutex::new(Log {
                events: VecDeque::new(),
            }),
        }
    }

    /// At most `rps` requests in any second as the receiver counts them,
    /// evenly spaced; fractional rates included (0.5 → 1 per 2 s).
    pub fn per_second(rps: f64) -> Self {
        Self::with_limit(Limit::per_second(rps))
    }

    /// Books the earliest slot and returns when it is; the caller sleeps until then.
    pub fn reserve(&self, now: Instant) -> Instant {
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let slot = next_slot(&log.events, now, self.limit);
        if log.events.len() as u32 >= self.limit.count {
            log.events.pop_front();
        }
        log.events.push_back(slot);
        slot
    }

    /// Books a slot only if one is free now; otherwise says when to come back.
    pub fn try_acquire(&self, now: Instant) -> Result<(), Instant> {
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let slot = next_slot(&log.events, now, self.limit);
        if slot > now {
            return Err(slot);
        }
        if log.events.len() as u32 >= self.limit.count {
            log.events.pop_front();
        }
        log.events.push_back(now);
        Ok(())
    }

    /// Waits for and books a slot.
    pub async fn acquire(&self) {
        let slot = self.reserve(Instant::now());
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_count_then_waits_for_the_oldest_to_age_out() {
        let start = Instant::now();
        let limiter = RateLimiter::new(3, Duration::from_secs(60));
        for _ in 0..3 {
            assert_eq!(limiter.reserve(start), start);
        }
        assert_eq!(limiter.reserve(start), start + Duration::from_secs(60));
        assert!(limiter.try_acquire(start + Duration::from_secs(1)).is_err());
    }

    #[test]
    fn try_acquire_books_only_when_free() {
        let start = Instant::now();
        let limiter = RateLimiter::new(1, Duration::from_secs(1));
        assert!(limiter.try_acquire(start).is_ok());
        assert_eq!(
            limiter.try_acquire(start),
            Err(start + Duration::from_secs(1))
        );
        assert!(limiter.try_acquire(start + Duration::from_secs(1)).is_ok());
    }

    /// Every window of one second plus the margin, starting at any event.
    fn busiest_window(slots: &[Instant], window: Duration) -> usize {
        slots
            .iter()
            .map(|start| {
                slots
                    .iter()
                    .filter(|t| **t >= *start && **t < *start + window)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn per_second_spaces_evenly_and_no_window_exceeds_the_rate() {
        let start = Instant::now();
        let limiter = RateLimiter::per_second(5.0);
        let slots: Vec<Instant> = (0..20).map(|_| limiter.reserve(start)).collect();
        for pair in slots.windows(2) {
            assert!(pair[1] - pair[0] >= Duration::from_millis(200), "{pair:?}");
        }
        assert_eq!(
            busiest_window(&slots, Duration::from_secs(1) + ARRIVAL_MARGIN),
            5
        );
        // A request arriving up to the margin late still never makes six in a second.
        let late: Vec<Instant> = slots
            .iter()
            .enumerate()
            .map(|(i, t)| *t + Duration::from_millis(if i % 5 == 0 { 90 } else { 0 }))
            .collect();
        assert!(busiest_window(&late, Duration::from_secs(1)) <= 5);
        // 20 at 5/s: the last leaves about 4 s after the first, not in bursts.
        let span = slots[19] - slots[0];
        assert!(
            span >= Duration::from_millis(3_800) && span <= Duration::from_millis(4_500),
            "{span:?}"
        );
    }

    #[test]
    fn fractional_rates_space_requests_out() {
        let start = Instant::now();
        let limiter = RateLimiter::per_second(0.5);
        assert_eq!(limiter.reserve(start), start);
        assert_eq!(limiter.reserve(start), start + Duration::from_secs(2));
    }
}
