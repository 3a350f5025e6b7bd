//! Raw config → typed `Config`, collecting every problem with its span instead
//! of stopping at the first. Each top-level section and each array entry is
//! deserialised on its own, so a typo in one rule does not hide a bad cron in
//! another; one file per section family turns the raw values into typed
//! settings. Pure: no I/O, the environment is a lookup function.

mod budget;
mod errors;
mod messages;
mod rules;
mod server;
mod service;
mod silences;
mod sources;

use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::raw::*;
use super::{ChannelConfig, Config, ConfigError, channels, interpolate};
pub(in crate::config) use errors::Errors;
pub(in crate::config) use messages::{locale, zone};

const SECTIONS: &[&str] = &[
    "storage", "poll", "server", "delivery", "accounts", "jobs", "discover", "channels", "rules",
    "silences", "watchdog", "messages", "ha",
];

/// Every section as written, each already deserialised on its own.
#[derive(Default)]
struct RawDocument {
    storage: RawStorage,
    ha: RawHa,
    poll: RawPoll,
    server: RawServer,
    delivery: RawDelivery,
    messages: RawMessages,
    accounts: Vec<(Range<usize>, RawAccount)>,
    jobs: Vec<(Range<usize>, RawJob)>,
    discover: Vec<(Range<usize>, RawDiscover)>,
    channels: std::collections::BTreeMap<String, ChannelConfig>,
    rules: Vec<(Range<usize>, RawRule)>,
    silences: Vec<(Range<usize>, RawSilence)>,
    watchdog: Option<(Range<usize>, RawWatchdog)>,
}

pub(super) fn parse_and_validate(
    text: &str,
    source: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Config, Vec<ConfigError>), Vec<ConfigError>> {
    let mut errors = Errors::default();
    let (mut root, syntax_errors) = DeTable::parse_recoverable(text);
    for e in syntax_errors {
        errors.toml("", e);
    }
    interpolate_table(root.get_mut(), env, &mut errors);
    let document = split_sections(root.into_inner(), &mut errors);
    let config = build(document, source, &mut errors);
    let Errors {
        mut errors,
        mut warnings,
    } = errors;
    if errors.is_empty() {
        warnings.sort_by_key(|e| e.span.as_ref().map(|s| s.start).unwrap_or(0));
        Ok((config, warnings))
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
pub(in crate::config) fn one<'a, T: Deserialize<'a>>(
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
            "ha" => doc.ha = one(value, "[ha]", errors).unwrap_or_default(),
            "poll" => doc.poll = one(value, "[poll]", errors).unwrap_or_default(),
            "server" => doc.server = one(value, "[server]", errors).unwrap_or_default(),
            "delivery" => doc.delivery = one(value, "[delivery]", errors).unwrap_or_default(),
            "messages" => doc.messages = one(value, "[messages]", errors).unwrap_or_default(),
            "accounts" => doc.accounts = many(value, "accounts", errors),
            "jobs" => doc.jobs = many(value, "jobs", errors),
            "discover" => doc.discover = many(value, "discover", errors),
            "rules" => doc.rules = many(value, "rules", errors),
            "silences" => doc.silences = many(value, "silences", errors),
            "watchdog" => {
                let span = value.span();
                doc.watchdog = one(value, "[watchdog]", errors).map(|w| (span, w));
            }
            "channels" => doc.channels = channels::read_all(value, errors),
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

fn build(mut doc: RawDocument, source: &Path, errors: &mut Errors) -> Config {
    let messages = messages::build_messages(&doc.messages, errors);
    let zone = messages.timezone;
    let storage = service::build_storage(&doc.storage, errors);
    let ha = service::build_ha(&doc.ha, &storage, errors);
    let poll = service::build_poll(&doc.poll, zone, errors);
    let server = server::build_server(&doc.server, errors);
    let delivery = service::build_delivery(&doc.delivery, errors);
    let accounts = sources::build_accounts(&doc.accounts, poll.max_rps, errors);
    let account_names: Vec<String> = accounts.iter().map(|a| a.name.clone()).collect();
    let jobs = sources::build_jobs(&doc.jobs, &account_names, zone, errors);
    let discover = sources::build_discover(&doc.discover, &account_names, zone, errors);
    let mut channels = std::mem::take(&mut doc.channels);
    for channel in channels.values_mut() {
        channel.max_answer = delivery.max_answer;
        channel.settle_style(&messages);
        if let super::ChannelKind::Alertmanager(am) = &mut channel.kind {
            am.status_page = server.status_page();
        }
    }
    let rules = rules::build_rules(&doc.rules, &channels, errors);
    let silences = silences::build_silences(&doc.silences, zone, errors);
    let watchdog = doc
        .watchdog
        .as_ref()
        .map(|(_, raw)| silences::build_watchdog(raw, &channels, errors));
    budget::check(&doc, &poll, &accounts, &jobs, errors);
    if jobs.is_empty() && discover.is_empty() && errors.errors.is_empty() {
        errors.errors.push(ConfigError {
            span: None,
            message: "nothing to watch: add at least one [[jobs]] or [[discover]] entry".into(),
        });
    }
    Config {
        source: source.to_path_buf(),
        storage,
        ha,
        poll,
        server,
        delivery,
        messages,
        accounts,
        jobs,
        discover,
        channels,
        rules,
        silences,
        watchdog,
        warnings: Vec::new(),
    }
}
