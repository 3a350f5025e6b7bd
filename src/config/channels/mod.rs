//! `[channels.NAME]`: the settings every channel shares (type, grouping,
//! rate limit, timeout, templates, max age), and dispatch to one file per
//! channel type, each owning its typed settings, the keys it accepts, its
//! defaults (rate limit, how many alerts one message lists) and its
//! validation. A channel's table is read in two parts: the shared keys, then
//! the rest against the type's own keys, so a key of another type is named
//! as such and a typo lists what the type does accept.

pub mod alertmanager;
pub mod console;
pub mod dingtalk;
pub mod email;
pub mod feishu;
pub mod slack;
pub mod webhook;
pub mod wecom;

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::raw::Text;
use super::validate::{Errors, locale, one, zone};
use super::{Locale, MessagesConfig, Secret, Severity, parse_duration};

pub use alertmanager::{AlertmanagerAuth, AlertmanagerConfig};
pub use console::{ConsoleConfig, ConsoleFormat};
pub use dingtalk::DingTalkConfig;
pub use email::{EmailConfig, TlsMode};
pub use feishu::{FeishuConfig, FeishuFormat};
pub use slack::SlackConfig;
pub use webhook::WebhookConfig;
pub use wecom::WeComConfig;

/// `count` messages per `per`, e.g. DingTalk's 20 per minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub count: u32,
    pub per: Duration,
}

impl RateLimit {
    pub const fn new(count: u32, per_seconds: u64) -> Self {
        Self {
            count,
            per: Duration::from_secs(per_seconds),
        }
    }
}

/// One channel's typed settings.
#[derive(Debug, Clone)]
pub enum ChannelKind {
    DingTalk(DingTalkConfig),
    Slack(SlackConfig),
    Email(EmailConfig),
    Webhook(WebhookConfig),
    Feishu(FeishuConfig),
    WeCom(WeComConfig),
    Console(ConsoleConfig),
    Alertmanager(AlertmanagerConfig),
}

impl ChannelKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            ChannelKind::DingTalk(_) => dingtalk::TYPE,
            ChannelKind::Slack(_) => slack::TYPE,
            ChannelKind::Email(_) => email::TYPE,
            ChannelKind::Webhook(_) => webhook::TYPE,
            ChannelKind::Feishu(_) => feishu::TYPE,
            ChannelKind::WeCom(_) => wecom::TYPE,
            ChannelKind::Console(_) => console::TYPE,
            ChannelKind::Alertmanager(_) => alertmanager::TYPE,
        }
    }

    /// How many notifications one message lists at most, so that even a
    /// storm of alerts fits each platform's size limit in full.
    pub fn max_batch(&self) -> i64 {
        match self {
            ChannelKind::DingTalk(_) => dingtalk::MAX_BATCH,
            ChannelKind::Slack(_) => slack::MAX_BATCH,
            ChannelKind::Email(_) => email::MAX_BATCH,
            ChannelKind::Webhook(_) => webhook::MAX_BATCH,
            ChannelKind::Feishu(_) => feishu::MAX_BATCH,
            ChannelKind::WeCom(_) => wecom::MAX_BATCH,
            ChannelKind::Console(_) => console::MAX_BATCH,
            ChannelKind::Alertmanager(_) => alertmanager::MAX_BATCH,
        }
    }
}

/// Which alerts @mention a channel's people (`mention_severities`,
/// `mention_statuses`): by default firing ones that are critical or
/// warning, so a resolution or an info notice never wakes anyone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MentionPolicy {
    pub severities: Vec<Severity>,
    pub firing: bool,
    pub resolved: bool,
}

impl Default for MentionPolicy {
    fn default() -> Self {
        Self {
            severities: vec![Severity::Critical, Severity::Warning],
            firing: true,
            resolved: false,
        }
    }
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
    /// The largest answer read from the platform (`[delivery] max_answer`).
    pub max_answer: usize,
    /// The language of its messages: its own `locale`, else `[messages]`'s.
    pub locale: Locale,
    /// The zone of the times in its messages: its own `timezone`, else `[messages]`'s.
    pub timezone: chrono_tz::Tz,
    pub mention: MentionPolicy,
    /// The channel's own `locale` and `timezone`, until `[messages]` is read.
    own_style: (Option<Locale>, Option<chrono_tz::Tz>),
}

impl ChannelConfig {
    /// Takes `[messages]`'s locale and zone where the channel sets none.
    pub(in crate::config) fn settle_style(&mut self, messages: &MessagesConfig) {
        self.locale = self.own_style.0.unwrap_or(messages.locale);
        self.timezone = self.own_style.1.unwrap_or(messages.timezone);
    }
}

/// Every channel type: its name, the keys it takes besides the shared ones,
/// and the rate limit the platform enforces (used unless `rate_limit` is set).
const TYPES: [(&str, &[&str], Option<RateLimit>); 8] = [
    (dingtalk::TYPE, dingtalk::KEYS, dingtalk::RATE_LIMIT),
    (slack::TYPE, slack::KEYS, slack::RATE_LIMIT),
    (email::TYPE, email::KEYS, email::RATE_LIMIT),
    (webhook::TYPE, webhook::KEYS, webhook::RATE_LIMIT),
    (feishu::TYPE, feishu::KEYS, feishu::RATE_LIMIT),
    (wecom::TYPE, wecom::KEYS, wecom::RATE_LIMIT),
    (console::TYPE, console::KEYS, console::RATE_LIMIT),
    (
        alertmanager::TYPE,
        alertmanager::KEYS,
        alertmanager::RATE_LIMIT,
    ),
];

const TYPE_LIST: &str = "dingtalk, slack, email, webhook, feishu, wecom, alertmanager or console";

/// The keys every channel type takes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShared {
    #[serde(rename = "type")]
    kind: Option<Text>,
    group_window: Option<Text>,
    rate_limit: Option<Text>,
    timeout: Option<Text>,
    template: Option<Text>,
    title_template: Option<Text>,
    max_age: Option<Text>,
    locale: Option<Text>,
    timezone: Option<Text>,
    mention_severities: Option<Spanned<Vec<Text>>>,
    mention_statuses: Option<Spanned<Vec<Text>>>,
}

const SHARED_KEYS: [&str; 11] = [
    "type",
    "group_window",
    "rate_limit",
    "timeout",
    "template",
    "title_template",
    "max_age",
    "locale",
    "timezone",
    "mention_severities",
    "mention_statuses",
];

/// `mention_severities` and `mention_statuses`, checked word by word.
fn mention_policy(shared: &RawShared, owner: &str, errors: &mut Errors) -> MentionPolicy {
    let mut policy = MentionPolicy::default();
    if let Some(severities) = &shared.mention_severities {
        policy.severities = severities
            .get_ref()
            .iter()
            .filter_map(|s| match s.get_ref().parse::<Severity>() {
                Ok(severity) => Some(severity),
                Err(e) => {
                    errors.at(s.span(), format!("{owner}: mention_severities: {e}"));
                    None
                }
            })
            .collect();
    }
    if let Some(statuses) = &shared.mention_statuses {
        policy.firing = false;
        for status in statuses.get_ref() {
            match status.get_ref().as_str() {
                "firing" => policy.firing = true,
                "resolved" => policy.resolved = true,
                other => errors.at(
                    status.span(),
                    format!("{owner}: mention_statuses: `{other}` is not firing or resolved"),
                ),
            }
        }
    }
    policy
}

/// What a channel type's reader needs to report problems.
pub(in crate::config) struct Owner {
    /// `channel `NAME``, the start of every message.
    pub(in crate::config) name: String,
    /// The `[channels.NAME]` key, where "missing `url`" points.
    pub(in crate::config) span: Range<usize>,
}

impl Owner {
    /// A required URL (it may carry a token, so it is never echoed back).
    pub(in crate::config) fn url(&self, value: &Option<Text>, errors: &mut Errors) -> Secret {
        match value {
            Some(url) => errors.url(url, &format!("{}: url", self.name)),
            None => {
                errors.at(self.span.clone(), format!("{}: missing `url`", self.name));
                Secret::default()
            }
        }
    }
}

/// An optional signing secret; an empty one (an unset `${VAR:-}`) means none.
pub(in crate::config) fn optional_secret(value: &Option<Text>) -> Option<Secret> {
    value
        .as_ref()
        .filter(|s| !s.get_ref().is_empty())
        .map(|s| Secret::new(s.get_ref().clone()))
}

/// One of a fixed set of words (`default` when unset); anything else is
/// reported as "`WHAT `x` is not a, b or c`" and read as `default`.
pub(in crate::config) fn choice<T: Copy>(
    value: &Option<Text>,
    options: &[(&str, T)],
    default: T,
    what: &str,
    errors: &mut Errors,
) -> T {
    let Some(text) = value else {
        return default;
    };
    if let Some((_, chosen)) = options.iter().find(|(word, _)| word == text.get_ref()) {
        return *chosen;
    }
    let words: Vec<&str> = options.iter().map(|(word, _)| *word).collect();
    let list = match words.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    };
    errors.at(
        text.span(),
        format!("{what} `{}` is not {list}", text.get_ref()),
    );
    default
}

pub(in crate::config) fn strings(values: &Option<Spanned<Vec<Text>>>) -> Vec<String> {
    values
        .as_ref()
        .map(|v| v.get_ref().iter().map(|s| s.get_ref().clone()).collect())
        .unwrap_or_default()
}

/// Reads one `[channels.NAME]` table.
fn read(
    name: Spanned<String>,
    value: Spanned<DeValue<'_>>,
    errors: &mut Errors,
) -> Option<ChannelConfig> {
    let owner = Owner {
        name: format!("channel `{}`", name.get_ref()),
        span: name.span(),
    };
    let span = value.span();
    let DeValue::Table(table) = value.into_inner() else {
        errors.at(span, format!("{}: must be a table", owner.name));
        return None;
    };
    let (shared, own): (DeTable<'_>, DeTable<'_>) = table
        .into_iter()
        .partition(|(key, _)| SHARED_KEYS.contains(&key.get_ref().as_ref()));
    let shared: RawShared = one(
        Spanned::new(span.clone(), DeValue::Table(shared)),
        &owner.name,
        errors,
    )
    .unwrap_or_default();
    let Some(kind_text) = &shared.kind else {
        errors.at(
            owner.span.clone(),
            format!("{}: missing `type` ({TYPE_LIST})", owner.name),
        );
        return None;
    };
    let type_name = kind_text.get_ref().as_str();
    let Some((_, keys, default_rate)) = TYPES.iter().find(|(t, _, _)| *t == type_name) else {
        errors.at(
            kind_text.span(),
            format!(
                "{}: unknown type `{type_name}`; use {TYPE_LIST}",
                owner.name
            ),
        );
        return None;
    };
    let own: DeTable<'_> = own
        .into_iter()
        .filter(|(key, value)| {
            let key: &str = key.get_ref().as_ref();
            if keys.contains(&key) {
                return true;
            }
            let message = if TYPES.iter().any(|(_, other, _)| other.contains(&key)) {
                format!(
                    "{}: `{key}` is not used by {type_name} channels",
                    owner.name
                )
            } else {
                let accepted: Vec<String> = SHARED_KEYS
                    .iter()
                    .chain(keys.iter())
                    .map(|k| format!("`{k}`"))
                    .collect();
                format!(
                    "{}: unknown field `{key}`, expected one of {}",
                    owner.name,
                    accepted.join(", ")
                )
            };
            errors.at(value.span(), message);
            false
        })
        .collect();
    let own = Spanned::new(span, DeValue::Table(own));
    let kind = match type_name {
        dingtalk::TYPE => dingtalk::read(own, &owner, errors).map(ChannelKind::DingTalk),
        slack::TYPE => slack::read(own, &owner, errors).map(ChannelKind::Slack),
        email::TYPE => email::read(own, &owner, errors).map(ChannelKind::Email),
        webhook::TYPE => webhook::read(own, &owner, errors).map(ChannelKind::Webhook),
        feishu::TYPE => feishu::read(own, &owner, errors).map(ChannelKind::Feishu),
        wecom::TYPE => wecom::read(own, &owner, errors).map(ChannelKind::WeCom),
        alertmanager::TYPE => {
            alertmanager::read(own, &owner, errors).map(ChannelKind::Alertmanager)
        }
        _ => console::read(own, &owner, errors).map(ChannelKind::Console),
    }?;
    Some(shared_settings(
        name.into_inner(),
        kind,
        &shared,
        *default_rate,
        &owner,
        errors,
    ))
}

fn shared_settings(
    name: String,
    kind: ChannelKind,
    shared: &RawShared,
    default_rate: Option<RateLimit>,
    owner: &Owner,
    errors: &mut Errors,
) -> ChannelConfig {
    let owner = &owner.name;
    let rate_limit = match &shared.rate_limit {
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
        ("template", &shared.template),
        ("title_template", &shared.title_template),
    ] {
        if let Some(t) = template {
            let env = minijinja::Environment::new();
            if let Err(e) = env.template_from_str(t.get_ref()) {
                errors.at(t.span(), format!("{owner}: {field} does not compile: {e}"));
            }
        }
    }
    ChannelConfig {
        name,
        kind,
        group_window: errors.duration(
            &shared.group_window,
            Duration::ZERO,
            &format!("{owner}: group_window"),
        ),
        rate_limit,
        timeout: errors.positive_duration(
            &shared.timeout,
            Duration::from_secs(10),
            &format!("{owner}: timeout"),
        ),
        template: shared.template.as_ref().map(|t| t.get_ref().clone()),
        title_template: shared.title_template.as_ref().map(|t| t.get_ref().clone()),
        max_age: shared.max_age.as_ref().map(|_| {
            errors.positive_duration(
                &shared.max_age,
                Duration::from_secs(86_400),
                &format!("{owner}: max_age"),
            )
        }),
        // Set from `[delivery]` and `[messages]` once those are read.
        max_answer: 0,
        locale: Locale::En,
        timezone: chrono_tz::UTC,
        mention: mention_policy(shared, owner, errors),
        own_style: (
            locale(&shared.locale, &format!("{owner}: locale"), errors),
            zone(&shared.timezone, &format!("{owner}: timezone"), errors),
        ),
    }
}

/// Every `[channels.*]` table, by name.
pub(in crate::config) fn read_all(
    value: Spanned<DeValue<'_>>,
    errors: &mut Errors,
) -> BTreeMap<String, ChannelConfig> {
    let span = value.span();
    let mut channels = BTreeMap::new();
    match value.into_inner() {
        DeValue::Table(table) => {
            for (key, value) in table {
                let name = Spanned::new(key.span(), key.get_ref().to_string());
                if let Some(channel) = read(name, value, errors) {
                    channels.insert(channel.name.clone(), channel);
                }
            }
        }
        _ => errors.at(span, "`channels` must be a table: write [channels.NAME]"),
    }
    channels
}

/// `20/min`, `5/s`, `100/1h`, `1/2s`.
pub fn parse_rate_limit(text: &str) -> Result<RateLimit, String> {
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
