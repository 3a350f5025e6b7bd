//! The config file as written: serde structs with `deny_unknown_fields` and
//! spans on every value that is validated later. Nothing here checks meaning;
//! `validate/` turns these into the typed `Config`. Channel tables are read
//! by `channels/`, each type with its own keys.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

pub type Text = Spanned<String>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    pub path: Option<Text>,
    pub url: Option<Text>,
    pub retention: Option<Text>,
    pub prune_interval: Option<Text>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHa {
    pub failover: Option<Text>,
    pub instance: Option<Text>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPoll {
    pub schedule: Option<Text>,
    pub timeout: Option<Text>,
    pub concurrency: Option<Spanned<i64>>,
    pub max_rps: Option<Spanned<f64>>,
    pub attempts: Option<Spanned<i64>>,
    pub backoff: Option<Text>,
    pub max_backoff: Option<Text>,
    pub jitter: Option<Text>,
    pub max_answer: Option<Text>,
    pub mode: Option<Text>,
    pub refresh: Option<Text>,
    pub refresh_finished: Option<Text>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Option<Text>,
    pub unhealthy_after: Option<Spanned<i64>>,
    pub tokens: Option<Spanned<Vec<Text>>>,
    pub tls_cert: Option<Text>,
    pub tls_key: Option<Text>,
    pub insecure: Option<Spanned<bool>>,
    pub public_url: Option<Text>,
    pub metrics_sub_steps: Option<Spanned<bool>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDelivery {
    pub concurrency: Option<Spanned<i64>>,
    pub backoff: Option<Text>,
    pub max_backoff: Option<Text>,
    pub max_age: Option<Text>,
    pub drain_timeout: Option<Text>,
    pub timeout: Option<Text>,
    pub max_answer: Option<Text>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMessages {
    pub locale: Option<Text>,
    pub timezone: Option<Text>,
    pub console_url: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccount {
    pub name: Text,
    pub access_key_id: Option<Text>,
    pub access_key_secret: Option<Text>,
    pub security_token: Option<Text>,
    pub endpoint: Option<Text>,
    pub signature: Option<Text>,
    pub max_rps: Option<Spanned<f64>>,
    pub profile: Option<Text>,
    pub ecs_role: Option<Text>,
    pub metadata_url: Option<Text>,
    pub console_url: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJob {
    pub id: Text,
    pub region: Option<Text>,
    pub account: Option<Text>,
    pub name: Option<Text>,
    pub schedule: Option<Text>,
    pub zero_etl: Option<bool>,
    pub resource_group_id: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDiscover {
    pub account: Option<Text>,
    pub regions: Spanned<Vec<Text>>,
    pub job_types: Option<Vec<Text>>,
    pub name: Option<Text>,
    pub tags: Option<BTreeMap<String, Text>>,
    pub status: Option<Vec<Text>>,
    pub refresh: Option<Text>,
    pub schedule: Option<Text>,
    pub resource_group_id: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub name: Text,
    pub kind: Text,
    pub severity: Option<Text>,
    pub channels: Option<Spanned<Vec<Text>>>,
    pub jobs: Option<Vec<Text>>,
    pub steps: Option<Vec<Text>>,
    pub sub_steps: Option<bool>,
    pub fold_sub_steps: Option<bool>,
    #[serde(rename = "for")]
    pub for_: Option<Text>,
    pub repeat: Option<Text>,
    pub send_resolved: Option<bool>,
    pub after: Option<Spanned<i64>>,
    pub resolve_after: Option<Spanned<i64>>,
    pub inhibited_by: Option<Vec<Text>>,
    pub states: Option<Vec<Text>>,
    pub pattern: Option<Text>,
    pub ignore: Option<Text>,
    pub threshold: Option<Text>,
    pub resolve_below: Option<Text>,
    pub from: Option<Vec<Text>>,
    pub to: Option<Vec<Text>>,
    pub runbook: Option<Text>,
}

/// A TOML datetime or an RFC 3339 string: people write both.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawInstant {
    Native(toml::value::Datetime),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSilence {
    pub jobs: Option<Vec<Text>>,
    pub rules: Option<Vec<Text>>,
    pub steps: Option<Vec<Text>>,
    pub starts: Option<Spanned<RawInstant>>,
    pub ends: Option<Spanned<RawInstant>>,
    pub cron: Option<Text>,
    pub duration: Option<Text>,
    pub location: Option<Text>,
    pub comment: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWatchdog {
    pub channels: Spanned<Vec<Text>>,
    pub no_successful_poll: Option<Text>,
    pub dead_letters: Option<bool>,
    pub severity: Option<Text>,
}
