//! One way to poll. `poll_one` is the only way any command polls a job
//! (`run`, `once`, `demo`, the benchmark): it fetches the job's steps
//! through its account's client, counts the result in the metrics, reports
//! it to the health check, records it with the alerting step in one
//! transaction (`recorder.rs`, `alerting.rs`), wakes the delivery workers
//! when something is to be sent, and logs what happened. A job whose account
//! has no client is a failed poll like any other. `cycle` polls many jobs,
//! `concurrency` at a time. Observations that are not polls — a job's
//! retirement, the watchdog's checks — go through the same alerting step.

pub mod alerting;
pub mod health;
pub mod recorder;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tracing::Instrument as _;

use crate::aliyun::{AliyunClient, ApiError, ApiFailure, Environment, Priority};
use crate::cadence::Facts;
use crate::config::{Config, JobConfig};
use crate::dts::api::{self, Fetched, ListJobStepRequest};
use crate::metrics::{Counter, Gauge, JobSeries, Metrics, StepSeries};
use crate::notify::escape;
use crate::rules::{Notice, Outcome, WatchdogCheck};
use crate::store::StoreError;
use crate::store::jobs::{self, JobSource};
pub use alerting::Alerting;
pub use health::Health;
pub use recorder::{Followup, PollReport, RecordOnly, Recorder};

/// One client per configured account.
pub struct Clients(HashMap<String, Arc<AliyunClient>>);

impl Clients {
    /// A client per account, counting its requests in `metrics` when given.
    pub fn build(
        config: &Config,
        env: &Environment,
        metrics: Option<&Arc<Metrics>>,
    ) -> anyhow::Result<Self> {
        let mut clients = HashMap::new();
        for account in &config.accounts {
            let mut client = AliyunClient::new(account, &config.poll, env)
                .with_context(|| format!("account `{}`", account.name))?;
            if let Some(metrics) = metrics {
                client = client.with_metrics(metrics.clone());
            }
            clients.insert(account.name.clone(), Arc::new(client));
        }
        Ok(Self(clients))
    }

    pub fn get(&self, account: &str) -> Option<&Arc<AliyunClient>> {
        self.0.get(account)
    }

    /// Every account's client, by account name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Arc<AliyunClient>)> {
        self.0.iter().map(|(name, client)| (name.as_str(), client))
    }
}

/// Where "now" comes from: the system clock, or one a test moves by hand.
#[derive(Clone, Default)]
pub enum Clock {
    #[default]
    System,
    Manual(Arc<Mutex<DateTime<Utc>>>),
}

impl Clock {
    pub fn manual(at: DateTime<Utc>) -> Self {
        Clock::Manual(Arc::new(Mutex::new(at)))
    }

    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Manual(at) => *at.lock().unwrap_or_else(|p| p.into_inner()),
        }
    }

    /// Moves a manual clock (a system clock cannot be set).
    pub fn set(&self, to: DateTime<Utc>) {
        if let Clock::Manual(at) = self {
            *at.lock().unwrap_or_else(|p| p.into_inner()) = to;
        }
    }
}

/// A job to poll and where it comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Watched {
    pub job: Arc<JobConfig>,
    pub source: JobSource,
}

/// Everything a poll needs. The config-derived parts (clients, alerting)
/// are rebuilt on reload; the recorder, metrics, health and the delivery
/// waker are shared for the life of the process.
pub struct PollContext {
    pub clients: Clients,
    pub alerting: Alerting,
    pub recorder: Arc<Recorder>,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    /// Woken when a committed observation left something to deliver.
    pub delivery: Arc<Notify>,
    pub clock: Clock,
    /// Sub-steps get step gauges too (`[server] metrics_sub_steps`).
    pub sub_step_metrics: bool,
}

/// What one poll amounted to.
pub struct Polled {
    pub result: Result<Fetched, ApiFailure>,
    /// What was written, or why nothing could be.
    pub recorded: Result<PollReport, StoreError>,
}

/// The `ListJobStep` request for a configured job.
pub fn request(job: &JobConfig, priority: Priority) -> ListJobStepRequest<'_> {
    ListJobStepRequest {
        job_id: &job.id,
        region: &job.region,
        zero_etl: job.zero_etl,
        resource_group_id: job.resource_group_id.as_deref(),
        priority,
    }
}

/// Polls one job: fetch (queued at `priority` for its account's budget),
/// count, record with the rules, wake delivery, log.
pub async fn poll_one(
    ctx: &PollContext,
    job: &JobConfig,
    source: JobSource,
    priority: Priority,
) -> Polled {
    let span = tracing::info_span!("poll", job = %job.id, account = %job.account);
    let started = Instant::now();
    let result = match ctx.clients.get(&job.account) {
        Some(client) => {
            api::list_job_step(client, &request(job, priority))
                .instrument(span.clone())
                .await
        }
        None => Err(ApiFailure {
            error: ApiError::Credentials(format!("no client for account `{}`", job.account)),
            attempts: 0,
            retried: Vec::new(),
            backoff: Duration::ZERO,
        }),
    };
    let elapsed = started.elapsed();
    let now = ctx.clock.now();
    count(ctx, job, &result, elapsed, now);
    let recorded = ctx
        .recorder
        .record(job, source, now, elapsed, &result, &ctx.alerting)
        .instrument(span.clone())
        .await;
    let _entered = span.enter();
    if let Err(failure) = &result {
        tracing::warn!(error = %escape::log(&failure.error.to_string()), attempts = failure.attempts, "poll failed");
    }
    match &recorded {
        Ok(report) => {
            ctx.health.storage_ok();
            settled(ctx, &report.notices);
        }
        Err(e) if e.is_fenced() => {
            tracing::warn!(error = %e, "not recorded: this instance no longer leads");
        }
        Err(e) => {
            ctx.health.storage_failed(e.describe(), now);
            let kind = if e.is_disk_full() {
                "disk_full"
            } else {
                "other"
            };
            ctx.metrics.inc(Counter::StoreErrors, &[kind]);
            tracing::error!(error = %e.describe(), "could not record the poll; it will be polled again on schedule");
        }
    }
    Polled { result, recorded }
}

/// What a finished poll says about how often the job needs fetching: open
/// alerts, a failure (of the poll, or a step), a full load in progress.
pub fn facts(ctx: &PollContext, polled: &Polled) -> Facts {
    let alerting = polled
        .recorded
        .as_ref()
        .is_ok_and(|report| ctx.alerting.has_open_alerts(report.job_row));
    let Ok(fetched) = &polled.result else {
        return Facts {
            alerting,
            failing: true,
            moving: false,
        };
    };
    let steps = || {
        fetched
            .snapshot
            .steps
            .iter()
            .flat_map(|s| std::iter::once(s).chain(s.sub_steps.iter()))
    };
    Facts {
        alerting,
        failing: steps().any(|step| {
            step.state == crate::state::State::Failed
                || step.err_msg.is_some()
                || step.failing_details().next().is_some()
        }),
        moving: steps().any(|step| {
            step.state.is_active()
                && step.latency_ms.is_none()
                && step.progress.is_some_and(|p| p < 100)
        }),
    }
}

/// Metrics and health for one fetch.
fn count(
    ctx: &PollContext,
    job: &JobConfig,
    result: &Result<Fetched, ApiFailure>,
    elapsed: Duration,
    now: DateTime<Utc>,
) {
    let metrics = &ctx.metrics;
    metrics.observe_poll(elapsed);
    let (retried, backoff) = match result {
        Ok(fetched) => (&fetched.retried, fetched.backoff),
        Err(failure) => (&failure.retried, failure.backoff),
    };
    for code in retried {
        metrics.inc(Counter::ApiErrors, &[code]);
        metrics.inc(Counter::ApiRetries, &[code]);
    }
    if !backoff.is_zero() {
        metrics.add(Counter::ApiBackoffSeconds, &[], backoff.as_secs_f64());
    }
    match result {
        Ok(fetched) => {
            metrics.inc(Counter::Polls, &["ok"]);
            metrics.set(
                Gauge::LastSuccessfulPoll,
                &[&job.id],
                now.timestamp() as f64,
            );
            metrics.set_job(&job.id, job_series(job, fetched, ctx.sub_step_metrics));
            ctx.health.record(&job.id, None, now);
        }
        Err(failure) => {
            metrics.inc(Counter::Polls, &[failure.error.class().as_str()]);
            metrics.inc(Counter::ApiErrors, &[failure.error.code()]);
            metrics.set_job_down(&job.id, job.display_name(), &job.region);
            ctx.health
                .record(&job.id, Some(failure.error.to_string()), now);
        }
    }
}

/// The job and step gauges of a successful poll: top-level steps, and
/// sub-steps (`parent › sub-step`) when asked for.
fn job_series(job: &JobConfig, fetched: &Fetched, sub_steps: bool) -> JobSeries {
    let series = |name: String, step: &crate::dts::Step| StepSeries {
        step: name,
        latency_seconds: step.latency_ms.map(|ms| ms as f64 / 1000.0),
        progress_ratio: step.progress.map(|p| p.clamp(0, 100) as f64 / 100.0),
        state: step.state.as_str().to_string(),
    };
    let mut steps = Vec::with_capacity(fetched.snapshot.steps.len());
    for step in &fetched.snapshot.steps {
        steps.push(series(step.name.to_string(), step));
        if sub_steps {
            for sub in &step.sub_steps {
                steps.push(series(format!("{} › {}", step.name, sub.name), sub));
            }
        }
    }
    JobSeries {
        name: job.display_name().to_string(),
        region: job.region.clone(),
        up: true,
        steps,
    }
}

/// After a commit: log every decision and wake delivery if anything is to be sent.
fn settled(ctx: &PollContext, notices: &[Notice]) {
    for notice in notices {
        tracing::info!("{}", escape::log(&notice.line()));
    }
    if notices.iter().any(|n| n.suppressed.is_none()) {
        ctx.delivery.notify_waiters();
    }
}

/// Polls every job, at most `concurrency` at a time; results in job order.
pub async fn cycle(ctx: &Arc<PollContext>, jobs: &[Watched], concurrency: usize) -> Vec<Polled> {
    let slots = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let mut tasks = Vec::with_capacity(jobs.len());
    for watched in jobs {
        let (ctx, slots, watched) = (ctx.clone(), slots.clone(), watched.clone());
        tasks.push(tokio::spawn(async move {
            let _slot = slots.acquire_owned().await;
            // A poll's future is a few kilobytes: build it only once a slot is free.
            Box::pin(poll_one(&ctx, &watched.job, watched.source, Priority::Poll)).await
        }));
    }
    let mut polled = Vec::with_capacity(tasks.len());
    for task in tasks {
        polled.push(task.await.unwrap_or_else(|e| Polled {
            result: Err(ApiFailure {
                error: ApiError::Network(format!("poll task failed: {e}")),
                attempts: 0,
                retried: Vec::new(),
                backoff: Duration::ZERO,
            }),
            recorded: Err(StoreError::Corrupt(format!("poll task failed: {e}"))),
        }));
    }
    polled
}

/// Retires a job discovery no longer lists: its alerts resolve. Returns
/// false when the job is unknown or already retired.
pub async fn retire(ctx: &PollContext, job_id: &str) -> Result<bool, StoreError> {
    let now = ctx.clock.now();
    let mut row = None;
    let result: Result<Vec<Notice>, StoreError> = async {
        let mut tx = ctx.recorder.store().begin().await?;
        let Some(found) = jobs::find(&mut tx, job_id).await? else {
            return Ok(Vec::new());
        };
        if found.retired_at.is_some() {
            return Ok(Vec::new());
        }
        row = Some(found.id);
        jobs::retire(&mut tx, found.id, now).await?;
        let notices = ctx
            .alerting
            .apply(
                &mut tx,
                &found.to_config(),
                found.id,
                None,
                &Outcome::Retired,
                now,
            )
            .await?;
        tx.commit().await?;
        Ok(notices)
    }
    .await;
    let Some(row) = row else {
        return result.map(|_| false);
    };
    ctx.alerting.settle_states(row, result.is_ok());
    let notices = result?;
    ctx.recorder.forget(job_id).await;
    tracing::info!(job = %job_id, "job no longer listed by discovery; retired");
    settled(ctx, &notices);
    Ok(true)
}

/// The pseudo-job the watchdog's own alerts belong to.
pub fn watchdog_job() -> JobConfig {
    JobConfig {
        id: "dtswatch".into(),
        region: "-".into(),
        account: "-".into(),
        name: Some("dtswatch itself".into()),
        schedule: None,
        zero_etl: None,
        resource_group_id: None,
    }
}

/// Hands the watchdog's checks to the alerting step.
pub async fn watchdog(ctx: &PollContext, checks: &[WatchdogCheck]) -> Result<(), StoreError> {
    let now = ctx.clock.now();
    let job = watchdog_job();
    let mut tx = ctx.recorder.store().begin().await?;
    let row = jobs::ensure(&mut tx, &job, JobSource::Watchdog, now).await?;
    let written = ctx
        .alerting
        .apply(&mut tx, &job, row, None, &Outcome::Watchdog(checks), now)
        .await;
    let committed = match written {
        Ok(notices) => tx.commit().await.map(|()| notices),
        Err(e) => Err(e),
    };
    ctx.alerting.settle_states(row, committed.is_ok());
    let notices = committed?;
    for notice in &notices {
        tracing::warn!(rule = %notice.event.rule, status = notice.event.status.as_str(), "watchdog");
    }
    settled(ctx, &notices);
    Ok(())
}
