//! One daemon per database. `dtswatch run` (and `once`, which writes alert
//! state too) holds an exclusive `flock` on `<database>.lock` for as long as
//! it runs; the file says who holds it (pid, host, start time) so a second
//! instance can name the first. The kernel drops the lock when its holder
//! dies, so a lock left by a killed process is simply taken over.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};

/// Held for the life of the process that owns the database.
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
}

/// Another process holds the database.
#[derive(Debug, thiserror::Error)]
#[error(
    "the database {database} is in use by another dtswatch ({holder}); two daemons on one database would send every alert twice. Stop it, or give this one its own storage.path"
)]
pub struct Locked {
    pub database: PathBuf,
    pub holder: String,
}

/// Why the lock could not be taken at all.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(transparent)]
    Locked(#[from] Locked),
    #[error("cannot open the lock file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The lock file beside `database`.
pub fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes the database's lock, or says who has it.
pub fn acquire(database: &Path) -> Result<InstanceLock, LockError> {
    let path = lock_path(database);
    let io = |source| LockError::Io {
        path: path.clone(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = std::io::Read::by_ref(&mut file)
                .take(4096)
                .read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(Locked {
                database: database.to_path_buf(),
                holder: if holder.is_empty() {
                    "holder unknown".into()
                } else {
                    holder.chars().filter(|c| !c.is_control()).collect()
                },
            }
            .into());
        }
        Err(TryLockError::Error(e)) => return Err(io(e)),
    }
    let holder = format!(
        "pid {} on {} since {}",
        std::process::id(),
        hostname(),
        chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC")
    );
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(holder.as_bytes()))
        .and_then(|()| file.flush())
        .map_err(io)?;
    Ok(InstanceLock { _file: file })
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "this host".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_and_named_and_a_dropped_lock_is_free() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("dtswatch.db");
        let first = acquire(&db).unwrap();
        match acquire(&db) {
            Err(LockError::Locked(locked)) => {
                assert!(
                    locked
                        .holder
                        .starts_with(&format!("pid {} on ", std::process::id())),
                    "{}",
                    locked.holder
                );
                assert!(locked.to_string().contains("in use by another dtswatch"));
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        drop(first);
        acquire(&db).expect("free again once the holder is gone");
    }
}
