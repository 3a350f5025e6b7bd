//! SQLite through sqlx: opening (WAL, busy timeout, foreign keys), migrations,
//! and one submodule per table family. Every function takes `now` (or a time)
//! as an argument; nothing here reads the clock. SQL lives in raw strings next
//! to the function that runs it.

pub mod alerts;
pub mod audit;
pub mod batch;
pub mod jobs;
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
use sqlx::Sqlite;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};

/// A write transaction (`BEGIN IMMEDIATE` … `COMMIT`) on a pooled
/// connection. A transaction that is not committed — a failed statement, a
/// failed `COMMIT` (a full disk), a dropped future — never goes back to the
/// pool: its connection is closed, which makes SQLite roll back, so no later
/// writer can find a connection stuck inside a half-finished transaction.
/// (sqlx's own `Transaction` leaves the connection's transaction depth at 1
/// when SQLite rolled back by itself after an I/O error, and every later
/// `BEGIN` on it fails until restart.)
pub struct Tx {
    conn: PoolConnection<Sqlite>,
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
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
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
            StoreError::Sql(sqlx::Error::Database(e)) => {
                e.code().as_deref() == Some("13") || e.message().contains("disk is full")
            }
            StoreError::Sql(sqlx::Error::Io(e))
            | StoreError::Open {
                source: sqlx::Error::Io(e),
                ..
            } => e.kind() == std::io::ErrorKind::StorageFull,
            _ => false,
        }
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
    pool: SqlitePool,
    /// The file opened, and its identity (device, inode) at the time.
    file: Arc<(PathBuf, Option<(u64, u64)>)>,
}

/// The device and inode of a file, if it exists.
fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
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
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(|e| StoreError::Open {
                path: path.display().to_string(),
                source: e,
            })?
            .filename(path)
            .create_if_missing(create)
            .read_only(access == Access::ReadOnly)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true)
            // 512 KiB of page cache per connection (SQLite's default is 2 MiB):
            // writes append, and reads are small; the service stays frugal.
            .pragma("cache_size", "-512");
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(60))
            // A local file needs no liveness ping on every checkout.
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Open {
                path: path.display().to_string(),
                source: e,
            })?;
        let migrator = sqlx::migrate!("./migrations");
        if access == Access::ReadOnly {
            let newest = migrator.iter().map(|m| m.version).max().unwrap_or(0);
            let applied: Option<i64> =
                sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                    .fetch_one(&pool)
                    .await
                    .unwrap_or(None);
            if applied.unwrap_or(0) < newest {
                return Err(StoreError::Corrupt(format!(
                    "{} was written by an older dtswatch (schema {}, this one needs {newest}); start `dtswatch run` once to migrate it",
                    path.display(),
                    applied.unwrap_or(0)
                )));
            }
        } else {
            migrator.run(&pool).await?;
        }
        Ok(Self {
            pool,
            file: Arc::new((path.to_path_buf(), identity(path))),
        })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// `Err(reason)` when the database file was deleted or replaced since it
    /// was opened: SQLite goes on writing to the old, unlinked file, so
    /// nothing written from then on would survive a restart, and the next
    /// start would create an empty database and send every alert again.
    pub fn file_check(&self) -> Result<(), String> {
        let (path, opened) = &*self.file;
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
    /// concurrent writer (the busy timeout waits instead).
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        let mut conn = self.pool.acquire().await?;
        if let Err(e) = sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await {
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
        sqlx::query("VACUUM INTO ?1")
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
