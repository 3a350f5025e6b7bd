//! What the daemon builds from its config, swapped whole on reload: the poll
//! context (clients, rules), the deliverer and the poll slots. A reload that
//! fails (a broken file, a client that cannot be built) is logged and the
//! running config stays in effect.

use std::path::Path;
use std::sync::Arc;

use crate::aliyun::Environment;
use crate::config::{self, ChannelKind, Config};
use crate::metrics::{Counter, Gauge, Metrics};
use crate::notify::Channel;
use crate::notify::alertmanager::Alertmanager;
use crate::notify::outbox::Deliverer;
use crate::poll::{Alerting, Clients, Clock, Health, PollContext, Recorder};
use crate::store::Store;

/// What lives as long as the process, whatever the config says.
pub(super) struct Shared {
    /// The leader's work writes here (fenced when instances share the database).
    pub store: Store,
    /// Unfenced: operator actions (audit rows) are written by any instance.
    pub admin: Store,
    pub recorder: Arc<Recorder>,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    pub env: Environment,
}

pub(super) struct Runtime {
    pub config: Arc<Config>,
    pub ctx: Arc<PollContext>,
    pub deliverer: Arc<Deliverer>,
    /// `poll.concurrency` slots shared by every poll.
    pub polls: Arc<tokio::sync::Semaphore>,
    /// The `alertmanager` channels, by name, for re-posting firing alerts.
    pub alertmanagers: Vec<(String, Alertmanager)>,
}

impl Runtime {
    pub fn build(config: Config, shared: &Shared) -> anyhow::Result<Self> {
        let clients = Clients::build(&config, &shared.env, Some(&shared.metrics))?;
        let deliverer = Deliverer::new(shared.store.clone(), &config)
            .map_err(anyhow::Error::msg)?
            .with_metrics(shared.metrics.clone());
        let ctx = PollContext {
            clients,
            alerting: Alerting::from_config(&config),
            recorder: shared.recorder.clone(),
            metrics: shared.metrics.clone(),
            health: shared.health.clone(),
            delivery: deliverer.waker(),
            clock: Clock::System,
            sub_step_metrics: config.server.metrics_sub_steps,
        };
        let mut alertmanagers = Vec::new();
        for channel in config.channels.values() {
            if matches!(channel.kind, ChannelKind::Alertmanager(_))
                && let Channel::Alertmanager(am) =
                    Channel::new(channel).map_err(anyhow::Error::msg)?
            {
                alertmanagers.push((channel.name.clone(), am));
            }
        }
        Ok(Self {
            alertmanagers,
            polls: Arc::new(tokio::sync::Semaphore::new(config.poll.concurrency)),
            ctx: Arc::new(ctx),
            deliverer: Arc::new(deliverer),
            config: Arc::new(config),
        })
    }

    /// Loads the config at `path` again; an error (logged) keeps the running one.
    pub fn reload(&self, path: &Path, shared: &Shared) -> Result<Self, String> {
        let result = config::load(path)
            .map_err(|errors| {
                for line in errors.lines() {
                    tracing::error!("{line}");
                }
                format!("{} problem(s) in {}", errors.errors.len(), path.display())
            })
            .and_then(|config| {
                if config.storage.describe() != self.config.storage.describe() {
                    tracing::warn!("the storage changed; the new database is used after a restart");
                }
                Runtime::build(config, shared).map_err(|e| format!("{e:#}"))
            });
        match result {
            Ok(runtime) => {
                shared.metrics.inc(Counter::ConfigReloads, &["ok"]);
                loaded(&shared.metrics, true);
                tracing::info!(
                    jobs = runtime.config.jobs.len(),
                    rules = runtime.config.rules.len(),
                    channels = runtime.config.channels.len(),
                    "config reloaded"
                );
                Ok(runtime)
            }
            Err(reason) => {
                shared.metrics.inc(Counter::ConfigReloads, &["error"]);
                loaded(&shared.metrics, false);
                tracing::error!(
                    reason,
                    "config reload rejected; the running config stays in effect"
                );
                Err(reason)
            }
        }
    }
}

/// `dtswatch_config_last_reload_successful` and, on success, its timestamp.
pub(super) fn loaded(metrics: &Metrics, ok: bool) {
    metrics.set(
        Gauge::ConfigReloadSuccessful,
        &[],
        if ok { 1.0 } else { 0.0 },
    );
    if ok {
        metrics.set(
            Gauge::ConfigReloadTimestamp,
            &[],
            chrono::Utc::now().timestamp() as f64,
        );
    }
}
