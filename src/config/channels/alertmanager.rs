//! `type = "alertmanager"`: an existing Prometheus Alertmanager that takes
//! dtswatch's alerts into its own routing tree, silences and receivers.
//! Its base URL (`http://alertmanager:9093`; dtswatch posts to
//! `/api/v2/alerts`), basic or bearer auth, TLS options for a private CA,
//! and how often firing alerts are posted again (`repost_interval`, 1 min
//! like Prometheus's `resend_delay`; Alertmanager resolves an alert that is
//! not re-posted before its `endsAt`).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;

use super::{Owner, RateLimit, optional_secret};
use crate::config::Secret;
use crate::config::raw::Text;
use crate::config::validate::{Errors, one};

pub const TYPE: &str = "alertmanager";
pub const KEYS: &[&str] = &[
    "url",
    "username",
    "password",
    "bearer_token",
    "tls_ca_file",
    "tls_insecure_skip_verify",
    "repost_interval",
];
/// Alertmanager has no rate limit of its own to respect.
pub const RATE_LIMIT: Option<RateLimit> = None;
/// Alertmanager takes any number of alerts per request.
pub const MAX_BATCH: i64 = 500;

#[derive(Debug, Clone)]
pub enum AlertmanagerAuth {
    None,
    Basic { username: String, password: Secret },
    Bearer(Secret),
}

#[derive(Debug, Clone)]
pub struct AlertmanagerConfig {
    /// The base URL, without `/api/v2/alerts` and without a trailing slash.
    pub url: Secret,
    pub auth: AlertmanagerAuth,
    /// PEM certificates to trust besides the system's (a private CA).
    pub tls_ca_file: Option<PathBuf>,
    /// Accept any certificate: for a test setup only.
    pub tls_insecure_skip_verify: bool,
    /// Firing alerts are posted again this often; each post says it ends
    /// after four intervals unless posted again.
    pub repost_interval: Duration,
    /// The status page's base URL (`[server] public_url` or the listener),
    /// for each alert's `generatorURL`.
    pub status_page: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    url: Option<Text>,
    username: Option<Text>,
    password: Option<Text>,
    bearer_token: Option<Text>,
    tls_ca_file: Option<Text>,
    tls_insecure_skip_verify: Option<Spanned<bool>>,
    repost_interval: Option<Text>,
}

pub(super) fn read(
    value: Spanned<DeValue<'_>>,
    owner: &Owner,
    errors: &mut Errors,
) -> Option<AlertmanagerConfig> {
    let raw: Raw = one(value, &owner.name, errors)?;
    let url = owner.url(&raw.url, errors);
    let url = Secret::new(
        url.expose()
            .trim_end_matches('/')
            .trim_end_matches("/api/v2/alerts")
            .to_string(),
    );
    let auth = match (
        &raw.username,
        optional_secret(&raw.password),
        optional_secret(&raw.bearer_token),
    ) {
        (None, None, None) => AlertmanagerAuth::None,
        (Some(user), Some(password), None) => AlertmanagerAuth::Basic {
            username: user.get_ref().clone(),
            password,
        },
        (None, None, Some(token)) => AlertmanagerAuth::Bearer(token),
        (_, _, Some(_)) if raw.username.is_some() || raw.password.is_some() => {
            let span = raw
                .bearer_token
                .as_ref()
                .map(|t| t.span())
                .unwrap_or(owner.span.clone());
            errors.at(
                span,
                format!(
                    "{}: use either username/password or bearer_token, not both",
                    owner.name
                ),
            );
            AlertmanagerAuth::None
        }
        _ => {
            let span = raw
                .username
                .as_ref()
                .or(raw.password.as_ref())
                .map(|t| t.span())
                .unwrap_or(owner.span.clone());
            errors.at(
                span,
                format!("{}: username and password go together", owner.name),
            );
            AlertmanagerAuth::None
        }
    };
    Some(AlertmanagerConfig {
        url,
        auth,
        tls_ca_file: raw.tls_ca_file.as_ref().map(|p| PathBuf::from(p.get_ref())),
        tls_insecure_skip_verify: raw
            .tls_insecure_skip_verify
            .map(Spanned::into_inner)
            .unwrap_or(false),
        repost_interval: errors.positive_duration(
            &raw.repost_interval,
            Duration::from_secs(60),
            &format!("{}: repost_interval", owner.name),
        ),
        // Set from `[server]` once that is read.
        status_page: None,
    })
}
