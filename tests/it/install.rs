//! The install path the unit file's header documents, followed as an
//! operator would on the CI machine (root): the unit verifies with
//! systemd-analyze and scores well on `security`, the config installed 0644
//! is readable by an unprivileged service user, and the daemon run as that
//! user (`setpriv --reuid nobody`) in its state directory polls the
//! simulator, serves `/healthz` and talks the notify protocol.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use dtswatch::sim::{SimJob, SimOptions, SimStep, Simulator};

use crate::helpers::{TestConfig, eventually};

const UNIT: &str = include_str!("../../config/dtswatch.service");
const EXAMPLE: &str = include_str!("../../config/dtswatch.example.toml");

/// The unit as installed, with the binary under test where `/usr/local/bin/dtswatch` would be.
fn installed_unit(dir: &Path) -> PathBuf {
    let path = dir.join("dtswatch.service");
    std::fs::write(
        &path,
        UNIT.replace("/usr/local/bin/dtswatch", env!("CARGO_BIN_EXE_dtswatch")),
    )
    .unwrap();
    path
}

/// `install -D -m MODE`: the file and its directories (0755), owned by root.
fn install(path: &Path, text: &str, mode: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A scratch root every user can traverse, as `/` is.
fn scratch_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// `dtswatch ARGS` as the unprivileged user `nobody`.
fn as_nobody(args: &[&str]) -> Command {
    let mut command = Command::new("setpriv");
    command
        .args([
            "--reuid",
            "nobody",
            "--regid",
            "nogroup",
            "--clear-groups",
            "--",
        ])
        .arg(env!("CARGO_BIN_EXE_dtswatch"))
        .args(args);
    command
}

/// Running as root, as CI does; elsewhere the tests that switch user say they were skipped.
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn chown_nobody(path: &Path) {
    let status = Command::new("chown")
        .arg("nobody:nogroup")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn the_unit_verifies_and_is_hardened() {
    let root = scratch_root();
    let unit = installed_unit(root.path());
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("systemd-analyze is installed (.ci/run installs systemd)");
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=yes"])
        .arg(&unit)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&security.stdout);
    let level: f64 = report
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for dtswatch.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{report}"));
    assert!(level <= 2.0, "exposure {level}:\n{report}");
    for setting in [
        "Type=notify",
        "RestartPreventExitStatus=2 3",
        "WorkingDirectory=/var/lib/dtswatch",
        "StateDirectory=dtswatch",
        "WatchdogSec=",
        "LimitNOFILE=65536",
    ] {
        assert!(UNIT.contains(setting), "the unit lacks {setting}");
    }
    let reloads: Vec<&str> = UNIT
        .lines()
        .filter(|l| l.starts_with("ExecReload="))
        .collect();
    assert!(reloads[0].contains("check-config"), "{reloads:?}");
}

#[test]
fn the_installed_example_config_is_readable_by_the_service_user() {
    if !is_root() {
        eprintln!("skipped: switching to `nobody` needs root (CI runs as root)");
        return;
    }
    let root = scratch_root();
    let config = root.path().join("etc/dtswatch/dtswatch.toml");
    install(&config, EXAMPLE, 0o644);
    let out = as_nobody(&["check-config", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("database /var/lib/dtswatch/dtswatch.db"),
        "the installed config names the state directory: {stdout}"
    );
}

/// Reads datagrams from a notify socket of our own until `want` has arrived.
fn notify_messages(
    socket: &std::os::unix::net::UnixDatagram,
    seen: &mut Vec<String>,
    want: &str,
) -> bool {
    let mut buffer = [0u8; 512];
    while let Ok(n) = socket.recv(&mut buffer) {
        seen.push(String::from_utf8_lossy(&buffer[..n]).into_owned());
    }
    seen.iter().any(|m| m.contains(want))
}

#[tokio::test]
async fn the_daemon_runs_as_an_unprivileged_user_in_its_state_directory() {
    if !is_root() {
        eprintln!("skipped: switching to `nobody` needs root (CI runs as root)");
        return;
    }
    let sim = Simulator::start(SimOptions {
        jobs: vec![SimJob::fixed(
            "dtsinstalled",
            "cn-hangzhou",
            vec![SimStep {
                id: Some("s1".into()),
                name: "增量迁移".into(),
                state: "Running".into(),
                latency_ms: Some(800),
                ..Default::default()
            }],
        )],
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let root = scratch_root();
    let state = root.path().join("var/lib/dtswatch");
    std::fs::create_dir_all(&state).unwrap();
    chown_nobody(&state);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // storage.path relative: it lands in the working directory, the state directory.
    let text = TestConfig::new(&sim.endpoint())
        .daemon()
        .db(Path::new("dtswatch.db"))
        .job("dtsinstalled")
        .set("server", "listen", &format!("\"127.0.0.1:{port}\""))
        .text();
    let config = root.path().join("etc/dtswatch/dtswatch.toml");
    install(&config, &text, 0o644);
    let socket_path = root.path().join("notify");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    std::fs::set_permissions(&socket_path, std::fs::Permissions::from_mode(0o777)).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let child = as_nobody(&["run", "-c"])
        .arg(&config)
        .current_dir(&state)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "200000")
        .env("DTSWATCH_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Killed if an assertion fails before the clean stop below.
    let mut child = KillOnDrop(Some(child));
    let url = format!("http://127.0.0.1:{port}/healthz");
    eventually("a poll, then /healthz answering 200", async || {
        if sim.polls_of("dtsinstalled") == 0 {
            return None;
        }
        let response = reqwest::get(&url).await.ok()?;
        (response.status() == 200).then_some(())
    })
    .await;
    assert!(
        state.join("dtswatch.db").exists(),
        "the database is in the state directory"
    );
    let mut seen = Vec::new();
    eventually("READY=1 and a watchdog ping", async || {
        (notify_messages(&socket, &mut seen, "READY=1")
            && notify_messages(&socket, &mut seen, "WATCHDOG=1"))
        .then_some(())
    })
    .await;
    assert!(
        seen[0].starts_with("READY=1\nSTATUS=watching 1 job(s)"),
        "{seen:?}"
    );
    let pid = child.0.as_ref().map(|c| c.id()).unwrap_or_default();
    let kill = |signal: &str| {
        Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .unwrap()
    };
    assert!(kill("-HUP").success());
    eventually("RELOADING=1 then READY=1", async || {
        notify_messages(&socket, &mut seen, "RELOADING=1").then_some(())
    })
    .await;
    assert!(kill("-TERM").success());
    let mut running = child.0.take().unwrap();
    let status = tokio::task::spawn_blocking(move || running.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(
        notify_messages(&socket, &mut seen, "STOPPING=1"),
        "{seen:?}"
    );
}

/// A child process killed when dropped (a failed assertion must not leave a daemon behind).
struct KillOnDrop(Option<std::process::Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
