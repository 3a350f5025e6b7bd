//! Wires the pieces together for each command. Everything long-running takes
//! its shutdown as an argument, so tests stop it without signals.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::aliyun::{AliyunClient, Environment};
use crate::cli::{Cli, Command};
use crate::config::{self, Config, ConfigErrors};
use crate::dts::JobSnapshot;
use crate::output;
use crate::poll;
use crate::scheduler;
use crate::sim::{self, Simulator};

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
    match cli.command {
        Command::CheckConfig => Ok(check_config(&cli.config)),
        Command::Once => match config::load(&cli.config) {
            Ok(config) => once(&config, &Environment::from_process()).await,
            Err(errors) => Ok(report_config_errors(&errors)),
        },
        Command::Run => match config::load(&cli.config) {
            Ok(config) => {
                run(config, Environment::from_process(), shutdown_signal()).await?;
                Ok(ExitCode::SUCCESS)
            }
            Err(errors) => Ok(report_config_errors(&errors)),
        },
        Command::Demo { interval } => demo(interval, shutdown_signal()).await,
        Command::Simulator { listen, scenario } => simulator(listen, scenario.as_deref()).await,
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

/// Polls every configured job once and prints the steps.
pub async fn once(config: &Config, env: &Environment) -> anyhow::Result<ExitCode> {
    let clients = Clients::build(config, env)?;
    let mut rows = Vec::new();
    let mut failures = 0;
    let results = futures_poll_all(config, &clients).await;
    for (job, result) in config.jobs.iter().zip(results) {
        match result {
            Ok(fetched) => rows.extend(output::snapshot_rows(job, &fetched.snapshot)),
            Err(message) => {
                failures += 1;
                eprintln!(
                    "{} ({}): poll failed: {message}",
                    job.display_name(),
                    job.id
                );
            }
        }
    }
    print!("{}", output::table(&output::SNAPSHOT_HEADER, &rows));
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn futures_poll_all(
    config: &Config,
    clients: &Clients,
) -> Vec<Result<crate::dts::api::Fetched, String>> {
    let semaphore = Arc::new(tokio::sync::Semaphore::new(config.poll.concurrency));
    let mut tasks = Vec::new();
    for job in &config.jobs {
        let client = clients.get(&job.account).cloned();
        let job = job.clone();
        let semaphore = semaphore.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = semaphore.acquire_owned().await.map_err(|e| e.to_string())?;
            let client =
                client.ok_or_else(|| format!("no client for account `{}`", job.account))?;
            poll::fetch(&client, &job)
                .await
                .map_err(|f| f.error.to_string())
        }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(
            task.await
                .unwrap_or_else(|e| Err(format!("poll task failed: {e}"))),
        );
    }
    results
}

/// The daemon: polls every job on its schedule until `shutdown` resolves.
pub async fn run(
    config: Config,
    env: Environment,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let clients = Arc::new(Clients::build(&config, &env)?);
    let cancel = CancellationToken::new();
    tracing::info!(jobs = config.jobs.len(), "dtswatch started");
    let poller = poll_forever(
        Arc::new(config),
        clients,
        cancel.clone(),
        |job, result| match result {
            Ok(fetched) => {
                tracing::info!(job = %job.id, steps = fetched.snapshot.steps.len(), "polled")
            }
            Err(message) => tracing::warn!(job = %job.id, error = %message, "poll failed"),
        },
    );
    tokio::select! {
        _ = poller => {},
        _ = shutdown => {
            tracing::info!("shutting down");
            cancel.cancel();
        }
    }
    Ok(())
}

/// A job, its schedule and jitter, its next fire time, and whether a poll is in flight.
type ScheduleEntry = (
    config::JobConfig,
    config::CronSchedule,
    std::time::Duration,
    chrono::DateTime<chrono::Utc>,
    Arc<std::sync::atomic::AtomicBool>,
);

/// Polls each job on its cron schedule (plus jitter) until cancelled, calling `report` with each result.
async fn poll_forever<F>(
    config: Arc<Config>,
    clients: Arc<Clients>,
    cancel: CancellationToken,
    report: F,
) where
    F: Fn(&config::JobConfig, Result<&crate::dts::api::Fetched, String>) + Send + Sync + 'static,
{
    let report = Arc::new(report);
    let semaphore = Arc::new(tokio::sync::Semaphore::new(config.poll.concurrency));
    let now = chrono::Utc::now();
    let mut entries: Vec<ScheduleEntry> = config
        .jobs
        .iter()
        .filter_map(|job| {
            let schedule = job
                .schedule
                .clone()
                .unwrap_or_else(|| config.poll.schedule.clone());
            let jitter = scheduler::effective_jitter(&job.id, &schedule, config.poll.jitter, now);
            let next = scheduler::next_fire(&schedule, jitter, now)?;
            Some((
                job.clone(),
                schedule,
                jitter,
                next,
                Arc::new(std::sync::atomic::AtomicBool::new(false)),
            ))
        })
        .collect();
    loop {
        let Some(earliest) = entries.iter().map(|e| e.3).min() else {
            return;
        };
        let wait = (earliest - chrono::Utc::now()).to_std().unwrap_or_default();
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        let now = chrono::Utc::now();
        for (job, schedule, jitter, next, busy) in entries.iter_mut() {
            if *next > now {
                continue;
            }
            *next = scheduler::next_fire(schedule, *jitter, now)
                .unwrap_or(now + chrono::Duration::days(365));
            if busy.swap(true, std::sync::atomic::Ordering::SeqCst) {
                tracing::warn!(job = %job.id, "previous poll still running; skipping this tick");
                continue;
            }
            let (job, busy, semaphore, report) =
                (job.clone(), busy.clone(), semaphore.clone(), report.clone());
            let client = clients.get(&job.account).cloned();
            tokio::spawn(async move {
                if let (Ok(_permit), Some(client)) = (semaphore.acquire_owned().await, client) {
                    let result = poll::fetch(&client, &job).await;
                    report(&job, result.as_ref().map_err(|f| f.error.to_string()));
                }
                busy.store(false, std::sync::atomic::Ordering::SeqCst);
            });
        }
    }
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

/// Runs the built-in scenario against the simulator, printing what changes, until it ends.
pub async fn demo(interval: u64, shutdown: impl Future<Output = ()>) -> anyhow::Result<ExitCode> {
    let simulator = Simulator::with_scenario(sim::scenario::LIFECYCLE)
        .await
        .map_err(anyhow::Error::msg)?;
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
    let clients = Clients::build(&config, &Environment::default())?;
    println!(
        "dtswatch demo: simulator on {}, polling {} job(s) every {interval}s",
        simulator.endpoint(),
        config.jobs.len()
    );
    let mut previous: HashMap<String, JobSnapshot> = HashMap::new();
    let mut ticker = tokio::time::interval(std::time::Duration::from_secs(interval.max(1)));
    tokio::pin!(shutdown);
    let mut extra_rounds = 1;
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = ticker.tick() => {}
        }
        let results = futures_poll_all(&config, &clients).await;
        for (job, result) in config.jobs.iter().zip(results) {
            match result {
                Ok(fetched) => {
                    if previous.get(&job.id) != Some(&fetched.snapshot) {
                        print!(
                            "{}",
                            output::table(
                                &output::SNAPSHOT_HEADER,
                                &output::snapshot_rows(job, &fetched.snapshot)
                            )
                        );
                        previous.insert(job.id.clone(), fetched.snapshot);
                    }
                }
                Err(message) => println!("{}: poll failed: {message}", job.display_name()),
            }
        }
        if simulator.scenario_finished() {
            if extra_rounds == 0 {
                break;
            }
            extra_rounds -= 1;
        }
    }
    let _ = std::fs::remove_dir_all(&workdir);
    println!("dtswatch demo: scenario finished");
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
) -> anyhow::Result<ExitCode> {
    let text = match scenario {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        }
        None => sim::scenario::LIFECYCLE.to_string(),
    };
    let (_, jobs) = sim::scenario::load(&text).map_err(anyhow::Error::msg)?;
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
