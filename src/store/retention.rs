//! Pruning what is older than `storage.retention`, in small batches with a
//! pause between them so polling is never blocked for long. Each job keeps its
//! latest successful poll whatever its age (it is the next diff's baseline),
//! and the first kept poll gets its volatile numbers written out if it was
//! relying on an older row for them.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Store, StoreError, millis};

/// Rows removed by one pruning pass.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pruned {
    pub polls: u64,
    pub snapshots: u64,
    pub step_states: u64,
}

/// Rows deleted per statement.
const BATCH: i64 = 500;
/// Pause between batches, to let polls write.
const PAUSE: Duration = Duration::from_millis(5);

/// Removes polls before `cutoff` and the snapshots nothing refers to any more.
pub async fn prune(store: &Store, cutoff: DateTime<Utc>) -> Result<Pruned, StoreError> {
    let mut pruned = Pruned::default();
    let cutoff = millis(cutoff);
    let oldest: Option<i64> = sqlx::query_scalar("SELECT at FROM polls ORDER BY id LIMIT 1")
        .fetch_optional(store.pool())
        .await?;
    if oldest.is_none_or(|at| at >= cutoff) {
        return Ok(pruned);
    }
    let jobs: Vec<i64> = sqlx::query_scalar("SELECT id FROM jobs")
        .fetch_all(store.pool())
        .await?;
    for job in jobs {
        pruned.polls += prune_job(store, job, cutoff).await?;
    }
    let (snapshots, step_states) = collect_garbage(store).await?;
    pruned.snapshots = snapshots;
    pruned.step_states = step_states;
    Ok(pruned)
}

async fn prune_job(store: &Store, job: i64, cutoff: i64) -> Result<u64, StoreError> {
    let mut conn = store.pool().acquire().await?;
    let last_ok: Option<i64> =
        sqlx::query_scalar("SELECT MAX(id) FROM polls WHERE job = $1 AND snapshot IS NOT NULL")
            .bind(job)
            .fetch_one(&mut *conn)
            .await?;
    let first_recent: Option<i64> =
        sqlx::query_scalar("SELECT id FROM polls WHERE job = $1 AND at >= $2 ORDER BY id LIMIT 1")
            .bind(job)
            .bind(cutoff)
            .fetch_optional(&mut *conn)
            .await?;
    let keep_from = match (last_ok, first_recent) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) => a,
        (None, Some(b)) => b,
        (None, None) => i64::MAX,
    };
    drop(conn);
    // The first kept successful poll must carry its own volatile numbers.
    let mut tx = store.begin().await?;
    sqlx::query(
        r#"UPDATE polls SET volatile = (
               SELECT p.volatile FROM polls p
               WHERE p.job = polls.job AND p.id < polls.id AND p.volatile IS NOT NULL
               ORDER BY p.id DESC LIMIT 1)
           WHERE id = (SELECT MIN(id) FROM polls WHERE job = $1 AND id >= $2 AND snapshot IS NOT NULL)
             AND volatile IS NULL"#,
    )
    .bind(job)
    .bind(keep_from)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let mut removed = 0;
    loop {
        let deleted = sqlx::query(
            "DELETE FROM polls WHERE id IN (SELECT id FROM polls WHERE job = $1 AND id < $2 ORDER BY id LIMIT $3)",
        )
        .bind(job)
        .bind(keep_from)
        .bind(BATCH)
        .execute(store.pool())
        .await?
        .rows_affected();
        removed += deleted;
        if deleted < BATCH as u64 {
            return Ok(removed);
        }
        tokio::time::sleep(PAUSE).await;
    }
}

/// Deletes snapshots no poll uses, then step states no snapshot uses. The
/// second part runs in one write transaction so that no poll can start
/// using a step state between the check and the delete.
async fn collect_garbage(store: &Store) -> Result<(u64, u64), StoreError> {
    let snapshots = sqlx::query("DELETE FROM snapshots WHERE NOT EXISTS (SELECT 1 FROM polls WHERE polls.snapshot = snapshots.id)")
        .execute(store.pool())
        .await?
        .rows_affected();
    let mut tx = store.begin().await?;
    let mut used = std::collections::HashSet::new();
    let blobs: Vec<Vec<u8>> = sqlx::query_scalar("SELECT steps FROM snapshots")
        .fetch_all(&mut *tx)
        .await?;
    for blob in blobs {
        used.extend(super::snapshots::step_ids(&blob)?);
    }
    let all: Vec<i64> = sqlx::query_scalar("SELECT id FROM step_states")
        .fetch_all(&mut *tx)
        .await?;
    let mut removed = 0;
    for id in all.into_iter().filter(|id| !used.contains(id)) {
        removed += sqlx::query("DELETE FROM step_states WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    }
    tx.commit().await?;
    Ok((snapshots, removed))
}
