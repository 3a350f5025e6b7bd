//! Shared test fixtures: configs pointed at a simulator, clients, paths.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dtswatch::aliyun::{AliyunClient, Environment};
use dtswatch::config::{self, Config};
use dtswatch::daemon::{self, Options};
use dtswatch::sim::Simulator;
use dtswatch::sim::{DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn read_fixture(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).expect("fixture exists")
}

/// An environment where only what the test says exists: no real home, no real metadata service.
pub fn isolated_env() -> Environment {
    Environment::new(&[("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")], None)
}

/// Parses config text with no environment variables at all.
pub fn parse_config(text: &str) -> Config {
    config::parse(text, Path::new("test.toml"), &|_| None)
        .unwrap_or_else(|e| panic!("test config is invalid:\n{e}"))
}

/// A config with one account on `endpoint` and the given extra account keys and sections.
pub fn config_with(endpoint: &str, account_extra: &str, rest: &str) -> Config {
    parse_config(&format!(
        r#"
[poll]
timeout = "2s"
attempts = 4
backoff = "10ms"
max_backoff = "50ms"
max_rps = 1000

[[accounts]]
name = "test"
endpoint = "{endpoint}"
{account_extra}

[[jobs]]
id = "k2gm967v16f"
region = "cn-hangzhou"

{rest}
"#
    ))
}

/// The demo account's keys, as TOML account lines.
pub fn demo_keys() -> String {
    format!(
        "access_key_id = \"{DEMO_ACCESS_KEY_ID}\"\naccess_key_secret = \"{DEMO_ACCESS_KEY_SECRET}\""
    )
}

pub fn client(config: &Config, env: &Environment) -> AliyunClient {
    AliyunClient::new(&config.accounts[0], &config.poll, env).expect("client builds")
}

/// A daemon config on `endpoint` with sub-second polls, a server on a free
/// port and quick delivery retries; `extra` adds channels and rules.
pub fn config_text(dir: &Path, endpoint: &str, jobs: &[&str], extra: &str) -> String {
    let jobs: String = jobs
        .iter()
        .map(|j| format!("[[jobs]]\nid = \"{j}\"\nregion = \"cn-hangzhou\"\n\n"))
        .collect();
    format!(
        r#"
[storage]
path = "{db}"

[poll]
schedule = "@every 200ms"
jitter = "100ms"
timeout = "5s"
attempts = 2
backoff = "10ms"
max_backoff = "20ms"

[server]
listen = "127.0.0.1:0"
unhealthy_after = 2

[delivery]
backoff = "50ms"
max_backoff = "100ms"
drain_timeout = "5s"

[[accounts]]
name = "sim"
access_key_id = "dtswatch-demo"
access_key_secret = "dtswatch-demo-secret"
endpoint = "{endpoint}"

{jobs}
{extra}
"#,
        db = dir.join("dtswatch.db").display()
    )
}

/// Waits up to a minute for `check`, polling every 100 ms.
pub async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A daemon running in this process; stopped when dropped.
pub struct Running {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    addr: std::net::SocketAddr,
}

impl Running {
    pub async fn start(config_text: String) -> Self {
        let config = parse_config(&config_text);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (listening, addr) = tokio::sync::oneshot::channel();
        let options = Options {
            listening: Some(listening),
            ..Options::default()
        };
        let task = tokio::spawn(daemon::run(
            config,
            Environment::default(),
            async move {
                let _ = stopped.await;
            },
            options,
        ));
        let addr = addr.await.expect("the daemon listens");
        Self {
            stop: Some(stop),
            task,
            addr,
        }
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let response = reqwest::get(format!("http://{}{path}", self.addr))
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    pub async fn metrics(&self) -> BTreeMap<String, f64> {
        parse_prometheus(&self.get("/metrics").await.1)
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.unwrap().unwrap();
    }
}

/// Parses Prometheus text: every sample line must be `name{labels} value`.
pub fn parse_prometheus(text: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    let mut typed = std::collections::BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let name = parts.next().unwrap();
            assert!(
                matches!(parts.next(), Some("counter" | "gauge" | "histogram")),
                "{line}"
            );
            typed.insert(name.to_string());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not a sample: {line}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("not a number: {line}"));
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad metric name: {line}"
        );
        let family = name
            .trim_end_matches("_bucket")
            .trim_end_matches("_sum")
            .trim_end_matches("_count");
        assert!(
            typed.contains(name) || typed.contains(family),
            "sample before its TYPE: {line}"
        );
        if let Some(labels) = series.strip_prefix(name)
            && !labels.is_empty()
        {
            assert!(
                labels.starts_with('{') && labels.ends_with('}'),
                "bad labels: {line}"
            );
        }
        samples.insert(series.to_string(), value);
    }
    samples
}

pub fn polls_of(sim: &Simulator, job: &str) -> Vec<chrono::DateTime<chrono::Utc>> {
    sim.requests()
        .into_iter()
        .filter(|r| r.job_id.as_deref() == Some(job))
        .map(|r| r.at)
        .collect()
}

/// `dtswatch run` as a child process, killed with SIGKILL when dropped.
pub struct DaemonProcess(std::process::Child);

impl DaemonProcess {
    pub fn start(config: &Path) -> Self {
        Self::start_logging(config, std::process::Stdio::null())
    }

    /// Like `start`, with its log (stderr, human format) going to `log`.
    pub fn start_logging(config: &Path, log: impl Into<std::process::Stdio>) -> Self {
        DaemonProcess(
            std::process::Command::new(env!("CARGO_BIN_EXE_dtswatch"))
                .args(["run", "-c"])
                .arg(config)
                .env("DTSWATCH_LOG", "warn")
                .stdout(std::process::Stdio::null())
                .stderr(log)
                .spawn()
                .expect("the dtswatch binary starts"),
        )
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    /// SIGTERM, then waits for the exit; returns its code.
    pub fn terminate(&mut self) -> Option<i32> {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        self.0.wait().ok().and_then(|s| s.code())
    }
}

impl Drop for DaemonProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
