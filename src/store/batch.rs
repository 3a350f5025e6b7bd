//! Group commit. Polls that finish within a few milliseconds of each other
//! share one SQLite transaction, so a busy cycle pays for one `BEGIN`, one
//! `COMMIT` and one write of each touched page to the WAL per batch rather
//! than per poll (a commit costs as much CPU as twenty inserts).
//!
//! Each member stays atomic. A member's writes are a re-runnable closure: if
//! anything goes wrong in a batch (a member's write fails, or a member is
//! cancelled half-way), the whole batch is rolled back and every member
//! writes again in a transaction of its own, so a failure is reported to the
//! poll it belongs to and costs the others nothing but time.
//!
//! Rows every member writes (one poll row each) can be handed to the batch's
//! [`Deferred`] instead, which writes them all in one statement just before
//! the commit: in a steady cycle a poll then costs no SQL round trip at all.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Mutex, watch};
use tokio::time::Instant;

use super::{Store, StoreError, Tx};

/// One writer's part of a batch: re-runnable, since a failed batch runs it again alone.
pub trait Work<D>: Send {
    type Output: Send;

    fn run<'a>(
        &'a mut self,
        tx: &'a mut Tx,
        deferred: &'a mut D,
    ) -> impl Future<Output = Result<Self::Output, StoreError>> + Send + 'a;
}

/// Rows a transaction's writers queue to be written together just before it commits.
pub trait Deferred: Default + Send + 'static {
    /// Called once the transaction has begun, before any writer runs.
    fn begin<'a>(
        &'a mut self,
        tx: &'a mut Tx,
    ) -> impl Future<Output = Result<(), StoreError>> + Send + 'a;

    /// Writes what was queued; called once, just before the commit.
    fn flush<'a>(
        &'a mut self,
        tx: &'a mut Tx,
    ) -> impl Future<Output = Result<(), StoreError>> + Send + 'a;
}

/// Nothing deferred.
impl Deferred for () {
    async fn begin(&mut self, _: &mut Tx) -> Result<(), StoreError> {
        Ok(())
    }

    async fn flush(&mut self, _: &mut Tx) -> Result<(), StoreError> {
        Ok(())
    }
}

/// How a batch ended, as its members learn it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Committed,
    RolledBack,
}

struct OpenBatch<D> {
    tx: Tx,
    deferred: D,
    generation: u64,
    members: usize,
    /// False while a member is writing: a member cancelled half-way leaves it false.
    clean: bool,
    verdict: watch::Sender<Option<Verdict>>,
}

/// Shares transactions between concurrent writers (see the module docs).
pub struct GroupCommit<D = ()> {
    store: Store,
    window: Duration,
    max_members: usize,
    open: std::sync::Arc<Mutex<Option<OpenBatch<D>>>>,
    generations: AtomicU64,
}

impl<D: Deferred> GroupCommit<D> {
    /// A batch commits `window` after it opens, or as soon as it has `max_members`.
    /// A zero window gives every writer its own transaction.
    pub fn new(store: Store, window: Duration, max_members: usize) -> Self {
        Self {
            store,
            window,
            max_members: max_members.max(1),
            open: Default::default(),
            generations: AtomicU64::new(0),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs `work` in a shared transaction and returns once that transaction
    /// committed; `work` may run a second time, alone, if the batch failed.
    pub async fn write<W: Work<D>>(&self, mut work: W) -> Result<W::Output, StoreError> {
        if self.window.is_zero() {
            return self.alone(&mut work).await;
        }
        let (value, mut verdict) = {
            let mut open = self.open.lock().await;
            if open.is_none() {
                *open = Some(self.open_batch().await?);
            }
            let Some(batch) = open.as_mut() else {
                return self.alone(&mut work).await;
            };
            batch.clean = false;
            let value = match work.run(&mut batch.tx, &mut batch.deferred).await {
                Ok(value) => value,
                Err(_) => {
                    // The batch cannot be trusted any more: its members write
                    // again on their own, this one included (its error may
                    // have been the batch's, not its own).
                    if let Some(batch) = open.take() {
                        finish(batch, Verdict::RolledBack).await;
                    }
                    drop(open);
                    return self.alone(&mut work).await;
                }
            };
            batch.clean = true;
            batch.members += 1;
            let verdict = batch.verdict.subscribe();
            if batch.members >= self.max_members
                && let Some(batch) = open.take()
            {
                finish(batch, Verdict::Committed).await;
            }
            (value, verdict)
        };
        let outcome = verdict
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|v| *v)
            .unwrap_or(Verdict::RolledBack);
        match outcome {
            Verdict::Committed => Ok(value),
            Verdict::RolledBack => self.alone(&mut work).await,
        }
    }

    async fn alone<W: Work<D>>(&self, work: &mut W) -> Result<W::Output, StoreError> {
        let mut tx = self.store.begin().await?;
        let mut deferred = D::default();
        deferred.begin(&mut tx).await?;
        let value = work.run(&mut tx, &mut deferred).await?;
        deferred.flush(&mut tx).await?;
        tx.commit().await?;
        Ok(value)
    }

    /// Begins a batch and arms the timer that commits it when its window closes.
    async fn open_batch(&self) -> Result<OpenBatch<D>, StoreError> {
        let mut tx = self.store.begin().await?;
        let mut deferred = D::default();
        deferred.begin(&mut tx).await?;
        let generation = self.generations.fetch_add(1, Ordering::Relaxed);
        let (verdict, _) = watch::channel(None);
        let open = self.open.clone();
        let closes = Instant::now() + self.window;
        tokio::spawn(async move {
            tokio::time::sleep_until(closes).await;
            let mut open = open.lock().await;
            if open.as_ref().is_some_and(|b| b.generation == generation)
                && let Some(batch) = open.take()
            {
                finish(batch, Verdict::Committed).await;
            }
        });
        Ok(OpenBatch {
            tx,
            deferred,
            generation,
            members: 0,
            clean: true,
            verdict,
        })
    }
}

/// Commits (or rolls back) a batch in a task of its own, so that a caller
/// cancelled while waiting cannot leave the outcome unknown, then tells the members.
async fn finish<D: Deferred>(batch: OpenBatch<D>, wanted: Verdict) {
    let OpenBatch {
        mut tx,
        mut deferred,
        clean,
        verdict,
        ..
    } = batch;
    let ended = tokio::spawn(async move {
        if wanted == Verdict::Committed && clean {
            let committed = async {
                deferred.flush(&mut tx).await?;
                tx.commit().await?;
                Ok::<_, StoreError>(())
            };
            // A failed flush drops the transaction, which rolls it back.
            match committed.await {
                Ok(()) => Verdict::Committed,
                Err(error) => {
                    tracing::warn!(%error, "a batch of polls did not commit; each is written again alone");
                    Verdict::RolledBack
                }
            }
        } else {
            if let Err(error) = tx.rollback().await {
                tracing::warn!(%error, "rolling back a batch of polls");
            }
            Verdict::RolledBack
        }
    });
    let outcome = ended.await.unwrap_or(Verdict::RolledBack);
    verdict.send_replace(Some(outcome));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("batch.db"))
            .await
            .expect("store");
        sqlx::query("CREATE TABLE t (n INTEGER NOT NULL UNIQUE)")
            .execute(store.pool())
            .await
            .expect("table");
        (dir, store)
    }

    async fn count(store: &Store) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM t")
            .fetch_one(store.pool())
            .await
            .expect("count")
    }

    async fn insert(tx: &mut Tx, n: i64) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO t (n) VALUES ($1)")
            .bind(n)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Inserts `n` (twice when `twice`: a write that fails), then hangs if `hang`.
    struct Insert {
        n: i64,
        twice: bool,
        hang: bool,
    }

    fn insert_of(n: i64) -> Insert {
        Insert {
            n,
            twice: false,
            hang: false,
        }
    }

    impl Work<()> for Insert {
        type Output = i64;

        async fn run(&mut self, tx: &mut Tx, _: &mut ()) -> Result<i64, StoreError> {
            insert(tx, self.n).await?;
            if self.twice {
                insert(tx, self.n).await?;
            }
            if self.hang {
                std::future::pending::<()>().await;
            }
            Ok(self.n)
        }
    }

    #[tokio::test]
    async fn concurrent_writers_share_transactions_and_all_land() {
        let (_dir, store) = store().await;
        let group = Arc::new(GroupCommit::<()>::new(
            store.clone(),
            Duration::from_millis(20),
            8,
        ));
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..50 {
            let group = group.clone();
            tasks.spawn(async move { group.write(insert_of(n)).await });
        }
        while let Some(done) = tasks.join_next().await {
            done.expect("task").expect("written");
        }
        assert_eq!(count(&store).await, 50);
        assert!(
            group.generations.load(Ordering::Relaxed) < 50,
            "some writers shared a batch"
        );
    }

    #[tokio::test]
    async fn a_failing_member_fails_alone_and_the_others_land() {
        let (_dir, store) = store().await;
        let group = Arc::new(GroupCommit::<()>::new(
            store.clone(),
            Duration::from_millis(50),
            100,
        ));
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..10 {
            let group = group.clone();
            // Writer 5 inserts a row, then a duplicate: its write fails as a whole.
            tasks.spawn(async move {
                let result = group
                    .write(Insert {
                        n,
                        twice: n == 5,
                        hang: false,
                    })
                    .await;
                (n, result.is_ok())
            });
        }
        let mut outcomes = Vec::new();
        while let Some(done) = tasks.join_next().await {
            outcomes.push(done.expect("task"));
        }
        outcomes.sort();
        let failed: Vec<i64> = outcomes
            .iter()
            .filter(|(_, ok)| !ok)
            .map(|(n, _)| *n)
            .collect();
        assert_eq!(failed, vec![5]);
        assert_eq!(count(&store).await, 9);
        let five: i64 = sqlx::query_scalar("SELECT count(*) FROM t WHERE n = 5")
            .fetch_one(store.pool())
            .await
            .expect("count");
        assert_eq!(five, 0, "the failed member left nothing behind");
    }

    #[tokio::test]
    async fn a_member_cancelled_half_way_leaves_nothing_behind() {
        let (_dir, store) = store().await;
        let group = Arc::new(GroupCommit::<()>::new(
            store.clone(),
            Duration::from_millis(50),
            100,
        ));
        let first = {
            let group = group.clone();
            tokio::spawn(async move { group.write(insert_of(1)).await })
        };
        tokio::time::sleep(Duration::from_millis(5)).await;
        // This writer inserts, then hangs; it is cancelled while its batch is open.
        let hanging = {
            let group = group.clone();
            tokio::spawn(async move {
                group
                    .write(Insert {
                        n: 2,
                        twice: false,
                        hang: true,
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        hanging.abort();
        first.await.expect("task").expect("the other writer lands");
        let rows: Vec<i64> = sqlx::query_scalar("SELECT n FROM t ORDER BY n")
            .fetch_all(store.pool())
            .await
            .expect("rows");
        assert_eq!(rows, vec![1]);
    }

    #[tokio::test]
    async fn a_zero_window_writes_each_alone() {
        let (_dir, store) = store().await;
        let group = GroupCommit::<()>::new(store.clone(), Duration::ZERO, 8);
        group.write(insert_of(1)).await.expect("written");
        assert!(group.write(insert_of(1)).await.is_err());
        assert_eq!(count(&store).await, 1);
    }
}
