//! `[storage]` and `[ha]`: where the database is — the embedded SQLite
//! file (`path`, the default) or a PostgreSQL server shared by several
//! instances (`url`, with libpq's TLS parameters such as `sslmode` and
//! `sslrootcert`) — how long history is kept, and how quickly a standby
//! takes over from a leader that stopped renewing its lease.

use std::path::PathBuf;
use std::time::Duration;

use super::Secret;

#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// The SQLite file (unused with `url`).
    pub path: PathBuf,
    /// `postgres://…`: the database is PostgreSQL, shared by every instance.
    pub url: Option<Secret>,
    /// Polls, snapshots and resolved alerts older than this are pruned.
    pub retention: Duration,
    pub prune_interval: Duration,
}

impl StorageConfig {
    /// The database as logs and messages name it: the file, or the URL
    /// without its password.
    pub fn describe(&self) -> String {
        match &self.url {
            None => self.path.display().to_string(),
            Some(url) => redacted(url.expose()),
        }
    }
}

/// A database URL with its password replaced by `***`.
pub fn redacted(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            let mut query: Vec<(String, String)> = parsed
                .query_pairs()
                .map(|(k, v)| {
                    let v = if k == "password" {
                        "***".into()
                    } else {
                        v.into_owned()
                    };
                    (k.into_owned(), v)
                })
                .collect();
            if query.is_empty() {
                parsed.set_query(None);
            } else {
                parsed
                    .query_pairs_mut()
                    .clear()
                    .extend_pairs(query.drain(..));
            }
            parsed.to_string()
        }
        Err(_) => "(an unreadable database URL)".into(),
    }
}

/// `[ha]`: several instances on one PostgreSQL database.
#[derive(Debug, Clone)]
pub struct HaConfig {
    /// A standby takes over within this of the leader's lease lapsing; the
    /// lease lasts this long and is renewed every third of it.
    pub failover: Duration,
    /// This instance's name in the lease and in `status` (default: the
    /// host name).
    pub instance: Option<String>,
}

impl Default for HaConfig {
    fn default() -> Self {
        Self {
            failover: Duration::from_secs(15),
            instance: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redacted("postgres://dtswatch:s3cret@db.internal:5432/dtswatch?sslmode=verify-full"),
            "postgres://dtswatch:***@db.internal:5432/dtswatch?sslmode=verify-full"
        );
        assert_eq!(
            redacted("postgres://db/dtswatch?user=u&password=s3cret"),
            "postgres://db/dtswatch?user=u&password=***"
        );
        assert!(!redacted("not a url s3cret").contains("s3cret"));
    }
}
