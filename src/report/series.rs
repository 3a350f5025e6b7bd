//! A job's latency and progress over its stored successful polls, one point
//! per poll, for the status page's chart. Reads the snapshots the recorder
//! kept; the numbers are the ones alerts were judged on.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::dts::JobSnapshot;
use crate::state::State;
use crate::store::snapshots::SnapshotCache;
use crate::store::{Store, StoreError, from_millis, jobs, polls};

/// The most points one chart draws: a day of polls every 30 s, with room.
pub const MAX_POINTS: usize = 5_000;

/// One successful poll.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    pub at: DateTime<Utc>,
    /// The largest latency any step reported, if any did.
    pub latency_ms: Option<i64>,
    /// The job's progress: the mean over its top-level steps, a finished
    /// step counting 100 %.
    pub progress: Option<f64>,
}

/// The job's points since `since`, oldest first; the newest [`MAX_POINTS`].
pub async fn series(
    store: &Store,
    job: &jobs::JobRow,
    since: DateTime<Utc>,
) -> Result<Vec<Point>, StoreError> {
    let mut conn = store.pool().acquire().await?;
    let rows = polls::since(&mut conn, job.id, since).await?;
    let ok: Vec<_> = rows.into_iter().filter(|r| r.is_ok()).collect();
    let skip = ok.len().saturating_sub(MAX_POINTS);
    let mut cache = SnapshotCache::default();
    let mut volatile: Option<Vec<u8>> = None;
    let mut points = Vec::with_capacity(ok.len() - skip);
    for row in ok.into_iter().skip(skip) {
        let Some(snapshot_id) = row.snapshot else {
            continue;
        };
        volatile = match (row.volatile, volatile) {
            (Some(fresh), _) => Some(fresh),
            (None, Some(kept)) => Some(kept),
            (None, None) => polls::volatile_at(&mut conn, job.id, row.id).await?,
        };
        let snapshot = cache
            .load(
                &mut conn,
                snapshot_id,
                volatile.as_deref().unwrap_or_default(),
            )
            .await?;
        points.push(point(from_millis(row.at), &snapshot));
    }
    Ok(points)
}

/// What one snapshot contributes to the chart. Pure.
pub fn point(at: DateTime<Utc>, snapshot: &JobSnapshot) -> Point {
    let latency_ms = snapshot
        .walk()
        .iter()
        .filter_map(|(_, step, _)| step.latency_ms)
        .max();
    let progress: Vec<f64> = snapshot
        .steps
        .iter()
        .filter_map(|step| match step.state {
            State::Finished => Some(100.0),
            _ => step.progress.map(|p| p.clamp(0, 100) as f64),
        })
        .collect();
    Point {
        at,
        latency_ms,
        progress: (!progress.is_empty())
            .then(|| progress.iter().sum::<f64>() / progress.len() as f64),
    }
}
