//! The ECS RAM role link of the credentials chain: temporary credentials
//! from the instance metadata service, IMDSv2 (a session token first) and,
//! only where allowed, IMDSv1. Every request is short: a host that is not
//! on ECS must not slow the chain down.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::credentials::Credentials;
use crate::config::Secret;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EcsCredentials {
    code: Option<String>,
    access_key_id: Option<String>,
    access_key_secret: Option<String>,
    security_token: Option<String>,
    expiration: Option<String>,
}

/// What the metadata service answers is small; more than this is not read.
const MAX_ANSWER: usize = 64 * 1024;

async fn read(resp: reqwest::Response) -> Result<Vec<u8>, String> {
    crate::http::read_capped(resp, MAX_ANSWER)
        .await
        .map_err(|e| format!("metadata service: {e}"))
}

/// IMDSv2 token first; IMDSv1 (no token) only if allowed.
pub(super) async fn fetch(
    http: &reqwest::Client,
    base_url: &str,
    role: Option<&str>,
    imdsv1_allowed: bool,
) -> Result<Credentials, String> {
    let timeout = Duration::from_secs(1);
    let token = match http
        .put(format!("{base_url}/latest/api/token"))
        .header("X-aliyun-ecs-metadata-token-ttl-seconds", "21600")
        .timeout(timeout)
        .send()
        .await
    {
        Ok(resp) if resp.status().is_success() => read(resp)
            .await
            .ok()
            .map(|b| String::from_utf8_lossy(&b).trim().to_string())
            .filter(|t| !t.is_empty()),
        Ok(resp) => {
            if !imdsv1_allowed {
                return Err(format!(
                    "metadata token request answered HTTP {}",
                    resp.status().as_u16()
                ));
            }
            None
        }
        Err(e) => {
            if !imdsv1_allowed {
                return Err(format!(
                    "metadata service unreachable ({})",
                    super::error::describe_transport_error(e)
                ));
            }
            None
        }
    };
    let get = async |path: String, what: String| -> Result<Vec<u8>, String> {
        let mut request = http.get(format!("{base_url}{path}")).timeout(timeout);
        if let Some(token) = &token {
            request = request.header("X-aliyun-ecs-metadata-token", token);
        }
        let resp = request.send().await.map_err(|e| {
            format!(
                "metadata service unreachable ({})",
                super::error::describe_transport_error(e)
            )
        })?;
        if !resp.status().is_success() {
            return Err(format!("{what} answered HTTP {}", resp.status().as_u16()));
        }
        read(resp).await
    };
    let role = match role {
        Some(r) => r.to_string(),
        None => {
            let body = get(
                "/latest/meta-data/ram/security-credentials/".into(),
                "listing RAM roles".into(),
            )
            .await?;
            let body = String::from_utf8_lossy(&body);
            body.lines()
                .next()
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .ok_or("no RAM role is attached to this instance")?
                .to_string()
        }
    };
    let resp = get(
        format!("/latest/meta-data/ram/security-credentials/{role}"),
        format!("credentials for role `{role}`"),
    )
    .await?;
    let body: EcsCredentials = serde_json::from_slice(&resp)
        .map_err(|_| format!("credentials for role `{role}` are not valid JSON"))?;
    if body.code.as_deref() != Some("Success") {
        return Err(format!(
            "credentials for role `{role}` answered Code `{}`",
            body.code.unwrap_or_default()
        ));
    }
    match (
        body.access_key_id,
        body.access_key_secret,
        body.security_token,
    ) {
        (Some(id), Some(secret), Some(token)) => Ok(Credentials {
            access_key_id: id,
            access_key_secret: Secret::new(secret),
            security_token: Some(Secret::new(token)),
            expiration: body
                .expiration
                .as_deref()
                .and_then(|e| DateTime::parse_from_rfc3339(e).ok())
                .map(|e| e.with_timezone(&Utc)),
        }),
        _ => Err(format!("credentials for role `{role}` are incomplete")),
    }
}
