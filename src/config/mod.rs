//! Configuration: the TOML file, `${VAR}` interpolation, and the typed `Config`
//! every other module reads. Loading is pure apart from reading the file: the
//! text is parsed into raw structs (`raw.rs`), then validated section by
//! section (`validate/`, and `channels/` for each channel type), collecting
//! *every* problem with its position (`errors.rs`). Nothing here opens
//! sockets or databases, and nothing here imports the rest of dtswatch: every
//! other module reads the config, never the reverse.

pub mod channels;
mod duration;
mod errors;
mod interpolate;
mod matcher;
mod raw;
mod schedule;
mod secret;
mod size;
mod storage;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use regex::Regex;

use crate::state::State;

pub use channels::{
    AlertmanagerAuth, AlertmanagerConfig, ChannelConfig, ChannelKind, ConsoleConfig, ConsoleFormat,
    DingTalkConfig, EmailConfig, FeishuConfig, FeishuFormat, MentionPolicy, RateLimit, SlackConfig,
    TlsMode, WeComConfig, WebhookConfig,
};
pub use duration::{MAX_DURATION, format_duration, parse_duration};
pub use errors::{ConfigError, ConfigErrors, line_column};
pub use interpolate::interpolate;
pub use matcher::Matcher;
pub use schedule::CronSchedule;
pub use secret::Secret;
pub use size::parse_size;
pub use storage::{HaConfig, StorageConfig, redacted as redacted_url};

/// The validated configuration. Built only by [`load`] / [`parse`].
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the config came from, for messages and SIGHUP reloads.
    pub source: PathBuf,
    pub storage: StorageConfig,
    pub ha: HaConfig,
    pub poll: PollConfig,
    pub server: ServerConfig,
    pub delivery: DeliveryConfig,
    pub messages: MessagesConfig,
    pub accounts: Vec<AccountConfig>,
    pub jobs: Vec<JobConfig>,
    pub discover: Vec<DiscoverConfig>,
    pub channels: BTreeMap<String, ChannelConfig>,
    pub rules: Vec<RuleConfig>,
    pub silences: Vec<SilenceConfig>,
    pub watchdog: Option<WatchdogConfig>,
    /// What `check-config` and the daemon's start-up say but accept, as
    /// `file:line:column: warning: message` lines.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct PollConfig {
    pub schedule: CronSchedule,
    /// Per HTTP request to DTS.
    pub timeout: Duration,
    pub concurrency: usize,
    /// Per account, so one account's jobs stay under DTS throttling.
    pub max_rps: f64,
    /// Tries per poll for retryable failures (throttling, 5xx, timeouts).
    pub attempts: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Upper bound of the deterministic per-job offset added to each tick.
    pub jitter: Duration,
    /// The largest DTS answer read; a larger one fails the poll.
    pub max_answer: usize,
    /// Whether each account-region is swept (`DescribeDtsJobs`) and its
    /// quiet jobs refreshed slowly, or every job fetched every tick.
    pub mode: PollMode,
    /// How often a quiet job's steps are fetched in adaptive mode.
    pub refresh: Duration,
    /// How often a finished job's steps are fetched in adaptive mode.
    pub refresh_finished: Duration,
}

/// `poll.mode`: how jobs are polled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollMode {
    /// Adaptive where fetching every job every tick would take more than
    /// half of the account's budget in a region, per job elsewhere.
    Auto,
    /// `ListJobStep` for every job on every tick.
    PerJob,
    /// A `DescribeDtsJobs` sweep every tick, `ListJobStep` where it matters.
    Adaptive,
}

impl PollMode {
    /// Whether an account's `jobs` in a region polled every `period` are
    /// swept: always, never, or (`auto`) when fetching each one every tick
    /// would take more than half of the budget.
    pub fn sweeps(self, jobs: usize, period: Duration, max_rps: f64) -> bool {
        match self {
            PollMode::Adaptive => true,
            PollMode::PerJob => false,
            PollMode::Auto => jobs as f64 / period.as_secs_f64().max(0.001) > max_rps / 2.0,
        }
    }
}

/// Jobs `DescribeDtsJobs` lists per page.
pub const SWEEP_PAGE: usize = 30;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `None` disables the health and metrics endpoint.
    pub listen: Option<SocketAddr>,
    /// `/healthz` turns 503 after this many consecutive failed poll cycles.
    pub unhealthy_after: u32,
    /// Bearer tokens that may write through the API (silences, outbox
    /// retries): given as written, or only their SHA-256.
    pub tokens: Vec<ApiToken>,
    /// Serve HTTPS with this certificate chain and key (PEM).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The address people reach the status page at, for links in alerts
    /// (Alertmanager's `generatorURL`); default `http(s)://listen`.
    pub public_url: Option<String>,
    /// Expose sub-steps as well as steps in the per-step gauges.
    pub metrics_sub_steps: bool,
}

impl ServerConfig {
    /// Where people reach the status page: `public_url`, else the listen
    /// address (`None` when nothing listens).
    pub fn status_page(&self) -> Option<String> {
        if let Some(url) = &self.public_url {
            return Some(url.clone());
        }
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        self.listen.map(|addr| format!("{scheme}://{addr}"))
    }
}

/// One API token: the secret itself, or its SHA-256 (`sha256:` + hex).
#[derive(Debug, Clone)]
pub enum ApiToken {
    Plain(Secret),
    Sha256([u8; 32]),
}

#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    pub concurrency: usize,
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// A notification still undelivered after this long is moved to dead.
    pub max_age: Duration,
    /// How long `once` and shutdown wait for the outbox to empty.
    pub drain_timeout: Duration,
    pub timeout: Duration,
    /// The largest chat or webhook answer read.
    pub max_answer: usize,
}

/// The language alerts are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Locale {
    #[default]
    En,
    ZhCn,
}

impl Locale {
    pub fn as_str(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::ZhCn => "zh-CN",
        }
    }
}

/// Where a job's "open in the DTS console" link points unless
/// `[messages] console_url` (or the account's) says otherwise.
pub const DEFAULT_CONSOLE_URL: &str =
    "https://dts.console.aliyun.com/?regionId={region}#/task/{region}/{job_id}";

/// `[messages]`: how alerts read.
#[derive(Debug, Clone)]
pub struct MessagesConfig {
    pub locale: Locale,
    /// Times in messages and CLI tables, and the wall clock of every cron expression.
    pub timezone: chrono_tz::Tz,
    /// The console link template (`{region}`, `{job_id}`); an account's own wins.
    pub console_url: String,
}

impl Default for MessagesConfig {
    fn default() -> Self {
        Self {
            locale: Locale::En,
            timezone: chrono_tz::UTC,
            console_url: DEFAULT_CONSOLE_URL.to_string(),
        }
    }
}

/// Which Alibaba Cloud request signature an account uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureVersion {
    /// RPC HMAC-SHA1, `SignatureVersion=1.0`.
    V1,
    /// ACS3-HMAC-SHA256.
    V3,
}

#[derive(Debug, Clone)]
pub enum CredentialsConfig {
    /// Keys written in the config (usually through `${VAR}`).
    Static {
        access_key_id: String,
        access_key_secret: Secret,
        security_token: Option<Secret>,
    },
    /// The standard chain: env vars, CLI profile, credentials file, ECS RAM role.
    Chain {
        profile: Option<String>,
        ecs_role: Option<String>,
        metadata_url: Option<String>,
    },
}

#[derive(Debug, Clone)]
pub struct AccountConfig {
    pub name: String,
    pub credentials: CredentialsConfig,
    /// Overrides the per-region endpoint, e.g. `http://127.0.0.1:9188` for the simulator.
    pub endpoint: Option<String>,
    pub signature: SignatureVersion,
    pub max_rps: f64,
    /// This account's console link template, when it differs from `[messages]`'s.
    pub console_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JobConfig {
    pub id: String,
    pub region: String,
    pub account: String,
    pub name: Option<String>,
    pub schedule: Option<CronSchedule>,
    pub zero_etl: Option<bool>,
    pub resource_group_id: Option<String>,
}

impl Config {
    /// The console link template for `job`: its account's, else `[messages]`'s.
    pub fn console_url_for(&self, job: &JobConfig) -> &str {
        self.accounts
            .iter()
            .find(|a| a.name == job.account)
            .and_then(|a| a.console_url.as_deref())
            .unwrap_or(&self.messages.console_url)
    }
}

impl JobConfig {
    /// The name people know the job by, falling back to its id.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }
}

/// DTS job families, as `DescribeDtsJobs` names them in `JobType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum JobType {
    Migration,
    Sync,
    Subscribe,
}

impl JobType {
    pub const ALL: [JobType; 3] = [JobType::Migration, JobType::Sync, JobType::Subscribe];

    pub fn as_api(self) -> &'static str {
        match self {
            JobType::Migration => "MIGRATION",
            JobType::Sync => "SYNC",
            JobType::Subscribe => "SUBSCRIBE",
        }
    }
}

impl FromStr for JobType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_uppercase().as_str() {
            "MIGRATION" => Ok(JobType::Migration),
            "SYNC" => Ok(JobType::Sync),
            "SUBSCRIBE" => Ok(JobType::Subscribe),
            _ => Err(format!(
                "unknown job type `{s}`; use MIGRATION, SYNC or SUBSCRIBE"
            )),
        }
    }
}

#[derive(Debug, Clone)]
pub struct DiscoverConfig {
    pub account: String,
    pub regions: Vec<String>,
    pub job_types: Vec<JobType>,
    /// Glob over the job name (`DtsJobName`).
    pub name: Option<Matcher>,
    /// Every tag listed must be present with this value.
    pub tags: BTreeMap<String, String>,
    /// Job statuses to keep (`Synchronizing`, `Migrating`, …); empty keeps all.
    pub status: Vec<String>,
    pub refresh: Duration,
    /// Poll schedule for the jobs this entry finds.
    pub schedule: Option<CronSchedule>,
    pub resource_group_id: Option<String>,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "info" => Ok(Severity::Info),
            "warning" => Ok(Severity::Warning),
            "critical" => Ok(Severity::Critical),
            _ => Err(format!(
                "unknown severity `{s}`; use info, warning or critical"
            )),
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone)]
pub enum RuleKind {
    Failed {
        states: Vec<State>,
    },
    Error {
        pattern: Option<Regex>,
        ignore: Option<Regex>,
    },
    Latency {
        threshold_ms: i64,
        resolve_below_ms: i64,
    },
    Stalled,
    Transition {
        from: Vec<State>,
        to: Vec<State>,
    },
    Unreachable,
    /// The watchdog's checks on dtswatch itself, built from `[watchdog]`;
    /// never written in `[[rules]]`.
    Watchdog,
}

impl RuleKind {
    pub fn name(&self) -> &'static str {
        match self {
            RuleKind::Failed { .. } => "failed",
            RuleKind::Error { .. } => "error",
            RuleKind::Latency { .. } => "latency",
            RuleKind::Stalled => "stalled",
            RuleKind::Transition { .. } => "transition",
            RuleKind::Unreachable => "unreachable",
            RuleKind::Watchdog => "watchdog",
        }
    }
}

#[derive(Debug, Clone)]
pub struct RuleConfig {
    pub name: String,
    pub kind: RuleKind,
    pub severity: Severity,
    pub channels: Vec<String>,
    /// Globs over job id or name; `None` matches every job.
    pub jobs: Option<Matcher>,
    /// Globs over step name or code; `None` matches every step.
    pub steps: Option<Matcher>,
    pub sub_steps: bool,
    /// A sub-step alert saying what its step's alert says goes out inside
    /// the step's message instead of as a message of its own.
    pub fold_sub_steps: bool,
    /// How long the condition must hold before firing.
    pub for_: Duration,
    pub repeat: Option<Duration>,
    pub send_resolved: bool,
    /// Consecutive matching polls before firing.
    pub after: u32,
    /// Consecutive clean polls before resolving.
    pub resolve_after: u32,
    /// Rule names or kinds whose firing alerts hold this rule back.
    pub inhibited_by: Vec<String>,
    pub runbook: Option<String>,
}

#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // built once per config; boxing buys nothing
pub enum SilenceWindow {
    Fixed {
        starts: Option<chrono::DateTime<chrono::Utc>>,
        ends: chrono::DateTime<chrono::Utc>,
    },
    /// A recurring maintenance window: starts at each cron tick, lasts `duration`.
    Recurring {
        cron: CronSchedule,
        duration: Duration,
    },
}

#[derive(Debug, Clone)]
pub struct SilenceConfig {
    pub jobs: Option<Matcher>,
    pub rules: Option<Matcher>,
    pub steps: Option<Matcher>,
    pub window: SilenceWindow,
    pub comment: String,
}

#[derive(Debug, Clone)]
pub struct WatchdogConfig {
    pub channels: Vec<String>,
    pub no_successful_poll: Duration,
    pub dead_letters: bool,
    pub severity: Severity,
}

/// The process environment, as interpolation sees it.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The largest config file read: a config is a few kilobytes.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Reads a config file: a regular file (a FIFO or a device would hang or
/// never end) of at most [`MAX_CONFIG_BYTES`].
fn read_bounded(path: &Path) -> Result<String, String> {
    use std::io::Read as _;
    let metadata = std::fs::metadata(path).map_err(|e| format!("cannot read config file: {e}"))?;
    if !metadata.is_file() {
        return Err("cannot read config file: it is not a regular file".into());
    }
    if metadata.len() > MAX_CONFIG_BYTES {
        return Err(format!(
            "cannot read config file: it has {} bytes, more than the {MAX_CONFIG_BYTES} a config may have",
            metadata.len()
        ));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read config file: {e}"))?;
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "cannot read config file: it is not UTF-8 (byte {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// Reads and validates the config file at `path` against the process environment.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    load_with_env(path, &process_env)
}

/// Like [`load`] with an explicit environment lookup (the demo overlays its own values).
pub fn load_with_env(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigErrors> {
    let file = path.display().to_string();
    let text = read_bounded(path).map_err(|message| ConfigErrors {
        file: file.clone(),
        text: String::new(),
        errors: vec![ConfigError {
            span: None,
            message,
        }],
    })?;
    parse(&text, path, env)
}

/// Parses and validates config text; `source` is only used in messages.
pub fn parse(
    text: &str,
    source: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigErrors> {
    let rendered = |errors: Vec<ConfigError>| ConfigErrors {
        file: source.display().to_string(),
        text: text.to_string(),
        errors,
    };
    let (mut config, warnings) =
        validate::parse_and_validate(text, source, env).map_err(rendered)?;
    config.warnings = rendered(
        warnings
            .into_iter()
            .map(|w| ConfigError {
                span: w.span,
                message: format!("warning: {}", w.message),
            })
            .collect(),
    )
    .lines();
    Ok(config)
}

impl Config {
    pub fn account(&self, name: &str) -> Option<&AccountConfig> {
        self.accounts.iter().find(|a| a.name == name)
    }

    pub fn rule(&self, name: &str) -> Option<&RuleConfig> {
        self.rules.iter().find(|r| r.name == name)
    }

    /// A few lines for `check-config` and the startup log.
    pub fn summary(&self) -> String {
        let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
        for rule in &self.rules {
            *kinds.entry(rule.kind.name()).or_default() += 1;
        }
        let kinds = kinds
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", ");
        let channels = self
            .channels
            .values()
            .map(|c| format!("{} ({})", c.name, c.kind.type_name()))
            .collect::<Vec<_>>()
            .join(", ");
        let watchdog = match &self.watchdog {
            Some(w) => format!(
                "watchdog: to {} after {} without a successful poll",
                w.channels.join(", "),
                format_duration(w.no_successful_poll)
            ),
            None => "watchdog: off".to_string(),
        };
        format!(
            "accounts: {} · jobs: {} · discovery entries: {} · silences: {}\n\
             channels: {}\n\
             rules: {}\n\
             poll schedule `{}` · database {} · retention {} · {}",
            self.accounts.len(),
            self.jobs.len(),
            self.discover.len(),
            self.silences.len(),
            if channels.is_empty() {
                "none".to_string()
            } else {
                channels
            },
            if kinds.is_empty() {
                "none".to_string()
            } else {
                kinds
            },
            self.poll.schedule.source,
            self.storage.describe(),
            format_duration(self.storage.retention),
            watchdog,
        )
    }
}
