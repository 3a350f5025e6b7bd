//! The pruning loop: every `storage.prune_interval`, polls, snapshots and
//! resolved alerts older than `storage.retention` are deleted, in batches.

use std::sync::Arc;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::Daemon;
use crate::store::retention;

pub(super) async fn run(daemon: Arc<Daemon>, cancel: CancellationToken) {
    loop {
        let runtime = daemon.current();
        let cutoff = crate::scheduler::earlier(Utc::now(), runtime.config.storage.retention);
        match retention::prune(&daemon.shared.store, cutoff).await {
            Ok(pruned) if pruned != retention::Pruned::default() => tracing::info!(
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
