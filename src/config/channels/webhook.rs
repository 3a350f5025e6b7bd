//! `type = "webhook"`: any HTTP receiver of the `dtswatch.webhook.v1`
//! document: its URL, the optional HMAC secret and custom headers (which may
//! carry credentials, so their values are secrets).

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;

use super::{Owner, RateLimit, optional_secret};
use crate::config::Secret;
use crate::config::raw::Text;
use crate::config::validate::{Errors, one};

pub const TYPE: &str = "webhook";
pub const KEYS: &[&str] = &["url", "secret", "headers"];
pub const RATE_LIMIT: Option<RateLimit> = None;
pub const MAX_BATCH: i64 = 500;

#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub url: Secret,
    pub secret: Option<Secret>,
    pub headers: BTreeMap<String, Secret>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    url: Option<Text>,
    secret: Option<Text>,
    headers: Option<Spanned<BTreeMap<String, Text>>>,
}

pub(super) fn read(
    value: Spanned<DeValue<'_>>,
    owner: &Owner,
    errors: &mut Errors,
) -> Option<WebhookConfig> {
    let raw: Raw = one(value, &owner.name, errors)?;
    let mut headers = BTreeMap::new();
    for (name, value) in raw.headers.map(Spanned::into_inner).unwrap_or_default() {
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            errors.at(
                value.span(),
                format!("{}: `{name}` is not a valid HTTP header name", owner.name),
            );
        }
        headers.insert(name, Secret::new(value.into_inner()));
    }
    Some(WebhookConfig {
        url: owner.url(&raw.url, errors),
        secret: optional_secret(&raw.secret),
        headers,
    })
}
