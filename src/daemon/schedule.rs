//! The tick loop: fires each watched job's polls on its schedule. The plan
//! of jobs is rebuilt only when the config is reloaded or discovery changes
//! the watch list, never on a plain wake, and a wake costs what is due: the
//! next fire times are kept in order, so finding the due jobs is a walk from
//! the front. A tick that finds the job's previous poll still running is
//! skipped and counted; after a suspend the next fire is taken from now, so
//! missed ticks are not replayed.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Daemon;
use crate::config::{Config, CronSchedule};
use crate::metrics::{Counter, Gauge};
use crate::poll::{self, Watched};
use crate::scheduler;
use crate::text::zoned_time;

/// A job's place in the schedule.
struct Entry {
    watched: Watched,
    schedule: CronSchedule,
    jitter: Duration,
    next: DateTime<Utc>,
    /// Set while a poll of the job runs.
    busy: Arc<AtomicBool>,
}

/// Every watched job with its next fire time, in fire order.
#[derive(Default)]
pub(super) struct Plan {
    entries: HashMap<Arc<str>, Entry>,
    order: BTreeSet<(DateTime<Utc>, Arc<str>)>,
}

/// A poll the plan says is due now.
pub(super) struct Due {
    pub watched: Watched,
    pub busy: Arc<AtomicBool>,
}

impl Plan {
    /// Follows a new watch list: entries whose job and schedule are
    /// unchanged keep their next fire time; new or changed ones get one.
    pub fn rebuild(&mut self, watched: Vec<Watched>, config: &Config, now: DateTime<Utc>) {
        let mut entries = HashMap::with_capacity(watched.len());
        let mut order = BTreeSet::new();
        for watched in watched {
            let id: Arc<str> = Arc::from(watched.job.id.as_str());
            let schedule = watched
                .job
                .schedule
                .clone()
                .unwrap_or_else(|| config.poll.schedule.clone());
            let previous = self.entries.remove(&id);
            let entry = match previous {
                Some(entry) if entry.watched == watched && entry.schedule == schedule => entry,
                previous => {
                    let jitter =
                        scheduler::effective_jitter(&id, &schedule, config.poll.jitter, now);
                    let Some(next) = scheduler::next_fire(&schedule, jitter, now) else {
                        tracing::warn!(job = %id, schedule = %schedule.source, "the schedule never fires; the job is not polled");
                        continue;
                    };
                    Entry {
                        watched,
                        schedule,
                        jitter,
                        next,
                        busy: previous.map(|e| e.busy).unwrap_or_default(),
                    }
                }
            };
            order.insert((entry.next, id.clone()));
            entries.insert(id, entry);
        }
        self.entries = entries;
        self.order = order;
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Every job with how often its schedule fires.
    pub fn periods(&self, now: DateTime<Utc>) -> Vec<(&str, Duration)> {
        self.entries
            .iter()
            .map(|(id, entry)| {
                let period = entry.schedule.period(now).unwrap_or(Duration::MAX);
                (&**id, period)
            })
            .collect()
    }

    /// When the next poll is due.
    pub fn next_fire(&self) -> Option<DateTime<Utc>> {
        self.order.first().map(|(at, _)| *at)
    }

    /// The polls due at `now`, each moved to its next fire time.
    pub fn take_due(&mut self, now: DateTime<Utc>) -> Vec<Due> {
        let mut due = Vec::new();
        while let Some((at, id)) = self.order.first().cloned() {
            if at > now {
                break;
            }
            self.order.pop_first();
            let Some(entry) = self.entries.get_mut(&id) else {
                continue;
            };
            entry.next = scheduler::next_fire(&entry.schedule, entry.jitter, now)
                .unwrap_or(now + chrono::Duration::days(365));
            self.order.insert((entry.next, id));
            due.push(Due {
                watched: entry.watched.clone(),
                busy: entry.busy.clone(),
            });
        }
        due
    }
}

/// Fires polls on schedule until cancelled; follows config reloads and discovery.
pub(super) async fn run(daemon: Arc<Daemon>, cancel: CancellationToken, polls: TaskTracker) {
    let mut reloads = daemon.runtime.subscribe();
    let mut plan = Plan::default();
    let mut stale = true;
    let mut skips = Skips::default();
    loop {
        skips.report_if_due();
        let runtime = daemon.current();
        if stale {
            let now = Utc::now();
            plan.rebuild(daemon.watched(&runtime.config), &runtime.config, now);
            let periods = plan.periods(now);
            let ids: HashSet<&str> = periods.iter().map(|(id, _)| *id).collect();
            let metrics = &daemon.shared.metrics;
            metrics.set(Gauge::JobsWatched, &[], plan.len() as f64);
            metrics.retain(Gauge::LastSuccessfulPoll, |job| ids.contains(job));
            daemon.shared.health.watch(&periods, now);
            stale = false;
        }
        let wait = scheduler::sleep_until(plan.next_fire(), Utc::now(), Duration::from_secs(60));
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = reloads.changed() => { stale = true; continue; }
            _ = daemon.jobs_changed.notified() => { stale = true; continue; }
            _ = tokio::time::sleep(wait) => {}
        }
        for due in plan.take_due(Utc::now()) {
            let job = &due.watched.job;
            if due.busy.swap(true, Ordering::SeqCst) {
                daemon.shared.metrics.inc(Counter::PollsSkipped, &[&job.id]);
                skips.note(&job.id);
                continue;
            }
            let (daemon, runtime) = (daemon.clone(), runtime.clone());
            polls.spawn(async move {
                if let Ok(_slot) = runtime.polls.acquire().await {
                    // A poll's future is a few kilobytes: it is only built (boxed)
                    // once a slot is free, so a thousand due jobs waiting cost little.
                    let polled = Box::pin(poll::poll_one(
                        &runtime.ctx,
                        &due.watched.job,
                        due.watched.source,
                    ))
                    .await;
                    if daemon.echo {
                        echo(&due.watched, &polled, runtime.config.messages.timezone);
                    }
                }
                due.busy.store(false, Ordering::SeqCst);
            });
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::JobConfig;
    use crate::store::jobs::JobSource;

    fn config() -> Config {
        crate::config::parse(
            "[poll]\nschedule = \"@every 10s\"\njitter = \"0s\"\n[[accounts]]\nname = \"a\"\naccess_key_id = \"x\"\naccess_key_secret = \"y\"\n[[jobs]]\nid = \"j\"\nregion = \"cn-hangzhou\"\n",
            std::path::Path::new("t.toml"),
            &|_| None,
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn watched(id: &str, name: Option<&str>) -> Watched {
        Watched {
            job: Arc::new(JobConfig {
                id: id.into(),
                region: "cn-hangzhou".into(),
                account: "a".into(),
                name: name.map(str::to_string),
                schedule: None,
                zero_etl: None,
                resource_group_id: None,
            }),
            source: JobSource::Config,
        }
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_796_000_000 + seconds, 0).unwrap()
    }

    fn ids(due: &[Due]) -> Vec<&str> {
        let mut ids: Vec<&str> = due.iter().map(|d| d.watched.job.id.as_str()).collect();
        ids.sort();
        ids
    }

    #[test]
    fn due_jobs_fire_once_per_tick_and_move_on() {
        let mut plan = Plan::default();
        plan.rebuild(
            vec![watched("a", None), watched("b", None)],
            &config(),
            at(1),
        );
        assert_eq!(plan.next_fire(), Some(at(10)));
        assert!(plan.take_due(at(9)).is_empty());
        assert_eq!(ids(&plan.take_due(at(10))), ["a", "b"]);
        assert!(plan.take_due(at(10)).is_empty(), "each tick fires once");
        assert_eq!(plan.next_fire(), Some(at(20)));
        // After a long sleep: one fire, not one per missed tick.
        assert_eq!(ids(&plan.take_due(at(95))), ["a", "b"]);
        assert!(plan.take_due(at(95)).is_empty());
        assert_eq!(plan.next_fire(), Some(at(100)));
    }

    #[test]
    fn a_rebuild_keeps_unchanged_jobs_and_their_busy_flags() {
        let mut plan = Plan::default();
        plan.rebuild(
            vec![watched("a", None), watched("b", None)],
            &config(),
            at(1),
        );
        let due = plan.take_due(at(10));
        due[0].busy.store(true, Ordering::SeqCst);
        let busy_id = due[0].watched.job.id.clone();
        // "b" is renamed (a change), "a" stays as it was, "c" is new.
        plan.rebuild(
            vec![
                watched("a", None),
                watched("b", Some("renamed")),
                watched("c", None),
            ],
            &config(),
            at(12),
        );
        assert_eq!(plan.len(), 3);
        assert_eq!(plan.next_fire(), Some(at(20)));
        let due = plan.take_due(at(20));
        assert_eq!(ids(&due), ["a", "b", "c"]);
        let kept = due.iter().find(|d| d.watched.job.id == busy_id).unwrap();
        assert!(
            kept.busy.load(Ordering::SeqCst),
            "a running poll stays known"
        );
        plan.rebuild(vec![watched("c", None)], &config(), at(21));
        let left: Vec<&str> = plan.periods(at(21)).iter().map(|(id, _)| *id).collect();
        assert_eq!(left, ["c"]);
    }
}
