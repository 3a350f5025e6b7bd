//! The watchdog loop: measures dtswatch itself — how long since a DTS poll
//! last succeeded, whether notifications went dead — and hands the checks
//! to the alerting step (`poll::watchdog`), which fires and resolves them
//! like any alert on the pseudo-job `dtswatch`.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::Daemon;
use super::runtime::Runtime;
use crate::config::{WatchdogConfig, format_duration};
use crate::poll;
use crate::rules::WatchdogCheck;
use crate::rules::watchdog::{DEAD_RULE, NO_POLL_RULE};
use crate::store::{StoreError, outbox};

pub(super) async fn run(daemon: Arc<Daemon>, cancel: CancellationToken) {
    loop {
        let runtime = daemon.current();
        let every = match &runtime.config.watchdog {
            Some(config) => {
                if let Err(e) = check(&daemon, &runtime, config).await {
                    tracing::warn!(error = %e.describe(), "watchdog check failed");
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
            summary: format!(
                "no DTS poll has succeeded for {}",
                format_duration(silent_for)
            ),
        },
        WatchdogCheck {
            rule: DEAD_RULE,
            holds: config.dead_letters && !dead.is_empty(),
            summary: format!("dead notifications: {dead_summary}"),
        },
    ];
    poll::watchdog(&runtime.ctx, &checks).await
}
