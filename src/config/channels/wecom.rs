//! `type = "wecom"`: a WeCom (企业微信) group robot webhook (the `key` in its
//! URL is the secret) and who to mention.

use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;

use super::{Owner, RateLimit, strings};
use crate::config::Secret;
use crate::config::raw::Text;
use crate::config::validate::{Errors, one};

pub const TYPE: &str = "wecom";
pub const KEYS: &[&str] = &["url", "mentioned_mobiles", "mentioned_users"];
/// WeCom robots take 20 messages a minute.
pub const RATE_LIMIT: Option<RateLimit> = Some(RateLimit::new(20, 60));
/// WeCom markdown stops at 4,096 bytes: twenty one-line alerts fit.
pub const MAX_BATCH: i64 = 20;

#[derive(Debug, Clone)]
pub struct WeComConfig {
    pub url: Secret,
    pub mentioned_mobiles: Vec<String>,
    pub mentioned_users: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    url: Option<Text>,
    mentioned_mobiles: Option<Spanned<Vec<Text>>>,
    mentioned_users: Option<Spanned<Vec<Text>>>,
}

pub(super) fn read(
    value: Spanned<DeValue<'_>>,
    owner: &Owner,
    errors: &mut Errors,
) -> Option<WeComConfig> {
    let raw: Raw = one(value, &owner.name, errors)?;
    Some(WeComConfig {
        url: owner.url(&raw.url, errors),
        mentioned_mobiles: strings(&raw.mentioned_mobiles),
        mentioned_users: strings(&raw.mentioned_users),
    })
}
