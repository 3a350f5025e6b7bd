//! SQLite through sqlx: opening (WAL, busy timeout, foreign keys), migrations,
//! and one submodule per table family. Every function takes `now` (or a time)
//! as an argument; nothing here reads the clock. SQL lives in raw strings next
//! to the function that runs it.

pub mod alerts;
pub mod batch;
pub mod jobs;
pub mod outbox;
pub mod polls;
pub mod retention;
pub mod silences;
pub mod snapshots;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// A transaction on the store, as the poll pipeline writes through it.
pub type Tx = sqlx::Transaction<'static, sqlx::Sqlite>;

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

impl Store {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
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
            .create_if_missing(true)
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
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// A write transaction. `BEGIN IMMEDIATE` takes the write lock up front, so
    /// a transaction that reads before it writes cannot fail half-way on a
    /// concurrent writer (the busy timeout waits instead).
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
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
