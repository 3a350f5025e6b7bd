//! Writing to stdout. A reader that went away (a pager closed, `| head -3`)
//! is not an error and never a panic: the first failed write marks stdout
//! closed, later writes are dropped, and whoever waits on [`closed`] (the
//! demo) winds down and cleans up.

use std::io::Write as _;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

static CLOSED: AtomicBool = AtomicBool::new(false);

fn notify() -> &'static tokio::sync::Notify {
    static NOTIFY: OnceLock<tokio::sync::Notify> = OnceLock::new();
    NOTIFY.get_or_init(tokio::sync::Notify::new)
}

/// Writes `text` and flushes; `false` once stdout is closed.
pub fn write(text: &str) -> bool {
    if CLOSED.load(Ordering::Relaxed) {
        return false;
    }
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => true,
        Err(_) => {
            CLOSED.store(true, Ordering::Relaxed);
            notify().notify_waiters();
            false
        }
    }
}

/// `text` and a line break.
pub fn line(text: &str) -> bool {
    write(&format!("{text}\n"))
}

/// Resolves once a write to stdout has failed.
pub async fn closed() {
    let notified = notify().notified();
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    notified.await;
}

/// `println!` that survives a closed stdout.
#[macro_export]
macro_rules! outln {
    () => {
        $crate::stdout::line("")
    };
    ($($arg:tt)*) => {
        $crate::stdout::line(&format!($($arg)*))
    };
}

/// `print!` that survives a closed stdout.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::stdout::write(&format!($($arg)*))
    };
}
