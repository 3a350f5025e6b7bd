//! A real PostgreSQL server for the tests: Debian's binaries (`.ci/run`
//! installs `postgresql`), a cluster initdb'd in a temp dir, listening on a
//! loopback port, no system service. As root (CI) it runs as `nobody`,
//! since PostgreSQL refuses root. One server is shared by the tests that
//! only need a database of their own ([`database`]); a test that restarts
//! the server starts its own ([`PgServer::start`]). Tests say SKIPPED and
//! return only where no PostgreSQL binary is installed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::helpers::free_port;

/// The directory holding `initdb` and `postgres`, if any.
pub fn binaries() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .collect();
    candidates.sort();
    candidates.reverse();
    if let Ok(found) = Command::new("which").arg("initdb").output()
        && found.status.success()
    {
        let path = PathBuf::from(String::from_utf8_lossy(&found.stdout).trim());
        if let Some(dir) = path.parent() {
            candidates.push(dir.to_path_buf());
        }
    }
    candidates
        .into_iter()
        .find(|dir| dir.join("initdb").exists() && dir.join("postgres").exists())
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `program args…` as the server's user: `nobody` when we are root. The
/// child dies with the thread that started it (`--pdeathsig`), so no
/// server outlives the tests.
fn as_server_user(program: &Path) -> Command {
    let mut command = Command::new("setpriv");
    command.arg("--pdeathsig").arg("KILL");
    if running_as_root() {
        command.args(["--reuid", "nobody", "--regid", "nogroup", "--clear-groups"]);
    }
    command.arg(program);
    command
}

/// A PostgreSQL server of the tests' own.
pub struct PgServer {
    bin: PathBuf,
    data: PathBuf,
    _dir: tempfile::TempDir,
    pub port: u16,
    child: Mutex<Option<Child>>,
    /// Serve TLS with `server.crt`/`server.key` beside the data directory.
    tls: bool,
}

impl PgServer {
    /// initdb and start a cluster, or `None` (with the reason on stderr)
    /// where PostgreSQL is not installed.
    pub fn start() -> Option<Self> {
        Self::start_with(None)
    }

    /// A cluster that also serves TLS with this certificate and key (PEM).
    pub fn start_tls(cert: &str, key: &str) -> Option<Self> {
        Self::start_with(Some((cert, key)))
    }

    fn start_with(tls: Option<(&str, &str)>) -> Option<Self> {
        let Some(bin) = binaries() else {
            eprintln!(
                "SKIPPED on PostgreSQL: no PostgreSQL binaries (.ci/run installs Debian's postgresql)"
            );
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        if let Some((cert, key)) = tls {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::write(dir.path().join("server.crt"), cert).unwrap();
            std::fs::write(dir.path().join("server.key"), key).unwrap();
            std::fs::set_permissions(
                dir.path().join("server.key"),
                std::fs::Permissions::from_mode(0o600),
            )
            .unwrap();
        }
        if running_as_root() {
            let status = Command::new("chown")
                .args(["-R", "nobody:nogroup"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success());
        }
        let init = as_server_user(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "dtswatch",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .output()
            .expect("initdb runs");
        assert!(
            init.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        let server = Self {
            bin,
            data,
            _dir: dir,
            port: free_port(),
            child: Mutex::new(None),
            tls: tls.is_some(),
        };
        server.run();
        Some(server)
    }

    /// Starts the server process on a thread that lives as long as the
    /// process (the server dies with the thread that spawned it).
    fn run(&self) {
        let mut command = as_server_user(&self.bin.join("postgres"));
        command
            .arg("-D")
            .arg(&self.data)
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-k")
            .arg(&self.data)
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off", "-c", "max_connections=300"]);
        if self.tls {
            let file = |name: &str| self.data.parent().unwrap().join(name).display().to_string();
            command
                .args(["-c", "ssl=on"])
                .arg("-c")
                .arg(format!("ssl_cert_file={}", file("server.crt")))
                .arg("-c")
                .arg(format!("ssl_key_file={}", file("server.key")));
        }
        command.stdout(Stdio::null()).stderr(Stdio::null());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let child = command.spawn().expect("postgres starts");
            tx.send(child).unwrap();
            loop {
                std::thread::park();
            }
        });
        *self.child.lock().unwrap() = Some(rx.recv().unwrap());
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "postgres did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        // Accepting connections is not yet accepting queries.
        while !self.psql("postgres", "SELECT 1") {
            assert!(Instant::now() < deadline, "postgres did not become ready");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn psql(&self, database: &str, sql: &str) -> bool {
        Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-U", "dtswatch", "-p"])
            .arg(self.port.to_string())
            .args(["-d", database, "-qAt", "-c", sql])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// A new, empty database; its URL.
    pub fn database(&self, name: &str) -> String {
        assert!(
            self.psql("postgres", &format!("CREATE DATABASE \"{name}\"")),
            "CREATE DATABASE {name}"
        );
        self.url(name)
    }

    pub fn url(&self, name: &str) -> String {
        format!("postgres://dtswatch@127.0.0.1:{}/{name}", self.port)
    }

    /// Stops the server (fast shutdown: connections are cut).
    pub fn stop(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, with the same data.
    pub fn restart(&self) {
        self.stop();
        self.run();
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A fresh database on the shared server, or `None` (saying SKIPPED)
/// where PostgreSQL is not installed.
pub fn database(test: &str) -> Option<String> {
    static SHARED: OnceLock<Option<PgServer>> = OnceLock::new();
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let Some(server) = SHARED.get_or_init(PgServer::start) else {
        eprintln!(
            "SKIPPED on PostgreSQL: no PostgreSQL binaries (.ci/run installs Debian's postgresql)"
        );
        return None;
    };
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Some(server.database(&format!("{test}_{n}")))
}
