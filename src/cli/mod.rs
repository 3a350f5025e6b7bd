//! The command line: clap definitions (`args.rs`), dispatch to one file per
//! command group, tables, and the exit codes (0 fine, 1 failed, 2 a config
//! error). Everything long-running takes its shutdown as an argument, so
//! tests stop it without signals.

pub mod args;
mod check;
mod docs;
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

/// Exit code for configuration and usage errors.
pub const EXIT_CONFIG: u8 = 2;
/// Exit code when another `dtswatch run` holds the database.
pub const EXIT_LOCKED: u8 = 3;
/// Exit code after Ctrl-C (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: u8 = 130;

fn report_config_errors(errors: &ConfigErrors) -> ExitCode {
    eprint!("{errors}");
    eprintln!("{} problem(s) found", errors.errors.len());
    ExitCode::from(EXIT_CONFIG)
}

/// The database, created if missing: for `once`, which records polls.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    Store::connect(&config.storage)
        .await
        .with_context(|| format!("opening the database {}", config.storage.describe()))
}

/// The database a daemon has created, never a new one: for the operator's
/// commands (`status`, `history`, `silence`, `outbox`), so that a wrong `-c`
/// is an error naming the file instead of an empty answer (or a silence
/// that silences nothing).
pub async fn open_existing_store(config: &Config) -> anyhow::Result<Store> {
    Ok(Store::connect_existing(&config.storage).await?)
}

/// Like [`open_existing_store`], read-only: for commands that only read.
pub async fn open_store_read_only(config: &Config) -> anyhow::Result<Store> {
    Ok(Store::connect_read_only(&config.storage).await?)
}

/// Runs the command `cli` names; returns the process exit code.
pub async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    // Commands that need no config file.
    match &cli.command {
        Command::CheckConfig => return Ok(check::check_config(&cli.config_path())),
        Command::Completions { shell } => return Ok(docs::completions(*shell)),
        Command::Man => return docs::man_page(),
        Command::Demo => return run::demo(run::shutdown_signal()).await,
        Command::Simulator {
            listen,
            scenario,
            generate,
            frozen,
            quota,
        } => {
            return run::simulator(*listen, scenario.as_deref(), *generate, *frozen, *quota).await;
        }
        _ => {}
    }
    let config = match config::load(&cli.config_path()) {
        Ok(config) => config,
        Err(errors) => return Ok(report_config_errors(&errors)),
    };
    let env = crate::aliyun::Environment::from_process();
    let format = cli.format;
    match cli.command {
        Command::Once => poll::once(&config, &env, format).await,
        Command::Run => run::run(config, env, run::shutdown_signal()).await,
        Command::Status => status::status(&config, format).await,
        Command::History { job, since, all } => {
            history::history(&config, &job, since, format, all).await
        }
        Command::Silence { action } => silence::silence(&config, action, format).await,
        Command::Outbox { dead, action } => outbox::outbox(&config, dead, action, format).await,
        Command::TestNotify { channel } => notify::test_notify(&config, &channel).await,
        Command::Render {
            rule,
            snapshot,
            previous,
            channel,
            job,
            raw,
        } => {
            let source = match snapshot {
                Some(snapshot) => notify::Source::Files { snapshot, previous },
                None => notify::Source::Stored,
            };
            let output = if raw {
                notify::Output::Raw
            } else {
                notify::Output::Annotated
            };
            notify::render(
                &config,
                &rule,
                source,
                channel.as_deref(),
                job.as_deref(),
                output,
            )
            .await
        }
        Command::CheckConfig
        | Command::Completions { .. }
        | Command::Man
        | Command::Demo
        | Command::Simulator { .. } => Ok(ExitCode::SUCCESS),
    }
}

/// Prints `value` as pretty JSON and a newline (`--format json`).
pub fn print(value: &impl serde::Serialize) -> anyhow::Result<()> {
    crate::outln!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
