//! Generic webhook: a versioned JSON document (`dtswatch.webhook.v1`,
//! `document.rs`), or with `body_template` a body of the receiver's own
//! format (PagerDuty Events v2, Opsgenie, Teams, Telegram: see the example
//! config) sent as `content_type`, every value escaped for that type; with
//! `per_alert` one request per alert, for APIs that take one alert at a
//! time (receivers dedup by the alert's `fingerprint`). Signed with
//! `X-Dtswatch-Signature: sha256=<hex HMAC-SHA256 of the body>` when a
//! secret is set, plus any custom headers. 2xx is success; 429, 408 and 5xx
//! are retried; other statuses need the receiver fixed.

use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::syntax::{self, Syntax};
use super::{Delivered, Message, Notifier, SendError, Templates, document, http, render};
use crate::config::{Secret, WebhookConfig};
use crate::rules::Notification;

pub use document::SCHEMA_VERSION;
pub const SIGNATURE_HEADER: &str = "X-Dtswatch-Signature";

pub struct Webhook {
    url: Secret,
    secret: Option<Secret>,
    headers: Vec<(String, Secret)>,
    body_template: Option<String>,
    content_type: String,
    per_alert: bool,
    templates: Templates,
    http: http::Http,
}

/// What values printed by the channel's templates are escaped for.
pub fn template_syntax(config: &WebhookConfig) -> Syntax {
    if config.body_template.is_none() {
        // `template` fills the document's `text`, which JSON encoding escapes.
        return syntax::VERBATIM;
    }
    let media = config.content_type.to_ascii_lowercase();
    if media.contains("json") {
        syntax::JSON_STRING
    } else if media.starts_with("application/x-www-form-urlencoded") {
        syntax::FORM
    } else {
        syntax::PLAIN
    }
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
            body_template: config.body_template.clone(),
            content_type: config.content_type.clone(),
            per_alert: config.per_alert,
            templates,
            http,
        }
    }

    /// The messages one delivery sends: the message, or one per alert.
    fn parts(&self, message: &Message) -> Vec<Message> {
        if !self.per_alert {
            return vec![message.clone()];
        }
        message
            .notifications
            .iter()
            .flat_map(|n| {
                n.events.iter().map(|event| Message {
                    notifications: vec![Notification {
                        job: n.job.clone(),
                        events: vec![event.clone()],
                    }],
                    test: message.test,
                })
            })
            .collect()
    }

    /// The body of one request, or why it cannot be sent.
    fn body(&self, message: &Message) -> Result<String, String> {
        let Some(template) = &self.body_template else {
            let mut body = document::document(
                message,
                self.templates.style,
                &self.templates.title(message),
            );
            if let Some(text) = self.templates.custom_body(message) {
                body["text"] = Value::String(text);
            }
            return Ok(body.to_string());
        };
        let text = render::render_template(
            template,
            message,
            self.templates.style,
            &self.templates.syntax,
        )
        .map_err(|e| format!("body_template: {e}"))?;
        if self.content_type.to_ascii_lowercase().contains("json")
            && let Err(e) = serde_json::from_str::<Value>(&text)
        {
            return Err(format!("body_template did not produce JSON ({e})"));
        }
        Ok(text)
    }
}

impl Notifier for Webhook {
    async fn send(&self, message: &Message) -> Result<Delivered, SendError> {
        let mut answers = Vec::new();
        for part in self.parts(message) {
            let bytes = self.body(&part).map_err(SendError::Permanent)?;
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
                .post(self.url.expose(), &self.content_type, bytes, &headers)
                .await?;
            http::classify_status(status, &response_headers, &text)?;
            answers.push(format!("HTTP {status} {}", text.trim()));
        }
        Ok(Delivered::answered(&answers.join("; ")))
    }

    fn preview(&self, message: &Message) -> String {
        self.parts(message)
            .iter()
            .map(|part| match self.body(part) {
                Ok(body) if self.body_template.is_none() => serde_json::from_str::<Value>(&body)
                    .and_then(|v| serde_json::to_string_pretty(&v))
                    .unwrap_or(body),
                Ok(body) => body,
                Err(e) => format!("(not sendable: {e})"),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// `sha256=` + hex HMAC-SHA256 of the exact body bytes.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC accepts any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hex_hmac_of_the_body() {
        // echo -n '{"a":1}' | openssl dgst -sha256 -hmac secret
        assert_eq!(
            signature("secret", br#"{"a":1}"#),
            "sha256=aa9e2e3575f5d7098b6caccd790888c36d5fdb63342a73bada2d6a51747a8494"
        );
    }
}
