//! The discovery loop: runs every `[[discover]]` entry on its refresh
//! interval and retires jobs no entry lists any more (nor the config), whose
//! alerts then resolve. A failed entry keeps the jobs it found before, and is
//! tried again within a minute; jobs discovered before a restart are retired
//! only once every entry has succeeded once.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::Daemon;
use super::runtime::Runtime;
use crate::discovery;
use crate::metrics::Counter;
use crate::poll;
use crate::scheduler;
use crate::store::jobs::{self, JobSource};

pub(super) async fn run(daemon: Arc<Daemon>, cancel: CancellationToken) {
    let mut next_run: BTreeMap<usize, DateTime<Utc>> = BTreeMap::new();
    let mut reloads = daemon.runtime.subscribe();
    // Jobs discovered before a restart: retired if no entry lists them any more.
    let mut from_before = match discovered_before(&daemon).await {
        Ok(ids) => Some(ids),
        Err(e) => {
            tracing::error!(error = %e, "discovery cannot read the database");
            return;
        }
    };
    loop {
        let runtime = daemon.current();
        if runtime.config.discover.is_empty() {
            from_before = None;
        }
        let mut all_succeeded = true;
        for index in 0..runtime.config.discover.len() {
            if next_run.get(&index).is_some_and(|at| *at > Utc::now()) {
                continue;
            }
            let (succeeded, next) = run_entry(&daemon, &runtime, index).await;
            all_succeeded &= succeeded;
            next_run.insert(index, next);
        }
        if all_succeeded && let Some(ids) = from_before.take() {
            retire_unlisted(&daemon, &runtime, ids).await;
        }
        let wait = scheduler::sleep_until(
            next_run.values().min().copied(),
            Utc::now(),
            Duration::from_secs(60),
        );
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = reloads.changed() => next_run.clear(),
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Discovered jobs in the database that are not retired.
async fn discovered_before(daemon: &Daemon) -> Result<Vec<String>, crate::store::StoreError> {
    let mut conn = daemon.shared.store.pool().acquire().await?;
    Ok(jobs::all(&mut conn)
        .await?
        .into_iter()
        .filter(|j| j.source() == Some(JobSource::Discovery) && j.retired_at.is_none())
        .map(|j| j.dts_job_id)
        .collect())
}

/// Runs entry `index`; returns whether it succeeded and when to run it next.
async fn run_entry(daemon: &Daemon, runtime: &Runtime, index: usize) -> (bool, DateTime<Utc>) {
    let entry = &runtime.config.discover[index];
    let now = Utc::now();
    let Some(client) = runtime.ctx.clients.get(&entry.account) else {
        return (true, scheduler::later(now, entry.refresh));
    };
    let started = std::time::Instant::now();
    match discovery::discover(entry, client).await {
        Ok(found) => {
            daemon.shared.metrics.inc(Counter::DiscoveryRuns, &["ok"]);
            tracing::info!(
                entry = index + 1,
                jobs = found.len(),
                took_ms = started.elapsed().as_millis() as u64,
                "discovery finished"
            );
            let before = daemon.found_by(index, found);
            daemon.jobs_changed.notify_one();
            retire_unlisted(daemon, runtime, before).await;
            (true, scheduler::later(now, entry.refresh))
        }
        Err(failure) => {
            daemon
                .shared
                .metrics
                .inc(Counter::DiscoveryRuns, &["error"]);
            tracing::warn!(entry = index + 1, error = %failure.error, "discovery failed; the jobs found before stay watched");
            (
                false,
                scheduler::later(now, entry.refresh.min(Duration::from_secs(60))),
            )
        }
    }
}

/// Retires every job of `candidates` that neither the config nor any entry lists.
async fn retire_unlisted(daemon: &Daemon, runtime: &Runtime, candidates: Vec<String>) {
    if candidates.is_empty() {
        return;
    }
    let listed: HashSet<String> = daemon
        .watched(&runtime.config)
        .into_iter()
        .map(|w| w.job.id.clone())
        .collect();
    for id in candidates.iter().filter(|id| !listed.contains(*id)) {
        if let Err(e) = poll::retire(&runtime.ctx, id).await {
            tracing::error!(job = %id, error = %e, "could not retire the job");
        }
    }
}
