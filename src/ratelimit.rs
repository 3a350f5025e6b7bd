//! "At most `count` events in any `per` window": the DTS per-account request
//! limit (`max_rps`) and the chat platforms' per-robot limits (DingTalk 20/min,
//! Slack 1/s, …). A sliding log of the last `count` event times; the decision
//! is a pure function of the log and `now`.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// When the next event may happen, given the times of recent ones (oldest first).
/// Pure: `log` holds at most `count` entries.
pub fn next_slot(log: &VecDeque<Instant>, now: Instant, count: u32, per: Duration) -> Instant {
    if (log.len() as u32) < count {
        return now;
    }
    match log.front() {
        Some(oldest) => (*oldest + per).max(now),
        None => now,
    }
}

#[derive(Debug)]
struct Log {
    events: VecDeque<Instant>,
}

/// A shareable limiter; `acquire` waits for a slot and books it.
#[derive(Debug)]
pub struct RateLimiter {
    count: u32,
    per: Duration,
    log: std::sync::Mutex<Log>,
}

impl RateLimiter {
    pub fn new(count: u32, per: Duration) -> Self {
        let count = count.max(1);
        Self {
            count,
            per,
            // Not preallocated: `count` may be a generous `max_rps` that is never reached.
            log: std::sync::Mutex::new(Log {
                events: VecDeque::new(),
            }),
        }
    }

    /// `rps` requests per second, fractional rates included (0.5 → 1 per 2 s).
    pub fn per_second(rps: f64) -> Self {
        if rps >= 1.0 {
            Self::new(rps.round() as u32, Duration::from_secs(1))
        } else {
            Self::new(1, Duration::from_secs_f64(1.0 / rps.max(0.001)))
        }
    }

    /// Books the earliest slot and returns when it is; the caller sleeps until then.
    pub fn reserve(&self, now: Instant) -> Instant {
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let slot = next_slot(&log.events, now, self.count, self.per);
        if log.events.len() as u32 >= self.count {
            log.events.pop_front();
        }
        log.events.push_back(slot);
        slot
    }

    /// Books a slot only if one is free now; otherwise says when to come back.
    pub fn try_acquire(&self, now: Instant) -> Result<(), Instant> {
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let slot = next_slot(&log.events, now, self.count, self.per);
        if slot > now {
            return Err(slot);
        }
        if log.events.len() as u32 >= self.count {
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

    #[test]
    fn fractional_rates_space_requests_out() {
        let start = Instant::now();
        let limiter = RateLimiter::per_second(0.5);
        assert_eq!(limiter.reserve(start), start);
        assert_eq!(limiter.reserve(start), start + Duration::from_secs(2));
    }
}
