//! Raw config → typed `Config`, collecting every problem with its span instead
//! of stopping at the first. Each top-level section and each array entry is
//! deserialised on its own, so a typo in one rule does not hide a bad cron in
//! another. Pure: no I/O, the environment is a lookup function.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::raw::*;
use super::*;

const SECTIONS: &[&str] = &[
    "storage", "poll", "server", "delivery", "accounts", "jobs", "discover", "channels", "rules",
    "silences", "watchdog",
];

/// A rule key, where it was written, and the kinds it applies to.
type KindSpecificKey<'a> = (&'a str, Option<Range<usize>>, &'a [&'a str]);

const RULE_KINDS: &[&str] = &[
    "failed",
    "error",
    "latency",
    "stalled",
    "transition",
    "unreachable",
];

/// Collects errors while validation carries on with defaults.
struct Errors(Vec<ConfigError>);

impl Errors {
    fn at(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.0.push(ConfigError {
            span: Some(span),
            message: message.into(),
        });
    }

    fn toml(&mut self, context: &str, error: toml::de::Error) {
        let message = error
            .message()
            .trim()
            .replace("struct Raw", "a table for ")
            .replace("enum RawInstant", "a date-time");
        let message = if context.is_empty() {
            message
        } else {
            format!("{context}: {message}")
        };
        self.0.push(ConfigError {
            span: error.span(),
            message,
        });
    }

    fn duration(&mut self, value: &Option<Text>, default: Duration, what: &str) -> Duration {
        match value {
            None => default,
            Some(text) => match parse_duration(text.get_ref()) {
                Ok(d) => d,
                Err(e) => {
                    self.at(text.span(), format!("{what}: {e}"));
                    default
                }
            },
        }
    }

    fn positive_duration(
        &mut self,
        value: &Option<Text>,
        default: Duration,
        what: &str,
    ) -> Duration {
        let d = self.duration(value, default, what);
        if d.is_zero() {
            if let Some(text) = value {
                self.at(text.span(), format!("{what} must be longer than zero"));
            }
            return default;
        }
        d
    }

    fn count(&mut self, value: &Option<Spanned<i64>>, default: u32, min: i64, what: &str) -> u32 {
        match value {
            None => default,
            Some(v) if *v.get_ref() >= min && *v.get_ref() <= u32::MAX as i64 => {
                *v.get_ref() as u32
            }
            Some(v) => {
                self.at(v.span(), format!("{what} must be at least {min}"));
                default
            }
        }
    }

    fn cron(&mut self, value: &Option<Text>, what: &str) -> Option<CronSchedule> {
        let text = value.as_ref()?;
        match CronSchedule::parse(text.get_ref()) {
            Ok(c) => Some(c),
            Err(e) => {
                self.at(text.span(), format!("{what}: {e}"));
                None
            }
        }
    }

    fn matcher(&mut self, value: &Option<Vec<Text>>, what: &str) -> Option<Matcher> {
        let patterns = value.as_ref()?;
        let mut ok = Vec::new();
        for p in patterns {
            match globset::Glob::new(p.get_ref()) {
                Ok(_) => ok.push(p.get_ref().clone()),
                Err(e) => self.at(p.span(), format!("{what}: bad glob `{}`: {e}", p.get_ref())),
            }
        }
        Matcher::new(&ok).ok()
    }

    fn regex(&mut self, value: &Option<Text>, what: &str) -> Option<regex::Regex> {
        let text = value.as_ref()?;
        match regex::Regex::new(text.get_ref()) {
            Ok(r) => Some(r),
            Err(e) => {
                let detail = e.to_string();
                let last = detail
                    .lines()
                    .last()
                    .unwrap_or("invalid")
                    .trim()
                    .to_string();
                self.at(
                    text.span(),
                    format!("{what}: `{}` is not a valid regex ({last})", text.get_ref()),
                );
                None
            }
        }
    }

    fn url(&mut self, value: &Text, what: &str) -> Secret {
        let text = value.get_ref();
        match reqwest::Url::parse(text) {
            Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
            // The URL may carry a token: never echo it back.
            Ok(_) => self.at(
                value.span(),
                format!("{what} must be an http:// or https:// URL"),
            ),
            Err(e) => self.at(value.span(), format!("{what} is not a valid URL ({e})")),
        }
        Secret::new(text.clone())
    }
}

/// Every section as written, each already deserialised on its own.
#[derive(Default)]
struct RawDocument {
    storage: RawStorage,
    poll: RawPoll,
    server: RawServer,
    delivery: RawDelivery,
    accounts: Vec<(Range<usize>, RawAccount)>,
    jobs: Vec<(Range<usize>, RawJob)>,
    discover: Vec<(Range<usize>, RawDiscover)>,
    channels: Vec<(Spanned<String>, RawChannel)>,
    rules: Vec<(Range<usize>, RawRule)>,
    silences: Vec<(Range<usize>, RawSilence)>,
    watchdog: Option<(Range<usize>, RawWatchdog)>,
}

pub(super) fn parse_and_validate(
    text: &str,
    source: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Vec<ConfigError>> {
    let mut errors = Errors(Vec::new());
    let (mut root, syntax_errors) = DeTable::parse_recoverable(text);
    for e in syntax_errors {
        errors.toml("", e);
    }
    interpolate_table(root.get_mut(), env, &mut errors);
    let document = split_sections(root.into_inner(), &mut errors);
    let config = build(document, source, &mut errors);
    let mut errors = errors.0;
    if errors.is_empty() {
        Ok(config)
    } else {
        errors.sort_by_key(|e| e.span.as_ref().map(|s| s.start).unwrap_or(0));
        errors.dedup();
        Err(errors)
    }
}

fn interpolate_table(
    table: &mut DeTable<'_>,
    env: &dyn Fn(&str) -> Option<String>,
    errors: &mut Errors,
) {
    for (_, value) in table.iter_mut() {
        interpolate_value(value, env, errors);
    }
}

fn interpolate_value(
    value: &mut Spanned<DeValue<'_>>,
    env: &dyn Fn(&str) -> Option<String>,
    errors: &mut Errors,
) {
    let span = value.span();
    match value.get_mut() {
        DeValue::String(s) => match interpolate(s, env) {
            Ok(replaced) => {
                if replaced != s.as_ref() {
                    *s = replaced.into();
                }
            }
            Err(missing) => {
                for name in missing {
                    errors.at(
                        span.clone(),
                        format!("environment variable `{name}` is not set (write `${{{name}:-default}}` to give a default)"),
                    );
                }
            }
        },
        DeValue::Array(items) => {
            for item in items.iter_mut() {
                interpolate_value(item, env, errors);
            }
        }
        DeValue::Table(table) => interpolate_table(table, env, errors),
        _ => {}
    }
}

/// Deserialises one table. A key that fails (unknown, wrong type) is reported
/// and dropped, and the table is read again, so one typo does not hide the
/// other mistakes in the same table.
fn one<'a, T: Deserialize<'a>>(
    mut value: Spanned<DeValue<'a>>,
    context: &str,
    errors: &mut Errors,
) -> Option<T> {
    let mut dropped: Vec<String> = Vec::new();
    for _ in 0..64 {
        let error = match T::deserialize(ValueDeserializer::from(value.clone())) {
            Ok(v) => return Some(v),
            Err(e) => e,
        };
        // A required key we dropped ourselves is already reported.
        if dropped
            .iter()
            .any(|k| error.message().contains(&format!("missing field `{k}`")))
        {
            return None;
        }
        let span = error.span();
        errors.toml(context, error);
        let (Some(span), DeValue::Table(table)) = (span, value.get_mut()) else {
            return None;
        };
        let offending = table
            .iter()
            .find(|(k, v)| {
                let (key, val) = (k.span(), v.span());
                (key.start <= span.start && span.start < key.end.max(key.start + 1))
                    || (val.start <= span.start && span.start < val.end.max(val.start + 1))
            })
            .map(|(k, _)| k.get_ref().to_string());
        match offending {
            Some(key) => {
                table.remove(key.as_str());
                dropped.push(key);
            }
            None => return None,
        }
    }
    None
}

fn many<'a, T: Deserialize<'a>>(
    value: Spanned<DeValue<'a>>,
    section: &str,
    errors: &mut Errors,
) -> Vec<(Range<usize>, T)> {
    let span = value.span();
    match value.into_inner() {
        DeValue::Array(items) => items
            .into_iter()
            .enumerate()
            .filter_map(|(i, item)| {
                let span = item.span();
                one(item, &format!("{section}[{}]", i + 1), errors).map(|v| (span, v))
            })
            .collect(),
        _ => {
            errors.at(
                span,
                format!("`{section}` must be an array of tables: write [[{section}]]"),
            );
            Vec::new()
        }
    }
}

fn split_sections(root: DeTable<'_>, errors: &mut Errors) -> RawDocument {
    let mut doc = RawDocument::default();
    for (key, value) in root {
        let name = key.get_ref().to_string();
        match name.as_str() {
            "storage" => doc.storage = one(value, "[storage]", errors).unwrap_or_default(),
            "poll" => doc.poll = one(value, "[poll]", errors).unwrap_or_default(),
            "server" => doc.server = one(value, "[server]", errors).unwrap_or_default(),
            "delivery" => doc.delivery = one(value, "[delivery]", errors).unwrap_or_default(),
            "accounts" => doc.accounts = many(value, "accounts", errors),
            "jobs" => doc.jobs = many(value, "jobs", errors),
            "discover" => doc.discover = many(value, "discover", errors),
            "rules" => doc.rules = many(value, "rules", errors),
            "silences" => doc.silences = many(value, "silences", errors),
            "watchdog" => {
                let span = value.span();
                doc.watchdog = one(value, "[watchdog]", errors).map(|w| (span, w));
            }
            "channels" => {
                let span = value.span();
                match value.into_inner() {
                    DeValue::Table(table) => {
                        for (channel_key, channel_value) in table {
                            let channel_name =
                                Spanned::new(channel_key.span(), channel_key.get_ref().to_string());
                            let context = format!("channel `{}`", channel_name.get_ref());
                            if let Some(raw) = one::<RawChannel>(channel_value, &context, errors) {
                                doc.channels.push((channel_name, raw));
                            }
                        }
                    }
                    _ => errors.at(span, "`channels` must be a table: write [channels.NAME]"),
                }
            }
            other => errors.at(
                key.span(),
                format!(
                    "unknown section `{other}`; expected one of {}",
                    SECTIONS.join(", ")
                ),
            ),
        }
    }
    doc
}

fn build(doc: RawDocument, source: &Path, errors: &mut Errors) -> Config {
    let storage = build_storage(&doc.storage, errors);
    let poll = build_poll(&doc.poll, errors);
    let server = build_server(&doc.server, errors);
    let delivery = build_delivery(&doc.delivery, errors);
    let accounts = build_accounts(&doc.accounts, poll.max_rps, errors);
    let account_names: Vec<String> = accounts.iter().map(|a| a.name.clone()).collect();
    let jobs = build_jobs(&doc.jobs, &account_names, errors);
    let discover = build_discover(&doc.discover, &account_names, errors);
    let channels = build_channels(&doc.channels, errors);
    let rules = build_rules(&doc.rules, &channels, errors);
    let silences = build_silences(&doc.silences, errors);
    let watchdog = doc
        .watchdog
        .as_ref()
        .map(|(_, raw)| build_watchdog(raw, &channels, errors));
    if jobs.is_empty() && discover.is_empty() && errors.0.is_empty() {
        errors.0.push(ConfigError {
            span: None,
            message: "nothing to watch: add at least one [[jobs]] or [[discover]] entry".into(),
        });
    }
    Config {
        source: source.to_path_buf(),
        storage,
        poll,
        server,
        delivery,
        accounts,
        jobs,
        discover,
        channels,
        rules,
        silences,
        watchdog,
    }
}

fn build_storage(raw: &RawStorage, errors: &mut Errors) -> StorageConfig {
    StorageConfig {
        path: raw
            .path
            .as_ref()
            .map(|p| PathBuf::from(p.get_ref()))
            .unwrap_or_else(|| PathBuf::from("dtswatch.db")),
        retention: errors.positive_duration(
            &raw.retention,
            Duration::from_secs(30 * 86_400),
            "storage.retention",
        ),
        prune_interval: errors.positive_duration(
            &raw.prune_interval,
            Duration::from_secs(600),
            "storage.prune_interval",
        ),
    }
}

fn build_poll(raw: &RawPoll, errors: &mut Errors) -> PollConfig {
    let default_schedule = "*/30 * * * * *";
    let schedule = errors
        .cron(&raw.schedule, "poll.schedule")
        .unwrap_or_else(|| {
            CronSchedule::parse(default_schedule).expect("the default schedule is valid")
        });
    let max_rps = match &raw.max_rps {
        Some(v) if *v.get_ref() > 0.0 => *v.get_ref(),
        Some(v) => {
            errors.at(v.span(), "poll.max_rps must be greater than zero");
            20.0
        }
        None => 20.0,
    };
    let backoff =
        errors.positive_duration(&raw.backoff, Duration::from_millis(500), "poll.backoff");
    let max_backoff = errors.positive_duration(
        &raw.max_backoff,
        Duration::from_secs(10),
        "poll.max_backoff",
    );
    if max_backoff < backoff
        && let Some(text) = &raw.max_backoff
    {
        errors.at(
            text.span(),
            "poll.max_backoff must not be shorter than poll.backoff",
        );
    }
    PollConfig {
        schedule,
        timeout: errors.positive_duration(&raw.timeout, Duration::from_secs(10), "poll.timeout"),
        concurrency: errors.count(&raw.concurrency, 16, 1, "poll.concurrency") as usize,
        max_rps,
        attempts: errors.count(&raw.attempts, 4, 1, "poll.attempts"),
        backoff,
        max_backoff,
        jitter: errors.duration(&raw.jitter, Duration::from_secs(1), "poll.jitter"),
    }
}

fn build_server(raw: &RawServer, errors: &mut Errors) -> ServerConfig {
    let listen = match &raw.listen {
        None => Some(SocketAddr::from(([127, 0, 0, 1], 9187))),
        Some(text) if text.get_ref().is_empty() || text.get_ref() == "off" => None,
        Some(text) => match text.get_ref().parse::<SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                errors.at(
                    text.span(),
                    format!("server.listen `{}` is not an address like 127.0.0.1:9187 (use \"off\" to disable)", text.get_ref()),
                );
                None
            }
        },
    };
    ServerConfig {
        listen,
        unhealthy_after: errors.count(&raw.unhealthy_after, 3, 1, "server.unhealthy_after"),
    }
}

fn build_delivery(raw: &RawDelivery, errors: &mut Errors) -> DeliveryConfig {
    DeliveryConfig {
        concurrency: errors.count(&raw.concurrency, 4, 1, "delivery.concurrency") as usize,
        backoff: errors.positive_duration(&raw.backoff, Duration::from_secs(2), "delivery.backoff"),
        max_backoff: errors.positive_duration(
            &raw.max_backoff,
            Duration::from_secs(300),
            "delivery.max_backoff",
        ),
        max_age: errors.positive_duration(
            &raw.max_age,
            Duration::from_secs(86_400),
            "delivery.max_age",
        ),
        drain_timeout: errors.positive_duration(
            &raw.drain_timeout,
            Duration::from_secs(30),
            "delivery.drain_timeout",
        ),
        timeout: errors.positive_duration(
            &raw.timeout,
            Duration::from_secs(10),
            "delivery.timeout",
        ),
    }
}

fn check_unique<'a>(
    names: impl IntoIterator<Item = (&'a str, Range<usize>)>,
    what: &str,
    errors: &mut Errors,
) {
    let mut seen = BTreeSet::new();
    for (name, span) in names {
        if name.is_empty() {
            errors.at(span, format!("{what} name must not be empty"));
        } else if !seen.insert(name) {
            errors.at(span, format!("duplicate {what} `{name}`"));
        }
    }
}

/// Accepts `http://host:port`, `https://host` or a bare host (https assumed).
fn endpoint(text: &Text, errors: &mut Errors) -> Option<String> {
    let value = text.get_ref().trim_end_matches('/');
    let candidate = if value.contains("://") {
        value.to_string()
    } else {
        format!("https://{value}")
    };
    match reqwest::Url::parse(&candidate) {
        Ok(url)
            if (url.scheme() == "http" || url.scheme() == "https") && url.host_str().is_some() =>
        {
            Some(candidate)
        }
        _ => {
            errors.at(
                text.span(),
                format!("endpoint `{value}` is not a host or http(s) URL"),
            );
            None
        }
    }
}

fn build_accounts(
    raw: &[(Range<usize>, RawAccount)],
    default_rps: f64,
    errors: &mut Errors,
) -> Vec<AccountConfig> {
    check_unique(
        raw.iter()
            .map(|(_, a)| (a.name.get_ref().as_str(), a.name.span())),
        "account",
        errors,
    );
    raw.iter()
        .map(|(_, a)| {
            let name = a.name.get_ref().clone();
            let signature = match a.signature.as_ref().map(|s| (s.get_ref().to_ascii_lowercase(), s.span())) {
                None => SignatureVersion::V1,
                Some((s, _)) if s == "v1" => SignatureVersion::V1,
                Some((s, _)) if s == "v3" => SignatureVersion::V3,
                Some((s, span)) if s == "v2" => {
                    errors.at(span, "signature `v2` is the SDK's name for HMAC-SHA1; write `v1` (or `v3` for ACS3-HMAC-SHA256)");
                    SignatureVersion::V1
                }
                Some((s, span)) => {
                    errors.at(span, format!("unknown signature `{s}`; use v1 (HMAC-SHA1) or v3 (ACS3-HMAC-SHA256)"));
                    SignatureVersion::V1
                }
            };
            let credentials = match (&a.access_key_id, &a.access_key_secret) {
                (Some(id), Some(secret)) => {
                    for (field, value) in [("profile", &a.profile), ("ecs_role", &a.ecs_role), ("metadata_url", &a.metadata_url)] {
                        if let Some(v) = value {
                            errors.at(v.span(), format!("account `{name}`: `{field}` is only used when no access_key_id is given"));
                        }
                    }
                    if id.get_ref().is_empty() {
                        errors.at(id.span(), format!("account `{name}`: access_key_id is empty"));
                    }
                    if secret.get_ref().is_empty() {
                        errors.at(secret.span(), format!("account `{name}`: access_key_secret is empty"));
                    }
                    CredentialsConfig::Static {
                        access_key_id: id.get_ref().clone(),
                        access_key_secret: Secret::new(secret.get_ref().clone()),
                        security_token: a
                            .security_token
                            .as_ref()
                            .filter(|t| !t.get_ref().is_empty())
                            .map(|t| Secret::new(t.get_ref().clone())),
                    }
                }
                (Some(id), None) => {
                    errors.at(id.span(), format!("account `{name}`: access_key_id needs access_key_secret"));
                    CredentialsConfig::Chain { profile: None, ecs_role: None, metadata_url: None }
                }
                (None, Some(secret)) => {
                    errors.at(secret.span(), format!("account `{name}`: access_key_secret needs access_key_id"));
                    CredentialsConfig::Chain { profile: None, ecs_role: None, metadata_url: None }
                }
                (None, None) => {
                    if let Some(token) = &a.security_token {
                        errors.at(token.span(), format!("account `{name}`: security_token needs access_key_id and access_key_secret"));
                    }
                    let metadata_url = a.metadata_url.as_ref().and_then(|u| endpoint(u, errors));
                    CredentialsConfig::Chain {
                        profile: a.profile.as_ref().map(|p| p.get_ref().clone()),
                        ecs_role: a.ecs_role.as_ref().map(|r| r.get_ref().clone()),
                        metadata_url,
                    }
                }
            };
            let max_rps = match &a.max_rps {
                Some(v) if *v.get_ref() > 0.0 => *v.get_ref(),
                Some(v) => {
                    errors.at(v.span(), format!("account `{name}`: max_rps must be greater than zero"));
                    default_rps
                }
                None => default_rps,
            };
            AccountConfig {
                endpoint: a
                    .endpoint
                    .as_ref()
                    .filter(|e| !e.get_ref().trim().is_empty())
                    .and_then(|e| endpoint(e, errors)),
                name,
                credentials,
                signature,
                max_rps,
            }
        })
        .collect()
}

fn resolve_account(
    account: &Option<Text>,
    names: &[String],
    owner: &str,
    span: &Range<usize>,
    errors: &mut Errors,
) -> String {
    match account {
        Some(a) => {
            if !names.contains(a.get_ref()) {
                errors.at(
                    a.span(),
                    format!("{owner}: unknown account `{}`{}", a.get_ref(), known(names)),
                );
            }
            a.get_ref().clone()
        }
        None if names.len() == 1 => names[0].clone(),
        None if names.is_empty() => {
            errors.at(
                span.clone(),
                format!("{owner}: no [[accounts]] entry to poll it with"),
            );
            String::new()
        }
        None => {
            errors.at(
                span.clone(),
                format!("{owner}: several accounts exist; say which with `account = \"…\"`"),
            );
            String::new()
        }
    }
}

fn known(names: &[String]) -> String {
    if names.is_empty() {
        String::new()
    } else {
        format!(" (known: {})", names.join(", "))
    }
}

fn build_jobs(
    raw: &[(Range<usize>, RawJob)],
    accounts: &[String],
    errors: &mut Errors,
) -> Vec<JobConfig> {
    check_unique(
        raw.iter()
            .map(|(_, j)| (j.id.get_ref().as_str(), j.id.span())),
        "job id",
        errors,
    );
    raw.iter()
        .map(|(span, j)| {
            let owner = format!("job `{}`", j.id.get_ref());
            let region = match &j.region {
                Some(r) if !r.get_ref().is_empty() => r.get_ref().clone(),
                Some(r) => {
                    errors.at(r.span(), format!("{owner}: region must not be empty"));
                    String::new()
                }
                None => {
                    errors.at(
                        span.clone(),
                        format!("{owner}: missing `region` (e.g. region = \"cn-hangzhou\")"),
                    );
                    String::new()
                }
            };
            JobConfig {
                id: j.id.get_ref().clone(),
                region,
                account: resolve_account(&j.account, accounts, &owner, span, errors),
                name: j.name.as_ref().map(|n| n.get_ref().clone()),
                schedule: errors.cron(&j.schedule, &format!("{owner}: schedule")),
                zero_etl: j.zero_etl,
                resource_group_id: j.resource_group_id.as_ref().map(|r| r.get_ref().clone()),
            }
        })
        .collect()
}

fn build_discover(
    raw: &[(Range<usize>, RawDiscover)],
    accounts: &[String],
    errors: &mut Errors,
) -> Vec<DiscoverConfig> {
    raw.iter()
        .enumerate()
        .map(|(i, (span, d))| {
            let owner = format!("discover[{}]", i + 1);
            if d.regions.get_ref().is_empty() {
                errors.at(
                    d.regions.span(),
                    format!("{owner}: regions must list at least one region"),
                );
            }
            let job_types = match &d.job_types {
                None => JobType::ALL.to_vec(),
                Some(types) => types
                    .iter()
                    .filter_map(|t| match t.get_ref().parse::<JobType>() {
                        Ok(jt) => Some(jt),
                        Err(e) => {
                            errors.at(t.span(), format!("{owner}: {e}"));
                            None
                        }
                    })
                    .collect(),
            };
            let name = d
                .name
                .as_ref()
                .and_then(|n| errors.matcher(&Some(vec![n.clone()]), &format!("{owner}: name")));
            DiscoverConfig {
                account: resolve_account(&d.account, accounts, &owner, span, errors),
                regions: d
                    .regions
                    .get_ref()
                    .iter()
                    .map(|r| r.get_ref().clone())
                    .collect(),
                job_types,
                name,
                tags: d
                    .tags
                    .as_ref()
                    .map(|t| {
                        t.iter()
                            .map(|(k, v)| (k.clone(), v.get_ref().clone()))
                            .collect()
                    })
                    .unwrap_or_default(),
                status: d
                    .status
                    .as_ref()
                    .map(|s| s.iter().map(|x| x.get_ref().clone()).collect())
                    .unwrap_or_default(),
                refresh: errors.positive_duration(
                    &d.refresh,
                    Duration::from_secs(600),
                    &format!("{owner}: refresh"),
                ),
                schedule: errors.cron(&d.schedule, &format!("{owner}: schedule")),
                resource_group_id: d.resource_group_id.as_ref().map(|r| r.get_ref().clone()),
            }
        })
        .collect()
}

/// `20/min`, `5/s`, `100/1h`, `1/2s`.
fn parse_rate_limit(text: &str) -> Result<RateLimit, String> {
    let (count, per) = text
        .split_once('/')
        .ok_or_else(|| format!("rate_limit `{text}` should look like `20/min` or `5/s`"))?;
    let count: u32 = count
        .trim()
        .parse()
        .map_err(|_| format!("rate_limit `{text}`: `{count}` is not a whole number"))?;
    let per = per.trim();
    let per = match per {
        "s" | "sec" | "second" => Duration::from_secs(1),
        "m" | "min" | "minute" => Duration::from_secs(60),
        "h" | "hour" => Duration::from_secs(3600),
        other => parse_duration(other).map_err(|e| format!("rate_limit `{text}`: {e}"))?,
    };
    if count == 0 || per.is_zero() {
        return Err(format!(
            "rate_limit `{text}` must allow at least one message per non-zero period"
        ));
    }
    Ok(RateLimit { count, per })
}

fn strings(values: &Option<Spanned<Vec<Text>>>) -> Vec<String> {
    values
        .as_ref()
        .map(|v| v.get_ref().iter().map(|s| s.get_ref().clone()).collect())
        .unwrap_or_default()
}

/// Names and spans of the keys set on a channel, for "not used by this type" errors.
fn channel_keys(c: &RawChannel) -> Vec<(&'static str, Range<usize>)> {
    let mut keys = Vec::new();
    macro_rules! key {
        ($field:ident) => {
            if let Some(v) = &c.$field {
                keys.push((stringify!($field), v.span()));
            }
        };
    }
    key!(url);
    key!(secret);
    key!(at_mobiles);
    key!(at_user_ids);
    key!(at_all);
    key!(mentioned_mobiles);
    key!(mentioned_users);
    key!(host);
    key!(port);
    key!(tls);
    key!(username);
    key!(password);
    key!(from);
    key!(to);
    key!(ca_file);
    key!(headers);
    key!(format);
    keys
}

fn channel_allows(kind: &str) -> &'static [&'static str] {
    match kind {
        "dingtalk" => &["url", "secret", "at_mobiles", "at_user_ids", "at_all"],
        "slack" => &["url"],
        "email" => &[
            "host", "port", "tls", "username", "password", "from", "to", "ca_file",
        ],
        "webhook" => &["url", "secret", "headers"],
        "feishu" => &["url", "secret", "format"],
        "wecom" => &["url", "mentioned_mobiles", "mentioned_users"],
        "console" => &["format"],
        _ => &[],
    }
}

fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

fn build_channels(
    raw: &[(Spanned<String>, RawChannel)],
    errors: &mut Errors,
) -> BTreeMap<String, ChannelConfig> {
    let mut channels = BTreeMap::new();
    for (name, c) in raw {
        let channel = name.get_ref().clone();
        let owner = format!("channel `{channel}`");
        let Some(kind_text) = &c.kind else {
            errors.at(
                name.span(),
                format!("{owner}: missing `type` (dingtalk, slack, email, webhook, feishu, wecom or console)"),
            );
            continue;
        };
        let kind = kind_text.get_ref().as_str();
        let allowed = channel_allows(kind);
        if allowed.is_empty() {
            errors.at(
                kind_text.span(),
                format!("{owner}: unknown type `{kind}`; use dingtalk, slack, email, webhook, feishu, wecom or console"),
            );
            continue;
        }
        for (key, span) in channel_keys(c) {
            if !allowed.contains(&key) {
                errors.at(
                    span,
                    format!("{owner}: `{key}` is not used by {kind} channels"),
                );
            }
        }
        let require_url = |errors: &mut Errors| match &c.url {
            Some(url) => errors.url(url, &format!("{owner}: url")),
            None => {
                errors.at(name.span(), format!("{owner}: missing `url`"));
                Secret::default()
            }
        };
        let secret = c
            .secret
            .as_ref()
            .filter(|s| !s.get_ref().is_empty())
            .map(|s| Secret::new(s.get_ref().clone()));
        let (channel_kind, default_rate) = match kind {
            "dingtalk" => (
                ChannelKind::DingTalk {
                    url: require_url(errors),
                    secret,
                    at_mobiles: strings(&c.at_mobiles),
                    at_user_ids: strings(&c.at_user_ids),
                    at_all: c.at_all.as_ref().map(|b| *b.get_ref()).unwrap_or(false),
                },
                Some(RateLimit {
                    count: 20,
                    per: Duration::from_secs(60),
                }),
            ),
            "slack" => (
                ChannelKind::Slack {
                    url: require_url(errors),
                },
                Some(RateLimit {
                    count: 1,
                    per: Duration::from_secs(1),
                }),
            ),
            "webhook" => (
                ChannelKind::Webhook {
                    url: require_url(errors),
                    secret,
                    headers: c
                        .headers
                        .as_ref()
                        .map(|h| {
                            h.get_ref()
                                .iter()
                                .map(|(k, v)| {
                                    if reqwest::header::HeaderName::from_bytes(k.as_bytes())
                                        .is_err()
                                    {
                                        errors.at(
                                            v.span(),
                                            format!(
                                                "{owner}: `{k}` is not a valid HTTP header name"
                                            ),
                                        );
                                    }
                                    (k.clone(), Secret::new(v.get_ref().clone()))
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                },
                None,
            ),
            "feishu" => {
                let format = match c.format.as_ref().map(|f| (f.get_ref().as_str(), f.span())) {
                    None | Some(("card", _)) => FeishuFormat::Card,
                    Some(("post", _)) => FeishuFormat::Post,
                    Some((other, span)) => {
                        errors.at(
                            span,
                            format!("{owner}: format `{other}` is not card or post"),
                        );
                        FeishuFormat::Card
                    }
                };
                (
                    ChannelKind::Feishu {
                        url: require_url(errors),
                        secret,
                        format,
                    },
                    Some(RateLimit {
                        count: 5,
                        per: Duration::from_secs(1),
                    }),
                )
            }
            "wecom" => (
                ChannelKind::WeCom {
                    url: require_url(errors),
                    mentioned_mobiles: strings(&c.mentioned_mobiles),
                    mentioned_users: strings(&c.mentioned_users),
                },
                Some(RateLimit {
                    count: 20,
                    per: Duration::from_secs(60),
                }),
            ),
            "console" => {
                let format = match c.format.as_ref().map(|f| (f.get_ref().as_str(), f.span())) {
                    None | Some(("text", _)) => ConsoleFormat::Text,
                    Some(("json", _)) => ConsoleFormat::Json,
                    Some((other, span)) => {
                        errors.at(
                            span,
                            format!("{owner}: format `{other}` is not text or json"),
                        );
                        ConsoleFormat::Text
                    }
                };
                (ChannelKind::Console { format }, None)
            }
            _ => (build_email(name, c, &owner, errors), None),
        };
        let rate_limit = match &c.rate_limit {
            None => default_rate,
            Some(text) if text.get_ref() == "off" || text.get_ref() == "none" => None,
            Some(text) => match parse_rate_limit(text.get_ref()) {
                Ok(r) => Some(r),
                Err(e) => {
                    errors.at(text.span(), format!("{owner}: {e}"));
                    default_rate
                }
            },
        };
        for (field, template) in [
            ("template", &c.template),
            ("title_template", &c.title_template),
        ] {
            if let Some(t) = template {
                let env = minijinja::Environment::new();
                if let Err(e) = env.template_from_str(t.get_ref()) {
                    errors.at(t.span(), format!("{owner}: {field} does not compile: {e}"));
                }
            }
        }
        channels.insert(
            channel.clone(),
            ChannelConfig {
                name: channel,
                kind: channel_kind,
                group_window: errors.duration(
                    &c.group_window,
                    Duration::ZERO,
                    &format!("{owner}: group_window"),
                ),
                rate_limit,
                timeout: errors.positive_duration(
                    &c.timeout,
                    Duration::from_secs(10),
                    &format!("{owner}: timeout"),
                ),
                template: c.template.as_ref().map(|t| t.get_ref().clone()),
                title_template: c.title_template.as_ref().map(|t| t.get_ref().clone()),
                max_age: c.max_age.as_ref().map(|_| {
                    errors.positive_duration(
                        &c.max_age,
                        Duration::from_secs(86_400),
                        &format!("{owner}: max_age"),
                    )
                }),
            },
        );
    }
    channels
}

fn build_email(
    name: &Spanned<String>,
    c: &RawChannel,
    owner: &str,
    errors: &mut Errors,
) -> ChannelKind {
    let host = match &c.host {
        Some(h) if !h.get_ref().is_empty() => h.get_ref().clone(),
        _ => {
            errors.at(name.span(), format!("{owner}: missing `host`"));
            String::new()
        }
    };
    let tls = match c.tls.as_ref().map(|t| (t.get_ref().as_str(), t.span())) {
        None | Some(("implicit", _)) => TlsMode::Implicit,
        Some(("starttls", _)) => TlsMode::StartTls,
        Some(("none", span)) => {
            if !host.is_empty() && !is_loopback_host(&host) {
                errors.at(
                    span,
                    format!("{owner}: tls = \"none\" sends the password in clear text; it is only allowed to a loopback host, not `{host}`"),
                );
            }
            TlsMode::None
        }
        Some((other, span)) => {
            errors.at(
                span,
                format!("{owner}: tls `{other}` is not implicit, starttls or none"),
            );
            TlsMode::Implicit
        }
    };
    let port = match &c.port {
        Some(p) if (1..=65535).contains(p.get_ref()) => *p.get_ref() as u16,
        Some(p) => {
            errors.at(
                p.span(),
                format!("{owner}: port {} is not between 1 and 65535", p.get_ref()),
            );
            465
        }
        None => match tls {
            TlsMode::Implicit => 465,
            TlsMode::StartTls => 587,
            TlsMode::None => 25,
        },
    };
    match (&c.username, &c.password) {
        (Some(u), None) => errors.at(u.span(), format!("{owner}: username needs a password")),
        (None, Some(p)) => errors.at(p.span(), format!("{owner}: password needs a username")),
        _ => {}
    }
    let from = match &c.from {
        Some(f) => {
            if f.get_ref().parse::<lettre::message::Mailbox>().is_err() {
                errors.at(
                    f.span(),
                    format!(
                        "{owner}: from `{}` is not an address like `dtswatch <alerts@example.com>`",
                        f.get_ref()
                    ),
                );
            }
            f.get_ref().clone()
        }
        None => {
            errors.at(name.span(), format!("{owner}: missing `from`"));
            String::new()
        }
    };
    let to = match &c.to {
        Some(list) if !list.get_ref().is_empty() => list
            .get_ref()
            .iter()
            .map(|t| {
                if t.get_ref().parse::<lettre::message::Mailbox>().is_err() {
                    errors.at(
                        t.span(),
                        format!("{owner}: `{}` is not an email address", t.get_ref()),
                    );
                }
                t.get_ref().clone()
            })
            .collect(),
        Some(list) => {
            errors.at(
                list.span(),
                format!("{owner}: `to` must list at least one address"),
            );
            Vec::new()
        }
        None => {
            errors.at(name.span(), format!("{owner}: missing `to`"));
            Vec::new()
        }
    };
    ChannelKind::Email {
        host,
        port,
        tls,
        username: c.username.as_ref().map(|u| u.get_ref().clone()),
        password: c
            .password
            .as_ref()
            .map(|p| Secret::new(p.get_ref().clone())),
        from,
        to,
        ca_file: c.ca_file.as_ref().map(|f| PathBuf::from(f.get_ref())),
    }
}

fn states(values: &Option<Vec<Text>>) -> Vec<State> {
    values
        .as_ref()
        .map(|v| v.iter().map(|s| State::parse(s.get_ref())).collect())
        .unwrap_or_default()
}

fn latency_ms(value: &Option<Text>, owner: &str, field: &str, errors: &mut Errors) -> Option<i64> {
    let text = value.as_ref()?;
    match parse_duration(text.get_ref()) {
        Ok(d) => Some(d.as_millis().min(i64::MAX as u128) as i64),
        Err(e) => {
            errors.at(text.span(), format!("{owner}: {field}: {e}"));
            None
        }
    }
}

fn build_rules(
    raw: &[(Range<usize>, RawRule)],
    channels: &BTreeMap<String, ChannelConfig>,
    errors: &mut Errors,
) -> Vec<RuleConfig> {
    check_unique(
        raw.iter()
            .map(|(_, r)| (r.name.get_ref().as_str(), r.name.span())),
        "rule",
        errors,
    );
    let rule_names: BTreeSet<&str> = raw.iter().map(|(_, r)| r.name.get_ref().as_str()).collect();
    let mut rules = Vec::new();
    for (span, r) in raw {
        let name = r.name.get_ref().clone();
        let owner = format!("rule `{name}`");
        let kind_name = r.kind.get_ref().as_str();
        if !RULE_KINDS.contains(&kind_name) {
            errors.at(
                r.kind.span(),
                format!(
                    "{owner}: unknown kind `{kind_name}`; use {}",
                    RULE_KINDS.join(", ")
                ),
            );
            continue;
        }
        // Keys that belong to one kind only.
        let specific: [KindSpecificKey; 7] = [
            (
                "states",
                r.states.as_ref().and_then(|v| v.first()).map(|v| v.span()),
                &["failed"],
            ),
            ("pattern", r.pattern.as_ref().map(|v| v.span()), &["error"]),
            ("ignore", r.ignore.as_ref().map(|v| v.span()), &["error"]),
            (
                "threshold",
                r.threshold.as_ref().map(|v| v.span()),
                &["latency"],
            ),
            (
                "resolve_below",
                r.resolve_below.as_ref().map(|v| v.span()),
                &["latency"],
            ),
            (
                "from",
                r.from.as_ref().and_then(|v| v.first()).map(|v| v.span()),
                &["transition"],
            ),
            (
                "to",
                r.to.as_ref().and_then(|v| v.first()).map(|v| v.span()),
                &["transition"],
            ),
        ];
        for (key, key_span, kinds) in specific {
            if let Some(key_span) = key_span
                && !kinds.contains(&kind_name)
            {
                errors.at(
                    key_span,
                    format!("{owner}: `{key}` applies only to {} rules", kinds.join("/")),
                );
            }
        }
        let kind = match kind_name {
            "failed" => {
                let states = states(&r.states);
                RuleKind::Failed {
                    states: if states.is_empty() {
                        vec![State::Failed]
                    } else {
                        states
                    },
                }
            }
            "error" => RuleKind::Error {
                pattern: errors.regex(&r.pattern, &format!("{owner}: pattern")),
                ignore: errors.regex(&r.ignore, &format!("{owner}: ignore")),
            },
            "latency" => {
                let threshold = latency_ms(&r.threshold, &owner, "threshold", errors);
                if r.threshold.is_none() {
                    errors.at(
                        r.kind.span(),
                        format!("{owner}: latency rules need a `threshold` (e.g. \"300s\")"),
                    );
                }
                let threshold_ms = threshold.unwrap_or(0);
                let resolve_below_ms =
                    latency_ms(&r.resolve_below, &owner, "resolve_below", errors)
                        .unwrap_or(threshold_ms);
                if resolve_below_ms > threshold_ms
                    && let Some(text) = &r.resolve_below
                {
                    errors.at(
                        text.span(),
                        format!("{owner}: resolve_below must not be above threshold"),
                    );
                }
                RuleKind::Latency {
                    threshold_ms,
                    resolve_below_ms,
                }
            }
            "stalled" => RuleKind::Stalled,
            "transition" => {
                let from = states(&r.from);
                let to = states(&r.to);
                if from.is_empty() && to.is_empty() {
                    errors.at(
                        r.kind.span(),
                        format!("{owner}: transition rules need `from`, `to` or both"),
                    );
                }
                for (key, value) in [("repeat", &r.repeat), ("for", &r.for_)] {
                    if let Some(v) = value {
                        errors.at(
                            v.span(),
                            format!("{owner}: `{key}` does not apply to one-shot transition rules"),
                        );
                    }
                }
                RuleKind::Transition { from, to }
            }
            _ => RuleKind::Unreachable,
        };
        let severity = match &r.severity {
            Some(s) => s.get_ref().parse::<Severity>().unwrap_or_else(|e| {
                errors.at(s.span(), format!("{owner}: {e}"));
                Severity::Warning
            }),
            None => match kind_name {
                "failed" | "unreachable" => Severity::Critical,
                "transition" => Severity::Info,
                _ => Severity::Warning,
            },
        };
        let rule_channels = match &r.channels {
            Some(list) if !list.get_ref().is_empty() => list
                .get_ref()
                .iter()
                .map(|c| {
                    if !channels.contains_key(c.get_ref()) {
                        let names: Vec<String> = channels.keys().cloned().collect();
                        errors.at(
                            c.span(),
                            format!(
                                "{owner}: unknown channel `{}`{}",
                                c.get_ref(),
                                known(&names)
                            ),
                        );
                    }
                    c.get_ref().clone()
                })
                .collect(),
            Some(list) => {
                errors.at(
                    list.span(),
                    format!("{owner}: channels must name at least one channel"),
                );
                Vec::new()
            }
            None => {
                errors.at(span.clone(), format!("{owner}: missing `channels`"));
                Vec::new()
            }
        };
        let default_for = match kind_name {
            "stalled" => Duration::from_secs(600),
            "unreachable" => Duration::from_secs(300),
            _ => Duration::ZERO,
        };
        let inhibited_by = match &r.inhibited_by {
            Some(list) => list
                .iter()
                .map(|i| {
                    let v = i.get_ref();
                    if !RULE_KINDS.contains(&v.as_str()) && !rule_names.contains(v.as_str()) {
                        errors.at(
                            i.span(),
                            format!(
                                "{owner}: inhibited_by `{v}` is neither a rule name nor a rule kind"
                            ),
                        );
                    }
                    v.clone()
                })
                .collect(),
            None => match kind_name {
                "unreachable" => Vec::new(),
                "failed" => vec!["unreachable".to_string()],
                _ => vec!["unreachable".to_string(), "failed".to_string()],
            },
        };
        if let Some(repeat) = &r.repeat
            && parse_duration(repeat.get_ref())
                .map(|d| d.is_zero())
                .unwrap_or(false)
        {
            errors.at(
                repeat.span(),
                format!("{owner}: repeat must be longer than zero (leave it out to notify once)"),
            );
        }
        rules.push(RuleConfig {
            name,
            kind,
            severity,
            channels: rule_channels,
            jobs: errors.matcher(&r.jobs, &format!("{owner}: jobs")),
            steps: errors.matcher(&r.steps, &format!("{owner}: steps")),
            sub_steps: r.sub_steps.unwrap_or(true),
            for_: errors.duration(&r.for_, default_for, &format!("{owner}: for")),
            repeat: r
                .repeat
                .as_ref()
                .map(|_| {
                    errors.duration(
                        &r.repeat,
                        Duration::from_secs(3600),
                        &format!("{owner}: repeat"),
                    )
                })
                .filter(|d| !d.is_zero()),
            send_resolved: r.send_resolved.unwrap_or(true),
            after: errors.count(&r.after, 1, 1, &format!("{owner}: after")),
            resolve_after: errors.count(&r.resolve_after, 1, 1, &format!("{owner}: resolve_after")),
            inhibited_by,
            runbook: r.runbook.as_ref().map(|u| u.get_ref().clone()),
        });
    }
    rules
}

fn instant(
    value: &Spanned<RawInstant>,
    owner: &str,
    field: &str,
    errors: &mut Errors,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let text = match value.get_ref() {
        RawInstant::Native(dt) => dt.to_string(),
        RawInstant::Text(t) => t.clone(),
    };
    match chrono::DateTime::parse_from_rfc3339(&text) {
        Ok(dt) => Some(dt.with_timezone(&chrono::Utc)),
        Err(_) => {
            errors.at(
                value.span(),
                format!("{owner}: {field} `{text}` is not a date-time with offset like 2026-12-01T02:00:00Z"),
            );
            None
        }
    }
}

fn build_silences(raw: &[(Range<usize>, RawSilence)], errors: &mut Errors) -> Vec<SilenceConfig> {
    let mut silences = Vec::new();
    for (i, (span, s)) in raw.iter().enumerate() {
        let owner = format!("silences[{}]", i + 1);
        if s.jobs.is_none() && s.rules.is_none() && s.steps.is_none() {
            errors.at(
                span.clone(),
                format!("{owner}: a silence needs at least one matcher (jobs, rules or steps); use jobs = [\"*\"] to silence everything"),
            );
        }
        let window = match (&s.starts, &s.ends, &s.cron, &s.duration) {
            (starts, Some(ends), None, None) => {
                let starts_at = starts
                    .as_ref()
                    .and_then(|v| instant(v, &owner, "starts", errors));
                let ends_at = instant(ends, &owner, "ends", errors);
                match (starts_at, ends_at) {
                    (Some(a), Some(b)) if b <= a => {
                        errors.at(ends.span(), format!("{owner}: ends must be after starts"));
                        None
                    }
                    (_, Some(ends)) => Some(SilenceWindow::Fixed {
                        starts: starts_at,
                        ends,
                    }),
                    _ => None,
                }
            }
            (None, None, Some(_), Some(_)) => {
                let cron = errors.cron(&s.cron, &format!("{owner}: cron"));
                let duration = errors.positive_duration(
                    &s.duration,
                    Duration::from_secs(3600),
                    &format!("{owner}: duration"),
                );
                cron.map(|cron| SilenceWindow::Recurring { cron, duration })
            }
            _ => {
                errors.at(
                    span.clone(),
                    format!("{owner}: give either `ends` (and optionally `starts`) or `cron` with `duration`"),
                );
                None
            }
        };
        let jobs = errors.matcher(&s.jobs, &format!("{owner}: jobs"));
        let rules = errors.matcher(&s.rules, &format!("{owner}: rules"));
        let steps = errors.matcher(&s.steps, &format!("{owner}: steps"));
        if let Some(window) = window {
            silences.push(SilenceConfig {
                jobs,
                rules,
                steps,
                window,
                comment: s
                    .comment
                    .as_ref()
                    .map(|c| c.get_ref().clone())
                    .unwrap_or_default(),
            });
        }
    }
    silences
}

fn build_watchdog(
    raw: &RawWatchdog,
    channels: &BTreeMap<String, ChannelConfig>,
    errors: &mut Errors,
) -> WatchdogConfig {
    if raw.channels.get_ref().is_empty() {
        errors.at(
            raw.channels.span(),
            "watchdog: channels must name at least one channel",
        );
    }
    for c in raw.channels.get_ref() {
        if !channels.contains_key(c.get_ref()) {
            errors.at(
                c.span(),
                format!("watchdog: unknown channel `{}`", c.get_ref()),
            );
        }
    }
    WatchdogConfig {
        channels: raw
            .channels
            .get_ref()
            .iter()
            .map(|c| c.get_ref().clone())
            .collect(),
        no_successful_poll: errors.positive_duration(
            &raw.no_successful_poll,
            Duration::from_secs(600),
            "watchdog.no_successful_poll",
        ),
        dead_letters: raw.dead_letters.unwrap_or(true),
        severity: match &raw.severity {
            Some(s) => s.get_ref().parse().unwrap_or_else(|e| {
                errors.at(s.span(), format!("watchdog: {e}"));
                Severity::Critical
            }),
            None => Severity::Critical,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::parse_rate_limit;
    use std::time::Duration;

    #[test]
    fn rate_limits_read_naturally() {
        assert_eq!(
            parse_rate_limit("20/min").unwrap().per,
            Duration::from_secs(60)
        );
        assert_eq!(parse_rate_limit("5/s").unwrap().count, 5);
        assert_eq!(
            parse_rate_limit("1/2s").unwrap().per,
            Duration::from_secs(2)
        );
        assert!(parse_rate_limit("0/s").is_err());
        assert!(parse_rate_limit("fast").is_err());
    }
}
