//! The tick loop: fires what the plan (`plan.rs`) says is due — each
//! job's `ListJobStep` at its priority, and in adaptive mode each
//! account-region's sweep — and feeds back what they found: a sweep's
//! readings and a poll's facts move jobs in the plan. The plan is rebuilt
//! only when the config is reloaded or discovery changes the watch list. A
//! tick that finds the job's (or the sweep's) previous run still going is
//! skipped and counted; after a suspend the next fire is taken from now, so
//! missed ticks are not replayed.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Daemon;
use super::plan::{Due, Group, Plan};
use super::runtime::Runtime;
use crate::aliyun::Priority;
use crate::cadence::Cadence;
use crate::dts::api;
use crate::metrics::{Counter, Gauge};
use crate::poll::{self, Watched};
use crate::scheduler;
use crate::text::zoned_time;

/// Fires polls and sweeps on schedule until cancelled; follows config reloads and discovery.
pub(super) async fn run(daemon: Arc<Daemon>, cancel: CancellationToken, polls: TaskTracker) {
    let mut reloads = daemon.runtime.subscribe();
    let plan = Arc::new(Mutex::new(Plan::default()));
    // Woken when a poll or a sweep moved a job in the plan.
    let moved = Arc::new(Notify::new());
    let mut stale = true;
    let mut skips = Skips::default();
    let mut last_wake = std::time::Instant::now();
    loop {
        daemon.shared.metrics.inc(Counter::SchedulerWakeups, &[]);
        skips.report_if_due();
        let runtime = daemon.current();
        if stale {
            let now = Utc::now();
            let mut plan = locked(&plan);
            plan.rebuild(daemon.watched(&runtime.config), &runtime.config, now);
            let periods = plan.periods(now);
            let ids: HashSet<&str> = periods.iter().map(|(id, _)| *id).collect();
            let metrics = &daemon.shared.metrics;
            metrics.set(Gauge::JobsWatched, &[], plan.len() as f64);
            metrics.retain(Gauge::LastSuccessfulPoll, |job| ids.contains(job));
            metrics.retain_jobs(|job| ids.contains(job));
            daemon.shared.health.watch(&periods, now);
            if plan.sweeps() > 0 {
                tracing::info!(
                    sweeps = plan.sweeps(),
                    "adaptive polling: a DescribeDtsJobs sweep per account and region decides which jobs ListJobStep fetches"
                );
            }
            stale = false;
        }
        let next = locked(&plan).next_fire();
        // Fires a few milliseconds apart are taken in one wake: a thousand
        // jittered jobs must not mean a thousand wake-ups a period.
        let wait = scheduler::sleep_until(next, Utc::now(), Duration::from_secs(60))
            .max(WAKE_AT_MOST_EVERY.saturating_sub(last_wake.elapsed()));
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = reloads.changed() => { stale = true; continue; }
            _ = daemon.jobs_changed.notified() => { stale = true; continue; }
            _ = moved.notified() => continue,
            _ = tokio::time::sleep(wait) => {}
        }
        last_wake = std::time::Instant::now();
        let due = locked(&plan).take_due(Utc::now());
        for due in due {
            match due {
                Due::Poll {
                    watched,
                    busy,
                    priority,
                } => {
                    if busy.swap(true, Ordering::SeqCst) {
                        daemon
                            .shared
                            .metrics
                            .inc(Counter::PollsSkipped, &[&watched.job.id]);
                        skips.note(&watched.job.id);
                        continue;
                    }
                    let task = Poll {
                        daemon: daemon.clone(),
                        runtime: runtime.clone(),
                        plan: plan.clone(),
                        moved: moved.clone(),
                    };
                    polls.spawn(task.poll(watched, busy, priority));
                }
                Due::Sweep { group, busy } => {
                    if busy.swap(true, Ordering::SeqCst) {
                        continue;
                    }
                    let task = Poll {
                        daemon: daemon.clone(),
                        runtime: runtime.clone(),
                        plan: plan.clone(),
                        moved: moved.clone(),
                    };
                    polls.spawn(task.sweep(group, busy));
                }
            }
        }
    }
}

/// The least time between two wakes that take due work (a poll fires at
/// most this much late).
const WAKE_AT_MOST_EVERY: Duration = Duration::from_millis(50);

fn locked(plan: &Mutex<Plan>) -> std::sync::MutexGuard<'_, Plan> {
    plan.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a poll or sweep task needs to run and to report back to the plan.
struct Poll {
    daemon: Arc<Daemon>,
    runtime: Arc<Runtime>,
    plan: Arc<Mutex<Plan>>,
    moved: Arc<Notify>,
}

impl Poll {
    /// One job's `ListJobStep`, its facts fed back to the plan.
    async fn poll(self, watched: Watched, busy: Arc<AtomicBool>, priority: Priority) {
        let runtime = &self.runtime;
        if let Ok(_slot) = runtime.polls.acquire().await {
            // A poll's future is a few kilobytes: it is only built (boxed)
            // once a slot is free, so a thousand due jobs waiting cost little.
            let polled = Box::pin(poll::poll_one(
                &runtime.ctx,
                &watched.job,
                watched.source,
                priority,
            ))
            .await;
            let facts = poll::facts(&runtime.ctx, &polled);
            let applied = locked(&self.plan).apply_poll(&watched.job.id, facts, Utc::now());
            if let Some((cadence, sooner)) = applied {
                if matches!(cadence, Cadence::Refresh | Cadence::Finished) {
                    // Quiet for a while: the store gives the baseline back at the next refresh.
                    runtime.ctx.recorder.forget(&watched.job.id).await;
                }
                if sooner {
                    self.moved.notify_one();
                }
            }
            if self.daemon.echo {
                echo(&watched, &polled, runtime.config.messages.timezone);
            }
        }
        busy.store(false, Ordering::SeqCst);
    }

    /// One account-region's sweep, its readings fed back to the plan.
    async fn sweep(self, group: Group, busy: Arc<AtomicBool>) {
        let (account, region) = (&group.0, &group.1);
        let runtime = &self.runtime;
        let found = match runtime.ctx.clients.get(account) {
            Some(client) => api::sweep(client, region).await.map_err(|f| f.error),
            None => Err(crate::aliyun::ApiError::Credentials(format!(
                "no client for account `{account}`"
            ))),
        };
        let metrics = &self.daemon.shared.metrics;
        let result = if found.is_ok() { "ok" } else { "error" };
        metrics.inc(Counter::Sweeps, &[account, region, result]);
        let lag_watch = crate::cadence::lag_watch(&runtime.config.rules);
        let pulled = match &found {
            Ok(jobs) => locked(&self.plan).apply_sweep(&group, Some(jobs), lag_watch, Utc::now()),
            Err(error) => {
                tracing::warn!(account = %account, region = %region, error = %crate::notify::escape::log(&error.to_string()), "sweep failed; the region's jobs are polled on schedule until one succeeds");
                locked(&self.plan).apply_sweep(&group, None, lag_watch, Utc::now())
            }
        };
        if pulled > 0 {
            tracing::info!(account = %account, region = %region, jobs = pulled, "sweep saw news; fetching those jobs now");
            self.moved.notify_one();
        }
        busy.store(false, Ordering::SeqCst);
    }
}

/// Ticks skipped because the job's previous poll was still running, logged
/// as one line a minute (a line per job per tick would flood the log when
/// the budget is short).
#[derive(Default)]
struct Skips {
    count: u64,
    examples: Vec<String>,
    since: Option<std::time::Instant>,
}

impl Skips {
    const EVERY: Duration = Duration::from_secs(60);

    fn note(&mut self, job: &str) {
        self.count = self.count.saturating_add(1);
        if self.examples.len() < 5 && !self.examples.iter().any(|j| j == job) {
            self.examples.push(job.to_string());
        }
        self.since.get_or_insert_with(std::time::Instant::now);
    }

    fn report_if_due(&mut self) {
        if self
            .since
            .is_some_and(|since| since.elapsed() >= Self::EVERY)
        {
            tracing::warn!(
                skipped = self.count,
                jobs = %self.examples.join(", "),
                "ticks skipped in the last minute because the previous poll was still running"
            );
            *self = Self::default();
        }
    }
}

/// The demo's running commentary: step changes and failed polls on stdout.
fn echo(watched: &Watched, polled: &poll::Polled, zone: chrono_tz::Tz) {
    let name = watched.job.display_name();
    let at = polled
        .recorded
        .as_ref()
        .map(|r| r.at)
        .unwrap_or_else(|_| Utc::now());
    let at = zoned_time(at, zone);
    if let Err(failure) = &polled.result {
        crate::outln!("{at}  {name}: poll failed: {}", failure.error);
    }
    if let Ok(report) = &polled.recorded {
        for change in report
            .changes
            .iter()
            .filter(|c| !c.is_volatile() || report.first)
        {
            crate::outln!("{at}  {name}: {change}");
        }
    }
}
