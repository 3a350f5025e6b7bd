//! The watchdog loop: measures dtswatch itself — how long since a DTS poll
//! last succeeded, whether notifications went dead, whether the database
//! file is still the one it writes — and hands the checks to the alerting
//! step (`poll::watchdog`), which fires and resolves them like any alert on
//! the pseudo-job `dtswatch`. When the store itself cannot be written, that
//! path is closed too: the watchdog then sends one alert straight to its
//! channels (held in memory, once per outage), and its resolution when the
//! store works again.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::Daemon;
use super::runtime::Runtime;
use crate::config::{WatchdogConfig, format_duration};
use crate::notify::{Channel, Message};
use crate::poll;
use crate::rules::watchdog::{
    DEAD_RULE, FILE_RULE, NO_POLL_RULE, THROTTLE_RULE, no_leader_event, store_event,
};
use crate::rules::{Event, Fact, JobInfo, Notification, WatchdogCheck};
use crate::store::{StoreError, outbox};

/// How long one direct send may take: the watchdog must not hang on a channel.
const DIRECT_SEND_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) async fn run(daemon: Arc<Daemon>, cancel: CancellationToken) {
    // Since when the store has failed, if the alert about it went out.
    let mut store_alert: Option<DateTime<Utc>> = None;
    loop {
        let runtime = daemon.current();
        let every = match &runtime.config.watchdog {
            Some(config) => {
                let checked = check(&daemon, &runtime, config).await;
                if let Err(e) = &checked {
                    tracing::warn!(error = %e.describe(), "watchdog check failed");
                }
                // Polls that cannot be written, or the watchdog's own write failing.
                // A fenced write means this instance stopped leading, not
                // that the database is broken: that is the lease's business.
                let problem = daemon.shared.health.storage().err().or_else(|| {
                    checked
                        .err()
                        .filter(|e| !e.is_fenced())
                        .map(|e| e.describe())
                });
                match (problem, store_alert) {
                    (Some(problem), None) => {
                        tracing::error!(%problem, "the database cannot be written; alerting the watchdog's channels directly");
                        let since = Utc::now();
                        send_direct(&runtime, config, Some(problem), since).await;
                        store_alert = Some(since);
                    }
                    (None, Some(since)) => {
                        send_direct(&runtime, config, None, since).await;
                        store_alert = None;
                    }
                    _ => {}
                }
                (config.no_successful_poll / 4)
                    .clamp(Duration::from_millis(200), Duration::from_secs(30))
            }
            None => Duration::from_secs(30),
        };
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

async fn check(
    daemon: &Daemon,
    runtime: &Runtime,
    config: &WatchdogConfig,
) -> Result<(), StoreError> {
    let health = &daemon.shared.health;
    let quiet_since = health.last_success().unwrap_or(health.started);
    let silent_for = (Utc::now() - quiet_since).to_std().unwrap_or_default();
    let watches_something = !runtime.config.jobs.is_empty() || !runtime.config.discover.is_empty();
    let dead: Vec<outbox::ChannelCounts> = {
        let mut conn = daemon.shared.store.pool().acquire().await?;
        outbox::counts(&mut conn)
            .await?
            .into_iter()
            .filter(|c| c.dead > 0)
            .collect()
    };
    let dead_summary = dead
        .iter()
        .map(|c| {
            format!(
                "{} on `{}` ({})",
                c.dead,
                c.channel,
                c.last_error.as_deref().unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let checks = [
        WatchdogCheck {
            rule: NO_POLL_RULE,
            holds: watches_something && silent_for >= config.no_successful_poll,
            fact: Fact::NoPoll {
                seconds: silent_for.as_secs(),
            },
        },
        WatchdogCheck {
            rule: DEAD_RULE,
            holds: config.dead_letters && !dead.is_empty(),
            fact: Fact::DeadNotifications {
                detail: dead_summary,
            },
        },
        {
            let mut throttled: Vec<String> = runtime
                .ctx
                .clients
                .iter()
                .filter_map(|(account, client)| {
                    let since = client.throttled_since()?;
                    let for_ = (Utc::now() - since).to_std().unwrap_or_default();
                    (for_ >= config.no_successful_poll)
                        .then(|| format!("`{account}` for {}", format_duration(for_)))
                })
                .collect();
            throttled.sort();
            WatchdogCheck {
                rule: THROTTLE_RULE,
                holds: !throttled.is_empty(),
                fact: Fact::Throttled {
                    accounts: throttled,
                },
            }
        },
        {
            let file = daemon.shared.store.file_check();
            WatchdogCheck {
                rule: FILE_RULE,
                holds: file.is_err(),
                fact: Fact::DatabaseReplaced {
                    detail: file.err().unwrap_or_default(),
                },
            }
        },
    ];
    poll::watchdog(&runtime.ctx, &checks).await
}

/// Sends the store alert (firing with `problem`, or resolved) to the
/// watchdog's channels without the outbox; a channel that fails is logged.
async fn send_direct(
    runtime: &Runtime,
    config: &WatchdogConfig,
    problem: Option<String>,
    since: DateTime<Utc>,
) {
    let job = JobInfo::from_config(&poll::watchdog_job());
    let event = store_event(config, job.clone(), problem, since, Utc::now());
    send_event(runtime, config, job, event).await;
}

/// Sends the no-leader alert (`Ok(problem)`) or its resolution
/// (`Err(instance leading again)`) straight to the watchdog's channels: with
/// nobody leading, nothing goes through the outbox.
pub(super) async fn send_no_leader(
    runtime: &Runtime,
    config: &WatchdogConfig,
    state: Result<String, String>,
    since: DateTime<Utc>,
) {
    let job = JobInfo::from_config(&poll::watchdog_job());
    let event = no_leader_event(config, job.clone(), state, since, Utc::now());
    send_event(runtime, config, job, event).await;
}

async fn send_event(runtime: &Runtime, config: &WatchdogConfig, job: JobInfo, event: Event) {
    let message = Message::new(vec![Notification {
        events: vec![event],
        job,
    }]);
    for name in &config.channels {
        let Some(channel_config) = runtime.config.channels.get(name) else {
            continue;
        };
        let sent = match Channel::new(channel_config) {
            Ok(channel) => {
                match tokio::time::timeout(DIRECT_SEND_TIMEOUT, channel.send(&message)).await {
                    Ok(result) => result.map(|_| ()).map_err(|e| e.to_string()),
                    Err(_) => Err("timed out".to_string()),
                }
            }
            Err(e) => Err(e),
        };
        match sent {
            Ok(()) => tracing::info!(channel = %name, "watchdog alert sent directly"),
            Err(error) => {
                tracing::error!(channel = %name, %error, "watchdog alert could not be sent")
            }
        }
    }
}
