//! HTTP plumbing shared by the chat channels: posting JSON through the
//! project's client (no redirects, no `Referer`, answers read up to
//! `delivery.max_answer`), and what a status code means for retrying.
//! Platforms that answer 200 with an error code in the body (DingTalk,
//! Feishu, WeCom) read that body in their own file.

use std::time::Duration;

use reqwest::header::HeaderMap;

use super::SendError;
use crate::aliyun::error::describe_transport_error;
use crate::http::{self as net, ReadError};

/// The content type of every JSON body dtswatch posts.
pub const JSON: &str = "application/json; charset=utf-8";

/// A channel's HTTP client and how much of an answer it reads.
pub struct Http {
    client: reqwest::Client,
    max_answer: usize,
}

impl Http {
    pub fn new(timeout: Duration, max_answer: usize) -> Result<Self, String> {
        Ok(Self {
            client: net::client(timeout).map_err(describe_transport_error)?,
            max_answer,
        })
    }

    /// A client that also trusts the PEM certificates in `ca_file`, or
    /// (`insecure`) any certificate at all.
    pub fn with_tls(
        timeout: Duration,
        max_answer: usize,
        ca_file: Option<&std::path::Path>,
        insecure: bool,
    ) -> Result<Self, String> {
        let mut roots = Vec::new();
        if let Some(path) = ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| format!("reading tls_ca_file {}: {e}", path.display()))?;
            roots = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("tls_ca_file {}: {e}", path.display()))?;
        }
        Ok(Self {
            client: net::client_with(timeout, roots, insecure).map_err(describe_transport_error)?,
            max_answer,
        })
    }

    /// Sends a JSON body and returns the status, headers and body text.
    pub async fn post_json(
        &self,
        url: &str,
        body: &serde_json::Value,
        headers: &[(String, String)],
    ) -> Result<(u16, HeaderMap, String), SendError> {
        self.post(url, JSON, body.to_string(), headers).await
    }

    /// Sends `body` as `content_type` and returns the status, headers and body text.
    pub async fn post(
        &self,
        url: &str,
        content_type: &str,
        body: String,
        headers: &[(String, String)],
    ) -> Result<(u16, HeaderMap, String), SendError> {
        let mut request = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = match net::read_capped(response, self.max_answer).await {
            Ok(bytes) => bytes,
            Err(ReadError::Transport(e)) => return Err(transport(e)),
            Err(too_large @ ReadError::TooLarge { .. }) => {
                // The message arrived or not; the answer cannot say which.
                return Err(SendError::retry(format!("HTTP {status}: {too_large}")));
            }
        };
        Ok((
            status,
            headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        ))
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare from chat platforms and ignored).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// 2xx is fine; 429, 408 and 5xx are worth retrying; a redirect and other
/// 4xx need someone to fix the channel.
pub fn classify_status(status: u16, headers: &HeaderMap, body: &str) -> Result<(), SendError> {
    let excerpt = super::escape::terminal(&crate::text::ellipsize(body.trim(), 200));
    match status {
        200..=299 => Ok(()),
        300..=399 => Err(SendError::Permanent(format!(
            "HTTP {status}: a redirect to {}, not followed (it would carry the channel's URL and headers there); check the channel's url",
            super::escape::terminal(&net::redirect_target(headers))
        ))),
        429 => Err(SendError::Retryable {
            reason: format!("HTTP 429 rate limited: {excerpt}"),
            retry_after: retry_after(headers),
        }),
        408 | 500..=599 => Err(SendError::Retryable {
            reason: format!("HTTP {status}: {excerpt}"),
            retry_after: retry_after(headers),
        }),
        _ => Err(SendError::Permanent(format!("HTTP {status}: {excerpt}"))),
    }
}

#[derive(serde::Deserialize)]
struct ErrcodeAnswer {
    errcode: Option<i64>,
    errmsg: Option<String>,
}

/// Reads the `{"errcode":…,"errmsg":…}` DingTalk and WeCom answer with, even
/// on HTTP 200: `Ok(None)` for errcode 0, `Ok(Some((code, message)))` for an
/// error the caller classifies, and a retryable error for an answer that
/// cannot be read.
pub fn errcode(platform: &str, text: &str) -> Result<Option<(i64, String)>, SendError> {
    let answer: ErrcodeAnswer = serde_json::from_str(text)
        .map_err(|_| SendError::retry(format!("unreadable {platform} answer: {text}")))?;
    match answer.errcode {
        Some(0) => Ok(None),
        Some(code) => Ok(Some((
            code,
            super::escape::log(&answer.errmsg.unwrap_or_default()),
        ))),
        None => Err(SendError::retry(format!(
            "{platform} answer without errcode: {text}"
        ))),
    }
}

/// A transport failure (refused, reset, timeout) is always worth retrying; its text never carries the URL.
pub fn transport(error: reqwest::Error) -> SendError {
    let timeout = error.is_timeout();
    let text = describe_transport_error(error);
    SendError::retry(if timeout {
        format!("timed out: {text}")
    } else {
        text
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        let mut headers = HeaderMap::new();
        assert!(classify_status(200, &headers, "ok").is_ok());
        headers.insert(reqwest::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(
            classify_status(429, &headers, "rate_limited"),
            Err(SendError::Retryable {
                reason: "HTTP 429 rate limited: rate_limited".into(),
                retry_after: Some(Duration::from_secs(7))
            })
        );
        assert!(matches!(
            classify_status(503, &HeaderMap::new(), ""),
            Err(SendError::Retryable { .. })
        ));
        assert_eq!(
            classify_status(404, &HeaderMap::new(), "channel_not_found"),
            Err(SendError::Permanent("HTTP 404: channel_not_found".into()))
        );
    }
}
