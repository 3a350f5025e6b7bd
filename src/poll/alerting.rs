//! The alerting step: the one writer of alert state, alert events and
//! outbox rows. Every observation of a job (a poll, a failed poll, the job's
//! retirement, the watchdog's checks) comes here inside the transaction of
//! its cause, is judged by the rules, and leaves the new alert states, one
//! event row per notification decision and one outbox row per channel with
//! something to say. A replayed observation is harmless: outbox rows carry a
//! unique dedup key.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::recorder::{Followup, PollReport};
use crate::aliyun::ApiFailure;
use crate::config::{JobConfig, RuleConfig};
use crate::dts::api::Fetched;
use crate::rules::silence::Silence;
use crate::rules::{self, AlertKey, AlertState, Event, JobInfo, Notice, Outcome};
use crate::store::{StoreError, Tx, alerts, outbox, silences};

/// Alert states of one job, by alert.
type JobAlerts = BTreeMap<AlertKey, AlertState>;

/// How long run-time silences are cached: `dtswatch silence add` takes effect within this.
const SILENCE_REFRESH: Duration = Duration::from_secs(2);

/// The rules: evaluates every rule for the job, stores alert state and
/// notification decisions, and queues one outbox row per channel. Alert
/// states are cached per job after a commit, so a poll reads none of them
/// from SQLite; this assumes one poller per database.
pub struct Alerting {
    pub rules: Vec<RuleConfig>,
    /// The watchdog's rules, evaluated only for its observations.
    watchdog_rules: Vec<RuleConfig>,
    /// Silences from the config; run-time ones are read from the database.
    pub silences: Vec<Silence>,
    /// Console link templates by account, and `[messages]`'s for the rest.
    console_urls: HashMap<String, String>,
    default_console_url: String,
    states: std::sync::Mutex<HashMap<i64, Arc<JobAlerts>>>,
    /// States written by a transaction that has not settled yet.
    pending: std::sync::Mutex<HashMap<i64, Arc<JobAlerts>>>,
    stored_silences: std::sync::Mutex<Option<(std::time::Instant, Vec<Silence>)>>,
}

fn locked<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Alerting {
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            rules: config.rules.clone(),
            watchdog_rules: config
                .watchdog
                .as_ref()
                .map(rules::watchdog::rules)
                .unwrap_or_default(),
            silences: config
                .silences
                .iter()
                .enumerate()
                .map(|(i, s)| Silence::from_config(i, s))
                .collect(),
            console_urls: config
                .accounts
                .iter()
                .filter_map(|a| Some((a.name.clone(), a.console_url.clone()?)))
                .collect(),
            default_console_url: config.messages.console_url.clone(),
            states: Default::default(),
            pending: Default::default(),
            stored_silences: Default::default(),
        }
    }

    /// The job as its messages name it, with its console link (none for
    /// the watchdog's pseudo-job, which is dtswatch itself).
    fn job_info(&self, job: &JobConfig, outcome: &Outcome<'_>) -> JobInfo {
        let info = JobInfo::from_config(job);
        if matches!(outcome, Outcome::Watchdog(_)) {
            return info;
        }
        let template = self
            .console_urls
            .get(&job.account)
            .unwrap_or(&self.default_console_url);
        info.with_console(template)
    }

    /// Config silences plus run-time ones (re-read at most every `SILENCE_REFRESH`).
    async fn active_silences(
        &self,
        tx: &mut Tx,
        now: DateTime<Utc>,
    ) -> Result<Vec<Silence>, StoreError> {
        let cached = locked(&self.stored_silences)
            .as_ref()
            .filter(|(at, _)| at.elapsed() < SILENCE_REFRESH)
            .map(|(_, list)| list.clone());
        let stored = match cached {
            Some(list) => list,
            None => {
                let mut list = Vec::new();
                for row in silences::current(tx, now).await? {
                    list.push(row.to_silence()?);
                }
                *locked(&self.stored_silences) = Some((std::time::Instant::now(), list.clone()));
                list
            }
        };
        let mut all = self.silences.clone();
        all.extend(stored);
        Ok(all)
    }

    /// The rules that judge `outcome`: the watchdog's own for its checks.
    fn rules_for(&self, outcome: &Outcome<'_>) -> &[RuleConfig] {
        match outcome {
            Outcome::Watchdog(_) => &self.watchdog_rules,
            _ => &self.rules,
        }
    }

    /// Evaluates `outcome` for a job and persists the result in `tx`: the
    /// only writer of alert state, alert events and outbox rows. Call
    /// [`Alerting::settle_states`] once `tx` is committed or abandoned.
    pub async fn apply(
        &self,
        tx: &mut Tx,
        job: &JobConfig,
        job_row: i64,
        poll_id: Option<i64>,
        outcome: &Outcome<'_>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Notice>, StoreError> {
        let cached = locked(&self.states).get(&job_row).cloned();
        let existing = match cached {
            Some(states) => states,
            None => Arc::new(alerts::load_for_job(tx, job_row).await?),
        };
        let active = self.active_silences(tx, now).await?;
        let info = self.job_info(job, outcome);
        let rules = self.rules_for(outcome);
        let evaluation = rules::evaluate_job(rules, &info, &existing, outcome, &active, now);
        let rule = |name: &str| rules.iter().find(|r| r.name == name);
        if !evaluation.updates.is_empty() {
            let mut states = (*existing).clone();
            for (key, state) in &evaluation.updates {
                if let Some(rule) = rule(&key.rule) {
                    alerts::save(tx, job_row, key, rule.severity, state, now).await?;
                }
                states.insert(key.clone(), state.clone());
            }
            locked(&self.pending).insert(job_row, Arc::new(states));
        } else {
            locked(&self.pending).insert(job_row, existing);
        }
        let mut by_channel: BTreeMap<&str, Vec<&Event>> = BTreeMap::new();
        for notice in &evaluation.notices {
            let Some(rule) = rule(&notice.key.rule) else {
                continue;
            };
            let alert = alerts::ensure(tx, job_row, &notice.key, rule.severity, now).await?;
            let suppressed = notice.suppressed.as_ref().map(|s| s.describe());
            alerts::insert_event(tx, alert, poll_id, &notice.event, suppressed.as_deref()).await?;
            if notice.suppressed.is_none() {
                for channel in &rule.channels {
                    by_channel
                        .entry(channel.as_str())
                        .or_default()
                        .push(&notice.event);
                }
            }
        }
        let origin = match poll_id {
            Some(id) => format!("poll:{id}"),
            None => format!("job:{job_row}:{}", now.timestamp_millis()),
        };
        for (channel, events) in by_channel {
            let notification = rules::Notification {
                job: info.clone(),
                events: events.into_iter().cloned().collect(),
            };
            let payload = serde_json::to_string(&notification)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            outbox::enqueue(
                tx,
                channel,
                &format!("{origin}:{channel}"),
                Some(job_row),
                &payload,
                now,
            )
            .await?;
        }
        Ok(evaluation.notices)
    }

    /// True when an alert of the job is pending or firing (as last committed).
    pub fn has_open_alerts(&self, job_row: i64) -> bool {
        locked(&self.states).get(&job_row).is_some_and(|states| {
            states
                .values()
                .any(|s| s.status != crate::rules::Status::Inactive)
        })
    }

    /// Keeps the states `apply` computed if the transaction committed; otherwise
    /// forgets the job's cached states so the next poll reads them again.
    pub fn settle_states(&self, job_row: i64, committed: bool) {
        let pending = locked(&self.pending).remove(&job_row);
        let mut states = locked(&self.states);
        match (committed, pending) {
            (true, Some(new)) => {
                states.insert(job_row, new);
            }
            _ => {
                states.remove(&job_row);
            }
        }
    }
}

impl Followup for Alerting {
    fn settle(&self, job_row: i64, committed: bool) {
        self.settle_states(job_row, committed);
    }

    async fn write(
        &self,
        tx: &mut Tx,
        job: &JobConfig,
        report: &PollReport,
        result: Result<&Fetched, &ApiFailure>,
    ) -> Result<Vec<Notice>, StoreError> {
        let outcome = match (result, &report.snapshot) {
            (Ok(_), Some(snapshot)) => Outcome::Polled {
                snapshot,
                previous: report.previous.as_ref().map(|(s, at)| (s.as_ref(), *at)),
                changes: &report.changes,
            },
            (Err(failure), _) => Outcome::Failed(&failure.error),
            (Ok(_), None) => return Ok(Vec::new()),
        };
        self.apply(
            tx,
            job,
            report.job_row,
            Some(report.poll_id),
            &outcome,
            report.at,
        )
        .await
    }
}
