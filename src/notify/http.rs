//! HTTP plumbing shared by the chat channels: the client, and what a status
//! code means for retrying. Platforms that answer 200 with an error code in
//! the body (DingTalk, Feishu, WeCom) read that body in their own file.

use std::time::Duration;

use reqwest::header::HeaderMap;

use super::SendError;
use crate::aliyun::error::describe_transport_error;

pub fn client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("dtswatch/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(describe_transport_error)
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

/// 2xx is fine; 429, 408 and 5xx are worth retrying; other 4xx need someone to fix the channel.
pub fn classify_status(status: u16, headers: &HeaderMap, body: &str) -> Result<(), SendError> {
    let excerpt: String = body.trim().chars().take(200).collect();
    match status {
        200..=299 => Ok(()),
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
        Some(code) => Ok(Some((code, answer.errmsg.unwrap_or_default()))),
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

/// Sends a JSON body and returns the status, headers and body text.
pub async fn post_json(
    client: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
    headers: &[(String, String)],
) -> Result<(u16, HeaderMap, String), SendError> {
    let mut request = client
        .post(url)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/json; charset=utf-8",
        )
        .body(body.to_string());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request.send().await.map_err(transport)?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.map_err(transport)?;
    Ok((status, headers, text))
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
