//! The `dtswatch` binary: parse the command line, set up logging, call the
//! library, and turn errors into exit codes (2 for config errors, 1 otherwise).

use std::process::ExitCode;

use clap::Parser;
use dtswatch::cli::{Cli, Command, LogFormat};

/// `DTSWATCH_LOG` (an `EnvFilter`) wins; otherwise `info`, or `warn` for commands whose stdout is the point.
fn init_tracing(format: LogFormat, quiet: bool) {
    let default = if quiet { "warn" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("DTSWATCH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colour only for a person at a terminal: never into a file, a pipe or
    // journald, and never with NO_COLOR (https://no-color.org).
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let quiet = !matches!(cli.command, Command::Run | Command::Simulator { .. });
    init_tracing(cli.log_format, quiet);
    // One thread drives everything: dtswatch waits on the network far more
    // than it computes, and tasks handed between worker threads cost more
    // CPU in wake-ups than they save (SQLite's own thread and blocking
    // file work run beside it).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dtswatch: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dtswatch::cli::dispatch(cli)) {
        Ok(code) => code,
        Err(error) => {
            let causes: Vec<String> = error.chain().map(ToString::to_string).collect();
            eprintln!(
                "dtswatch: {}",
                dtswatch::text::error_chain(causes.iter().map(String::as_str))
            );
            let locked = error.chain().any(|cause| {
                matches!(
                    cause.downcast_ref::<dtswatch::store::lock::LockError>(),
                    Some(dtswatch::store::lock::LockError::Locked(_))
                )
            });
            if locked {
                ExitCode::from(dtswatch::cli::EXIT_LOCKED)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
