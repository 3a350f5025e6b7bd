//! The systemd notify protocol (`sd_notify(3)`): `READY=1` once the daemon
//! polls and serves, `RELOADING=1` / `READY=1` around a SIGHUP reload,
//! `STOPPING=1` at shutdown, and `WATCHDOG=1` every half `WatchdogSec` while
//! the runtime answers (a wedged process is restarted by systemd). A datagram to `$NOTIFY_SOCKET` (a path, or an
//! abstract name written `@name`); without the variable every call is a no-op,
//! so the same binary runs under `Type=notify`, `Type=simple` or by hand.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Sends `state` (newline-separated `KEY=value` lines) to systemd, if it listens.
pub fn notify(state: &str) {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(socket) = UnixDatagram::unbound() else {
        return;
    };
    let target = target.to_string_lossy().into_owned();
    let sent = match target.strip_prefix('@') {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt as _;
            std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
                .and_then(|addr| socket.send_to_addr(state.as_bytes(), &addr))
        }
        None => socket.send_to(state.as_bytes(), &target),
    };
    if let Err(e) = sent {
        tracing::debug!(error = %e, "could not notify systemd");
    }
}

/// Pings systemd's watchdog until cancelled, if `WatchdogSec=` asks for it.
pub async fn keep_alive(cancel: tokio_util::sync::CancellationToken) {
    let Some(every) = watchdog_interval() else {
        return;
    };
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(every) => notify("WATCHDOG=1"),
        }
    }
}

/// How often to send `WATCHDOG=1`: half of `$WATCHDOG_USEC`, when it is meant for us.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.parse::<u32>().ok()? != std::process::id()
    {
        return None;
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

#[cfg(test)]
mod tests {
    /// The datagram systemd would receive, through a socket of our own.
    #[test]
    fn the_state_reaches_the_notify_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        // SAFETY of the test: it is the only test that sets NOTIFY_SOCKET.
        unsafe { std::env::set_var("NOTIFY_SOCKET", &path) };
        super::notify("READY=1\nSTATUS=polling 3 jobs");
        unsafe { std::env::remove_var("NOTIFY_SOCKET") };
        let mut buffer = [0u8; 256];
        let n = listener.recv(&mut buffer).unwrap();
        assert_eq!(&buffer[..n], b"READY=1\nSTATUS=polling 3 jobs");
    }
}
