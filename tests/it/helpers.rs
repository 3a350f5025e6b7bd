//! Shared test seams: one config builder for every test file
//! (`TestConfig`), a `TestApp` (a real store in a temp dir, the poll
//! context `once` and `run` use, the deliverer; `poll()`, `drain_outbox()`),
//! the in-process daemon (`Running`), one helper for the binary as a daemon
//! process (`DaemonProcess`) and one for it as a command (`run_cli`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use dtswatch::aliyun::{AliyunClient, ApiFailure, Environment};
use dtswatch::config::{self, Config, JobConfig};
use dtswatch::daemon::{self, Options};
use dtswatch::dts::api::Fetched;
use dtswatch::metrics::Metrics;
use dtswatch::notify::outbox::Deliverer;
use dtswatch::poll::{
    self, Alerting, Clients, Clock, Health, PollContext, PollReport, Polled, Recorder,
};
use dtswatch::sim::Simulator;
use dtswatch::sim::{DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET};
use dtswatch::store::Store;
use dtswatch::store::jobs::JobSource;

/// A simulated job whose full-data step has failed with `err`.
pub fn failed_job(id: &str, err: &str) -> dtswatch::sim::SimJob {
    dtswatch::sim::SimJob::fixed(
        id,
        "cn-hangzhou",
        vec![dtswatch::sim::SimStep {
            id: Some("s1".into()),
            name: "全量迁移".into(),
            code: Some("03".into()),
            state: "Failed".into(),
            err: Some(err.into()),
            ..Default::default()
        }],
    )
}

/// A simulated job of one full-data step in `state` (`Failed` with an error).
pub fn one_step_job(id: &str, state: &str) -> dtswatch::sim::SimJob {
    dtswatch::sim::SimJob::fixed(
        id,
        "cn-hangzhou",
        vec![dtswatch::sim::SimStep {
            id: Some("s1".into()),
            name: "全量迁移".into(),
            code: Some("03".into()),
            state: state.into(),
            progress: 40,
            err: (state == "Failed").then(|| "DTS-1020042 boom".to_string()),
            ..Default::default()
        }],
    )
}

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
        .unwrap_or_else(|e| panic!("test config is invalid:\n{e}\n{text}"))
}

/// A test config: the `[poll]`, `[server]`, `[delivery]` and `[storage]`
/// settings as key → TOML value (so a test overrides one key without
/// repeating a section), one account on the simulator, jobs, and the
/// channels and rules a test writes in TOML, the product's own language.
#[derive(Clone)]
pub struct TestConfig {
    sections: BTreeMap<&'static str, BTreeMap<String, String>>,
    account: Vec<String>,
    jobs: Vec<String>,
    extra: Vec<String>,
}

impl TestConfig {
    /// The demo account on `endpoint`, quick retries, no jobs yet.
    pub fn new(endpoint: &str) -> Self {
        let mut config = Self {
            sections: BTreeMap::new(),
            account: vec![
                "name = \"sim\"".into(),
                format!("endpoint = \"{endpoint}\""),
                format!("access_key_id = \"{DEMO_ACCESS_KEY_ID}\""),
                format!("access_key_secret = \"{DEMO_ACCESS_KEY_SECRET}\""),
            ],
            jobs: Vec::new(),
            extra: Vec::new(),
        };
        for (key, value) in [
            ("timeout", "\"2s\""),
            ("attempts", "4"),
            ("backoff", "\"10ms\""),
            ("max_backoff", "\"50ms\""),
            ("max_rps", "1000"),
        ] {
            config = config.set("poll", key, value);
        }
        config.set("server", "listen", "\"off\"")
    }

    /// An account on a port nothing listens on: for tests that never poll.
    pub fn offline() -> Self {
        Self::new("http://127.0.0.1:9")
    }

    /// The timing of a daemon under test: sub-second polls, a server on a
    /// free port, quick delivery retries.
    pub fn daemon(self) -> Self {
        [
            ("poll", "schedule", "\"@every 200ms\""),
            ("poll", "jitter", "\"100ms\""),
            ("poll", "timeout", "\"5s\""),
            ("poll", "attempts", "2"),
            ("poll", "backoff", "\"10ms\""),
            ("poll", "max_backoff", "\"20ms\""),
            ("server", "listen", "\"127.0.0.1:0\""),
            ("server", "unhealthy_after", "2"),
            ("delivery", "backoff", "\"50ms\""),
            ("delivery", "max_backoff", "\"100ms\""),
            ("delivery", "drain_timeout", "\"5s\""),
        ]
        .into_iter()
        .fold(self, |c, (section, key, value)| c.set(section, key, value))
    }

    /// Sets `key = value` (a TOML value) in `[section]`.
    pub fn set(mut self, section: &'static str, key: &str, value: &str) -> Self {
        self.sections
            .entry(section)
            .or_default()
            .insert(key.to_string(), value.to_string());
        self
    }

    pub fn db(self, path: &Path) -> Self {
        self.set("storage", "path", &format!("\"{}\"", path.display()))
    }

    /// The database is PostgreSQL at `url` (no SQLite file).
    pub fn postgres(self, url: &str) -> Self {
        self.set("storage", "url", &format!("\"{url}\""))
    }

    fn has_url(&self) -> bool {
        self.sections
            .get("storage")
            .is_some_and(|s| s.contains_key("url"))
    }

    /// Replaces the account's keys with these lines (none: the credentials chain).
    pub fn keys(mut self, lines: &str) -> Self {
        self.account.retain(|l| !l.starts_with("access_key_"));
        self.account.extend(lines.lines().map(str::to_string));
        self
    }

    /// Adds a line to the account (`signature = "v3"`, …).
    pub fn account_line(mut self, line: &str) -> Self {
        self.account.push(line.to_string());
        self
    }

    pub fn job(mut self, id: &str) -> Self {
        self.jobs.push(format!(
            "id = \"{id}\"\nregion = \"cn-hangzhou\"\naccount = \"sim\""
        ));
        self
    }

    pub fn named_job(mut self, id: &str, name: &str) -> Self {
        self.jobs.push(format!(
            "id = \"{id}\"\nregion = \"cn-hangzhou\"\naccount = \"sim\"\nname = \"{name}\""
        ));
        self
    }

    pub fn jobs(self, ids: &[&str]) -> Self {
        ids.iter().fold(self, |c, id| c.job(id))
    }

    /// Channels, rules, silences, discovery entries… as TOML.
    pub fn with(mut self, toml: &str) -> Self {
        self.extra.push(toml.to_string());
        self
    }

    pub fn text(&self) -> String {
        let mut out = String::new();
        for (section, keys) in &self.sections {
            out.push_str(&format!("[{section}]\n"));
            for (key, value) in keys {
                out.push_str(&format!("{key} = {value}\n"));
            }
            out.push('\n');
        }
        out.push_str(&format!("[[accounts]]\n{}\n\n", self.account.join("\n")));
        for job in &self.jobs {
            out.push_str(&format!("[[jobs]]\n{job}\n\n"));
        }
        for extra in &self.extra {
            out.push_str(extra);
            out.push_str("\n\n");
        }
        out
    }

    pub fn build(&self) -> Config {
        parse_config(&self.text())
    }

    /// Writes the config to `dir/dtswatch.toml`.
    pub fn write(&self, dir: &Path) -> PathBuf {
        let path = dir.join("dtswatch.toml");
        std::fs::write(&path, self.text()).expect("config written");
        path
    }
}

pub fn client(config: &Config, env: &Environment) -> AliyunClient {
    AliyunClient::new(&config.accounts[0], &config.poll, env).expect("client builds")
}

/// dtswatch in a test: a real SQLite file in a temp dir, the same poll
/// context `once` and `run` build, and the deliverer, on a clock the test
/// moves.
pub struct TestApp {
    pub dir: tempfile::TempDir,
    pub config: Config,
    pub store: Store,
    pub ctx: Arc<PollContext>,
    pub deliverer: Deliverer,
}

impl TestApp {
    /// `config` with its database in a fresh temp dir, credentials from `env`.
    pub async fn with_env(config: TestConfig, env: &Environment) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = if config.has_url() {
            config.build()
        } else {
            config.db(&dir.path().join("dtswatch.db")).build()
        };
        Self::open(config, dir, env).await
    }

    pub async fn new(config: TestConfig) -> Self {
        Self::with_env(config, &isolated_env()).await
    }

    /// A ready `config` (its database wherever it says), kept with `dir`.
    pub async fn open(config: Config, dir: tempfile::TempDir, env: &Environment) -> Self {
        let store = Store::connect(&config.storage).await.expect("store opens");
        let deliverer = Deliverer::new(store.clone(), &config).expect("channels build");
        let metrics = Arc::new(Metrics::new());
        let ctx = PollContext {
            clients: Clients::build(&config, env, Some(&metrics)).expect("clients build"),
            alerting: Alerting::from_config(&config),
            recorder: Arc::new(Recorder::new(store.clone())),
            metrics,
            health: Arc::new(Health::new(config.server.unhealthy_after, Utc::now())),
            delivery: deliverer.waker(),
            clock: Clock::manual(Utc::now()),
            sub_step_metrics: false,
        };
        Self {
            dir,
            config,
            store,
            ctx: Arc::new(ctx),
            deliverer,
        }
    }

    /// dtswatch stopped and started again on the same database: nothing kept in memory.
    pub async fn restart(self) -> Self {
        self.store.close().await;
        let Self { dir, config, .. } = self;
        Self::open(config, dir, &isolated_env()).await
    }

    /// The configured job `id`, or a job `id` named `job ID` in the config's first account.
    pub fn job(&self, id: &str) -> JobConfig {
        self.config
            .jobs
            .iter()
            .find(|j| j.id == id)
            .cloned()
            .unwrap_or_else(|| JobConfig {
                id: id.into(),
                region: "cn-hangzhou".into(),
                account: self.config.accounts[0].name.clone(),
                name: Some(format!("job {id}")),
                schedule: None,
                zero_etl: None,
                resource_group_id: None,
            })
    }

    /// Polls job `id` through `poll_one` at `at`; panics if the poll could not be recorded.
    pub async fn poll_at(&self, id: &str, at: DateTime<Utc>) -> (Polled, PollReport) {
        self.ctx.clock.set(at);
        let mut polled = poll::poll_one(
            &self.ctx,
            &self.job(id),
            JobSource::Config,
            dtswatch::aliyun::Priority::Poll,
        )
        .await;
        let report = std::mem::replace(
            &mut polled.recorded,
            Err(dtswatch::store::StoreError::Corrupt("taken".into())),
        )
        .unwrap_or_else(|e| panic!("the poll of {id} was not recorded: {e}"));
        (polled, report)
    }

    pub async fn poll(&self, id: &str) -> (Polled, PollReport) {
        self.poll_at(id, Utc::now()).await
    }

    /// Records a result made up by the test (no fetch) for job `id` at `at`.
    #[allow(clippy::result_large_err)] // the shape poll::fetch returns
    pub async fn record(
        &self,
        id: &str,
        at: DateTime<Utc>,
        result: &Result<Fetched, ApiFailure>,
    ) -> PollReport {
        self.ctx
            .recorder
            .record(
                &self.job(id),
                JobSource::Config,
                at,
                Duration::ZERO,
                result,
                &self.ctx.alerting,
            )
            .await
            .unwrap_or_else(|e| panic!("recording {id}: {e}"))
    }

    /// Delivers until the outbox is empty (or only holds rows not yet due), within 10 s;
    /// returns the rows still pending.
    pub async fn drain_outbox(&self) -> i64 {
        self.deliverer
            .drain(tokio::time::Instant::now() + Duration::from_secs(10))
            .await
            .expect("the outbox drains")
            .pending
    }
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
    pub async fn start(config: &TestConfig) -> Self {
        Self::start_with(config.build(), Environment::default()).await
    }

    pub async fn start_with(config: Config, env: Environment) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (listening, addr) = tokio::sync::oneshot::channel();
        let options = Options {
            listening: Some(listening),
            ..Options::default()
        };
        let task = tokio::spawn(daemon::run(
            config,
            env,
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

    /// `http://127.0.0.1:PORT`: where the daemon's HTTP server listens.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
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

/// What a finished command printed and how it exited.
pub struct CliOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// `dtswatch ARGS -c CONFIG` as an operator runs it, with `env` added.
pub fn run_cli_with(config: &Path, args: &[&str], env: &[(&str, &str)]) -> CliOutput {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_dtswatch"));
    command
        .args(args)
        .arg("-c")
        .arg(config)
        .env("DTSWATCH_LOG", "warn");
    for (name, value) in env {
        command.env(name, value);
    }
    let out = command.output().expect("dtswatch runs");
    CliOutput {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn run_cli(config: &Path, args: &[&str]) -> CliOutput {
    run_cli_with(config, args, &[])
}

/// `dtswatch run` as a child process, killed with SIGKILL when dropped.
pub struct DaemonProcess(std::process::Child);

impl DaemonProcess {
    pub fn start(config: &Path) -> Self {
        Self::start_logging(config, Stdio::null())
    }

    /// Like `start`, with its log (stderr, human format) going to `log`.
    pub fn start_logging(config: &Path, log: impl Into<Stdio>) -> Self {
        Self::start_logging_at(config, "warn", log)
    }

    /// Like `start_logging`, at log level `level`.
    pub fn start_logging_at(config: &Path, level: &str, log: impl Into<Stdio>) -> Self {
        DaemonProcess(
            std::process::Command::new(env!("CARGO_BIN_EXE_dtswatch"))
                .args(["run", "-c"])
                .arg(config)
                .env("DTSWATCH_LOG", level)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("the dtswatch binary starts"),
        )
    }

    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Sends `signal` (`HUP`, `TERM`, …) with kill(1).
    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &self.0.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal}");
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    /// SIGTERM, then waits for the exit; returns its code.
    pub fn terminate(&mut self) -> Option<i32> {
        self.signal("TERM");
        self.0.wait().ok().and_then(|s| s.code())
    }
}

impl Drop for DaemonProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A daemon's test config: its database in `dir`, the simulator account, `jobs`.
pub fn daemon_config(dir: &Path, endpoint: &str, jobs: &[&str]) -> TestConfig {
    TestConfig::new(endpoint)
        .daemon()
        .db(&dir.join("dtswatch.db"))
        .jobs(jobs)
}

/// A free loopback port for a child process to listen on.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
