//! One poll of one job, end to end: fetch its steps, then record what was
//! seen in one SQLite transaction (the poll row, the snapshot, and what the
//! rules make of it), diffing against the previous successful poll. The
//! previous snapshot is kept in memory and reloaded from the database after
//! a restart, so the first poll after a restart diffs like any other.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::aliyun::{AliyunClient, ApiFailure};
use crate::config::{JobConfig, RuleConfig};
use crate::diff::{self, Change};
use crate::dts::JobSnapshot;
use crate::dts::api::{self, Fetched, ListJobStepRequest};
use crate::rules::silence::Silence;
use crate::rules::{self, AlertKey, AlertState, Event, EventStatus, JobInfo, Notice, Outcome};
use crate::store::batch::{GroupCommit, Work};
use crate::store::polls::{NewPoll, PendingPolls};
use crate::store::snapshots;
use crate::store::{Store, StoreError, Tx, alerts, jobs, outbox, polls, silences};

/// The `ListJobStep` request for a configured job.
pub fn request(job: &JobConfig) -> ListJobStepRequest<'_> {
    ListJobStepRequest {
        job_id: &job.id,
        region: &job.region,
        zero_etl: job.zero_etl,
        resource_group_id: job.resource_group_id.as_deref(),
    }
}

pub async fn fetch(client: &AliyunClient, job: &JobConfig) -> Result<Fetched, ApiFailure> {
    api::list_job_step(client, &request(job)).await
}

/// The last successful poll of a job, as the next diff's baseline.
#[derive(Debug)]
struct Baseline {
    snapshot: Arc<JobSnapshot>,
    at: DateTime<Utc>,
    snapshot_id: i64,
    volatile: Vec<u8>,
}

#[derive(Debug)]
struct JobMemory {
    row: i64,
    config: JobConfig,
    baseline: Option<Arc<Baseline>>,
}

/// What one recorded poll amounted to.
#[derive(Debug, Clone)]
pub struct PollReport {
    pub poll_id: i64,
    pub job_row: i64,
    pub at: DateTime<Utc>,
    /// Empty for a failed poll (a failed poll is unknown, not "nothing changed").
    pub changes: Vec<Change>,
    pub snapshot: Option<Arc<JobSnapshot>>,
    /// The previous successful snapshot and when it was taken.
    pub previous: Option<(Arc<JobSnapshot>, DateTime<Utc>)>,
    /// True when this poll's snapshot is the first ever stored for the job.
    pub first: bool,
    /// The notification decisions the follow-up made.
    pub notices: Vec<Notice>,
}

/// How long a batch of polls stays open for others to join, and how many it
/// takes (see `store::batch`). The window holds SQLite's write lock, so it is
/// short: 2 ms lets a busy cycle commit a few dozen polls at once (halving
/// CPU per poll against one transaction each) while the deliverer, which
/// waits for that lock to mark messages sent, hardly notices.
const GROUP_COMMIT_WINDOW: Duration = Duration::from_millis(2);
const GROUP_COMMIT_MAX: usize = 64;

/// Writes polls, keeping each job's baseline in memory.
pub struct Recorder {
    group: GroupCommit<PendingPolls>,
    memory: tokio::sync::Mutex<HashMap<String, JobMemory>>,
}

/// What the rest of the pipeline writes in the poll's transaction (alert state, outbox rows).
pub trait Followup {
    /// Writes in `tx`, returning the notification decisions made.
    fn write<'a>(
        &'a self,
        tx: &'a mut Tx,
        job: &'a JobConfig,
        report: &'a PollReport,
        result: Result<&'a Fetched, &'a ApiFailure>,
    ) -> impl std::future::Future<Output = Result<Vec<Notice>, StoreError>> + Send + 'a;

    /// Told whether the transaction `write` wrote in was committed (state cached
    /// by `write` is kept only then).
    fn settle(&self, _job_row: i64, _committed: bool) {}
}

/// No follow-up: record polls and snapshots only.
pub struct RecordOnly;

impl Followup for RecordOnly {
    async fn write(
        &self,
        _: &mut Tx,
        _: &JobConfig,
        _: &PollReport,
        _: Result<&Fetched, &ApiFailure>,
    ) -> Result<Vec<Notice>, StoreError> {
        Ok(Vec::new())
    }
}

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
    /// Silences from the config; run-time ones are read from the database.
    pub silences: Vec<Silence>,
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
            silences: config
                .silences
                .iter()
                .enumerate()
                .map(|(i, s)| Silence::from_config(i, s))
                .collect(),
            states: Default::default(),
            pending: Default::default(),
            stored_silences: Default::default(),
        }
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

    /// Evaluates `outcome` for a job and persists the result in `tx`; call
    /// [`Followup::settle`] once `tx` is committed or abandoned.
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
        let info = JobInfo::from_config(job);
        let evaluation = rules::evaluate_job(&self.rules, &info, &existing, outcome, &active, now);
        let rule = |name: &str| self.rules.iter().find(|r| r.name == name);
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

/// A one-line description of a notice, for logs and the console.
pub fn describe(notice: &Notice) -> String {
    let status = match notice.event.status {
        EventStatus::Firing => "FIRING",
        EventStatus::Resolved => "RESOLVED",
    };
    format!(
        "{status} {} [{}] {}",
        notice.event.rule, notice.event.severity, notice.event.summary
    )
}

impl Recorder {
    pub fn new(store: Store) -> Self {
        Self {
            group: GroupCommit::new(store, GROUP_COMMIT_WINDOW, GROUP_COMMIT_MAX),
            memory: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    pub fn store(&self) -> &Store {
        self.group.store()
    }

    /// Records one poll (its result, `duration` long, finished at `at`) and what `followup` makes of it, atomically.
    pub async fn record<F: Followup + Sync>(
        &self,
        job: &JobConfig,
        source: &str,
        at: DateTime<Utc>,
        duration: Duration,
        result: &Result<Fetched, ApiFailure>,
        followup: &F,
    ) -> Result<PollReport, StoreError> {
        let remembered = {
            let memory = self.memory.lock().await;
            memory
                .get(&job.id)
                .filter(|m| m.config == *job)
                .map(|m| (m.row, m.baseline.clone()))
        };
        let poll = Poll {
            job,
            source,
            at,
            duration,
            result,
        };
        // The job's row, once known, for `settle` (rows start at 1).
        let job_row = AtomicI64::new(0);
        let written = self
            .group
            .write(PollWork {
                poll: &poll,
                remembered: &remembered,
                followup,
                job_row: &job_row,
            })
            .await;
        let row = job_row.load(Ordering::Relaxed);
        if row != 0 {
            followup.settle(row, written.is_ok());
        }
        let (report, baseline) = written?;
        self.memory.lock().await.insert(
            job.id.clone(),
            JobMemory {
                row: report.job_row,
                config: job.clone(),
                baseline,
            },
        );
        Ok(report)
    }

    /// Forgets what is cached about a job (after it is retired, or to force a reload).
    pub async fn forget(&self, job_id: &str) {
        self.memory.lock().await.remove(job_id);
    }
}

/// One finished poll, as `Recorder::record` was given it.
struct Poll<'a> {
    job: &'a JobConfig,
    source: &'a str,
    at: DateTime<Utc>,
    duration: Duration,
    result: &'a Result<Fetched, ApiFailure>,
}

/// Everything one poll writes, as one re-runnable unit of a group commit.
struct PollWork<'a, F> {
    poll: &'a Poll<'a>,
    remembered: &'a Option<(i64, Option<Arc<Baseline>>)>,
    followup: &'a F,
    job_row: &'a AtomicI64,
}

impl<F: Followup + Sync> Work<PendingPolls> for PollWork<'_, F> {
    type Output = (PollReport, Option<Arc<Baseline>>);

    async fn run(
        &mut self,
        tx: &mut Tx,
        pending: &mut PendingPolls,
    ) -> Result<Self::Output, StoreError> {
        let poll = self.poll;
        let (row, previous) = match self.remembered {
            Some(known) => known.clone(),
            None => {
                let row = jobs::ensure(tx, poll.job, poll.source, poll.at).await?;
                (row, load_baseline(tx, row).await?.map(Arc::new))
            }
        };
        self.job_row.store(row, Ordering::Relaxed);
        let (mut report, baseline) = write_poll(tx, pending, poll, row, previous.as_ref()).await?;
        report.notices = self
            .followup
            .write(tx, poll.job, &report, poll.result.as_ref())
            .await?;
        // Only a committed poll moves the baseline.
        Ok((report, baseline.or(previous)))
    }
}

/// Writes the poll row (and the snapshot, when its structure is new) and
/// diffs against `previous`; returns the report and, for a successful poll,
/// the baseline it becomes once committed.
async fn write_poll(
    tx: &mut Tx,
    pending: &mut PendingPolls,
    poll: &Poll<'_>,
    row: i64,
    previous: Option<&Arc<Baseline>>,
) -> Result<(PollReport, Option<Arc<Baseline>>), StoreError> {
    let duration_ms = poll.duration.as_millis().min(i64::MAX as u128) as i64;
    let since = previous.map(|b| (b.snapshot.clone(), b.at));
    match poll.result {
        Ok(fetched) => {
            let volatile = snapshots::encode_volatile_of(&fetched.snapshot);
            let snapshot_id = match previous {
                Some(b) if snapshots::same_structure(&b.snapshot, &fetched.snapshot) => {
                    b.snapshot_id
                }
                _ => snapshots::save_structure(tx, &snapshots::split(&fetched.snapshot).0).await?,
            };
            let unchanged_volatile =
                previous.is_some_and(|b| b.snapshot_id == snapshot_id && b.volatile == volatile);
            let poll_id = pending.push(NewPoll {
                job: row,
                at: poll.at,
                duration_ms,
                outcome: "ok",
                error_code: None,
                error_text: None,
                request_id: fetched.request_id.clone(),
                attempts: fetched.attempts,
                snapshot: Some(snapshot_id),
                volatile: (!unchanged_volatile).then(|| volatile.clone()),
            });
            let report = PollReport {
                poll_id,
                job_row: row,
                at: poll.at,
                changes: diff::diff(previous.map(|b| b.snapshot.as_ref()), &fetched.snapshot),
                snapshot: Some(fetched.snapshot.clone()),
                previous: since,
                first: previous.is_none(),
                notices: Vec::new(),
            };
            let baseline = Baseline {
                snapshot: fetched.snapshot.clone(),
                at: poll.at,
                snapshot_id,
                volatile,
            };
            Ok((report, Some(Arc::new(baseline))))
        }
        Err(failure) => {
            let poll_id = pending.push(NewPoll {
                job: row,
                at: poll.at,
                duration_ms,
                outcome: failure.error.class().as_str(),
                error_code: Some(failure.error.code().to_string()),
                error_text: Some(failure.error.to_string()),
                request_id: failure.error.request_id().map(str::to_string),
                attempts: failure.attempts,
                snapshot: None,
                volatile: None,
            });
            let report = PollReport {
                poll_id,
                job_row: row,
                at: poll.at,
                changes: Vec::new(),
                snapshot: None,
                previous: since,
                first: false,
                notices: Vec::new(),
            };
            Ok((report, None))
        }
    }
}

/// The job's latest successful poll as a baseline, from the database.
async fn load_baseline(tx: &mut Tx, job_row: i64) -> Result<Option<Baseline>, StoreError> {
    let Some(last) = polls::last_ok(tx, job_row).await? else {
        return Ok(None);
    };
    let Some(snapshot_id) = last.snapshot else {
        return Ok(None);
    };
    let structure = snapshots::load_structure(tx, snapshot_id).await?;
    let volatile = polls::volatile_at(tx, job_row, last.id)
        .await?
        .unwrap_or_default();
    let snapshot = snapshots::join(&structure, &snapshots::decode_volatile(&volatile)?)?;
    Ok(Some(Baseline {
        snapshot: Arc::new(snapshot),
        at: crate::store::from_millis(last.at),
        snapshot_id,
        volatile,
    }))
}

/// The snapshot a stored successful poll saw.
pub async fn stored_snapshot(
    conn: &mut sqlx::SqliteConnection,
    poll: &polls::PollRow,
) -> Result<Option<JobSnapshot>, StoreError> {
    let Some(snapshot_id) = poll.snapshot else {
        return Ok(None);
    };
    let structure = snapshots::load_structure(conn, snapshot_id).await?;
    let volatile = polls::volatile_at(conn, poll.job, poll.id)
        .await?
        .unwrap_or_default();
    Ok(Some(snapshots::join(
        &structure,
        &snapshots::decode_volatile(&volatile)?,
    )?))
}
