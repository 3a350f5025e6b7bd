//! `dtswatch run` (the daemon until SIGTERM/SIGINT), `dtswatch demo` (the
//! daemon against the built-in simulator, printing as it goes) and
//! `dtswatch simulator` (the simulator alone, for trying things by hand and
//! for the benchmark).

use std::future::Future;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;

use super::EXIT_INTERRUPTED;
use crate::aliyun::Environment;
use crate::config::{self, Config};
use crate::daemon;
use crate::sim::{self, Simulator};
use crate::store::Store;

/// The demo's config, also shipped as `config/demo.toml` for people to copy.
pub const DEMO_CONFIG: &str = include_str!("../../config/demo.toml");

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
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

/// The daemon: polls every job on its schedule until `shutdown` resolves.
pub async fn run(
    config: Config,
    env: Environment,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<ExitCode> {
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
    .await?;
    Ok(ExitCode::SUCCESS)
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
    crate::outln!(
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
    // Stop when the scenario is done, on Ctrl-C, or when stdout's reader
    // went away (`dtswatch demo | head -3`): in each case clean up.
    let interrupted = Arc::new(AtomicBool::new(false));
    let stop = {
        let interrupted = interrupted.clone();
        async move {
            tokio::select! {
                _ = finished => {},
                _ = crate::stdout::closed() => {},
                _ = shutdown => interrupted.store(true, Ordering::Relaxed),
            }
        }
    };
    let options = daemon::Options {
        echo: true,
        ..daemon::Options::default()
    };
    let zone = config.messages.timezone;
    let silences = config.silences.clone();
    let ran = daemon::run(config, Environment::default(), stop, options).await;
    if ran.is_err() || interrupted.load(Ordering::Relaxed) {
        let _ = std::fs::remove_dir_all(&workdir);
        ran?;
        eprintln!("dtswatch demo: interrupted");
        return Ok(ExitCode::from(EXIT_INTERRUPTED));
    }
    let store = Store::open(&storage).await?;
    crate::outln!();
    crate::out!(
        "{}",
        super::status::report(&store, &silences, zone, &Default::default()).await?
    );
    store.close().await;
    let _ = std::fs::remove_dir_all(&workdir);
    crate::outln!(
        "\ndtswatch demo: scenario finished. `config/demo.toml` is the config it ran with."
    );
    Ok(ExitCode::SUCCESS)
}

/// A fresh private directory under the system temp dir.
fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("dtswatch-demo-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

pub async fn simulator(
    listen: std::net::SocketAddr,
    scenario: Option<&Path>,
    generate: Option<usize>,
    frozen: bool,
    quota: Option<f64>,
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
        quota,
        ..sim::SimOptions::default()
    })
    .await
    .with_context(|| format!("listening on {listen}"))?;
    crate::outln!(
        "DTS simulator on {} (AccessKeyId {}, secret {}); Ctrl-C to stop",
        simulator.endpoint(),
        sim::DEMO_ACCESS_KEY_ID,
        sim::DEMO_ACCESS_KEY_SECRET
    );
    shutdown_signal().await;
    Ok(ExitCode::SUCCESS)
}
