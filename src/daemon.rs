//! `dtswatch run`: the long-running service. It polls every watched job on its
//! schedule (configured jobs plus discovered ones), records and evaluates each
//! poll, delivers notifications, prunes old rows, watches itself, serves
//! `/healthz` and `/metrics`, reloads the config on SIGHUP (keeping the old one
//! if the new one is broken), and on SIGTERM/SIGINT stops scheduling, lets
//! in-flight polls and deliveries finish within the grace period, and returns.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument as _;

use crate::aliyun::Environment;
use crate::app::Clients;
use crate::config::{self, Config, CronSchedule, JobConfig, RuleConfig, RuleKind, WatchdogConfig};
use crate::discovery;
use crate::metrics::Metrics;
use crate::notify::outbox::{Deliverer, DeliveryReport};
use crate::poll::{self, Alerting, PollReport, Recorder};
use crate::report;
use crate::rules::{self, AlertKey, Event, EventStatus, JobInfo, Notification, Outcome, Reason};
use crate::scheduler;
use crate::server::{self, Health, ServerState};
use crate::store::{self, Store, alerts, jobs, outbox};

/// How the daemon is run.
#[derive(Default)]
pub struct Options {
    /// Where the config came from, for SIGHUP reloads (`None`: no reload).
    pub config_path: Option<PathBuf>,
    /// Print step changes and poll failures on stdout (the demo).
    pub echo: bool,
    /// Told the address `/healthz` and `/metrics` listen on, once bound.
    pub listening: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
}

/// Everything that comes from the config, swapped whole on reload.
struct Runtime {
    config: Arc<Config>,
    clients: Clients,
    alerting: Alerting,
    deliverer: Arc<Deliverer>,
    polls: Arc<tokio::sync::Semaphore>,
}

impl Runtime {
    fn build(
        config: Config,
        env: &Environment,
        store: &Store,
        reports: &tokio::sync::mpsc::UnboundedSender<DeliveryReport>,
    ) -> anyhow::Result<Self> {
        let clients = Clients::build(&config, env)?;
        let deliverer = Deliverer::new(store.clone(), &config)
            .map_err(anyhow::Error::msg)?
            .with_reports(reports.clone());
        Ok(Self {
            alerting: Alerting::from_config(&config),
            polls: Arc::new(tokio::sync::Semaphore::new(config.poll.concurrency)),
            clients,
            deliverer: Arc::new(deliverer),
            config: Arc::new(config),
        })
    }
}

struct Daemon {
    store: Store,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    env: Environment,
    runtime: watch::Sender<Arc<Runtime>>,
    /// Jobs found by each `[[discover]]` entry, by entry index.
    discovered: std::sync::Mutex<BTreeMap<usize, BTreeMap<String, JobConfig>>>,
    jobs_changed: Notify,
    echo: bool,
}

impl Daemon {
    fn current(&self) -> Arc<Runtime> {
        self.runtime.borrow().clone()
    }

    /// Configured jobs, then discovered ones not also configured, with their source.
    fn watched(&self, config: &Config) -> Vec<(JobConfig, &'static str)> {
        let mut jobs: Vec<(JobConfig, &'static str)> =
            config.jobs.iter().map(|j| (j.clone(), "config")).collect();
        let discovered = self.discovered.lock().unwrap_or_else(|p| p.into_inner());
        let mut seen: std::collections::BTreeSet<String> =
            config.jobs.iter().map(|j| j.id.clone()).collect();
        for found in discovered.values() {
            for job in found.values() {
                if seen.insert(job.id.clone()) {
                    jobs.push((job.clone(), "discover"));
                }
            }
        }
        jobs
    }
}

/// Runs the daemon until `shutdown` resolves.
pub async fn run(
    config: Config,
    env: Environment,
    shutdown: impl Future<Output = ()>,
    options: Options,
) -> anyhow::Result<()> {
    let store = Store::open(&config.storage.path)
        .await
        .with_context(|| format!("opening the database {}", config.storage.path.display()))?;
    let metrics = Arc::new(Metrics::default());
    let health = Arc::new(Health::new(config.server.unhealthy_after, Utc::now()));
    let (reports, mut report_rx) = tokio::sync::mpsc::unbounded_channel::<DeliveryReport>();
    let runtime = Arc::new(Runtime::build(config, &env, &store, &reports)?);
    let listen = runtime.config.server.listen;
    let grace = runtime.config.delivery.drain_timeout;
    let (runtime_tx, _) = watch::channel(runtime.clone());
    let daemon = Arc::new(Daemon {
        recorder: Recorder::new(store.clone()),
        store: store.clone(),
        metrics: metrics.clone(),
        health: health.clone(),
        env,
        runtime: runtime_tx,
        discovered: Default::default(),
        jobs_changed: Notify::new(),
        echo: options.echo,
    });
    tracing::info!(
        jobs = runtime.config.jobs.len(),
        discover = runtime.config.discover.len(),
        database = %runtime.config.storage.path.display(),
        "dtswatch started"
    );

    let scheduling = CancellationToken::new();
    let background = CancellationToken::new();
    let polls = TaskTracker::new();
    let mut tasks = tokio::task::JoinSet::new();
    {
        let metrics = metrics.clone();
        tasks.spawn(async move {
            while let Some(report) = report_rx.recv().await {
                metrics.add(
                    "dtswatch_notifications_total",
                    vec![
                        ("channel", report.channel),
                        ("outcome", report.outcome.to_string()),
                    ],
                    report.rows as f64,
                );
            }
        });
    }
    if let Some(listen) = listen {
        let state = ServerState {
            metrics: metrics.clone(),
            health: health.clone(),
            store: store.clone(),
        };
        let addr = server::serve(listen, state, background.clone())
            .await
            .with_context(|| format!("listening on {listen} for /healthz and /metrics"))?;
        tracing::info!(%addr, "serving /healthz and /metrics");
        if let Some(tx) = options.listening {
            let _ = tx.send(addr);
        }
    }
    tasks.spawn(schedule(daemon.clone(), scheduling.clone(), polls.clone()));
    tasks.spawn(discover_forever(daemon.clone(), scheduling.clone()));
    tasks.spawn(watchdog(daemon.clone(), scheduling.clone()));
    tasks.spawn(prune_forever(daemon.clone(), background.clone()));
    let mut delivery = start_delivery(&runtime);

    let mut hangups = hangup_signals();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(()) = hangups.recv() => {
                if let Some(path) = &options.config_path
                    && let Some(new) = reload(&daemon, path, &reports)
                {
                    delivery.0.cancel();
                    let _ = delivery.1.await;
                    delivery = start_delivery(&new);
                }
            }
        }
    }

    tracing::info!("shutting down: no new polls; finishing the ones in flight");
    scheduling.cancel();
    polls.close();
    let deadline = tokio::time::Instant::now() + grace;
    if tokio::time::timeout_at(deadline, polls.wait())
        .await
        .is_err()
    {
        tracing::warn!("polls still running after the grace period; leaving them");
    }
    // Let the workers send what the last polls queued, within the grace period.
    loop {
        let pending: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND next_attempt_at <= ?1",
        )
        .bind(Utc::now().timestamp_millis())
        .fetch_one(store.pool())
        .await
        .unwrap_or(0);
        if pending == 0 || tokio::time::Instant::now() >= deadline {
            if pending > 0 {
                tracing::warn!(
                    pending,
                    "notifications still pending at shutdown; they are sent after the next start"
                );
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    delivery.0.cancel();
    let _ = delivery.1.await;
    background.cancel();
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// SIGHUP as a stream (never fires where there are no Unix signals).
fn hangup_signals() -> tokio::sync::mpsc::Receiver<()> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hup.recv().await.is_some() {
            if tx.send(()).await.is_err() {
                return;
            }
        }
    });
    #[cfg(not(unix))]
    drop(tx);
    rx
}

fn start_delivery(runtime: &Arc<Runtime>) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let cancel = CancellationToken::new();
    let handle = tokio::spawn(runtime.deliverer.clone().run(cancel.clone()));
    (cancel, handle)
}

/// Loads the config again; a broken one is reported and the running one kept.
fn reload(
    daemon: &Daemon,
    path: &std::path::Path,
    reports: &tokio::sync::mpsc::UnboundedSender<DeliveryReport>,
) -> Option<Arc<Runtime>> {
    let old = daemon.current();
    let result = config::load(path)
        .map_err(|errors| {
            for line in errors.lines() {
                tracing::error!("{line}");
            }
            format!("{} problem(s) in {}", errors.errors.len(), path.display())
        })
        .and_then(|config| {
            if config.storage.path != old.config.storage.path {
                tracing::warn!("storage.path changed; the new database is used after a restart");
            }
            Runtime::build(config, &daemon.env, &daemon.store, reports)
                .map_err(|e| format!("{e:#}"))
        });
    match result {
        Ok(runtime) => {
            let runtime = Arc::new(runtime);
            daemon.runtime.send_replace(runtime.clone());
            daemon.metrics.inc(
                "dtswatch_config_reloads_total",
                vec![("result", "ok".into())],
            );
            tracing::info!(
                jobs = runtime.config.jobs.len(),
                rules = runtime.config.rules.len(),
                channels = runtime.config.channels.len(),
                "config reloaded"
            );
            Some(runtime)
        }
        Err(reason) => {
            daemon.metrics.inc(
                "dtswatch_config_reloads_total",
                vec![("result", "error".into())],
            );
            tracing::error!(
                reason,
                "config reload rejected; the running config stays in effect"
            );
            None
        }
    }
}

/// A job's place in the schedule.
struct Entry {
    job: JobConfig,
    source: &'static str,
    schedule: CronSchedule,
    jitter: Duration,
    next: DateTime<Utc>,
    busy: Arc<AtomicBool>,
}

/// Fires polls on schedule until cancelled; follows config reloads and discovery.
async fn schedule(daemon: Arc<Daemon>, cancel: CancellationToken, polls: TaskTracker) {
    let mut changes = daemon.runtime.subscribe();
    let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
    loop {
        let runtime = daemon.current();
        let now = Utc::now();
        let watched = daemon.watched(&runtime.config);
        entries.retain(|id, _| watched.iter().any(|(j, _)| &j.id == id));
        for (job, source) in watched {
            let schedule = job
                .schedule
                .clone()
                .unwrap_or_else(|| runtime.config.poll.schedule.clone());
            let unchanged = entries
                .get(&job.id)
                .is_some_and(|e| e.job == job && e.schedule == schedule);
            if unchanged {
                continue;
            }
            let jitter =
                scheduler::effective_jitter(&job.id, &schedule, runtime.config.poll.jitter, now);
            let Some(next) = scheduler::next_fire(&schedule, jitter, now) else {
                tracing::warn!(job = %job.id, schedule = %schedule.source, "the schedule never fires; the job is not polled");
                continue;
            };
            let busy = entries.remove(&job.id).map(|e| e.busy).unwrap_or_default();
            entries.insert(
                job.id.clone(),
                Entry {
                    job,
                    source,
                    schedule,
                    jitter,
                    next,
                    busy,
                },
            );
        }
        daemon
            .metrics
            .set("dtswatch_jobs_watched", vec![], entries.len() as f64);
        daemon
            .health
            .forget_except(&entries.keys().cloned().collect::<Vec<_>>());
        let wait = scheduler::sleep_until(
            entries.values().map(|e| e.next).min(),
            Utc::now(),
            Duration::from_secs(60),
        );
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = changes.changed() => continue,
            _ = daemon.jobs_changed.notified() => continue,
            _ = tokio::time::sleep(wait) => {}
        }
        let now = Utc::now();
        for entry in entries.values_mut().filter(|e| e.next <= now) {
            // After a suspend the next fire is computed from now: missed ticks are not replayed.
            entry.next = scheduler::next_fire(&entry.schedule, entry.jitter, now)
                .unwrap_or(now + chrono::Duration::days(365));
            if entry.busy.swap(true, Ordering::SeqCst) {
                daemon.metrics.inc(
                    "dtswatch_polls_skipped_total",
                    vec![("job", entry.job.id.clone())],
                );
                tracing::warn!(job = %entry.job.id, "previous poll still running; skipping this tick");
                continue;
            }
            let (daemon, runtime, job, source, busy) = (
                daemon.clone(),
                runtime.clone(),
                entry.job.clone(),
                entry.source,
                entry.busy.clone(),
            );
            polls.spawn(async move {
                // A poll's future is a few kilobytes: it is only built (boxed)
                // once a slot is free, so a thousand due jobs waiting cost little.
                if let Ok(_permit) = runtime.polls.acquire().await {
                    Box::pin(poll_job(&daemon, &runtime, &job, source)).await;
                }
                busy.store(false, Ordering::SeqCst);
            });
        }
    }
}

/// One poll: fetch, record with the rules, count, and wake the delivery workers.
async fn poll_job(daemon: &Daemon, runtime: &Runtime, job: &JobConfig, source: &str) {
    let Some(client) = runtime.clients.get(&job.account) else {
        tracing::error!(job = %job.id, account = %job.account, "no client for the job's account");
        return;
    };
    let span = tracing::info_span!("poll", job = %job.id, account = %job.account);
    let started = std::time::Instant::now();
    let result = poll::fetch(client, job).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let now = Utc::now();
    let metrics = &daemon.metrics;
    metrics.observe_poll(elapsed);
    let (retried, backoff) = match &result {
        Ok(fetched) => (&fetched.retried, fetched.backoff),
        Err(failure) => (&failure.retried, failure.backoff),
    };
    for code in retried {
        metrics.inc("dtswatch_api_errors_total", vec![("code", code.clone())]);
        metrics.inc("dtswatch_api_retries_total", vec![("code", code.clone())]);
    }
    if !backoff.is_zero() {
        metrics.add(
            "dtswatch_api_backoff_seconds_total",
            vec![],
            backoff.as_secs_f64(),
        );
    }
    match &result {
        Ok(_) => {
            metrics.inc("dtswatch_polls_total", vec![("outcome", "ok".into())]);
            metrics.set(
                "dtswatch_last_successful_poll_timestamp_seconds",
                vec![("job", job.id.clone())],
                now.timestamp() as f64,
            );
            daemon.health.record(&job.id, None, now);
        }
        Err(failure) => {
            metrics.inc(
                "dtswatch_polls_total",
                vec![("outcome", failure.error.class().as_str().into())],
            );
            metrics.inc(
                "dtswatch_api_errors_total",
                vec![("code", failure.error.code().to_string())],
            );
            daemon
                .health
                .record(&job.id, Some(failure.error.to_string()), now);
            span.in_scope(|| tracing::warn!(error = %failure.error, attempts = failure.attempts, "poll failed"));
        }
    }
    let recorded = daemon
        .recorder
        .record(job, source, now, elapsed, &result, &runtime.alerting)
        .instrument(span.clone())
        .await;
    match recorded {
        Ok(report) => {
            daemon.health.storage_ok();
            if report.notices.iter().any(|n| n.suppressed.is_none()) {
                runtime.deliverer.waker().notify_waiters();
            }
            log_report(daemon, job, &report, result.as_ref().err());
        }
        Err(e) => {
            daemon.health.storage_failed(e.describe(), now);
            let kind = if e.is_disk_full() {
                "disk_full"
            } else {
                "other"
            };
            daemon
                .metrics
                .inc("dtswatch_store_errors_total", vec![("kind", kind.into())]);
            span.in_scope(|| tracing::error!(error = %e.describe(), "could not record the poll; it will be polled again on schedule"));
        }
    }
}

fn log_report(
    daemon: &Daemon,
    job: &JobConfig,
    report: &PollReport,
    failure: Option<&crate::aliyun::ApiFailure>,
) {
    for notice in &report.notices {
        let held = notice.suppressed.as_ref().map(|s| s.describe());
        tracing::info!(job = %job.id, "{}", report::event_line(&notice.event, held.as_deref()));
    }
    if daemon.echo {
        let at = report::local_time(report.at);
        if let Some(failure) = failure {
            println!(
                "{at}  {}: poll failed: {}",
                job.display_name(),
                failure.error
            );
        }
        for change in report
            .changes
            .iter()
            .filter(|c| !c.is_volatile() || report.first)
        {
            println!("{at}  {}: {change}", job.display_name());
        }
    }
}

/// Runs every `[[discover]]` entry on its refresh interval; retires jobs that stop being listed.
async fn discover_forever(daemon: Arc<Daemon>, cancel: CancellationToken) {
    let mut next_run: BTreeMap<usize, DateTime<Utc>> = BTreeMap::new();
    let mut changes = daemon.runtime.subscribe();
    // Jobs discovered before a restart: retired if no entry lists them any more.
    let mut from_before: Option<Vec<String>> = {
        let mut conn = match daemon.store.pool().acquire().await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "discovery cannot read the database");
                return;
            }
        };
        jobs::all(&mut conn).await.ok().map(|all| {
            all.into_iter()
                .filter(|j| j.source == "discover" && j.retired_at.is_none())
                .map(|j| j.dts_job_id)
                .collect()
        })
    };
    loop {
        let runtime = daemon.current();
        let entries = &runtime.config.discover;
        if entries.is_empty() {
            from_before = None;
        }
        let now = Utc::now();
        let mut all_succeeded_once = true;
        for (index, entry) in entries.iter().enumerate() {
            if next_run.get(&index).is_some_and(|at| *at > now) {
                continue;
            }
            let Some(client) = runtime.clients.get(&entry.account) else {
                continue;
            };
            let started = std::time::Instant::now();
            match discovery::discover(entry, client).await {
                Ok(found) => {
                    daemon.metrics.inc(
                        "dtswatch_discovery_runs_total",
                        vec![("result", "ok".into())],
                    );
                    tracing::info!(
                        entry = index + 1,
                        jobs = found.len(),
                        took_ms = started.elapsed().as_millis() as u64,
                        "discovery finished"
                    );
                    let previous = {
                        let mut discovered =
                            daemon.discovered.lock().unwrap_or_else(|p| p.into_inner());
                        discovered.insert(index, found.clone()).unwrap_or_default()
                    };
                    for (id, job) in previous {
                        if !found.contains_key(&id) {
                            retire_unless_listed(&daemon, &runtime, &job).await;
                        }
                    }
                    daemon.jobs_changed.notify_one();
                    next_run.insert(
                        index,
                        now + chrono::Duration::from_std(entry.refresh).unwrap_or_default(),
                    );
                }
                Err(failure) => {
                    all_succeeded_once = false;
                    daemon.metrics.inc(
                        "dtswatch_discovery_runs_total",
                        vec![("result", "error".into())],
                    );
                    tracing::warn!(entry = index + 1, error = %failure.error, "discovery failed; the jobs found before stay watched");
                    next_run.insert(
                        index,
                        now + chrono::Duration::seconds(60)
                            .min(chrono::Duration::from_std(entry.refresh).unwrap_or_default()),
                    );
                }
            }
        }
        if all_succeeded_once && let Some(ids) = from_before.take() {
            for id in ids {
                let job = JobConfig {
                    id: id.clone(),
                    region: String::new(),
                    account: String::new(),
                    name: None,
                    schedule: None,
                    zero_etl: None,
                    resource_group_id: None,
                };
                retire_unless_listed(&daemon, &runtime, &job).await;
            }
        }
        let wait = scheduler::sleep_until(
            next_run.values().min().copied(),
            Utc::now(),
            Duration::from_secs(60),
        );
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = changes.changed() => next_run.clear(),
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Retires a job no discovery entry lists and the config does not name: its alerts resolve.
async fn retire_unless_listed(daemon: &Daemon, runtime: &Runtime, job: &JobConfig) {
    if daemon
        .watched(&runtime.config)
        .iter()
        .any(|(j, _)| j.id == job.id)
    {
        return;
    }
    let now = Utc::now();
    let mut retired_row = None;
    let result: Result<(), store::StoreError> = async {
        let mut tx = daemon.store.begin().await?;
        let Some(row) = jobs::find(&mut tx, &job.id).await? else {
            return Ok(());
        };
        if row.retired_at.is_some() {
            return Ok(());
        }
        retired_row = Some(row.id);
        jobs::retire(&mut tx, row.id, now).await?;
        let stored = JobConfig {
            id: row.dts_job_id.clone(),
            region: row.region.clone(),
            account: row.account.clone(),
            name: row.name.clone(),
            ..job.clone()
        };
        runtime
            .alerting
            .apply(&mut tx, &stored, row.id, None, &Outcome::Retired, now)
            .await?;
        tx.commit().await?;
        Ok(())
    }
    .await;
    if let Some(row) = retired_row {
        runtime.alerting.settle_states(row, result.is_ok());
    }
    match result {
        Ok(()) => {
            tracing::info!(job = %job.id, "job no longer listed by discovery; retired");
            daemon.recorder.forget(&job.id).await;
            runtime.deliverer.waker().notify_waiters();
        }
        Err(e) => tracing::error!(job = %job.id, error = %e, "could not retire the job"),
    }
}

/// Prunes old rows every `storage.prune_interval`.
async fn prune_forever(daemon: Arc<Daemon>, cancel: CancellationToken) {
    loop {
        let runtime = daemon.current();
        let retention = chrono::Duration::from_std(runtime.config.storage.retention)
            .unwrap_or_else(|_| chrono::Duration::days(30));
        match store::retention::prune(&daemon.store, Utc::now() - retention).await {
            Ok(pruned) if pruned != store::retention::Pruned::default() => tracing::info!(
                polls = pruned.polls,
                snapshots = pruned.snapshots,
                step_states = pruned.step_states,
                "pruned old rows"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "pruning failed; will try again"),
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(runtime.config.storage.prune_interval) => {}
        }
    }
}

/// The pseudo-job the watchdog's own alerts belong to.
fn watchdog_job() -> JobConfig {
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

const NO_POLL_RULE: &str = "watchdog: no successful poll";
const DEAD_RULE: &str = "watchdog: dead notifications";

fn watchdog_rule(name: &str, watchdog: &WatchdogConfig) -> RuleConfig {
    RuleConfig {
        name: name.into(),
        kind: RuleKind::Unreachable,
        severity: watchdog.severity,
        channels: watchdog.channels.clone(),
        jobs: None,
        steps: None,
        sub_steps: false,
        for_: Duration::ZERO,
        repeat: None,
        send_resolved: true,
        after: 1,
        resolve_after: 1,
        inhibited_by: Vec::new(),
        runbook: None,
    }
}

/// Checks on dtswatch itself: no successful poll for a while, dead notifications.
async fn watchdog(daemon: Arc<Daemon>, cancel: CancellationToken) {
    loop {
        let runtime = daemon.current();
        if let Some(config) = &runtime.config.watchdog
            && let Err(e) = check_watchdog(&daemon, &runtime, config).await
        {
            tracing::warn!(error = %e, "watchdog check failed");
        }
        let every = runtime
            .config
            .watchdog
            .as_ref()
            .map(|w| {
                (w.no_successful_poll / 4)
                    .clamp(Duration::from_millis(200), Duration::from_secs(30))
            })
            .unwrap_or(Duration::from_secs(30));
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

async fn check_watchdog(
    daemon: &Daemon,
    runtime: &Runtime,
    config: &WatchdogConfig,
) -> Result<(), store::StoreError> {
    let now = Utc::now();
    let quiet_since = daemon
        .health
        .last_success()
        .unwrap_or(daemon.health.started);
    let silent_for = (now - quiet_since).to_std().unwrap_or_default();
    let no_poll = (!runtime.config.jobs.is_empty() || !runtime.config.discover.is_empty())
        && silent_for >= config.no_successful_poll;
    let dead: Vec<(String, i64, Option<String>)> = sqlx::query_as(
        "SELECT channel, COUNT(*), MAX(last_error) FROM outbox WHERE status = 'dead' GROUP BY channel ORDER BY channel",
    )
    .fetch_all(daemon.store.pool())
    .await?;
    let dead_summary = dead
        .iter()
        .map(|(channel, n, error)| {
            format!("{n} on `{channel}` ({})", error.clone().unwrap_or_default())
        })
        .collect::<Vec<_>>()
        .join("; ");
    let checks = [
        (
            NO_POLL_RULE,
            no_poll,
            format!(
                "no DTS poll has succeeded for {}",
                config::format_duration(silent_for)
            ),
        ),
        (
            DEAD_RULE,
            config.dead_letters && !dead.is_empty(),
            format!("dead notifications: {dead_summary}"),
        ),
    ];
    let job = watchdog_job();
    let info = JobInfo::from_config(&job);
    let mut tx = daemon.store.begin().await?;
    let row = jobs::ensure(&mut tx, &job, "watchdog", now).await?;
    let states = alerts::load_for_job(&mut tx, row).await?;
    let mut sent = false;
    for (name, holds, summary) in checks {
        let rule = watchdog_rule(name, config);
        let key = AlertKey {
            rule: name.into(),
            path: String::new(),
        };
        let before = states.get(&key).cloned().unwrap_or_default();
        let condition = if holds {
            rules::Condition::Holds {
                since: None,
                fingerprint: None,
            }
        } else {
            rules::Condition::Clear
        };
        let (after, reason) =
            rules::lifecycle::step(&rule, &before, &condition, now, Reason::Resolved);
        if after != before {
            alerts::save(&mut tx, row, &key, rule.severity, &after, now).await?;
        }
        let Some(reason) = reason else {
            continue;
        };
        let event = Event {
            status: if reason.resolves() {
                EventStatus::Resolved
            } else {
                EventStatus::Firing
            },
            reason,
            rule: name.into(),
            kind: "watchdog".into(),
            severity: rule.severity,
            job: info.clone(),
            step: None,
            summary: if reason.resolves() {
                format!(
                    "resolved: {}",
                    if name == NO_POLL_RULE {
                        "polls succeed again"
                    } else {
                        "no dead notifications left"
                    }
                )
            } else {
                summary
            },
            changes: Vec::new(),
            current: None,
            first_seen: before.since.or(after.since).unwrap_or(now),
            at: now,
            runbook: None,
        };
        let alert = alerts::ensure(&mut tx, row, &key, rule.severity, now).await?;
        alerts::insert_event(&mut tx, alert, None, &event, None).await?;
        let payload = serde_json::to_string(&Notification {
            job: info.clone(),
            events: vec![event],
        })
        .map_err(|e| store::StoreError::Corrupt(e.to_string()))?;
        for channel in &config.channels {
            outbox::enqueue(
                &mut tx,
                channel,
                &format!("watchdog:{name}:{}:{channel}", now.timestamp_millis()),
                Some(row),
                &payload,
                now,
            )
            .await?;
        }
        tracing::warn!(
            rule = name,
            status = if reason.resolves() {
                "resolved"
            } else {
                "firing"
            },
            "watchdog"
        );
        sent = true;
    }
    tx.commit().await?;
    if sent {
        runtime.deliverer.waker().notify_waiters();
    }
    Ok(())
}

/// A config's jobs plus one discovery pass, for `once`.
pub async fn discover_once(config: &Config, clients: &Clients) -> Vec<JobConfig> {
    let mut jobs = config.jobs.clone();
    for (index, entry) in config.discover.iter().enumerate() {
        let Some(client) = clients.get(&entry.account) else {
            continue;
        };
        match discovery::discover(entry, client).await {
            Ok(found) => {
                for job in found.into_values() {
                    if !jobs.iter().any(|j| j.id == job.id) {
                        jobs.push(job);
                    }
                }
            }
            Err(failure) => eprintln!("discover[{}]: {}", index + 1, failure.error),
        }
    }
    jobs
}
