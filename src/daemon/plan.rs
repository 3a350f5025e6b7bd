//! The plan of what the tick loop fires when: each watched job's next
//! `ListJobStep`, and in adaptive mode each account-region's next sweep.
//! Fire times are kept in one ordered set, so a wake costs what is due,
//! not what is watched. A job's next fire follows its cadence (`cadence`):
//! every tick of its schedule, or a slow refresh when the sweep says it is
//! quiet; a sweep that sees news pulls the job forward to now, at urgent
//! priority. The plan is rebuilt only when the watch list or the config
//! changes; entries that did not change keep their times and what was
//! learnt about them.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::aliyun::Priority;
use crate::cadence::{self, Cadence, Facts, Reading, Summary};
use crate::config::{Config, CronSchedule};
use crate::dts::api::DiscoveredJob;
use crate::poll::Watched;
use crate::scheduler;

/// An account and a region: what one sweep covers and one budget limits.
pub(super) type Group = Arc<(String, String)>;

/// What a fire time belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Job(Arc<str>),
    Sweep(Group),
}

#[cfg(test)]
thread_local! {
    /// Comparisons of fire times made, for the test that the plan's work is O(due).
    pub(super) static COMPARISONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// A fire time and what fires then, ordered by time first.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fire(DateTime<Utc>, Key);

impl Ord for Fire {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        #[cfg(test)]
        COMPARISONS.with(|c| c.set(c.get() + 1));
        self.0.cmp(&other.0).then_with(|| self.1.cmp(&other.1))
    }
}

impl PartialOrd for Fire {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// A job's place in the plan.
struct Entry {
    watched: Watched,
    schedule: CronSchedule,
    jitter: Duration,
    next: DateTime<Utc>,
    /// Set while a poll of the job runs.
    busy: Arc<AtomicBool>,
    /// The sweep that covers the job, in adaptive mode.
    group: Option<Group>,
    /// What the last successful sweep said of it.
    summary: Option<Summary>,
    /// What the latest sweep means (`None`: not covered, or the sweep failed).
    reading: Option<Reading>,
    facts: Facts,
    cadence: Cadence,
    /// Pulled forward by a sweep: its next fire is urgent.
    urgent: bool,
    last_polled: Option<DateTime<Utc>>,
}

/// An account-region's sweep.
struct SweepSlot {
    next: DateTime<Utc>,
    busy: Arc<AtomicBool>,
    jobs: Vec<Arc<str>>,
}

/// Every watched job and sweep with its next fire time (see the module docs).
#[derive(Default)]
pub(super) struct Plan {
    entries: HashMap<Arc<str>, Entry>,
    sweeps: HashMap<Group, SweepSlot>,
    order: BTreeSet<Fire>,
    sweep_schedule: Option<CronSchedule>,
    refresh: Duration,
    refresh_finished: Duration,
}

impl Plan {
    fn waits(&self) -> Waits {
        Waits {
            refresh: self.refresh,
            refresh_finished: self.refresh_finished,
        }
    }
}

/// Something the plan says is due now.
pub(super) enum Due {
    Poll {
        watched: Watched,
        busy: Arc<AtomicBool>,
        priority: Priority,
    },
    Sweep {
        group: Group,
        busy: Arc<AtomicBool>,
    },
}

impl Entry {
    /// When the job is next fetched at its cadence, counting from `from`.
    fn next_at(&self, from: DateTime<Utc>, waits: Waits) -> Option<DateTime<Utc>> {
        let wait = match self.cadence {
            Cadence::Every => Duration::ZERO,
            Cadence::Refresh => waits.refresh,
            Cadence::Finished => waits.refresh_finished,
        };
        scheduler::next_fire(&self.schedule, self.jitter, scheduler::later(from, wait))
    }
}

/// How long quiet jobs wait between fetches.
#[derive(Debug, Clone, Copy)]
struct Waits {
    refresh: Duration,
    refresh_finished: Duration,
}

impl Plan {
    /// Follows a new watch list: entries whose job and schedule are
    /// unchanged keep their next fire time and what is known of them; new
    /// or changed ones get one. Groups whose per-job polling would take
    /// more than the budget allows (`poll.mode`) are swept.
    pub fn rebuild(&mut self, watched: Vec<Watched>, config: &Config, now: DateTime<Utc>) {
        let period = config
            .poll
            .schedule
            .period(now)
            .unwrap_or(Duration::from_secs(30));
        let mut counts: HashMap<(String, String), usize> = HashMap::new();
        for w in watched.iter().filter(|w| w.job.schedule.is_none()) {
            *counts
                .entry((w.job.account.clone(), w.job.region.clone()))
                .or_default() += 1;
        }
        let swept: HashMap<(String, String), Group> = counts
            .into_iter()
            .filter(|((account, _), jobs)| {
                let max_rps = config
                    .accounts
                    .iter()
                    .find(|a| a.name == *account)
                    .map_or(config.poll.max_rps, |a| a.max_rps);
                config.poll.mode.sweeps(*jobs, period, max_rps)
            })
            .map(|(key, _)| {
                let group = Arc::new(key.clone());
                (key, group)
            })
            .collect();
        self.refresh = config.poll.refresh;
        self.refresh_finished = config.poll.refresh_finished;
        self.sweep_schedule = Some(config.poll.schedule.clone());
        let mut entries = HashMap::with_capacity(watched.len());
        let mut order = BTreeSet::new();
        let mut sweeps: HashMap<Group, SweepSlot> = HashMap::new();
        for watched in watched {
            let id: Arc<str> = Arc::from(watched.job.id.as_str());
            let schedule = watched
                .job
                .schedule
                .clone()
                .unwrap_or_else(|| config.poll.schedule.clone());
            let group = watched
                .job
                .schedule
                .is_none()
                .then(|| swept.get(&(watched.job.account.clone(), watched.job.region.clone())))
                .flatten()
                .cloned();
            let previous = self.entries.remove(&id);
            let entry = match previous {
                Some(entry)
                    if entry.watched == watched
                        && entry.schedule == schedule
                        && entry.group == group =>
                {
                    entry
                }
                previous => {
                    let jitter =
                        scheduler::effective_jitter(&id, &schedule, config.poll.jitter, now);
                    // A swept job waits for what the sweep says: its first
                    // fetch is a refresh, spread over the refresh interval,
                    // unless the sweep finds it failing or lagging first.
                    let (cadence, first) = match &group {
                        Some(_) => (
                            Cadence::Refresh,
                            scheduler::later(now, scheduler::jitter_for(&id, config.poll.refresh)),
                        ),
                        None => (Cadence::Every, now),
                    };
                    let Some(next) = scheduler::next_fire(&schedule, jitter, first) else {
                        tracing::warn!(job = %id, schedule = %schedule.source, "the schedule never fires; the job is not polled");
                        continue;
                    };
                    Entry {
                        watched,
                        schedule,
                        jitter,
                        next,
                        busy: previous.map(|e| e.busy).unwrap_or_default(),
                        group,
                        summary: None,
                        reading: None,
                        facts: Facts::default(),
                        cadence,
                        urgent: false,
                        last_polled: None,
                    }
                }
            };
            if let Some(group) = &entry.group {
                let slot = sweeps.entry(group.clone()).or_insert_with(|| {
                    let kept = self.sweeps.remove(group);
                    SweepSlot {
                        next: kept.as_ref().map_or_else(
                            || {
                                scheduler::next_fire(&config.poll.schedule, Duration::ZERO, now)
                                    .unwrap_or(now)
                            },
                            |s| s.next,
                        ),
                        busy: kept.map(|s| s.busy).unwrap_or_default(),
                        jobs: Vec::new(),
                    }
                });
                slot.jobs.push(id.clone());
            }
            order.insert(Fire(entry.next, Key::Job(id.clone())));
            entries.insert(id, entry);
        }
        for (group, slot) in &sweeps {
            order.insert(Fire(slot.next, Key::Sweep(group.clone())));
        }
        self.entries = entries;
        self.sweeps = sweeps;
        self.order = order;
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Every job with the longest it may wait between polls: its period, or
    /// for a swept job the finished-job refresh.
    pub fn periods(&self, now: DateTime<Utc>) -> Vec<(&str, Duration)> {
        self.entries
            .iter()
            .map(|(id, entry)| {
                let period = entry.schedule.period(now).unwrap_or(Duration::MAX);
                let period = match entry.group {
                    Some(_) => period.max(self.refresh_finished),
                    None => period,
                };
                (&**id, period)
            })
            .collect()
    }

    /// How many account-regions are swept.
    pub fn sweeps(&self) -> usize {
        self.sweeps.len()
    }

    /// When the next poll or sweep is due.
    pub fn next_fire(&self) -> Option<DateTime<Utc>> {
        self.order.first().map(|f| f.0)
    }

    /// What is due at `now`, each moved to its next fire time.
    pub fn take_due(&mut self, now: DateTime<Utc>) -> Vec<Due> {
        let mut due = Vec::new();
        while let Some(first) = self.order.first() {
            if first.0 > now {
                break;
            }
            let Some(Fire(_, key)) = self.order.pop_first() else {
                break;
            };
            match key {
                Key::Job(id) => {
                    let waits = self.waits();
                    let Some(entry) = self.entries.get_mut(&id) else {
                        continue;
                    };
                    entry.next = entry
                        .next_at(now, waits)
                        .unwrap_or(now + chrono::Duration::days(365));
                    let priority = match (entry.urgent, entry.cadence) {
                        (true, _) => Priority::Urgent,
                        (false, Cadence::Every) => Priority::Poll,
                        (false, _) => Priority::Refresh,
                    };
                    entry.urgent = false;
                    self.order.insert(Fire(entry.next, Key::Job(id)));
                    due.push(Due::Poll {
                        watched: entry.watched.clone(),
                        busy: entry.busy.clone(),
                        priority,
                    });
                }
                Key::Sweep(group) => {
                    let Some(slot) = self.sweeps.get_mut(&group) else {
                        continue;
                    };
                    slot.next = self
                        .sweep_schedule
                        .as_ref()
                        .and_then(|s| scheduler::next_fire(s, Duration::ZERO, now))
                        .unwrap_or(now + chrono::Duration::days(365));
                    self.order
                        .insert(Fire(slot.next, Key::Sweep(group.clone())));
                    due.push(Due::Sweep {
                        busy: slot.busy.clone(),
                        group,
                    });
                }
            }
        }
        due
    }

    /// Moves a job to fire at `at`.
    fn move_job(&mut self, id: &Arc<str>, at: DateTime<Utc>) {
        let Some(entry) = self.entries.get_mut(id) else {
            return;
        };
        if entry.next == at {
            return;
        }
        self.order.remove(&Fire(entry.next, Key::Job(id.clone())));
        entry.next = at;
        self.order.insert(Fire(at, Key::Job(id.clone())));
    }

    /// Sets a job's cadence: sooner when it needs every tick, later (from
    /// its last poll) when it went quiet.
    fn set_cadence(&mut self, id: &Arc<str>, cadence: Cadence, now: DateTime<Utc>) {
        let waits = self.waits();
        let Some(entry) = self.entries.get_mut(id) else {
            return;
        };
        if entry.cadence == cadence {
            return;
        }
        entry.cadence = cadence;
        let from = entry.last_polled.unwrap_or(now);
        let Some(wanted) = entry.next_at(from, waits) else {
            return;
        };
        let next = match cadence {
            Cadence::Every => wanted.min(entry.next),
            Cadence::Refresh | Cadence::Finished => wanted.max(entry.next),
        };
        self.move_job(id, next);
    }

    /// What a sweep of `group` found (`None`: it failed). Returns how many
    /// jobs it pulled forward to now (when any, the loop must wake).
    pub fn apply_sweep(
        &mut self,
        group: &Group,
        found: Option<&[DiscoveredJob]>,
        lag_watch_ms: Option<i64>,
        now: DateTime<Utc>,
    ) -> usize {
        let Some(slot) = self.sweeps.get(group) else {
            return 0;
        };
        let ids = slot.jobs.clone();
        let listed: Option<HashMap<&str, Summary>> = found.map(|jobs| {
            jobs.iter()
                .map(|j| {
                    (
                        j.id.as_str(),
                        Summary {
                            status: j.status.clone(),
                            delay_ms: j.delay_ms,
                            error: j.error_message.clone(),
                            codes: j.error_codes.clone(),
                        },
                    )
                })
                .collect()
        });
        let mut pulled = 0;
        for id in ids {
            let Some(entry) = self.entries.get_mut(&id) else {
                continue;
            };
            let summary = listed.as_ref().and_then(|l| l.get(&*id).cloned());
            let mut urgent = false;
            entry.reading = match (&listed, summary) {
                (Some(_), Some(summary)) => {
                    let reading = cadence::read(entry.summary.as_ref(), &summary, lag_watch_ms);
                    urgent = reading.changed && entry.summary.is_some();
                    entry.summary = Some(summary);
                    Some(reading)
                }
                // Not listed, or the sweep failed: the job is polled on schedule.
                _ => None,
            };
            let cadence = cadence::cadence(entry.reading, entry.facts);
            if urgent {
                entry.urgent = true;
                pulled += 1;
                self.move_job(&id, now);
            }
            self.set_cadence(&id, cadence, now);
        }
        pulled
    }

    /// What a finished poll of `id` showed: its cadence from now on, and
    /// whether the plan's next fire moved earlier (the loop must wake).
    pub fn apply_poll(
        &mut self,
        id: &str,
        facts: Facts,
        now: DateTime<Utc>,
    ) -> Option<(Cadence, bool)> {
        let before = self.next_fire();
        let id: Arc<str> = Arc::from(id);
        let entry = self.entries.get_mut(&id)?;
        entry.facts = facts;
        entry.last_polled = Some(now);
        let cadence = match entry.group {
            Some(_) => cadence::cadence(entry.reading, facts),
            None => Cadence::Every,
        };
        self.set_cadence(&id, cadence, now);
        let sooner = match (before, self.next_fire()) {
            (Some(before), Some(after)) => after < before,
            (None, Some(_)) => true,
            _ => false,
        };
        Some((cadence, sooner))
    }
}

#[cfg(test)]
mod tests;
