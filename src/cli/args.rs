//! Command-line definitions (clap): the commands, their flags and help. Parsing only; `cli/mod.rs` dispatches.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "dtswatch",
    version = env!("DTSWATCH_VERSION"),
    about = "Watches Alibaba Cloud DTS jobs and alerts when they go wrong"
)]
pub struct Cli {
    /// Config file [default: ./dtswatch.toml, else /etc/dtswatch/dtswatch.toml].
    #[arg(short, long, global = true, env = "DTSWATCH_CONFIG")]
    pub config: Option<PathBuf>,

    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,

    /// Output on stdout of `status`, `once`, `history`, `outbox` and `silence list`.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,

    #[command(subcommand)]
    pub command: Command,
}

/// Where the config is looked for when neither `-c` nor `$DTSWATCH_CONFIG` names it.
pub const CONFIG_SEARCH: [&str; 2] = ["dtswatch.toml", "/etc/dtswatch/dtswatch.toml"];

impl Cli {
    /// The config file: `-c`, then `$DTSWATCH_CONFIG` (both through clap),
    /// then the first of [`CONFIG_SEARCH`] that exists — so an operator's
    /// `dtswatch status` on the daemon's host reads the daemon's config.
    pub fn config_path(&self) -> PathBuf {
        if let Some(path) = &self.config {
            return path.clone();
        }
        CONFIG_SEARCH
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from(CONFIG_SEARCH[0]))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum OutboxAction {
    /// Queue a dead (or stuck) notification again, due now.
    Retry { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum SilenceAction {
    /// Silence matching notifications for a while.
    Add {
        /// Glob over job id or name (repeatable).
        #[arg(long = "job")]
        jobs: Vec<String>,
        /// Glob over rule name (repeatable).
        #[arg(long = "rule")]
        rules: Vec<String>,
        /// Glob over step name or code (repeatable).
        #[arg(long = "step")]
        steps: Vec<String>,
        /// How long, from now (or from --starts).
        #[arg(long = "for", value_parser = parse_duration_arg)]
        duration: std::time::Duration,
        /// When it starts (RFC 3339); default now.
        #[arg(long)]
        starts: Option<chrono::DateTime<chrono::Utc>>,
        /// Why: shown in `silence list` and recorded with every silenced notification.
        #[arg(long)]
        comment: String,
        /// Who added it.
        #[arg(long, env = "USER")]
        author: Option<String>,
    },
    /// Silences that have not ended, from the database and the config.
    List,
    /// End a silence now.
    Expire { id: i64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

fn parse_duration_arg(text: &str) -> Result<std::time::Duration, String> {
    crate::config::parse_duration(text)
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
    Demo,
    /// Every job's last poll, steps and firing alerts (reads the database only).
    Status,
    /// The timeline of changes, poll failures and alerts of one job.
    History {
        /// DTS job id or name.
        job: String,
        /// How far back, e.g. 30m, 24h, 7d.
        #[arg(long, default_value = "24h", value_parser = parse_duration_arg)]
        since: std::time::Duration,
        /// Include latency and progress changes.
        #[arg(long)]
        all: bool,
    },
    /// Add, list or expire silences (a running daemon honours them at its next poll).
    Silence {
        #[command(subcommand)]
        action: SilenceAction,
    },
    /// Send a sample firing alert through a channel and print the peer's answer.
    TestNotify {
        /// Channel name from the config.
        channel: String,
    },
    /// What a rule would send, without sending it: for a ListJobStep
    /// response (a file, or `-` for stdin) or the job's stored snapshots.
    Render {
        /// Rule name from the config.
        rule: String,
        /// A ListJobStep response body (JSON), or `-` to read stdin;
        /// without it, the last two stored snapshots of --job.
        #[arg(long)]
        snapshot: Option<PathBuf>,
        /// The previous response: shows changes, evaluates transitions and
        /// stalls, and previews a resolution when the rule fires on it.
        #[arg(long, requires = "snapshot")]
        previous: Option<PathBuf>,
        /// Only this channel (default: every channel of the rule).
        #[arg(long)]
        channel: Option<String>,
        /// The job (id or name): whose stored snapshots to render, or whom
        /// a given response belongs to (default: the first configured job).
        #[arg(long, required_unless_present = "snapshot")]
        job: Option<String>,
        /// Print only the body the channel would send (needs --channel), for `jq`.
        #[arg(long, requires = "channel")]
        raw: bool,
    },
    /// Notifications waiting to be delivered (or dead ones), and retrying them.
    Outbox {
        /// List dead rows instead of pending ones.
        #[arg(long)]
        dead: bool,
        #[command(subcommand)]
        action: Option<OutboxAction>,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `dtswatch man > /usr/share/man/man1/dtswatch.1`.
    Man,
    /// Serve the DTS simulator on an address until Ctrl-C.
    Simulator {
        #[arg(long, default_value = "127.0.0.1:9188")]
        listen: std::net::SocketAddr,
        /// A scenario file (TOML); default: the built-in lifecycle scenario.
        #[arg(long, conflicts_with = "generate")]
        scenario: Option<PathBuf>,
        /// Instead of a scenario, serve this many generated jobs (`bench0000`…),
        /// 8 steps × 4 sub-steps each, latency moving every poll: the benchmark's load.
        #[arg(long)]
        generate: Option<usize>,
        /// With --generate: every poll answers the same.
        #[arg(long, requires = "generate")]
        frozen: bool,
        /// DTS's flow control: requests per second per account and region
        /// above which it answers `Throttling.User`.
        #[arg(long)]
        quota: Option<f64>,
    },
}
