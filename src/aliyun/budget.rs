//! The request budget of one account in one region. DTS's flow control
//! counts every call of an account in a region (`DescribeDtsJobs` 20/s,
//! `DescribeDtsJobDetail` 40/s), so every request dtswatch makes there —
//! sweeps, `ListJobStep`, retries — takes a slot from the same budget:
//! at most the current rate in any second as DTS counts arrivals, evenly
//! spaced (`ratelimit`). The rate is `max_rps` until DTS throttles; then it
//! halves and the region pauses, and it climbs back by a small step for
//! every quiet interval (AIMD), so a throttled account slows down instead
//! of retrying in a storm. Waiting requests leave in priority order: a poll
//! that may carry an alert before a sweep page, a sweep page before a
//! routine refresh.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::ratelimit::{Limit, next_slot};

/// Who waits for a slot; lower goes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    /// A job the sweep saw change, fail or lag: its alert may depend on it.
    Urgent = 0,
    /// A page of the fleet sweep.
    Sweep = 1,
    /// A job on its regular schedule.
    Poll = 2,
    /// A quiet job's slow refresh: whatever budget is left.
    Refresh = 3,
}

const PRIORITIES: usize = 4;

/// The lowest share of `max_rps` throttling can push the budget to.
const FLOOR_SHARE: f64 = 1.0 / 16.0;
/// Throttled answers that arrive together are one congestion event: the
/// rate halves at most once per this interval.
const DECREASE_EVERY: Duration = Duration::from_secs(1);
/// How long the budget must go unthrottled before its rate climbs a step.
const QUIET_STEP: Duration = Duration::from_secs(5);
/// The window the utilisation gauge looks at.
const UTILISATION_WINDOW: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct State {
    max_rps: f64,
    /// The rate now: `max_rps`, less after throttling.
    rps: f64,
    limit: Limit,
    /// When recent requests left, for the arrival windows (at most `limit.count`).
    log: VecDeque<Instant>,
    /// Every request of the last `UTILISATION_WINDOW`.
    recent: VecDeque<Instant>,
    /// No request leaves before this (after a throttled answer).
    paused_until: Option<Instant>,
    /// When the rate last changed, for the additive climb.
    changed_at: Instant,
    /// Requests waiting, by priority.
    waiting: [usize; PRIORITIES],
}

impl State {
    fn set_rate(&mut self, rps: f64, now: Instant) {
        self.rps = rps.clamp(self.max_rps * FLOOR_SHARE, self.max_rps);
        self.limit = Limit::per_second(self.rps);
        while self.log.len() as u32 > self.limit.count {
            self.log.pop_front();
        }
        self.changed_at = now;
    }

    /// Climbs back towards `max_rps` by one step per quiet interval.
    fn climb(&mut self, now: Instant) {
        if self.rps >= self.max_rps || self.paused_until.is_some_and(|p| p > now) {
            return;
        }
        let quiet = now.saturating_duration_since(self.changed_at);
        if quiet >= QUIET_STEP {
            let steps = (quiet.as_secs_f64() / QUIET_STEP.as_secs_f64()).floor();
            let step = (self.max_rps / 10.0).max(0.5);
            self.set_rate(self.rps + steps * step, now);
        }
    }
}

/// One account's budget in one region (see the module docs).
#[derive(Debug)]
pub struct Budget {
    state: Mutex<State>,
    /// Woken when a slot is taken, so lower priorities look again.
    turn: Notify,
}

impl Budget {
    pub fn new(max_rps: f64) -> Self {
        let max_rps = max_rps.max(0.001);
        let now = Instant::now();
        Self {
            state: Mutex::new(State {
                max_rps,
                rps: max_rps,
                limit: Limit::per_second(max_rps),
                log: VecDeque::new(),
                recent: VecDeque::new(),
                paused_until: None,
                changed_at: now,
                waiting: [0; PRIORITIES],
            }),
            turn: Notify::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Books the slot if it is free now and nobody ahead waits; otherwise
    /// says when to look again (`None`: when someone ahead takes a slot).
    fn try_take(&self, priority: Priority, now: Instant) -> Result<(), Option<Instant>> {
        let mut state = self.state();
        state.climb(now);
        if state.waiting[..priority as usize].iter().any(|n| *n > 0) {
            return Err(None);
        }
        let mut at = next_slot(&state.log, now, state.limit);
        if let Some(paused) = state.paused_until {
            at = at.max(paused);
        }
        if at > now {
            return Err(Some(at));
        }
        if state.log.len() as u32 >= state.limit.count {
            state.log.pop_front();
        }
        state.log.push_back(now);
        state.recent.push_back(now);
        while state
            .recent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > UTILISATION_WINDOW)
        {
            state.recent.pop_front();
        }
        Ok(())
    }

    /// Waits for a slot at `priority` and takes it.
    pub async fn acquire(&self, priority: Priority) {
        let mut registered = false;
        loop {
            let turn = self.turn.notified();
            tokio::pin!(turn);
            turn.as_mut().enable();
            match self.try_take(priority, Instant::now()) {
                Ok(()) => {
                    if registered {
                        self.state().waiting[priority as usize] -= 1;
                    }
                    self.turn.notify_waiters();
                    return;
                }
                Err(again) => {
                    if !registered {
                        self.state().waiting[priority as usize] += 1;
                        registered = true;
                    }
                    let mut guard = Waiting {
                        budget: self,
                        priority,
                        armed: true,
                    };
                    match again {
                        Some(at) => {
                            tokio::select! {
                                _ = tokio::time::sleep_until(at) => {}
                                _ = turn => {}
                            }
                        }
                        None => turn.await,
                    }
                    // Still registered: the next look may have to wait again.
                    guard.armed = false;
                }
            }
        }
    }

    /// DTS answered: a throttled answer halves the rate and pauses the
    /// region for `pause`; any other answer lets the rate climb back.
    pub fn answered(&self, throttled: bool, pause: Duration) {
        let now = Instant::now();
        let mut state = self.state();
        if throttled {
            let lowered_lately = state.rps < state.max_rps
                && now.saturating_duration_since(state.changed_at) < DECREASE_EVERY;
            if !lowered_lately {
                let halved = state.rps / 2.0;
                state.set_rate(halved, now);
            }
            let until = now + pause;
            if state.paused_until.is_none_or(|p| p < until) {
                state.paused_until = Some(until);
            }
        } else {
            state.climb(now);
        }
    }

    /// The rate now, in requests per second.
    pub fn rate(&self) -> f64 {
        self.state().rps
    }

    /// How much of the budget the last ten seconds used (0 to 1, or more
    /// while the rate is falling).
    pub fn utilisation(&self) -> f64 {
        let now = Instant::now();
        let mut state = self.state();
        while state
            .recent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > UTILISATION_WINDOW)
        {
            state.recent.pop_front();
        }
        state.recent.len() as f64 / (state.rps * UTILISATION_WINDOW.as_secs_f64())
    }
}

/// Takes a waiter off the count if its `acquire` is dropped while waiting.
struct Waiting<'a> {
    budget: &'a Budget,
    priority: Priority,
    armed: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut state = self.budget.state();
            state.waiting[self.priority as usize] =
                state.waiting[self.priority as usize].saturating_sub(1);
            drop(state);
            self.budget.turn.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn requests_leave_evenly_at_the_rate() {
        let budget = Budget::new(10.0);
        let start = Instant::now();
        for _ in 0..20 {
            budget.acquire(Priority::Poll).await;
        }
        let took = Instant::now() - start;
        assert!(
            took >= Duration::from_millis(1_850) && took <= Duration::from_millis(2_100),
            "{took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_halves_the_rate_and_quiet_climbs_back() {
        let budget = Budget::new(20.0);
        budget.answered(true, Duration::from_secs(1));
        assert_eq!(budget.rate(), 10.0);
        budget.answered(true, Duration::from_secs(1));
        assert_eq!(
            budget.rate(),
            10.0,
            "answers of one congestion event halve once"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        budget.answered(true, Duration::from_secs(1));
        assert_eq!(budget.rate(), 5.0);
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            budget.answered(true, Duration::ZERO);
        }
        assert_eq!(budget.rate(), 1.25, "never below a sixteenth of max_rps");
        tokio::time::sleep(Duration::from_secs(11)).await;
        budget.answered(false, Duration::ZERO);
        assert_eq!(budget.rate(), 5.25, "two quiet steps of 2 rps");
        tokio::time::sleep(Duration::from_secs(60)).await;
        budget.answered(false, Duration::ZERO);
        assert_eq!(budget.rate(), 20.0, "never above max_rps");
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_every_request() {
        let budget = Budget::new(100.0);
        budget.answered(true, Duration::from_secs(3));
        let start = Instant::now();
        budget.acquire(Priority::Urgent).await;
        assert!(Instant::now() - start >= Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn urgent_requests_go_before_refreshes() {
        let budget = std::sync::Arc::new(Budget::new(2.0));
        // Use up the first slot so everyone below has to wait.
        budget.acquire(Priority::Poll).await;
        let order = std::sync::Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (i, priority) in [
            Priority::Refresh,
            Priority::Refresh,
            Priority::Sweep,
            Priority::Urgent,
        ]
        .into_iter()
        .enumerate()
        {
            let (budget, order) = (budget.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                budget.acquire(priority).await;
                order.lock().unwrap().push(i);
            }));
            tokio::task::yield_now().await;
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec![3, 2, 0, 1]);
    }

    #[tokio::test(start_paused = true)]
    async fn utilisation_counts_the_last_ten_seconds() {
        let budget = Budget::new(10.0);
        for _ in 0..50 {
            budget.acquire(Priority::Poll).await;
        }
        let used = budget.utilisation();
        assert!((0.45..=0.55).contains(&used), "{used}");
    }
}
