//! Configuration: the TOML file, `${VAR}` interpolation, and the typed `Config`
//! every other module reads. Loading is pure apart from reading the file: the
//! text is parsed into raw structs (`raw.rs`), then validated in one pass that
//! collects *every* problem with its position (`validate.rs`). Nothing here opens
//! sockets or databases.

mod duration;
mod interpolate;
mod raw;
mod secret;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use globset::{Glob, GlobSet, GlobSetBuilder};
use regex::Regex;

use crate::dts::State;

pub use duration::{format_duration, parse_duration};
pub use interpolate::interpolate;
pub use secret::Secret;

/// The validated configuration. Built only by [`load`] / [`parse`].
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the config came from, for messages and SIGHUP reloads.
    pub source: PathBuf,
    pub storage: StorageConfig,
    pub poll: PollConfig,
    pub server: ServerConfig,
    pub delivery: DeliveryConfig,
    pub accounts: Vec<AccountConfig>,
    pub jobs: Vec<JobConfig>,
    pub discover: Vec<DiscoverConfig>,
    pub channels: BTreeMap<String, ChannelConfig>,
    pub rules: Vec<RuleConfig>,
    pub silences: Vec<SilenceConfig>,
    pub watchdog: Option<WatchdogConfig>,
}

#[derive(Debug, Clone)]
pub struct StorageConfig {
    pub path: PathBuf,
    /// Polls, snapshots and resolved alerts older than this are pruned.
    pub retention: Duration,
    pub prune_interval: Duration,
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
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `None` disables the health and metrics endpoint.
    pub listen: Option<SocketAddr>,
    /// `/healthz` turns 503 after this many consecutive failed poll cycles.
    pub unhealthy_after: u32,
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

/// When something happens: a cron expression with seconds (`sec min hour dom
/// mon dow [year]`; five-field expressions get `0` seconds prepended), or
/// `@every <duration>` for fixed intervals, sub-second ones included.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    pub source: String,
    kind: ScheduleKind,
}

#[derive(Debug, Clone)]
enum ScheduleKind {
    Cron(Box<cron::Schedule>),
    /// Ticks at multiples of the interval since the Unix epoch.
    Every(Duration),
}

impl PartialEq for CronSchedule {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl CronSchedule {
    pub fn parse(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        if let Some(interval) = trimmed.strip_prefix("@every") {
            let every = parse_duration(interval).map_err(|e| format!("`{trimmed}`: {e}"))?;
            if every < Duration::from_millis(10) {
                return Err(format!("`{trimmed}` is too often; use at least 10ms"));
            }
            return Ok(Self {
                source: trimmed.to_string(),
                kind: ScheduleKind::Every(every),
            });
        }
        let fields = trimmed.split_whitespace().count();
        let expression = match fields {
            5 => format!("0 {trimmed}"),
            6 | 7 => trimmed.to_string(),
            _ => {
                return Err(format!(
                    "`{trimmed}` is not a cron expression: expected 6 fields (sec min hour day month weekday) or `@every 30s`, got {fields}"
                ));
            }
        };
        let schedule = cron::Schedule::from_str(&expression)
            .map_err(|e| format!("`{trimmed}` is not a valid cron expression: {e}"))?;
        Ok(Self {
            source: trimmed.to_string(),
            kind: ScheduleKind::Cron(Box::new(schedule)),
        })
    }

    /// The first tick strictly after `after`.
    pub fn next_after(
        &self,
        after: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        match &self.kind {
            ScheduleKind::Cron(schedule) => schedule.after(&after).next(),
            ScheduleKind::Every(every) => {
                let every_ms = every.as_millis().max(1) as i64;
                let next = (after.timestamp_millis().div_euclid(every_ms) + 1) * every_ms;
                chrono::DateTime::from_timestamp_millis(next)
            }
        }
    }
}

/// Glob patterns matched against one or more names; any match counts.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub patterns: Vec<String>,
    set: GlobSet,
}

impl Matcher {
    pub fn new(patterns: &[String]) -> Result<Self, String> {
        let mut builder = GlobSetBuilder::new();
        for pattern in patterns {
            let glob = Glob::new(pattern).map_err(|e| format!("bad glob `{pattern}`: {e}"))?;
            builder.add(glob);
        }
        let set = builder.build().map_err(|e| e.to_string())?;
        Ok(Self {
            patterns: patterns.to_vec(),
            set,
        })
    }

    /// True when any of `candidates` matches any pattern.
    pub fn matches_any<'a>(&self, candidates: impl IntoIterator<Item = &'a str>) -> bool {
        candidates.into_iter().any(|c| self.set.is_match(c))
    }
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Implicit,
    StartTls,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeishuFormat {
    Card,
    Post,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub enum ChannelKind {
    DingTalk {
        url: Secret,
        secret: Option<Secret>,
        at_mobiles: Vec<String>,
        at_user_ids: Vec<String>,
        at_all: bool,
    },
    Slack {
        url: Secret,
    },
    Email {
        host: String,
        port: u16,
        tls: TlsMode,
        username: Option<String>,
        password: Option<Secret>,
        from: String,
        to: Vec<String>,
        /// Extra CA certificates (PEM) to trust, for a relay with a private CA.
        ca_file: Option<PathBuf>,
    },
    Webhook {
        url: Secret,
        secret: Option<Secret>,
        headers: BTreeMap<String, Secret>,
    },
    Feishu {
        url: Secret,
        secret: Option<Secret>,
        format: FeishuFormat,
    },
    WeCom {
        url: Secret,
        mentioned_mobiles: Vec<String>,
        mentioned_users: Vec<String>,
    },
    Console {
        format: ConsoleFormat,
    },
}

impl ChannelKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            ChannelKind::DingTalk { .. } => "dingtalk",
            ChannelKind::Slack { .. } => "slack",
            ChannelKind::Email { .. } => "email",
            ChannelKind::Webhook { .. } => "webhook",
            ChannelKind::Feishu { .. } => "feishu",
            ChannelKind::WeCom { .. } => "wecom",
            ChannelKind::Console { .. } => "console",
        }
    }
}

/// `count` messages per `per`, e.g. DingTalk's 20 per minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub count: u32,
    pub per: Duration,
}

#[derive(Debug, Clone)]
pub struct ChannelConfig {
    pub name: String,
    pub kind: ChannelKind,
    /// Events of different jobs within this window go out as one message.
    pub group_window: Duration,
    pub rate_limit: Option<RateLimit>,
    pub timeout: Duration,
    /// minijinja template replacing the built-in body.
    pub template: Option<String>,
    pub title_template: Option<String>,
    pub max_age: Option<Duration>,
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

/// One problem in a config file, at a byte range of its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub span: Option<std::ops::Range<usize>>,
    pub message: String,
}

/// Every problem found in one config file, printed as `file:line:column: message`.
#[derive(Debug, Clone)]
pub struct ConfigErrors {
    pub file: String,
    pub text: String,
    pub errors: Vec<ConfigError>,
}

impl ConfigErrors {
    /// 1-based (line, column) of a byte offset, counting columns in characters.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        line_column(&self.text, offset)
    }

    /// One rendered line per error, sorted by position.
    pub fn lines(&self) -> Vec<String> {
        self.errors
            .iter()
            .map(|e| match &e.span {
                Some(span) => {
                    let (line, column) = self.position(span.start);
                    format!("{}:{line}:{column}: {}", self.file, e.message)
                }
                None => format!("{}: {}", self.file, e.message),
            })
            .collect()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in self.lines() {
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// 1-based line and character column of `offset` in `text`.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// The process environment, as interpolation sees it.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
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
    let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
        file: file.clone(),
        text: String::new(),
        errors: vec![ConfigError {
            span: None,
            message: format!("cannot read config file: {e}"),
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
    validate::parse_and_validate(text, source, env).map_err(|errors| ConfigErrors {
        file: source.display().to_string(),
        text: text.to_string(),
        errors,
    })
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
            self.storage.path.display(),
            format_duration(self.storage.retention),
            watchdog,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_characters() {
        let text = "a = 1\nb = \"预检查\" x\n";
        let offset = text.find('x').unwrap();
        assert_eq!(line_column(text, offset), (2, 11));
        assert_eq!(line_column(text, 0), (1, 1));
    }

    #[test]
    fn cron_accepts_six_and_five_fields() {
        assert!(CronSchedule::parse("*/30 * * * * *").is_ok());
        assert_eq!(
            CronSchedule::parse("*/5 * * * *").unwrap().source,
            "*/5 * * * *"
        );
        assert!(CronSchedule::parse("61 * * * * *").is_err());
        assert!(CronSchedule::parse("* *").unwrap_err().contains("got 2"));
        let every = CronSchedule::parse("@every 500ms").unwrap();
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-30T10:00:00.200Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(
            every.next_after(t).unwrap().timestamp_millis() - t.timestamp_millis(),
            300
        );
        assert!(CronSchedule::parse("@every 1ms").is_err());
        assert!(CronSchedule::parse("@every soon").is_err());
    }

    #[test]
    fn matcher_matches_any_candidate() {
        let m = Matcher::new(&["orders-*".to_string(), "dts123".to_string()]).unwrap();
        assert!(m.matches_any(["dtsxyz", "orders-mysql"]));
        assert!(m.matches_any(["dts123"]));
        assert!(!m.matches_any(["billing"]));
    }
}
