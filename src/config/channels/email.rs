//! `type = "email"`: an SMTP relay (host, port, TLS mode, login) and the
//! sender and recipients, parsed into mailboxes here, once. Clear-text SMTP
//! is only allowed to a loopback relay, since it would send the password
//! over the network.

use std::path::PathBuf;

use lettre::message::Mailbox;
use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;

use super::{Owner, RateLimit, choice};
use crate::config::Secret;
use crate::config::raw::Text;
use crate::config::validate::{Errors, one};

pub const TYPE: &str = "email";
pub const KEYS: &[&str] = &[
    "host", "port", "tls", "username", "password", "from", "to", "ca_file",
];
pub const RATE_LIMIT: Option<RateLimit> = None;
pub const MAX_BATCH: i64 = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Implicit,
    StartTls,
    None,
}

#[derive(Debug, Clone)]
pub struct EmailConfig {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
    /// Extra CA certificates (PEM) to trust, for a relay with a private CA.
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    host: Option<Text>,
    port: Option<Spanned<i64>>,
    tls: Option<Text>,
    username: Option<Text>,
    password: Option<Text>,
    from: Option<Text>,
    to: Option<Spanned<Vec<Text>>>,
    ca_file: Option<Text>,
}

fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

/// A placeholder for an address that did not parse (the error is reported; the config is not used).
fn nobody() -> Mailbox {
    Mailbox::new(None, lettre::Address::new_dangerous("invalid", "invalid"))
}

pub(super) fn read(
    value: Spanned<DeValue<'_>>,
    owner: &Owner,
    errors: &mut Errors,
) -> Option<EmailConfig> {
    let raw: Raw = one(value, &owner.name, errors)?;
    let name = &owner.name;
    let host = match &raw.host {
        Some(h) if !h.get_ref().is_empty() => h.get_ref().clone(),
        _ => {
            errors.at(owner.span.clone(), format!("{name}: missing `host`"));
            String::new()
        }
    };
    let tls = choice(
        &raw.tls,
        &[
            ("implicit", TlsMode::Implicit),
            ("starttls", TlsMode::StartTls),
            ("none", TlsMode::None),
        ],
        TlsMode::Implicit,
        &format!("{name}: tls"),
        errors,
    );
    if let Some(text) = &raw.tls
        && tls == TlsMode::None
        && !host.is_empty()
        && !is_loopback_host(&host)
    {
        errors.at(
            text.span(),
            format!("{name}: tls = \"none\" sends the password in clear text; it is only allowed to a loopback host, not `{host}`"),
        );
    }
    let port = match &raw.port {
        Some(p) if (1..=65535).contains(p.get_ref()) => *p.get_ref() as u16,
        Some(p) => {
            errors.at(
                p.span(),
                format!("{name}: port {} is not between 1 and 65535", p.get_ref()),
            );
            465
        }
        None => match tls {
            TlsMode::Implicit => 465,
            TlsMode::StartTls => 587,
            TlsMode::None => 25,
        },
    };
    match (&raw.username, &raw.password) {
        (Some(u), None) => errors.at(u.span(), format!("{name}: username needs a password")),
        (None, Some(p)) => errors.at(p.span(), format!("{name}: password needs a username")),
        _ => {}
    }
    let from = match &raw.from {
        Some(f) => f.get_ref().parse::<Mailbox>().unwrap_or_else(|_| {
            errors.at(
                f.span(),
                format!(
                    "{name}: from `{}` is not an address like `dtswatch <alerts@example.com>`",
                    f.get_ref()
                ),
            );
            nobody()
        }),
        None => {
            errors.at(owner.span.clone(), format!("{name}: missing `from`"));
            nobody()
        }
    };
    let to = match &raw.to {
        Some(list) if !list.get_ref().is_empty() => list
            .get_ref()
            .iter()
            .map(|t| {
                t.get_ref().parse::<Mailbox>().unwrap_or_else(|_| {
                    errors.at(
                        t.span(),
                        format!("{name}: `{}` is not an email address", t.get_ref()),
                    );
                    nobody()
                })
            })
            .collect(),
        Some(list) => {
            errors.at(
                list.span(),
                format!("{name}: `to` must list at least one address"),
            );
            Vec::new()
        }
        None => {
            errors.at(owner.span.clone(), format!("{name}: missing `to`"));
            Vec::new()
        }
    };
    Some(EmailConfig {
        host,
        port,
        tls,
        username: raw.username.map(Spanned::into_inner),
        password: raw.password.map(|p| Secret::new(p.into_inner())),
        from,
        to,
        ca_file: raw.ca_file.map(|f| PathBuf::from(f.into_inner())),
    })
}
