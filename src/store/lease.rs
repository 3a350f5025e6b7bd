//! The leader lease of instances sharing a PostgreSQL database (migration
//! `postgres/0004`): one row with holder, term and expiry on the server's
//! clock; the list of instances seen; and the fence every leader write
//! passes. Only PostgreSQL has these tables: one SQLite file has one daemon.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use sqlx::AnyConnection;

use super::{Store, StoreError, Tx};

/// Who holds leadership in this process, and for which term (0: nobody).
/// Shared by the leadership loop, which sets it, and the store clones the
/// leader's work writes through, whose transactions check it.
#[derive(Debug)]
pub struct Fence {
    /// This process in the lease: the instance name and a per-start nonce,
    /// so a restarted instance never inherits its predecessor's term.
    pub holder: String,
    term: AtomicI64,
    /// When the lease lapses by this process's monotonic clock (measured
    /// from before the renewal was asked, so never later than the server's).
    valid_until: std::sync::Mutex<Option<Instant>>,
}

impl Fence {
    pub fn new(holder: String) -> Arc<Self> {
        Arc::new(Self {
            holder,
            term: AtomicI64::new(0),
            valid_until: std::sync::Mutex::new(None),
        })
    }

    /// The term this process leads in, if it leads.
    pub fn term(&self) -> Option<i64> {
        Some(self.term.load(Ordering::SeqCst)).filter(|t| *t > 0)
    }

    /// Leads `term` until `until` (a renewal moves `until` on).
    pub fn lead(&self, term: i64, until: Instant) {
        *self.until() = Some(until);
        self.term.store(term, Ordering::SeqCst);
    }

    /// Leads no more.
    pub fn step_down(&self) {
        self.term.store(0, Ordering::SeqCst);
        *self.until() = None;
    }

    /// True while this process leads and its lease has not lapsed by its
    /// own clock: checked right before a message leaves, so a leader that
    /// was frozen past its lease sends nothing when it wakes.
    pub fn leads_now(&self) -> bool {
        self.term().is_some() && self.until().is_some_and(|until| Instant::now() < until)
    }

    fn until(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.valid_until.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The lease as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Lease {
    pub holder: String,
    pub instance: String,
    pub term: i64,
    pub acquired_at: i64,
    pub renewed_at: i64,
    pub expires_at: i64,
    /// The server's clock when this was read.
    pub now: i64,
}

impl Lease {
    /// True while the holder's lease has not lapsed.
    pub fn held(&self) -> bool {
        self.term > 0 && self.expires_at > self.now
    }
}

/// An instance as last seen.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Instance {
    pub holder: String,
    pub instance: String,
    pub started_at: i64,
    pub seen_at: i64,
}

/// Why a fenced write was refused.
pub fn fenced(holder: &str, term: Option<i64>) -> StoreError {
    StoreError::Fenced(match term {
        Some(term) => format!("{holder} no longer holds the leader lease of term {term}"),
        None => format!("{holder} is not the leader"),
    })
}

/// Checks, inside the transaction `conn` is in, that `fence`'s holder still
/// holds an unexpired lease of its term, and share-locks the lease row until
/// the transaction ends: a takeover waits for this transaction, and every
/// transaction of the old term that begins after the takeover fails here.
pub async fn check(conn: &mut AnyConnection, fence: &Fence, lock: bool) -> Result<(), StoreError> {
    let term = fence.term();
    let Some(current) = term else {
        return Err(fenced(&fence.holder, None));
    };
    let sql = if lock {
        "SELECT term FROM ha_lease WHERE id = 1 AND holder = $1 AND term = $2 AND expires_at > dtswatch_now_ms() FOR SHARE"
    } else {
        "SELECT term FROM ha_lease WHERE id = 1 AND holder = $1 AND term = $2 AND expires_at > dtswatch_now_ms()"
    };
    let held: Option<i64> = sqlx::query_scalar(sql)
        .bind(&fence.holder)
        .bind(current)
        .fetch_optional(&mut *conn)
        .await?;
    match held {
        Some(_) => Ok(()),
        None => Err(fenced(&fence.holder, term)),
    }
}

/// Takes the lease for `holder` if it has lapsed; returns the new term.
/// The statement gives up after waiting `wait` for the lease row (a frozen
/// leader's transaction may hold it), on the server: a statement the client
/// merely stopped waiting for could still commit, taking a term nobody knows.
pub async fn acquire(
    store: &Store,
    holder: &str,
    instance: &str,
    length_ms: i64,
    wait: Duration,
) -> Result<Option<i64>, StoreError> {
    let mut tx = begin_waiting(store, wait).await?;
    let term = sqlx::query_scalar(
        r#"UPDATE ha_lease SET holder = $1, instance = $2, term = term + 1,
               acquired_at = dtswatch_now_ms(), renewed_at = dtswatch_now_ms(),
               expires_at = dtswatch_now_ms() + $3
           WHERE id = 1 AND expires_at <= dtswatch_now_ms()
           RETURNING term"#,
    )
    .bind(holder)
    .bind(instance)
    .bind(length_ms)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(term)
}

/// Extends `holder`'s unexpired lease of `term`; false when it is no longer
/// theirs. Waits at most `wait` for the row, like [`acquire`].
pub async fn renew(
    store: &Store,
    holder: &str,
    term: i64,
    length_ms: i64,
    wait: Duration,
) -> Result<bool, StoreError> {
    let mut tx = begin_waiting(store, wait).await?;
    let renewed: Option<i64> = sqlx::query_scalar(
        r#"UPDATE ha_lease SET renewed_at = dtswatch_now_ms(), expires_at = dtswatch_now_ms() + $3
           WHERE id = 1 AND holder = $1 AND term = $2 AND expires_at > dtswatch_now_ms()
           RETURNING term"#,
    )
    .bind(holder)
    .bind(term)
    .bind(length_ms)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(renewed.is_some())
}

/// A transaction whose statements wait at most `wait` for a lock. Dropped
/// before its commit, it is rolled back (its connection is closed).
async fn begin_waiting(store: &Store, wait: Duration) -> Result<Tx, StoreError> {
    let mut tx = store.begin().await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SET LOCAL lock_timeout = {}",
        wait.as_millis().max(1)
    )))
    .execute(&mut *tx)
    .await?;
    Ok(tx)
}

/// Lets the lease lapse now (a leader shutting down), so a standby need not wait for it.
pub async fn release(store: &Store, holder: &str, term: i64) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE ha_lease SET expires_at = dtswatch_now_ms() WHERE id = 1 AND holder = $1 AND term = $2 AND expires_at > dtswatch_now_ms()",
    )
    .bind(holder)
    .bind(term)
    .execute(store.pool())
    .await?;
    Ok(done.rows_affected() > 0)
}

/// The lease, read with the server's clock.
pub async fn read(conn: &mut AnyConnection) -> Result<Lease, StoreError> {
    Ok(sqlx::query_as::<_, Lease>(
        "SELECT holder, instance, term, acquired_at, renewed_at, expires_at, dtswatch_now_ms() AS now FROM ha_lease WHERE id = 1",
    )
    .fetch_one(&mut *conn)
    .await?)
}

/// How long an instance that stopped without saying so (killed, its host
/// gone) stays in `ha_instances`: long enough to be looked into.
const FORGET_AFTER_MS: i64 = 7 * 86_400_000;

/// Records that `holder` is running (every few seconds, leader or standby),
/// and forgets instances not seen for a week.
pub async fn seen(
    store: &Store,
    holder: &str,
    instance: &str,
    started_at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        r#"INSERT INTO ha_instances (holder, instance, started_at, seen_at)
           VALUES ($1, $2, $3, dtswatch_now_ms())
           ON CONFLICT (holder) DO UPDATE SET seen_at = dtswatch_now_ms()"#,
    )
    .bind(holder)
    .bind(instance)
    .bind(started_at)
    .execute(store.pool())
    .await?;
    sqlx::query("DELETE FROM ha_instances WHERE seen_at < dtswatch_now_ms() - $1")
        .bind(FORGET_AFTER_MS)
        .execute(store.pool())
        .await?;
    Ok(())
}

/// Removes `holder` from the instances (a clean shutdown).
pub async fn gone(store: &Store, holder: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM ha_instances WHERE holder = $1")
        .bind(holder)
        .execute(store.pool())
        .await?;
    Ok(())
}

/// Instances seen within `within_ms` of the server's clock.
pub async fn instances(
    conn: &mut AnyConnection,
    within_ms: i64,
) -> Result<Vec<Instance>, StoreError> {
    Ok(sqlx::query_as::<_, Instance>(
        "SELECT holder, instance, started_at, seen_at FROM ha_instances WHERE seen_at > dtswatch_now_ms() - $1 ORDER BY instance, holder",
    )
    .bind(within_ms)
    .fetch_all(&mut *conn)
    .await?)
}

/// Whether this database has the lease table (PostgreSQL) at all.
pub fn supported(store: &Store) -> bool {
    store.backend() == super::Backend::Postgres
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fence_leads_only_in_its_term_and_until_its_deadline() {
        let fence = Fence::new("east#1".into());
        assert_eq!(fence.term(), None);
        assert!(!fence.leads_now());
        fence.lead(4, Instant::now() + Duration::from_secs(60));
        assert_eq!(fence.term(), Some(4));
        assert!(fence.leads_now());
        // Frozen past its lease: still term 4 until the loop notices, but it may not send.
        fence.lead(4, Instant::now() - Duration::from_millis(1));
        assert_eq!(fence.term(), Some(4));
        assert!(!fence.leads_now());
        fence.step_down();
        assert_eq!(fence.term(), None);
        assert!(!fence.leads_now());
        assert!(
            matches!(fenced(&fence.holder, Some(4)), StoreError::Fenced(m) if m.contains("term 4"))
        );
    }

    #[test]
    fn a_lease_is_held_until_it_expires_and_never_in_term_0() {
        let lease = Lease {
            holder: "east#1".into(),
            instance: "east".into(),
            term: 3,
            acquired_at: 1_000,
            renewed_at: 5_000,
            expires_at: 20_000,
            now: 19_999,
        };
        assert!(lease.held());
        assert!(
            !Lease {
                now: 20_000,
                ..lease.clone()
            }
            .held()
        );
        assert!(!Lease { term: 0, ..lease }.held());
    }
}
