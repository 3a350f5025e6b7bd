//! `type = "feishu"`: a Feishu (Lark) custom bot webhook, its optional
//! signing secret, and whether to send an interactive card or a post.

use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;

use super::{Owner, RateLimit, choice, optional_secret};
use crate::config::Secret;
use crate::config::raw::Text;
use crate::config::validate::{Errors, one};

pub const TYPE: &str = "feishu";
pub const KEYS: &[&str] = &["url", "secret", "format"];
/// Feishu bots take 5 messages a second (and 100 a minute).
pub const RATE_LIMIT: Option<RateLimit> = Some(RateLimit::new(5, 1));
/// Eighty one-line alerts stay under the 20 KB request limit.
pub const MAX_BATCH: i64 = 80;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeishuFormat {
    Card,
    Post,
}

#[derive(Debug, Clone)]
pub struct FeishuConfig {
    pub url: Secret,
    pub secret: Option<Secret>,
    pub format: FeishuFormat,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    url: Option<Text>,
    secret: Option<Text>,
    format: Option<Text>,
}

pub(super) fn read(
    value: Spanned<DeValue<'_>>,
    owner: &Owner,
    errors: &mut Errors,
) -> Option<FeishuConfig> {
    let raw: Raw = one(value, &owner.name, errors)?;
    let format = choice(
        &raw.format,
        &[("card", FeishuFormat::Card), ("post", FeishuFormat::Post)],
        FeishuFormat::Card,
        &format!("{}: format", owner.name),
        errors,
    );
    Some(FeishuConfig {
        url: owner.url(&raw.url, errors),
        secret: optional_secret(&raw.secret),
        format,
    })
}
