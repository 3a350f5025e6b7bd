//! One poll of one job, end to end: fetch its steps, then record what was
//! seen in one SQLite transaction (the poll row, the snapshot, and what the
//! rules make of it), diffing against the previous successful poll. The
//! previous snapshot is kept in memory and reloaded from the database after
//! a restart, so the first poll after a restart diffs like any other.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::aliyun::{AliyunClient, ApiFailure};
use crate::config::{JobConfig, RuleConfig};
use crate::diff::{self, Change};
use crate::dts::JobSnapshot;
use crate::dts::api::{self, Fetched, ListJobStepRequest};
use crate::rules::silence::Silence;
use crate::rules::{self, Event, EventStatus, JobInfo, Notice, Outcome};
use crate::store::snapshots::{self, StoredStep};
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
#[derive(Debug, Clone)]
struct Baseline {
    snapshot: Arc<JobSnapshot>,
    at: DateTime<Utc>,
    structure: Vec<StoredStep>,
    snapshot_id: i64,
    volatile: Vec<u8>,
}

#[derive(Debug, Clone)]
struct JobMemory {
    row: i64,
    config: JobConfig,
    baseline: Option<Baseline>,
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

/// Writes polls, keeping each job's baseline in memory.
pub struct Recorder {
    store: Store,
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

/// The rules: evaluates every rule for the job, stores alert state and
/// notification decisions, and queues one outbox row per channel.
pub struct Alerting {
    pub rules: Vec<RuleConfig>,
    /// Silences from the config; run-time ones are read from the database at every poll.
    pub silences: Vec<Silence>,
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
        }
    }

    /// Evaluates `outcome` for a job and persists the result in `tx`.
    pub async fn apply(
        &self,
        tx: &mut Tx,
        job: &JobConfig,
        job_row: i64,
        poll_id: Option<i64>,
        outcome: &Outcome<'_>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Notice>, StoreError> {
        let existing = alerts::load_for_job(tx, job_row).await?;
        let mut active = self.silences.clone();
        for row in silences::current(tx, now).await? {
            active.push(row.to_silence()?);
        }
        let info = JobInfo::from_config(job);
        let evaluation = rules::evaluate_job(&self.rules, &info, &existing, outcome, &active, now);
        let rule = |name: &str| self.rules.iter().find(|r| r.name == name);
        for (key, state) in &evaluation.updates {
            if let Some(rule) = rule(&key.rule) {
                alerts::save(tx, job_row, key, rule.severity, state, now).await?;
            }
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
            store,
            memory: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Records one poll (its result, `duration` long, finished at `at`) and what `followup` makes of it, atomically.
    pub async fn record<F: Followup>(
        &self,
        job: &JobConfig,
        source: &str,
        at: DateTime<Utc>,
        duration: Duration,
        result: &Result<Fetched, ApiFailure>,
        followup: &F,
    ) -> Result<PollReport, StoreError> {
        let remembered = self.memory.lock().await.get(&job.id).cloned();
        let mut tx = self.store.begin().await?;
        let memory = match remembered {
            Some(m) if m.config == *job => m,
            _ => {
                let row = jobs::ensure(&mut tx, job, source, at).await?;
                let baseline = load_baseline(&mut tx, row).await?;
                JobMemory {
                    row,
                    config: job.clone(),
                    baseline,
                }
            }
        };
        let duration_ms = duration.as_millis().min(i64::MAX as u128) as i64;
        let (report, new_baseline) = match result {
            Ok(fetched) => {
                let (structure, volatile) = snapshots::split(&fetched.snapshot);
                let volatile = snapshots::encode_volatile(&volatile);
                let previous = memory.baseline.as_ref();
                let snapshot_id = match previous {
                    Some(b) if b.structure == structure => b.snapshot_id,
                    _ => snapshots::save_structure(&mut tx, &structure).await?,
                };
                let unchanged_volatile = previous
                    .is_some_and(|b| b.snapshot_id == snapshot_id && b.volatile == volatile);
                let poll_id = polls::insert(
                    &mut tx,
                    &polls::NewPoll {
                        job: memory.row,
                        at,
                        duration_ms,
                        outcome: "ok",
                        error_code: None,
                        error_text: None,
                        request_id: fetched.request_id.as_deref(),
                        attempts: fetched.attempts,
                        snapshot: Some(snapshot_id),
                        volatile: (!unchanged_volatile).then_some(volatile.as_slice()),
                    },
                )
                .await?;
                let snapshot = Arc::new(fetched.snapshot.clone());
                let report = PollReport {
                    poll_id,
                    job_row: memory.row,
                    at,
                    changes: diff::diff(previous.map(|b| b.snapshot.as_ref()), &fetched.snapshot),
                    snapshot: Some(snapshot.clone()),
                    previous: previous.map(|b| (b.snapshot.clone(), b.at)),
                    first: previous.is_none(),
                    notices: Vec::new(),
                };
                let baseline = Baseline {
                    snapshot,
                    at,
                    structure,
                    snapshot_id,
                    volatile,
                };
                (report, Some(baseline))
            }
            Err(failure) => {
                let text = failure.error.to_string();
                let poll_id = polls::insert(
                    &mut tx,
                    &polls::NewPoll {
                        job: memory.row,
                        at,
                        duration_ms,
                        outcome: failure.error.class().as_str(),
                        error_code: Some(failure.error.code()),
                        error_text: Some(&text),
                        request_id: failure.error.request_id(),
                        attempts: failure.attempts,
                        snapshot: None,
                        volatile: None,
                    },
                )
                .await?;
                let report = PollReport {
                    poll_id,
                    job_row: memory.row,
                    at,
                    changes: Vec::new(),
                    snapshot: None,
                    previous: memory.baseline.as_ref().map(|b| (b.snapshot.clone(), b.at)),
                    first: false,
                    notices: Vec::new(),
                };
                (report, None)
            }
        };
        let mut report = report;
        report.notices = followup
            .write(&mut tx, job, &report, result.as_ref())
            .await?;
        tx.commit().await?;
        // Only a committed poll moves the baseline.
        let mut updated = memory;
        if let Some(baseline) = new_baseline {
            updated.baseline = Some(baseline);
        }
        self.memory.lock().await.insert(job.id.clone(), updated);
        Ok(report)
    }

    /// Forgets what is cached about a job (after it is retired, or to force a reload).
    pub async fn forget(&self, job_id: &str) {
        self.memory.lock().await.remove(job_id);
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
        structure,
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
