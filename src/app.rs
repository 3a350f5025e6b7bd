//! Wires the pieces together for each command. Everything long-running takes
//! its shutdown as an argument, so tests stop it without signals.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;

use crate::aliyun::{AliyunClient, Environment};
use crate::cli::{Cli, Command};
use crate::commands;
use crate::config::{self, Config, ConfigErrors};
use crate::daemon;
use crate::notify::outbox::Deliverer;
use crate::output;
use crate::poll::{self, Alerting, Recorder};
use crate::report;
use crate::sim::{self, Simulator};
use crate::store::Store;

/// The demo's config, also shipped as `config/demo.toml` for people to copy.
pub const DEMO_CONFIG: &str = include_str!("../config/demo.toml");

/// Exit code for configuration errors.
pub const EXIT_CONFIG: u8 = 2;

/// One client per configured account.
pub struct Clients(HashMap<String, Arc<AliyunClient>>);

impl Clients {
    pub fn build(config: &Config, env: &Environment) -> anyhow::Result<Self> {
        let mut clients = HashMap::new();
        for account in &config.accounts {
            let client = AliyunClient::new(account, &config.poll, env)
                .with_context(|| format!("account `{}`", account.name))?;
            clients.insert(account.name.clone(), Arc::new(client));
        }
        Ok(Self(clients))
    }

    pub fn get(&self, account: &str) -> Option<&Arc<AliyunClient>> {
        self.0.get(account)
    }
}

fn report_config_errors(errors: &ConfigErrors) -> ExitCode {
    eprint!("{errors}");
    eprintln!("{} problem(s) found", errors.errors.len());
    ExitCode::from(EXIT_CONFIG)
}

pub async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    // Commands that need no config file.
    match &cli.command {
        Command::CheckConfig => return Ok(check_config(&cli.config)),
        Command::Demo => return demo(shutdown_signal()).await,
        Command::Simulator {
            listen,
            scenario,
            generate,
            frozen,
        } => return simulator(*listen, scenario.as_deref(), *generate, *frozen).await,
        _ => {}
    }
    let config = match config::load(&cli.config) {
        Ok(config) => config,
        Err(errors) => return Ok(report_config_errors(&errors)),
    };
    match cli.command {
        Command::Once => once(&config, &Environment::from_process()).await,
        Command::Run => {
            run(config, Environment::from_process(), shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Status => {
            let store = open_store(&config).await?;
            print!("{}", report::status(&store).await?);
            Ok(ExitCode::SUCCESS)
        }
        Command::History {
            job,
            since,
            format,
            all,
        } => commands::history(&config, &job, since, format, all).await,
        Command::Silence { action } => commands::silence(&config, action).await,
        Command::Outbox { dead, action } => commands::outbox(&config, dead, action).await,
        Command::TestNotify { channel } => commands::test_notify(&config, &channel).await,
        Command::Render {
            rule,
            snapshot,
            previous,
            channel,
            job,
        } => commands::render(
            &config,
            &rule,
            &snapshot,
            previous.as_deref(),
            channel.as_deref(),
            job.as_deref(),
        ),
        Command::CheckConfig | Command::Demo | Command::Simulator { .. } => Ok(ExitCode::SUCCESS),
    }
}

fn check_config(path: &Path) -> ExitCode {
    match config::load(path) {
        Ok(config) => {
            println!("{}: ok", path.display());
            println!("{}", config.summary());
            ExitCode::SUCCESS
        }
        Err(errors) => report_config_errors(&errors),
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    Store::open(&config.storage.path)
        .await
        .with_context(|| format!("opening the database {}", config.storage.path.display()))
}

/// Polls every configured job once, records what it saw, and prints the steps.
pub async fn once(config: &Config, env: &Environment) -> anyhow::Result<ExitCode> {
    let clients = Clients::build(config, env)?;
    let recorder = Recorder::new(open_store(config).await?);
    let alerting = Alerting::from_config(config);
    let deliverer = Deliverer::new(recorder.store().clone(), config).map_err(anyhow::Error::msg)?;
    let mut rows = Vec::new();
    let mut failures = 0;
    let jobs = daemon::discover_once(config, &clients).await;
    for (job, (at, duration, result)) in jobs.iter().zip(poll_all(config, &jobs, &clients).await) {
        let report = recorder
            .record(job, "config", at, duration, &result, &alerting)
            .await
            .with_context(|| format!("recording the poll of {}", job.id))?;
        for notice in &report.notices {
            eprintln!(
                "{}: {}",
                job.display_name(),
                report::event_line(
                    &notice.event,
                    notice.suppressed.as_ref().map(|s| s.describe()).as_deref()
                )
            );
        }
        match result {
            Ok(fetched) => rows.extend(output::snapshot_rows(job, &fetched.snapshot)),
            Err(failure) => {
                failures += 1;
                eprintln!(
                    "{} ({}): poll failed: {}",
                    job.display_name(),
                    job.id,
                    failure.error
                );
            }
        }
    }
    print!("{}", output::table(&output::SNAPSHOT_HEADER, &rows));
    let deadline = tokio::time::Instant::now() + config.delivery.drain_timeout;
    let pending = deliverer.drain(deadline).await?;
    if pending > 0 {
        eprintln!(
            "{pending} notification(s) still pending after {}: see `dtswatch outbox`; `dtswatch run` or the next `once` delivers them",
            config::format_duration(config.delivery.drain_timeout)
        );
        failures += 1;
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A poll's end time, duration and result.
type Polled = (
    chrono::DateTime<chrono::Utc>,
    std::time::Duration,
    Result<crate::dts::api::Fetched, crate::aliyun::ApiFailure>,
);

/// Polls every configured job concurrently (bounded by `poll.concurrency`), results in job order.
async fn poll_all(config: &Config, jobs: &[config::JobConfig], clients: &Clients) -> Vec<Polled> {
    let semaphore = Arc::new(tokio::sync::Semaphore::new(config.poll.concurrency));
    let mut tasks = Vec::new();
    for job in jobs {
        let client = clients.get(&job.account).cloned();
        let job = job.clone();
        let semaphore = semaphore.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = semaphore.acquire_owned().await;
            let started = std::time::Instant::now();
            let result = match client {
                Some(client) => poll::fetch(&client, &job).await,
                None => Err(crate::aliyun::ApiFailure {
                    error: crate::aliyun::ApiError::Credentials(format!(
                        "no client for account `{}`",
                        job.account
                    )),
                    attempts: 0,
                    retried: Vec::new(),
                    backoff: std::time::Duration::ZERO,
                }),
            };
            (chrono::Utc::now(), started.elapsed(), result)
        }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap_or_else(|e| {
            (
                chrono::Utc::now(),
                std::time::Duration::ZERO,
                Err(crate::aliyun::ApiFailure {
                    error: crate::aliyun::ApiError::Network(format!("poll task failed: {e}")),
                    attempts: 0,
                    retried: Vec::new(),
                    backoff: std::time::Duration::ZERO,
                }),
            )
        }));
    }
    results
}

/// The daemon: polls every job on its schedule until `shutdown` resolves.
pub async fn run(
    config: Config,
    env: Environment,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let path = config.source.clone();
    daemon::run(
        config,
        env,
        shutdown,
        daemon::Options {
            config_path: Some(path),
            ..daemon::Options::default()
        },
    )
    .await
}

/// An environment lookup that overlays `extra` on the process environment.
pub fn overlay_env(extra: Vec<(String, String)>) -> impl Fn(&str) -> Option<String> {
    move |name: &str| {
        extra
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .or_else(|| config::process_env(name))
    }
}

/// Runs the daemon against the simulator's built-in scenario with the demo
/// config, printing changes and alerts, until the scenario has played out.
pub async fn demo(shutdown: impl Future<Output = ()>) -> anyhow::Result<ExitCode> {
    let simulator = Arc::new(
        Simulator::with_scenario(sim::scenario::LIFECYCLE)
            .await
            .map_err(anyhow::Error::msg)?,
    );
    let workdir = tempfile_dir()?;
    let env = overlay_env(vec![
        ("DTSWATCH_SIM_ENDPOINT".into(), simulator.endpoint()),
        (
            "DTSWATCH_DEMO_DB".into(),
            workdir.join("demo.db").display().to_string(),
        ),
    ]);
    let config = config::parse(DEMO_CONFIG, Path::new("config/demo.toml"), &env)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let storage = config.storage.path.clone();
    println!(
        "dtswatch demo: a DTS simulator on {} plays a migration from precheck to finish; dtswatch polls it every second.\n",
        simulator.endpoint()
    );
    // Stop a couple of polls after the scenario has played out, or on Ctrl-C.
    let finished = {
        let simulator = simulator.clone();
        async move {
            while !simulator.scenario_finished() {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
        }
    };
    let stop = async move {
        tokio::select! {
            _ = finished => {},
            _ = shutdown => {},
        }
    };
    let options = daemon::Options {
        echo: true,
        ..daemon::Options::default()
    };
    daemon::run(config, Environment::default(), stop, options).await?;
    let store = Store::open(&storage).await?;
    println!();
    print!("{}", report::status(&store).await?);
    store.close().await;
    let _ = std::fs::remove_dir_all(&workdir);
    println!("\ndtswatch demo: scenario finished. `config/demo.toml` is the config it ran with.");
    Ok(ExitCode::SUCCESS)
}

/// A fresh private directory under the system temp dir.
fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("dtswatch-demo-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

async fn simulator(
    listen: std::net::SocketAddr,
    scenario: Option<&Path>,
    generate: Option<usize>,
    frozen: bool,
) -> anyhow::Result<ExitCode> {
    let jobs = match generate {
        Some(n) => (0..n)
            .map(|i| {
                sim::SimJob::generated_with(&format!("bench{i:04}"), "cn-hangzhou", 8, 4, !frozen)
            })
            .collect(),
        None => {
            let text = match scenario {
                Some(path) => std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?,
                None => sim::scenario::LIFECYCLE.to_string(),
            };
            sim::scenario::load(&text).map_err(anyhow::Error::msg)?.1
        }
    };
    let simulator = Simulator::start(sim::SimOptions {
        listen,
        jobs,
        ..sim::SimOptions::default()
    })
    .await
    .with_context(|| format!("listening on {listen}"))?;
    println!(
        "DTS simulator on {} (AccessKeyId {}, secret {}); Ctrl-C to stop",
        simulator.endpoint(),
        sim::DEMO_ACCESS_KEY_ID,
        sim::DEMO_ACCESS_KEY_SECRET
    );
    shutdown_signal().await;
    Ok(ExitCode::SUCCESS)
}
