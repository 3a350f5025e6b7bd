//! The command line: clap definitions (`args.rs`), dispatch to one file per
//! command group, tables, and the exit codes (0 fine, 1 failed, 2 a config
//! error). Everything long-running takes its shutdown as an argument, so
//! tests stop it without signals.

pub mod args;
mod check;
pub mod history;
mod notify;
mod outbox;
pub mod poll;
pub mod run;
mod silence;
pub mod status;
pub mod table;

use std::process::ExitCode;

use anyhow::Context as _;

use crate::config::{self, Config, ConfigErrors};
use crate::store::Store;
pub use args::{Cli, Command, LogFormat};

/// Exit code for configuration errors.
pub const EXIT_CONFIG: u8 = 2;

fn report_config_errors(errors: &ConfigErrors) -> ExitCode {
    eprint!("{errors}");
    eprintln!("{} problem(s) found", errors.errors.len());
    ExitCode::from(EXIT_CONFIG)
}

pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    Store::open(&config.storage.path)
        .await
        .with_context(|| format!("opening the database {}", config.storage.path.display()))
}

/// Runs the command `cli` names; returns the process exit code.
pub async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    // Commands that need no config file.
    match &cli.command {
        Command::CheckConfig => return Ok(check::check_config(&cli.config)),
        Command::Demo => return run::demo(run::shutdown_signal()).await,
        Command::Simulator {
            listen,
            scenario,
            generate,
            frozen,
        } => return run::simulator(*listen, scenario.as_deref(), *generate, *frozen).await,
        _ => {}
    }
    let config = match config::load(&cli.config) {
        Ok(config) => config,
        Err(errors) => return Ok(report_config_errors(&errors)),
    };
    let env = crate::aliyun::Environment::from_process();
    match cli.command {
        Command::Once => poll::once(&config, &env).await,
        Command::Run => run::run(config, env, run::shutdown_signal()).await,
        Command::Status => status::status(&config).await,
        Command::History {
            job,
            since,
            format,
            all,
        } => history::history(&config, &job, since, format, all).await,
        Command::Silence { action } => silence::silence(&config, action).await,
        Command::Outbox { dead, action } => outbox::outbox(&config, dead, action).await,
        Command::TestNotify { channel } => notify::test_notify(&config, &channel).await,
        Command::Render {
            rule,
            snapshot,
            previous,
            channel,
            job,
        } => notify::render(
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
