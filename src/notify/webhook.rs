//! Generic webhook: a versioned JSON document (`dtswatch.webhook.v1`, see the
//! README), signed with `X-Dtswatch-Signature: sha256=<hex HMAC-SHA256 of the
//! body>` when a secret is set, plus any custom headers. 2xx is success; 429,
//! 408 and 5xx are retried; other statuses need the receiver fixed.

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::{Delivered, Message, Notifier, SendError, Templates, http};
use crate::config::{Secret, WebhookConfig};
use crate::rules::Event;

pub const SCHEMA_VERSION: &str = "dtswatch.webhook.v1";
pub const SIGNATURE_HEADER: &str = "X-Dtswatch-Signature";

pub struct Webhook {
    url: Secret,
    secret: Option<Secret>,
    headers: Vec<(String, Secret)>,
    templates: Templates,
    http: http::Http,
}

impl Webhook {
    pub fn new(config: &WebhookConfig, templates: Templates, http: http::Http) -> Self {
        Self {
            url: config.url.clone(),
            secret: config.secret.clone(),
            headers: config
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            templates,
            http,
        }
    }

    fn body(&self, message: &Message) -> Value {
        let mut body = build_body(message, &self.templates.title(message));
        if let Some(text) = self.templates.custom_body(message) {
            body["text"] = Value::String(text);
        }
        body
    }
}

impl Notifier for Webhook {
    async fn send(&self, message: &Message) -> Result<Delivered, SendError> {
        let body = self.body(message);
        let bytes = body.to_string();
        let mut headers: Vec<(String, String)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.expose().to_string()))
            .collect();
        if let Some(secret) = &self.secret {
            headers.push((
                SIGNATURE_HEADER.to_string(),
                signature(secret.expose(), bytes.as_bytes()),
            ));
        }
        let (status, response_headers, text) = self
            .http
            .post_json(self.url.expose(), &body, &headers)
            .await?;
        http::classify_status(status, &response_headers, &text)?;
        Ok(Delivered::answered(&format!(
            "HTTP {status} {}",
            text.trim()
        )))
    }

    fn preview(&self, message: &Message) -> String {
        serde_json::to_string_pretty(&self.body(message)).unwrap_or_default()
    }
}

/// `sha256=` + hex HMAC-SHA256 of the exact body bytes.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC accepts any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn alert(event: &Event) -> Value {
    let step = event.step.as_ref();
    json!({
        "status": event.status,
        "reason": event.reason,
        "labels": {
            "rule": event.rule,
            "kind": event.kind,
            "severity": event.severity,
            "job_id": event.job.id,
            "job_name": event.job.name,
            "region": event.job.region,
            "step_path": step.map(|s| s.path.clone()),
            "step": step.map(|s| s.label.clone()),
            "step_code": step.and_then(|s| s.code.clone()),
            "sub_step_id": step.and_then(|s| s.sub_step_id.clone()),
        },
        "values": event.current,
        "summary": event.summary,
        "changes": event.changes,
        "first_seen": event.first_seen,
        "at": event.at,
        "runbook": event.runbook,
    })
}

/// The `dtswatch.webhook.v1` document.
pub fn build_body(message: &Message, title: &str) -> Value {
    json!({
        "version": SCHEMA_VERSION,
        "title": title,
        "status": message.status(),
        "severity": message.severity(),
        "alerts": message.events().map(alert).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::sample_message;

    #[test]
    fn signature_is_hex_hmac_of_the_body() {
        // echo -n '{"a":1}' | openssl dgst -sha256 -hmac secret
        assert_eq!(
            signature("secret", br#"{"a":1}"#),
            "sha256=aa9e2e3575f5d7098b6caccd790888c36d5fdb63342a73bada2d6a51747a8494"
        );
    }

    #[test]
    fn golden_document() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-30T10:00:30Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let body = build_body(&sample_message(now), "title");
        assert_eq!(body["version"], "dtswatch.webhook.v1");
        assert_eq!(body["status"], "firing");
        assert_eq!(body["severity"], "critical");
        let alert = &body["alerts"][0];
        assert_eq!(alert["labels"]["rule"], "step failed");
        assert_eq!(alert["labels"]["job_id"], "dtsl1fecyc1e01");
        assert_eq!(alert["labels"]["sub_step_id"], "st03full_0001");
        assert_eq!(alert["values"]["progress"], 30);
        assert_eq!(alert["values"]["error_details"][0]["code"], "DTS-1020042");
        assert_eq!(alert["changes"][0], "State: running → Failed");
        assert_eq!(alert["first_seen"], "2026-11-30T10:00:30Z");
        assert_eq!(alert["reason"], "first_notification");
    }
}
