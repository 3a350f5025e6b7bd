//! Outbound HTTP as every client of dtswatch uses it (DTS, the ECS metadata
//! service, chat platforms, webhooks). Three rules hold for all of them:
//!
//! - **No redirects.** A redirect would carry what the request carries — a
//!   DingTalk `access_token` and `sign`, a WeCom key, a Slack or Feishu hook
//!   path, a signed DTS query with its STS token, custom webhook headers — to
//!   another host, and turn a POST into a body-less GET whose 200 would count
//!   as delivered. A 3xx is an answer like any other, and callers treat it as
//!   a failure that names where it pointed.
//! - **No `Referer`**, ever.
//! - **Bounded answers.** Bodies are read chunk by chunk up to a cap, so a
//!   huge or endless answer costs at most the cap, not the process.

use std::time::Duration;

/// The answer of a request whose body was larger than allowed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the answer is larger than {cap} bytes; not read further")]
    TooLarge { cap: usize },
    #[error(transparent)]
    Transport(#[from] reqwest::Error),
}

/// A client that never follows redirects nor sends `Referer`, with
/// `timeout` for the whole request and at most 5 s to connect.
pub fn client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    client_with(timeout, Vec::new(), false)
}

/// The same, also trusting `roots`, or (`insecure`) any certificate.
pub fn client_with(
    timeout: Duration,
    roots: Vec<reqwest::Certificate>,
    insecure: bool,
) -> Result<reqwest::Client, reqwest::Error> {
    let mut builder = reqwest::Client::builder();
    for root in roots {
        builder = builder.add_root_certificate(root);
    }
    builder
        .danger_accept_invalid_certs(insecure)
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none())
        .referer(false)
        .user_agent(concat!("dtswatch/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Reads the body of `response`, failing as soon as it exceeds `cap` bytes.
pub async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<Vec<u8>, ReadError> {
    if response
        .content_length()
        .is_some_and(|length| length > cap as u64)
    {
        return Err(ReadError::TooLarge { cap });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len().saturating_add(chunk.len()) > cap {
            return Err(ReadError::TooLarge { cap });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Where a 3xx answer points, host only (its path and query may hold a token).
pub fn redirect_target(headers: &reqwest::header::HeaderMap) -> String {
    headers
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|location| reqwest::Url::parse(location).ok())
        .and_then(|url| url.host_str().map(str::to_string))
        .unwrap_or_else(|| "elsewhere".into())
}
