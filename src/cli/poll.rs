//! `dtswatch once`: every watched job (configured, plus one discovery pass)
//! polled now through the same `poll_one` as the daemon, the steps printed,
//! then the outbox drained within `delivery.drain_timeout`. Exits 1 when a
//! poll failed or a notification went dead or is still pending: from cron
//! or CI, an undelivered alert must not look like success.

use std::process::ExitCode;
use std::sync::Arc;

use chrono::Utc;

use super::args::OutputFormat;
use super::open_store;
use super::table::{SNAPSHOT_HEADER, snapshot_rows, table};
use crate::aliyun::Environment;
use crate::config::{self, Config};
use crate::discovery;
use crate::metrics::Metrics;
use crate::notify::escape::terminal;
use crate::notify::outbox::Deliverer;
use crate::poll::{self, Alerting, Clients, Clock, Health, PollContext, Recorder};
use crate::report::json;
use crate::store::{Store, lease};

/// The poll context `once` polls with: the same parts as the daemon's.
pub async fn context(
    config: &Config,
    env: &Environment,
) -> anyhow::Result<(Arc<PollContext>, Deliverer)> {
    let store = open_store(config).await?;
    let deliverer = Deliverer::new(store.clone(), config).map_err(anyhow::Error::msg)?;
    let ctx = PollContext {
        clients: Clients::build(config, env, None)?,
        alerting: Alerting::from_config(config),
        recorder: Arc::new(Recorder::new(store)),
        metrics: Arc::new(Metrics::new()),
        health: Arc::new(Health::new(config.server.unhealthy_after, Utc::now())),
        delivery: deliverer.waker(),
        clock: Clock::System,
        sub_step_metrics: false,
    };
    Ok((Arc::new(ctx), deliverer))
}

/// Polls every job once, records what it saw, and prints the steps.
pub async fn once(
    config: &Config,
    env: &Environment,
    format: OutputFormat,
) -> anyhow::Result<ExitCode> {
    let _lock = match config.storage.url {
        None => Some(crate::store::lock::acquire(&config.storage.path)?),
        Some(_) => None,
    };
    let (ctx, deliverer) = context(config, env).await?;
    let lease = match config.storage.url {
        Some(_) => Some(OnceLease::take(ctx.recorder.store(), config).await?),
        None => None,
    };
    let result = poll_all(config, &ctx, &deliverer, format).await;
    if let Some(lease) = lease {
        lease.release().await;
    }
    result
}

async fn poll_all(
    config: &Config,
    ctx: &Arc<PollContext>,
    deliverer: &Deliverer,
    format: OutputFormat,
) -> anyhow::Result<ExitCode> {
    let jobs = discovery::watch_once(&config.jobs, &config.discover, &ctx.clients).await;
    let mut rows = Vec::new();
    let mut polled_json = Vec::new();
    let mut failures = 0;
    for (watched, polled) in jobs
        .iter()
        .zip(poll::cycle(ctx, &jobs, config.poll.concurrency).await)
    {
        let job = &watched.job;
        let report = polled
            .recorded
            .map_err(|e| anyhow::anyhow!("recording the poll of {}: {}", job.id, e.describe()))?;
        for notice in &report.notices {
            eprintln!(
                "{}: {}",
                terminal(job.display_name()),
                terminal(&notice.line())
            );
        }
        polled_json.push(OncePollJson {
            id: job.id.clone(),
            name: job.name.clone(),
            ok: polled.result.is_ok(),
            error: polled.result.as_ref().err().map(|f| f.error.to_string()),
            error_code: polled
                .result
                .as_ref()
                .err()
                .map(|f| f.error.code().to_string()),
            steps: report
                .snapshot
                .as_deref()
                .map(json::StepJson::all)
                .unwrap_or_default(),
            notices: report.notices.iter().map(|n| n.line()).collect(),
        });
        match polled.result {
            Ok(fetched) => rows.extend(snapshot_rows(job, &fetched.snapshot)),
            Err(failure) => {
                failures += 1;
                eprintln!(
                    "{} ({}): poll failed: {}",
                    terminal(job.display_name()),
                    terminal(&job.id),
                    terminal(&failure.error.to_string())
                );
            }
        }
    }
    if format == OutputFormat::Text {
        crate::out!("{}", table(&SNAPSHOT_HEADER, &rows));
    }
    let deadline = tokio::time::Instant::now() + config.delivery.drain_timeout;
    let drained = deliverer.drain(deadline).await?;
    if drained.dead > 0 {
        eprintln!(
            "{} notification(s) could not be delivered and are dead: see `dtswatch outbox --dead`, then `dtswatch outbox retry ID`",
            drained.dead
        );
        failures += 1;
    }
    let pending = drained.pending;
    if pending > 0 {
        eprintln!(
            "{pending} notification(s) still pending after {}: see `dtswatch outbox`; `dtswatch run` or the next `once` delivers them",
            config::format_duration(config.delivery.drain_timeout)
        );
        failures += 1;
    }
    if format == OutputFormat::Json {
        super::print(&OnceJson {
            jobs: polled_json,
            notifications: NotificationsJson {
                pending: drained.pending,
                dead: drained.dead,
            },
        })?;
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `once --format json`: each job's poll and what it led to, and what the
/// outbox held when `once` stopped waiting.
#[derive(Debug, serde::Serialize)]
struct OnceJson {
    jobs: Vec<OncePollJson>,
    notifications: NotificationsJson,
}

#[derive(Debug, serde::Serialize)]
struct OncePollJson {
    id: String,
    name: Option<String>,
    ok: bool,
    error: Option<String>,
    error_code: Option<String>,
    steps: Vec<json::StepJson>,
    /// The notification decisions of this poll, one line each.
    notices: Vec<String>,
}

#[derive(Debug, serde::Serialize)]
struct NotificationsJson {
    pending: i64,
    dead: u64,
}

/// `once` on a shared PostgreSQL database holds the leader lease while it
/// runs, so it never polls and alerts beside a running daemon; it refuses
/// when an instance leads, and lets the lease go when done.
struct OnceLease {
    store: Store,
    holder: String,
    term: i64,
    renewal: tokio::task::JoinHandle<()>,
}

impl OnceLease {
    async fn take(store: &Store, config: &Config) -> anyhow::Result<Self> {
        let instance = format!("dtswatch once (pid {})", std::process::id());
        let holder = format!("{instance}#{}", chrono::Utc::now().timestamp_millis());
        let length = config.ha.failover;
        let length_ms = i64::try_from(length.as_millis()).unwrap_or(i64::MAX);
        let Some(term) = lease::acquire(store, &holder, &instance, length_ms, length / 5).await?
        else {
            let mut conn = store.pool().acquire().await?;
            let held = lease::read(&mut conn).await?;
            anyhow::bail!(
                "{} leads this database (term {}): `once` would poll and alert beside it; use `dtswatch status`, or stop every instance first",
                held.instance,
                held.term
            );
        };
        let renewal = {
            let (store, holder) = (store.clone(), holder.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(length / 5).await;
                    if !matches!(
                        lease::renew(&store, &holder, term, length_ms, length / 5).await,
                        Ok(true)
                    ) {
                        tracing::warn!("`once` could not renew the leader lease");
                    }
                }
            })
        };
        Ok(Self {
            store: store.clone(),
            holder,
            term,
            renewal,
        })
    }
}

impl OnceLease {
    /// Lets the lease go (if this fails, it lapses by itself).
    async fn release(self) {
        self.renewal.abort();
        if let Err(error) = lease::release(&self.store, &self.holder, self.term).await {
            tracing::warn!(%error, "could not release the leader lease; it lapses by itself");
        }
    }
}
