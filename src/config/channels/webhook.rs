//! `type = "webhook"`: any HTTP receiver: its URL, the optional HMAC secret
//! and custom headers (which may carry credentials, so their values are
//! secrets), and either the `dtswatch.webhook.v1` document or a
//! `body_template` of the receiver's own format with its `content_type`,
//! sent `per_alert` if the receiver takes one alert per request.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;

use super::{Owner, RateLimit, optional_secret};
use crate::config::Secret;
use crate::config::raw::Text;
use crate::config::validate::{Errors, one};

pub const TYPE: &str = "webhook";
pub const KEYS: &[&str] = &[
    "url",
    "secret",
    "headers",
    "body_template",
    "content_type",
    "per_alert",
];
pub const RATE_LIMIT: Option<RateLimit> = None;
pub const MAX_BATCH: i64 = 500;

#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub url: Secret,
    pub secret: Option<Secret>,
    pub headers: BTreeMap<String, Secret>,
    /// A minijinja template for the whole body, instead of the document.
    pub body_template: Option<String>,
    pub content_type: String,
    /// One request per alert instead of one per message.
    pub per_alert: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    url: Option<Text>,
    secret: Option<Text>,
    headers: Option<Spanned<BTreeMap<String, Text>>>,
    body_template: Option<Text>,
    content_type: Option<Text>,
    per_alert: Option<Spanned<bool>>,
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
    if let Some(template) = &raw.body_template
        && let Err(e) = minijinja::Environment::new().template_from_str(template.get_ref())
    {
        errors.at(
            template.span(),
            format!("{}: body_template does not compile: {e}", owner.name),
        );
    }
    let content_type = match &raw.content_type {
        Some(value) => {
            let text = value.get_ref().trim();
            if reqwest::header::HeaderValue::from_str(text).is_err() || !text.contains('/') {
                errors.at(
                    value.span(),
                    format!(
                        "{}: content_type `{text}` is not a media type like application/json",
                        owner.name
                    ),
                );
            }
            text.to_string()
        }
        None => "application/json".to_string(),
    };
    Some(WebhookConfig {
        url: owner.url(&raw.url, errors),
        secret: optional_secret(&raw.secret),
        headers,
        body_template: raw.body_template.as_ref().map(|t| t.get_ref().clone()),
        content_type,
        per_alert: raw.per_alert.map(|b| b.into_inner()).unwrap_or(false),
    })
}
