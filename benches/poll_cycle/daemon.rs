//! The daemon under measurement: `dtswatch run` as a child process, read
//! from outside — its CPU from `/proc` and `wait4`, its peak RSS, what it
//! counts in `/metrics` — and the database it writes, measured on compacted
//! copies.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dtswatch::store::{Store, polls};

pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

/// `dtswatch run` as a child process; killed if dropped while running.
pub struct Daemon {
    child: Child,
    metrics: SocketAddr,
}

/// What the kernel says about the daemon once it exited.
pub struct Exited {
    pub cpu: Duration,
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).max(1) as f64
}

impl Daemon {
    pub fn start(config: &Path, metrics: SocketAddr) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_dtswatch"))
            .args(["run", "-c"])
            .arg(config)
            .env("DTSWATCH_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the dtswatch binary runs");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(metrics).is_err() {
            assert!(Instant::now() < deadline, "the daemon did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, metrics }
    }

    /// User + system CPU so far, from `/proc/PID/stat` (clock-tick resolution).
    pub fn cpu(&self) -> Duration {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        // utime and stime are fields 14 and 15, i.e. 11 and 12 after the name.
        Duration::from_secs_f64((ticks(11) + ticks(12)) / clock_ticks())
    }

    /// Peak resident set size, from `/proc/PID/status`.
    pub fn peak_rss(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<u64>().ok())
            })
            .unwrap_or(0)
            * 1024
    }

    /// A counter or gauge from `/metrics`, summed over the series whose text contains `filter`.
    pub async fn metric(&self, name: &str, filter: &str) -> f64 {
        let text = reqwest::get(format!("http://{}/metrics", self.metrics))
            .await
            .and_then(|r| r.error_for_status())
            .expect("the daemon serves /metrics")
            .text()
            .await
            .unwrap_or_default();
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| l.split(['{', ' ']).next() == Some(name) && l.contains(filter))
            .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
            .sum()
    }

    /// SIGTERM, then the kernel's account of the whole run.
    pub fn stop(mut self) -> Exited {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: plain syscalls on our own child; `usage` is written by wait4.
        let usage = unsafe {
            libc::kill(pid, libc::SIGTERM);
            let mut status = 0;
            let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
            libc::wait4(pid, &mut status, 0, usage.as_mut_ptr());
            usage.assume_init()
        };
        let tv = |t: libc::timeval| {
            Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
        };
        // Reaped already: nothing left for Drop to kill.
        let _ = self.child.try_wait();
        std::mem::forget(self);
        Exited {
            cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A compacted copy of the daemon's database and the polls it holds.
pub async fn measure_db(db: &Path, copy: &Path) -> (u64, i64) {
    let store = Store::open(db).await.expect("the daemon's database opens");
    let _ = std::fs::remove_file(copy);
    store.copy_to(copy).await.expect("VACUUM INTO");
    store.close().await;
    let copied = Store::open(copy).await.expect("the copy opens");
    let mut conn = copied.pool().acquire().await.expect("a connection");
    let polls = polls::count(&mut conn).await.expect("polls counted");
    drop(conn);
    copied.close().await;
    (std::fs::metadata(copy).map(|m| m.len()).unwrap_or(0), polls)
}
