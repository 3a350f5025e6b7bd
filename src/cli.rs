//! Command-line definitions (clap). Parsing only: `main.rs` dispatches.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "dtswatch",
    version,
    about = "Watches Alibaba Cloud DTS jobs and alerts when they go wrong"
)]
pub struct Cli {
    /// Config file.
    #[arg(
        short,
        long,
        global = true,
        env = "DTSWATCH_CONFIG",
        default_value = "dtswatch.toml"
    )]
    pub config: PathBuf,

    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: poll on schedule, alert, deliver.
    Run,
    /// Poll every job once now and print what DTS says.
    Once,
    /// Validate the config and print a summary; exit 2 on errors.
    CheckConfig,
    /// A self-contained run against the built-in DTS simulator.
    Demo {
        /// Seconds between polls.
        #[arg(long, default_value_t = 1)]
        interval: u64,
    },
    /// Serve the DTS simulator on an address until Ctrl-C.
    Simulator {
        #[arg(long, default_value = "127.0.0.1:9188")]
        listen: std::net::SocketAddr,
        /// A scenario file (TOML); default: the built-in lifecycle scenario.
        #[arg(long)]
        scenario: Option<PathBuf>,
    },
}
