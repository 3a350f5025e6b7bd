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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
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
    let runtime = match tokio::runtime::Builder::new_multi_thread()
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
            eprintln!("dtswatch: {error:#}");
            ExitCode::FAILURE
        }
    }
}
