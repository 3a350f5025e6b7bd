//! `dtswatch run`: the long-running service. It starts the loops — the tick
//! loop that polls every watched job on its schedule (`schedule.rs`), the
//! discovery loop (`discover.rs`), the watchdog (`watchdog.rs`), pruning
//! (`prune.rs`), re-posting to Alertmanager (`repost.rs`), the delivery
//! workers and the HTTP server (`http/`: health, metrics, API, status
//! page). With a shared PostgreSQL database (`ha.rs`) the loops run only
//! while this instance holds the leader lease; a standby serves HTTP and
//! waits. It reloads the config on SIGHUP or `POST /api/v1/reload`
//! (`runtime.rs`, keeping the old one if the new one is broken), and when
//! `shutdown` resolves stops
//! scheduling, lets in-flight polls and deliveries finish within the grace
//! period, and returns.

mod discover;
mod ha;
mod http;
mod plan;
mod prune;
mod repost;
mod runtime;
mod schedule;
mod systemd;
mod watchdog;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::actions::{self, Actor};
use crate::aliyun::Environment;
use crate::config::Config;
use crate::discovery::{self, Found};
use crate::metrics::Metrics;
use crate::poll::{Health, Recorder, Watched};
use crate::store::Store;
use http::{ReloadRequest, ServerState};
use runtime::{Runtime, Shared};

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

/// What every loop shares.
struct Daemon {
    shared: Shared,
    runtime: watch::Sender<Arc<Runtime>>,
    /// Jobs found by each `[[discover]]` entry, by entry index.
    discovered: std::sync::Mutex<BTreeMap<usize, Found>>,
    /// Told when discovery changed the watch list.
    jobs_changed: Notify,
    echo: bool,
}

impl Daemon {
    fn current(&self) -> Arc<Runtime> {
        self.runtime.borrow().clone()
    }

    /// Configured jobs, then discovered ones the config does not name.
    fn watched(&self, config: &Config) -> Vec<Watched> {
        let discovered = self.discovered.lock().unwrap_or_else(|p| p.into_inner());
        discovery::merge(&config.jobs, discovered.values())
    }

    /// Keeps what entry `index` found; returns the ids it found before and not now.
    fn found_by(&self, index: usize, found: Found) -> Vec<String> {
        let mut discovered = self.discovered.lock().unwrap_or_else(|p| p.into_inner());
        let before = discovered.insert(index, found).unwrap_or_default();
        let now = &discovered[&index];
        before
            .into_keys()
            .filter(|id| !now.contains_key(id))
            .collect()
    }
}

/// Runs the daemon until `shutdown` resolves.
pub async fn run(
    config: Config,
    env: Environment,
    shutdown: impl Future<Output = ()>,
    mut options: Options,
) -> anyhow::Result<()> {
    // One daemon per SQLite file; on PostgreSQL the leader lease decides.
    let _lock = match config.storage.url {
        None => Some(crate::store::lock::acquire(&config.storage.path)?),
        Some(_) => None,
    };
    let store = Store::connect(&config.storage)
        .await
        .with_context(|| format!("opening the database {}", config.storage.describe()))?;
    let metrics = Arc::new(Metrics::new());
    let leadership = config
        .storage
        .url
        .as_ref()
        .map(|_| ha::Leadership::new(&config.ha, store.clone(), metrics.clone()));
    // The leader's work writes through a fenced clone: once this instance
    // stops leading, its writes fail instead of landing.
    let work_store = match &leadership {
        Some(leadership) => store.fenced(leadership.fence.clone()),
        None => store.clone(),
    };
    let shared = Shared {
        recorder: Arc::new(Recorder::new(work_store.clone())),
        metrics,
        health: Arc::new(Health::new(config.server.unhealthy_after, Utc::now())),
        store: work_store,
        admin: store.clone(),
        env,
    };
    let runtime = Arc::new(Runtime::build(config, &shared)?);
    runtime::loaded(&shared.metrics, true);
    let listen = runtime.config.server.listen;
    let grace = runtime.config.delivery.drain_timeout;
    for warning in &runtime.config.warnings {
        tracing::warn!("{warning}");
    }
    tracing::info!(
        jobs = runtime.config.jobs.len(),
        discover = runtime.config.discover.len(),
        database = %runtime.config.storage.describe(),
        instance = leadership.as_ref().map(|l| l.instance.as_str()),
        "dtswatch started"
    );
    let (runtime_tx, runtime_rx) = watch::channel(runtime.clone());
    let (reload_tx, mut reload_rx) = tokio::sync::mpsc::channel::<ReloadRequest>(4);
    let server_state = ServerState {
        metrics: shared.metrics.clone(),
        health: shared.health.clone(),
        store: store.clone(),
        fence: leadership.as_ref().map(|l| l.fence.clone()),
        runtime: runtime_rx,
        reloads: reload_tx,
    };
    let daemon = Arc::new(Daemon {
        shared,
        runtime: runtime_tx,
        discovered: Default::default(),
        jobs_changed: Notify::new(),
        echo: options.echo,
    });

    let background = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    if let Some(listen) = listen {
        let tls = runtime
            .config
            .server
            .tls
            .as_ref()
            .map(|(cert, key)| (cert.as_path(), key.as_path()));
        let addr = http::serve(listen, tls, server_state, background.clone())
            .await
            .with_context(|| format!("serving HTTP on {listen}"))?;
        tracing::info!(
            %addr,
            tls = tls.is_some(),
            "serving the status page, /api/v1, /healthz and /metrics"
        );
        if let Some(tx) = options.listening.take() {
            let _ = tx.send(addr);
        }
    }
    tasks.spawn(systemd::keep_alive(background.clone()));
    // Without a lease this instance leads from the start; with one, the
    // leadership loop says when.
    let (leading_tx, mut leading) = watch::channel(None::<i64>);
    let mut work = match &leadership {
        None => Some(Work::start(&daemon)),
        Some(leadership) => {
            tasks.spawn(leadership.clone().run(
                leading_tx,
                daemon.runtime.subscribe(),
                background.clone(),
            ));
            None
        }
    };
    systemd::notify(&format!(
        "READY=1\nSTATUS={}",
        match &work {
            Some(_) => format!("watching {} job(s)", runtime.config.jobs.len()),
            None => "standby: waiting for the leader lease".into(),
        }
    ));

    let mut hangups = hangup_signals();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(()) = hangups.recv() => {
                let outcome = reload(&daemon, &options, work.as_mut()).await;
                audit_reload(&daemon, &Actor::signal(), outcome).await;
            }
            Some(request) = reload_rx.recv() => {
                let outcome = reload(&daemon, &options, work.as_mut()).await;
                audit_reload(&daemon, &request.actor, outcome.clone()).await;
                let _ = request.done.send(outcome);
            }
            Ok(()) = leading.changed(), if leadership.is_some() => {
                let term = *leading.borrow_and_update();
                if let Some(old) = work.take() {
                    old.abandon().await;
                    systemd::notify("STATUS=standby: lost the leader lease");
                }
                if let Some(term) = term {
                    work = Some(lead(&daemon, term).await);
                    systemd::notify(&format!("STATUS=leading (term {term})"));
                }
            }
        }
    }

    systemd::notify("STOPPING=1");
    if let Some(work) = work.take() {
        work.finish(&daemon, grace).await;
    }
    if let Some(leadership) = &leadership {
        leadership.release().await;
    }
    background.cancel();
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Starts a leadership term: what another leader may have changed is read
/// again from the database (baselines, alert states, silences), then the
/// leader's work starts.
async fn lead(daemon: &Arc<Daemon>, term: i64) -> Work {
    daemon.shared.recorder.forget_all().await;
    let config = (*daemon.current().config).clone();
    match Runtime::build(config, &daemon.shared) {
        Ok(fresh) => {
            daemon.runtime.send_replace(Arc::new(fresh));
        }
        Err(error) => {
            tracing::error!(term, error = %format!("{error:#}"), "could not rebuild the runtime; leading with the loaded one");
        }
    }
    Work::start(daemon)
}

/// The leader's work: polling, discovery, the watchdog, pruning, re-posting
/// to Alertmanager and delivery.
struct Work {
    scheduling: CancellationToken,
    background: CancellationToken,
    polls: TaskTracker,
    tasks: tokio::task::JoinSet<()>,
    delivery: Delivery,
}

impl Work {
    fn start(daemon: &Arc<Daemon>) -> Self {
        let scheduling = CancellationToken::new();
        let background = CancellationToken::new();
        let polls = TaskTracker::new();
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(schedule::run(
            daemon.clone(),
            scheduling.clone(),
            polls.clone(),
        ));
        tasks.spawn(discover::run(daemon.clone(), scheduling.clone()));
        tasks.spawn(watchdog::run(daemon.clone(), scheduling.clone()));
        tasks.spawn(prune::run(daemon.clone(), background.clone()));
        tasks.spawn(repost::run(daemon.clone(), scheduling.clone()));
        Self {
            delivery: Delivery::start(&daemon.current()),
            scheduling,
            background,
            polls,
            tasks,
        }
    }

    /// A clean stop: no new polls, the ones in flight finish, and what they
    /// queued is sent, all within `grace`.
    async fn finish(mut self, daemon: &Daemon, grace: Duration) {
        tracing::info!("shutting down: no new polls; finishing the ones in flight");
        self.scheduling.cancel();
        self.polls.close();
        let deadline = tokio::time::Instant::now() + grace;
        if tokio::time::timeout_at(deadline, self.polls.wait())
            .await
            .is_err()
        {
            tracing::warn!("polls still running after the grace period; leaving them");
        }
        // Let the workers send what the last polls queued, within the grace period.
        let deliverer = daemon.current().deliverer.clone();
        loop {
            let pending = deliverer.pending(Some(Utc::now())).await.unwrap_or(0);
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
        self.delivery.stop().await;
        self.background.cancel();
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }

    /// Leadership lost: everything stops now (its writes are fenced anyway).
    async fn abandon(mut self) {
        self.scheduling.cancel();
        self.background.cancel();
        self.delivery.stop().await;
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        self.polls.close();
    }
}

/// Reloads the config file; the running config stays if the new one is broken.
async fn reload(daemon: &Daemon, options: &Options, work: Option<&mut Work>) -> Result<(), String> {
    let Some(path) = &options.config_path else {
        return Err("this daemon was not started from a config file".into());
    };
    systemd::notify("RELOADING=1");
    let outcome = match daemon.current().reload(path, &daemon.shared) {
        Ok(new) => {
            let new = Arc::new(new);
            daemon.runtime.send_replace(new.clone());
            if let Some(work) = work {
                std::mem::replace(&mut work.delivery, Delivery::start(&new))
                    .stop()
                    .await;
            }
            Ok(())
        }
        Err(reason) => Err(reason),
    };
    systemd::notify("READY=1");
    outcome
}

/// Records a reload in the audit table (and so in every job's history).
async fn audit_reload(daemon: &Daemon, actor: &Actor, outcome: Result<(), String>) {
    if let Err(error) =
        actions::record_reload(&daemon.shared.admin, actor, outcome, Utc::now()).await
    {
        tracing::warn!(%error, "the reload could not be recorded in the audit table");
    }
}

/// The delivery workers of one runtime.
struct Delivery {
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Delivery {
    fn start(runtime: &Arc<Runtime>) -> Self {
        let cancel = CancellationToken::new();
        let task = tokio::spawn(runtime.deliverer.clone().run(cancel.clone()));
        Self { cancel, task }
    }

    async fn stop(self) {
        self.cancel.cancel();
        let _ = self.task.await;
    }
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
