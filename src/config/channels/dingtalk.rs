//! `type = "dingtalk"`: a DingTalk custom group robot. Its webhook URL (with
//! the `access_token`), the optional `SEC…` signing secret, who to @, and
//! the `keyword` of a robot with keyword security.

use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;

use super::{Owner, RateLimit, optional_secret, strings};
use crate::config::Secret;
use crate::config::raw::Text;
use crate::config::validate::{Errors, one};

pub const TYPE: &str = "dingtalk";
pub const KEYS: &[&str] = &[
    "url",
    "secret",
    "at_mobiles",
    "at_user_ids",
    "at_all",
    "keyword",
];
/// DingTalk answers 130101 beyond 20 messages a minute per robot.
pub const RATE_LIMIT: Option<RateLimit> = Some(RateLimit::new(20, 60));
/// Sixty one-line alerts stay well under the 20,000-byte body limit.
pub const MAX_BATCH: i64 = 60;

#[derive(Debug, Clone)]
pub struct DingTalkConfig {
    pub url: Secret,
    pub secret: Option<Secret>,
    pub at_mobiles: Vec<String>,
    pub at_user_ids: Vec<String>,
    pub at_all: bool,
    /// Every message carries it (a keyword-secured robot drops any without).
    pub keyword: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    url: Option<Text>,
    secret: Option<Text>,
    at_mobiles: Option<Spanned<Vec<Text>>>,
    at_user_ids: Option<Spanned<Vec<Text>>>,
    at_all: Option<Spanned<bool>>,
    keyword: Option<Text>,
}

pub(super) fn read(
    value: Spanned<DeValue<'_>>,
    owner: &Owner,
    errors: &mut Errors,
) -> Option<DingTalkConfig> {
    let raw: Raw = one(value, &owner.name, errors)?;
    Some(DingTalkConfig {
        url: owner.url(&raw.url, errors),
        secret: optional_secret(&raw.secret),
        at_mobiles: strings(&raw.at_mobiles),
        at_user_ids: strings(&raw.at_user_ids),
        at_all: raw.at_all.map(|b| b.into_inner()).unwrap_or(false),
        keyword: raw
            .keyword
            .as_ref()
            .map(|k| k.get_ref().trim().to_string())
            .filter(|k| !k.is_empty()),
    })
}
