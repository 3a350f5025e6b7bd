//! `[server]`: where `/healthz`, `/metrics`, the API and the status page
//! listen, who may write through the API (tokens, compared by their
//! SHA-256), TLS, and the per-step gauges. A listener other hosts can reach
//! must have tokens and TLS, or say `insecure = true`: a status page of
//! every database migration and a silence button are not for the open
//! network by accident.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::super::raw::RawServer;
use super::super::{ApiToken, Secret, ServerConfig};
use super::errors::Errors;

/// One `tokens` entry: `sha256:` and 64 hex digits, or the token itself.
fn token(text: &str) -> Result<ApiToken, String> {
    match text.strip_prefix("sha256:") {
        Some(hex_digest) => {
            let bytes = hex::decode(hex_digest.trim())
                .map_err(|_| "is `sha256:` but not followed by hex digits".to_string())?;
            let digest: [u8; 32] = bytes
                .try_into()
                .map_err(|_| "is `sha256:` but not followed by 64 hex digits".to_string())?;
            Ok(ApiToken::Sha256(digest))
        }
        None if text.len() < 16 => {
            Err("is shorter than 16 characters; use a long random token".to_string())
        }
        None => Ok(ApiToken::Plain(Secret::new(text.to_string()))),
    }
}

pub(super) fn build_server(raw: &RawServer, errors: &mut Errors) -> ServerConfig {
    let listen = match &raw.listen {
        None => Some(SocketAddr::from(([127, 0, 0, 1], 9187))),
        Some(text) if text.get_ref().is_empty() || text.get_ref() == "off" => None,
        Some(text) => match text.get_ref().parse::<SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                errors.at(
                    text.span(),
                    format!("server.listen `{}` is not an address like 127.0.0.1:9187 (use \"off\" to disable)", text.get_ref()),
                );
                None
            }
        },
    };
    let mut tokens = Vec::new();
    for (i, text) in raw
        .tokens
        .iter()
        .flat_map(|t| t.get_ref().iter())
        .enumerate()
    {
        // An unset `${VAR:-}` leaves an empty entry: no token, not a short one.
        if text.get_ref().is_empty() {
            continue;
        }
        match token(text.get_ref()) {
            Ok(t) => tokens.push(t),
            // The value may be a secret: it is not echoed.
            Err(why) => errors.at(text.span(), format!("server.tokens[{}] {why}", i + 1)),
        }
    }
    let tls = match (&raw.tls_cert, &raw.tls_key) {
        (Some(cert), Some(key)) => {
            Some((PathBuf::from(cert.get_ref()), PathBuf::from(key.get_ref())))
        }
        (None, None) => None,
        (Some(one), None) | (None, Some(one)) => {
            errors.at(one.span(), "server.tls_cert and server.tls_key go together");
            None
        }
    };
    let insecure = raw.insecure.as_ref().is_some_and(|b| *b.get_ref());
    if let (Some(addr), Some(text)) = (listen, &raw.listen)
        && !addr.ip().is_loopback()
        && (tokens.is_empty() || tls.is_none())
        && !insecure
    {
        errors.at(
            text.span(),
            format!(
                "server.listen `{addr}` is reachable from other hosts: set server.tokens and server.tls_cert/tls_key, or server.insecure = true to serve it anyway"
            ),
        );
    }
    let public_url = raw.public_url.as_ref().map(|u| {
        let text = u.get_ref().trim().trim_end_matches('/').to_string();
        if reqwest::Url::parse(&text)
            .map(|url| !matches!(url.scheme(), "http" | "https"))
            .unwrap_or(true)
        {
            errors.at(
                u.span(),
                format!("server.public_url `{text}` is not an http(s) URL"),
            );
        }
        text
    });
    ServerConfig {
        listen,
        unhealthy_after: errors.count(&raw.unhealthy_after, 3, 1..=1000, "server.unhealthy_after"),
        tokens,
        tls,
        public_url,
        metrics_sub_steps: raw.metrics_sub_steps.as_ref().is_some_and(|b| *b.get_ref()),
    }
}
