//! `type = "feishu"`: a Feishu (Lark) custom bot webhook, its optional
//! signing secret, whether to send an interactive card or a post, and who
//! to @ (`at_user_ids`: open ids `ou_…`; `at_all`).

use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;

use super::{Owner, RateLimit, choice, optional_secret};
use crate::config::Secret;
use crate::config::raw::Text;
use crate::config::validate::{Errors, one};

pub const TYPE: &str = "feishu";
pub const KEYS: &[&str] = &["url", "secret", "format", "at_user_ids", "at_all"];
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
    pub at_user_ids: Vec<String>,
    pub at_all: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    url: Option<Text>,
    secret: Option<Text>,
    format: Option<Text>,
    at_user_ids: Option<Spanned<Vec<Text>>>,
    at_all: Option<Spanned<bool>>,
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
    let mut at_user_ids = Vec::new();
    for id in raw.at_user_ids.iter().flat_map(|l| l.get_ref().iter()) {
        let valid = !id.get_ref().is_empty()
            && id
                .get_ref()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if valid {
            at_user_ids.push(id.get_ref().clone());
        } else {
            errors.at(
                id.span(),
                format!(
                    "{}: at_user_ids: `{}` is not an open id like ou_0123abcd",
                    owner.name,
                    id.get_ref()
                ),
            );
        }
    }
    Some(FeishuConfig {
        url: owner.url(&raw.url, errors),
        secret: optional_secret(&raw.secret),
        format,
        at_user_ids,
        at_all: raw.at_all.map(|b| b.into_inner()).unwrap_or(false),
    })
}
