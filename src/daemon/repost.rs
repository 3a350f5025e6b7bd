//! Keeps alerts open in Alertmanager: every `repost_interval`, each
//! `alertmanager` channel is sent again the alerts firing through it (of
//! the rules that route to it, not silenced or inhibited), each saying it
//! ends a few intervals later. Alertmanager resolves an alert nobody
//! re-posts, so an alert dtswatch stops speaking about (it was deleted, or
//! dtswatch died) does not stay open for ever. Resolutions are not this
//! loop's: they go through the outbox like every notification.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Daemon;
use crate::notify::alertmanager::Alertmanager;
use crate::report;

/// How often the loop looks whether a channel is due.
const TICK: Duration = Duration::from_secs(1);

pub(super) async fn run(daemon: Arc<Daemon>, cancel: CancellationToken) {
    let mut last: HashMap<String, Instant> = HashMap::new();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(TICK) => {}
        }
        let runtime = daemon.current();
        for (name, channel) in runtime.alertmanagers.iter() {
            // A channel's first interval starts now: what fires was just
            // posted through the outbox.
            let since = *last.entry(name.clone()).or_insert_with(Instant::now);
            if since.elapsed() < channel.repost_interval() {
                continue;
            }
            last.insert(name.clone(), Instant::now());
            repost(&daemon, &runtime.config, name, channel).await;
        }
    }
}

async fn repost(
    daemon: &Daemon,
    config: &crate::config::Config,
    name: &str,
    channel: &Alertmanager,
) {
    let now = Utc::now();
    let events = async {
        let mut conn = daemon.shared.store.pool().acquire().await?;
        report::alerts::firing_events(&mut conn, &config.silences, now).await
    }
    .await;
    let events = match events {
        Ok(events) => events,
        Err(error) => {
            tracing::warn!(channel = name, error = %error.describe(), "cannot read firing alerts to re-post");
            return;
        }
    };
    let routed: Vec<_> = events
        .into_iter()
        .filter(|event| {
            config
                .rules
                .iter()
                .any(|rule| rule.name == event.rule && rule.channels.iter().any(|c| c == name))
        })
        .collect();
    if let Err(error) = channel.repost(&routed, now).await {
        tracing::warn!(channel = name, alerts = routed.len(), %error, "re-posting firing alerts to Alertmanager failed; trying again next interval");
    }
}
