//! Recording a fetched poll: the poll row, the snapshot (stored by content)
//! and what the alerting step makes of it, in one transaction shared with
//! the polls that finish alongside (group commit), diffing against the
//! previous successful poll. That baseline is kept in memory and reloaded
//! from the database after a restart, so the first poll after a restart
//! diffs like any other.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::aliyun::ApiFailure;
use crate::config::JobConfig;
use crate::diff::{self, Change};
use crate::dts::api::Fetched;
use crate::dts::{JobSnapshot, identity};
use crate::rules::Notice;
use crate::store::batch::{GroupCommit, Work};
use crate::store::jobs::JobSource;
use crate::store::polls::{NewPoll, PendingPolls};
use crate::store::snapshots;
use crate::store::{Store, StoreError, Tx, jobs, polls};

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
const GROUP_COMMIT_WINDOW: Duration = Duration::from_millis(25);
const GROUP_COMMIT_MAX: usize = 256;

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

    /// Forgets every baseline: another instance may have polled since they
    /// were taken (a new leadership term reads them from the database again).
    pub async fn forget_all(&self) {
        self.memory.lock().await.clear();
    }

    /// Records one poll (its result, `duration` long, finished at `at`) and what `followup` makes of it, atomically.
    pub async fn record<F: Followup + Sync>(
        &self,
        job: &JobConfig,
        source: JobSource,
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

    /// Forgets what is cached about a job: after it is retired, or while it
    /// is quiet (its next poll reads the baseline back from the store).
    pub async fn forget(&self, job_id: &str) {
        self.memory.lock().await.remove(job_id);
    }
}

/// One finished poll, as `Recorder::record` was given it.
struct Poll<'a> {
    job: &'a JobConfig,
    source: JobSource,
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
            let snapshot = match previous {
                Some(b) => identity::carry_keys(&fetched.snapshot, &b.snapshot),
                None => fetched.snapshot.clone(),
            };
            let volatile = snapshots::encode_volatile_of(&snapshot);
            let snapshot_id = match previous {
                Some(b) if snapshots::same_structure(&b.snapshot, &snapshot) => b.snapshot_id,
                _ => snapshots::save_structure(tx, &snapshots::split(&snapshot).0).await?,
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
                changes: diff::diff(previous.map(|b| b.snapshot.as_ref()), &snapshot),
                snapshot: Some(snapshot.clone()),
                previous: since,
                first: previous.is_none(),
                notices: Vec::new(),
            };
            let baseline = Baseline {
                snapshot,
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
    let (snapshot, volatile) = snapshots::load_snapshot(tx, job_row, last.id, snapshot_id).await?;
    Ok(Some(Baseline {
        snapshot: Arc::new(snapshot),
        at: crate::store::from_millis(last.at),
        snapshot_id,
        volatile,
    }))
}
