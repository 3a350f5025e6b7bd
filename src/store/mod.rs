//! The database through sqlx's `Any` driver: the embedded SQLite file
//! (`storage.path`: WAL, busy timeout, foreign keys) or a shared PostgreSQL
//! (`storage.url`), each with its own migrations (`migrations/sqlite`,
//! `migrations/postgres`) and the same schema meaning; and one submodule
//! per table family. Queries are written once, with `$N` parameters, in SQL
//! both engines speak; the few that differ ask [`backend`]. Every function
//! takes `now` (or a time) as an argument; nothing here reads the clock.

pub mod alerts;
pub mod audit;
pub mod batch;
pub mod jobs;
pub mod lease;
pub mod lock;
pub mod outbox;
pub mod polls;
pub mod retention;
pub mod silences;
pub mod snapshots;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool};

use crate::config::StorageConfig;

/// Which engine a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The engine behind `conn`, for the few statements the two write differently.
pub fn backend(conn: &AnyConnection) -> Backend {
    if conn.backend_name().eq_ignore_ascii_case("PostgreSQL") {
        Backend::Postgres
    } else {
        Backend::Sqlite
    }
}

/// A write transaction (`BEGIN IMMEDIATE` … `COMMIT`) on a pooled
/// connection. A transaction that is not committed — a failed statement, a
/// failed `COMMIT` (a full disk), a dropped future — never goes back to the
/// pool: its connection is closed, which makes SQLite roll back, so no later
/// writer can find a connection stuck inside a half-finished transaction.
/// (sqlx's own `Transaction` leaves the connection's transaction depth at 1
/// when SQLite rolled back by itself after an I/O error, and every later
/// `BEGIN` on it fails until restart.)
pub struct Tx {
    conn: PoolConnection<Any>,
    finished: bool,
}

impl Tx {
    pub async fn commit(mut self) -> Result<(), StoreError> {
        sqlx::query("COMMIT").execute(&mut *self.conn).await?;
        self.finished = true;
        Ok(())
    }

    pub async fn rollback(mut self) -> Result<(), StoreError> {
        sqlx::query("ROLLBACK").execute(&mut *self.conn).await?;
        self.finished = true;
        Ok(())
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        if !self.finished {
            self.conn.close_on_drop();
        }
    }
}

impl std::ops::Deref for Tx {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Open { path: String, source: sqlx::Error },
    #[error("migrating the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    /// A write of the leader's work from a process that no longer leads.
    #[error("fenced: {0}")]
    Fenced(String),
    #[error(
        "no database at {path}: no `dtswatch run` or `once` has used this config's storage.path yet (is -c the daemon's config?)"
    )]
    Missing { path: String },
}

impl StoreError {
    /// True when SQLite could not grow the database or its WAL: the disk (or
    /// the quota) is full. Nothing is lost: the write is abandoned whole and
    /// tried again by the next poll or delivery.
    pub fn is_disk_full(&self) -> bool {
        match self {
            // SQLITE_FULL, PostgreSQL's disk_full.
            StoreError::Sql(sqlx::Error::Database(e)) => {
                matches!(e.code().as_deref(), Some("13" | "53100"))
                    || e.message().contains("disk is full")
            }
            StoreError::Sql(sqlx::Error::Io(e))
            | StoreError::Open {
                source: sqlx::Error::Io(e),
                ..
            } => e.kind() == std::io::ErrorKind::StorageFull,
            _ => false,
        }
    }

    /// True when the write was refused because this process no longer
    /// leads: not a database problem, and nothing to alert about.
    pub fn is_fenced(&self) -> bool {
        matches!(self, StoreError::Fenced(_))
    }

    /// The error for logs and `/healthz`, saying what to do when the disk is full.
    pub fn describe(&self) -> String {
        if self.is_disk_full() {
            format!(
                "the disk holding the database is full; free space there and dtswatch writes again on its next poll ({self})"
            )
        } else {
            self.to_string()
        }
    }
}

/// The database, shared by every task.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// The SQLite file opened, and its identity (device, inode) at the time.
    file: Option<Arc<OpenedFile>>,
    /// Set on the leader's clones (PostgreSQL): every transaction checks the lease.
    fence: Option<Arc<lease::Fence>>,
}

/// A file opened and its identity (device, inode) at the time.
type OpenedFile = (PathBuf, Option<(u64, u64)>);

/// The device and inode of a file, if it exists.
fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// How long PostgreSQL lets a transaction sit idle before ending it: a
/// frozen leader's transaction holds the lease row's share lock, and a
/// takeover waits for it. dtswatch's own transactions idle for milliseconds
/// (deliveries, which idle while they send, set their own limit).
const IDLE_IN_TRANSACTION: Duration = Duration::from_secs(5);

/// Registers sqlx's drivers for the `Any` pool (once per process).
fn install_drivers() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(sqlx::any::install_default_drivers);
}

/// Unix milliseconds, the unit of every time column.
pub fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

pub fn from_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// How a command opens the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// The daemon and `once`: created and migrated if needed.
    Create,
    /// Commands that write (`silence add`, `outbox retry`): only an existing file.
    Existing,
    /// Commands that only read: an existing file, opened read-only.
    ReadOnly,
}

impl Store {
    /// Opens the database, creating it (and its directory) if needed, and migrates it.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, Access::Create).await
    }

    /// Opens an existing database for reading only: `status`, `history` and
    /// the listing commands cannot change it (not even by migrating it) and
    /// never create one.
    pub async fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        Self::require_file(path)?;
        Self::open_with(path, Access::ReadOnly).await
    }

    fn require_file(path: &Path) -> Result<(), StoreError> {
        if path.is_file() {
            Ok(())
        } else {
            Err(StoreError::Missing {
                path: path.display().to_string(),
            })
        }
    }

    /// Opens a database a daemon (or `once`) has created; never creates one,
    /// so an operator's command with the wrong `-c` says so instead of
    /// reading (and leaving behind) an empty file.
    pub async fn open_existing(path: &Path) -> Result<Self, StoreError> {
        Self::require_file(path)?;
        Self::open_with(path, Access::Existing).await
    }

    async fn open_with(path: &Path, access: Access) -> Result<Self, StoreError> {
        let create = access == Access::Create;
        if create && let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| StoreError::Open {
                path: path.display().to_string(),
                source: sqlx::Error::Io(e),
            })?;
        }
        let mode = match access {
            Access::Create => "rwc",
            Access::Existing => "rw",
            Access::ReadOnly => "ro",
        };
        let url = format!(
            "sqlite://{}?mode={mode}",
            percent_encoding::utf8_percent_encode(
                &path.display().to_string(),
                percent_encoding::NON_ALPHANUMERIC
            )
            .to_string()
            .replace("%2F", "/")
        );
        let opened = |source| StoreError::Open {
            path: path.display().to_string(),
            source,
        };
        let options = AnyConnectOptions::from_str(&url).map_err(opened)?;
        let read_only = access == Access::ReadOnly;
        install_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(60))
            // A local file needs no liveness ping on every checkout.
            .test_before_acquire(false)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    // 512 KiB of page cache per connection (SQLite's default
                    // is 2 MiB): writes append, and reads are small.
                    let mut pragmas = vec![
                        "PRAGMA busy_timeout = 30000",
                        "PRAGMA foreign_keys = ON",
                        "PRAGMA synchronous = NORMAL",
                        "PRAGMA cache_size = -512",
                    ];
                    if !read_only {
                        pragmas.insert(0, "PRAGMA journal_mode = WAL");
                    }
                    for pragma in pragmas {
                        sqlx::query(pragma).execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(opened)?;
        let migrator = sqlx::migrate!("./migrations/sqlite");
        if access == Access::ReadOnly {
            Self::check_schema(&pool, &migrator, &path.display().to_string()).await?;
        } else {
            migrator.run(&pool).await?;
        }
        Ok(Self {
            pool,
            backend: Backend::Sqlite,
            file: Some(Arc::new((path.to_path_buf(), identity(path)))),
            fence: None,
        })
    }

    /// The database `storage` names, created and migrated if needed (the
    /// daemon and `once`).
    pub async fn connect(storage: &StorageConfig) -> Result<Self, StoreError> {
        match &storage.url {
            None => Self::open(&storage.path).await,
            Some(url) => Self::open_postgres(url.expose(), Access::Create).await,
        }
    }

    /// The database `storage` names, which must exist (writing commands).
    pub async fn connect_existing(storage: &StorageConfig) -> Result<Self, StoreError> {
        match &storage.url {
            None => Self::open_existing(&storage.path).await,
            Some(url) => Self::open_postgres(url.expose(), Access::Existing).await,
        }
    }

    /// The database `storage` names, for reading only (listing commands).
    pub async fn connect_read_only(storage: &StorageConfig) -> Result<Self, StoreError> {
        match &storage.url {
            None => Self::open_read_only(&storage.path).await,
            Some(url) => Self::open_postgres(url.expose(), Access::ReadOnly).await,
        }
    }

    /// Refuses a database whose schema is older than this build's: a
    /// reading command must not migrate it, and cannot read it as it is.
    async fn check_schema(
        pool: &AnyPool,
        migrator: &sqlx::migrate::Migrator,
        shown: &str,
    ) -> Result<(), StoreError> {
        let newest = migrator.iter().map(|m| m.version).max().unwrap_or(0);
        let applied: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(pool)
                .await
                .unwrap_or(None);
        if applied.unwrap_or(0) < newest {
            return Err(StoreError::Corrupt(format!(
                "{shown} was written by an older dtswatch (schema {}, this one needs {newest}); start `dtswatch run` once to migrate it",
                applied.unwrap_or(0)
            )));
        }
        Ok(())
    }

    /// A PostgreSQL database shared by every instance. Its schema is
    /// migrated (under sqlx's advisory lock, so two instances starting
    /// together do not race) unless `access` only reads. A transaction left
    /// open by a frozen instance is ended by the server after
    /// [`IDLE_IN_TRANSACTION`], so its locks cannot hold the others up.
    async fn open_postgres(url: &str, access: Access) -> Result<Self, StoreError> {
        let shown = crate::config::redacted_url(url);
        let opened = |source| StoreError::Open {
            path: shown.clone(),
            source,
        };
        install_drivers();
        let options = AnyConnectOptions::from_str(url).map_err(opened)?;
        let read_only = access == Access::ReadOnly;
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    sqlx::query("SET application_name = 'dtswatch'")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SET idle_in_transaction_session_timeout = {}",
                        IDLE_IN_TRANSACTION.as_millis()
                    )))
                    .execute(&mut *conn)
                    .await?;
                    if read_only {
                        sqlx::query("SET default_transaction_read_only = on")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(opened)?;
        let migrator = sqlx::migrate!("./migrations/postgres");
        if access == Access::Create {
            migrator.run(&pool).await?;
        } else {
            Self::check_schema(&pool, &migrator, &shown).await?;
        }
        Ok(Self {
            pool,
            backend: Backend::Postgres,
            file: None,
            fence: None,
        })
    }

    /// This store, with every transaction it begins fenced by `fence`: it
    /// proceeds only while `fence`'s holder holds the lease of its term.
    pub fn fenced(&self, fence: Arc<lease::Fence>) -> Self {
        Self {
            fence: Some(fence),
            ..self.clone()
        }
    }

    /// The fence this store's transactions pass, if any.
    pub fn fence(&self) -> Option<&lease::Fence> {
        self.fence.as_deref()
    }

    /// The engine this store talks to.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// `Err(reason)` when the database file was deleted or replaced since it
    /// was opened: SQLite goes on writing to the old, unlinked file, so
    /// nothing written from then on would survive a restart, and the next
    /// start would create an empty database and send every alert again.
    pub fn file_check(&self) -> Result<(), String> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let (path, opened) = &**file;
        match identity(path) {
            now if now == *opened => Ok(()),
            None => Err(format!(
                "the database file {} was deleted while dtswatch runs; what it writes now is lost at the next restart: restore the file or restart dtswatch",
                path.display()
            )),
            Some(_) => Err(format!(
                "the database file {} was replaced while dtswatch runs; dtswatch still writes to the old one: restart dtswatch to use the new file",
                path.display()
            )),
        }
    }

    /// A write transaction. `BEGIN IMMEDIATE` takes the write lock up front, so
    /// a transaction that reads before it writes cannot fail half-way on a
    /// concurrent writer (the busy timeout waits instead). On a fenced store
    /// the transaction share-locks the lease row and fails with
    /// [`StoreError::Fenced`] unless this process still leads.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        let mut tx = self.begin_unfenced().await?;
        if let Some(fence) = &self.fence {
            lease::check(&mut tx, fence, true).await?;
        }
        Ok(tx)
    }

    /// A transaction that claims outbox rows and stays open while they are
    /// sent (PostgreSQL): it checks the lease without locking it (a send
    /// must not hold up the renewal), and may idle for `send_timeout` plus
    /// a margin before the server ends it.
    pub async fn begin_delivery(&self, send_timeout: Duration) -> Result<Tx, StoreError> {
        let mut tx = self.begin_unfenced().await?;
        let idle = send_timeout.saturating_add(Duration::from_secs(10));
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SET LOCAL idle_in_transaction_session_timeout = {}",
            idle.as_millis()
        )))
        .execute(&mut *tx)
        .await?;
        if let Some(fence) = &self.fence {
            lease::check(&mut tx, fence, false).await?;
        }
        Ok(tx)
    }

    async fn begin_unfenced(&self) -> Result<Tx, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let begin = match self.backend {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        };
        if let Err(e) = sqlx::query(begin).execute(&mut *conn).await {
            // Whatever state the connection is in, do not hand it out again.
            conn.close_on_drop();
            return Err(e.into());
        }
        Ok(Tx {
            conn,
            finished: false,
        })
    }

    /// Flushes the WAL into the main file and compacts it (for measurements and `dtswatch vacuum`).
    pub async fn vacuum(&self) -> Result<(), StoreError> {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await?;
        sqlx::query("VACUUM").execute(&self.pool).await?;
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Writes a compacted, consistent copy of the database to `path` (which
    /// must not exist), while writers go on: for measuring growth and for backups.
    pub async fn copy_to(&self, path: &Path) -> Result<(), StoreError> {
        sqlx::query("VACUUM INTO $1")
            .bind(path.display().to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A write that fails because the database is full — SQLite may roll the
    /// transaction back by itself — leaves no connection stuck in it.
    #[tokio::test]
    async fn a_full_database_does_not_poison_the_pool() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("full.db"))
            .await
            .expect("store");
        sqlx::query("CREATE TABLE blobs (b BLOB NOT NULL)")
            .execute(store.pool())
            .await
            .expect("table");
        for _ in 0..8 {
            let mut tx = store.begin().await.expect("a transaction begins");
            // SQLite raises a cap below the current size to the current size.
            sqlx::query("PRAGMA max_page_count = 1")
                .execute(&mut *tx)
                .await
                .expect("a cap on this connection");
            let full = sqlx::query("INSERT INTO blobs (b) VALUES (zeroblob(1000000))")
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from)
                .expect_err("the database is full");
            assert!(full.is_disk_full(), "{full}");
            drop(tx);
        }
        // Every connection of the pool still begins, writes and commits.
        for _ in 0..8 {
            let mut tx = store.begin().await.expect("a transaction begins again");
            sqlx::query("INSERT INTO blobs (b) VALUES (x'00')")
                .execute(&mut *tx)
                .await
                .expect("room again");
            tx.commit().await.expect("committed");
        }
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM blobs")
            .fetch_one(store.pool())
            .await
            .expect("count");
        assert_eq!(rows, 8);
    }
}
