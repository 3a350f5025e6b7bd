//! `type = "slack"`: a Slack incoming webhook URL (the URL is the secret).

use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;

use super::{Owner, RateLimit};
use crate::config::Secret;
use crate::config::raw::Text;
use crate::config::validate::{Errors, one};

pub const TYPE: &str = "slack";
pub const KEYS: &[&str] = &["url"];
/// Slack allows one message per second per webhook.
pub const RATE_LIMIT: Option<RateLimit> = Some(RateLimit::new(1, 1));
/// A hundred one-line alerts fit the 50-block, 3,000-character sections.
pub const MAX_BATCH: i64 = 100;

#[derive(Debug, Clone)]
pub struct SlackConfig {
    pub url: Secret,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    url: Option<Text>,
}

pub(super) fn read(
    value: Spanned<DeValue<'_>>,
    owner: &Owner,
    errors: &mut Errors,
) -> Option<SlackConfig> {
    let raw: Raw = one(value, &owner.name, errors)?;
    Some(SlackConfig {
        url: owner.url(&raw.url, errors),
    })
}
