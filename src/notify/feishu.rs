//! Feishu / Lark custom bot: an interactive card (`lark_md` with
//! `[text](url)` links, a header coloured by status) or a rich-text post,
//! with `timestamp` and `sign` in the JSON body when the bot has a secret.
//! `at_user_ids` / `at_all` are @mentioned (`<at id=…>`) for the alerts the
//! channel's `mention_*` name. Unlike
//! DingTalk, the key is `timestamp + "\n" + secret` and the signed message is
//! empty. Answers are HTTP 200 with `code` (or the older `StatusCode`): 0 is
//! success, 11232 is rate limiting (retried), 19021 a bad signature, 9499 a
//! bad body.

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;

use super::render::truncate_bytes;
use super::syntax::{self, markdown_body};
use super::{Delivered, Message, Notifier, SendError, Templates, http};
use crate::config::{FeishuConfig, FeishuFormat, Secret};
use crate::rules::EventStatus;

/// Feishu rejects request bodies over 20 KB.
pub const MAX_BODY_BYTES: usize = 19_000;
/// The card header is one line; a longer title is cut (a template may make one).
const MAX_TITLE_CHARS: usize = 300;

pub struct Feishu {
    url: Secret,
    secret: Option<Secret>,
    format: FeishuFormat,
    at_user_ids: Vec<String>,
    at_all: bool,
    templates: Templates,
    http: http::Http,
}

impl Feishu {
    pub fn new(config: &FeishuConfig, templates: Templates, http: http::Http) -> Self {
        Self {
            url: config.url.clone(),
            secret: config.secret.clone(),
            format: config.format,
            at_user_ids: config.at_user_ids.clone(),
            at_all: config.at_all,
            templates,
            http,
        }
    }

    fn body(&self, message: &Message) -> Value {
        // The header is plain text in both formats.
        let title = self.templates.title_in(message, &syntax::PLAIN);
        let text = self.templates.body(message, || {
            markdown_body(&self.templates.view(message), &self.templates.syntax, "\n")
        });
        let mut mentions: Vec<String> = Vec::new();
        if self.templates.mentions(message) {
            mentions.extend(self.at_user_ids.iter().cloned());
            if self.at_all {
                mentions.push("all".into());
            }
        }
        build_body(
            self.format,
            &title,
            &text,
            &mentions,
            message.status(),
            message.severity(),
        )
    }
}

impl Notifier for Feishu {
    async fn send(&self, message: &Message) -> Result<Delivered, SendError> {
        let mut body = self.body(message);
        if let Some(secret) = &self.secret {
            let timestamp = chrono::Utc::now().timestamp();
            body["timestamp"] = Value::String(timestamp.to_string());
            body["sign"] = Value::String(sign(timestamp, secret.expose()));
        }
        let (status, headers, text) = self.http.post_json(self.url.expose(), &body, &[]).await?;
        // A 400 with a JSON code is still Feishu's answer (9499 bad request): read the code first.
        if let Ok(answer) = check_answer(&text) {
            return Ok(answer);
        }
        http::classify_status(status, &headers, &text)?;
        check_answer(&text)
    }

    fn preview(&self, message: &Message) -> String {
        serde_json::to_string_pretty(&self.body(message)).unwrap_or_default()
    }
}

/// `base64(HMAC-SHA256(key = timestamp + "\n" + secret, message = ""))`.
pub fn sign(timestamp_s: i64, secret: &str) -> String {
    let key = format!("{timestamp_s}\n{secret}");
    let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key.as_bytes())
        .expect("HMAC accepts any key length");
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn colour(status: EventStatus, severity: crate::config::Severity) -> &'static str {
    use crate::config::Severity;
    match (status, severity) {
        (EventStatus::Resolved, _) => "green",
        (_, Severity::Critical) => "red",
        (_, Severity::Warning) => "orange",
        (_, Severity::Info) => "blue",
    }
}

/// The card or post; `mentions` are open ids (or `all`) from the config.
pub fn build_body(
    format: FeishuFormat,
    title: &str,
    markdown: &str,
    mentions: &[String],
    status: EventStatus,
    severity: crate::config::Severity,
) -> Value {
    let title = &super::render::truncate_chars(title, MAX_TITLE_CHARS);
    let at_line: String = mentions
        .iter()
        .map(|id| format!("<at id={id}></at>"))
        .collect::<Vec<_>>()
        .join(" ");
    let skeleton = match format {
        FeishuFormat::Card => json!({
            "msg_type": "interactive",
            "card": {
                "config": { "wide_screen_mode": true },
                "header": { "title": { "tag": "plain_text", "content": title }, "template": colour(status, severity) },
                "elements": [{ "tag": "div", "text": { "tag": "lark_md", "content": "" } }],
            },
        }),
        FeishuFormat::Post => json!({
            "msg_type": "post",
            "content": { "post": { "zh_cn": { "title": title, "content": [] } } },
        }),
    };
    let room = MAX_BODY_BYTES.saturating_sub(skeleton.to_string().len() + at_line.len() + 256);
    let mut text = truncate_bytes(markdown.trim_end(), room);
    loop {
        let mut body = skeleton.clone();
        match format {
            FeishuFormat::Card => {
                let content = if at_line.is_empty() {
                    text.clone()
                } else {
                    format!("{text}\n{at_line}")
                };
                body["card"]["elements"][0]["text"]["content"] = Value::String(content)
            }
            FeishuFormat::Post => {
                let mut lines: Vec<Value> = text
                    .lines()
                    .map(|line| json!([{ "tag": "text", "text": line }]))
                    .collect();
                if !mentions.is_empty() {
                    lines.push(Value::Array(
                        mentions
                            .iter()
                            .map(|id| json!({ "tag": "at", "user_id": id }))
                            .collect(),
                    ));
                }
                body["content"]["post"]["zh_cn"]["content"] = Value::Array(lines);
            }
        }
        if body.to_string().len() <= MAX_BODY_BYTES || text.is_empty() {
            return body;
        }
        text = truncate_bytes(&text, text.len() * 9 / 10);
    }
}

#[derive(Deserialize)]
struct Answer {
    code: Option<i64>,
    msg: Option<String>,
    #[serde(rename = "StatusCode")]
    status_code: Option<i64>,
    #[serde(rename = "StatusMessage")]
    status_message: Option<String>,
}

/// Reads `{"code":0,"msg":"success"}` or the older `{"StatusCode":0,…}`.
pub fn check_answer(text: &str) -> Result<Delivered, SendError> {
    let answer: Answer = serde_json::from_str(text)
        .map_err(|_| SendError::retry(format!("unreadable Feishu answer: {text}")))?;
    let code = answer.code.or(answer.status_code);
    let message = answer.msg.or(answer.status_message).unwrap_or_default();
    match code {
        Some(0) => Ok(Delivered::answered(text)),
        Some(11232) => Err(SendError::Retryable {
            reason: format!("Feishu code 11232: {}", super::escape::log(&message)),
            retry_after: Some(std::time::Duration::from_secs(2)),
        }),
        Some(code) => Err(SendError::Permanent(format!(
            "Feishu code {code}: {message}"
        ))),
        None => Err(SendError::retry(format!(
            "Feishu answer without a code: {text}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_vectors() {
        assert_eq!(
            sign(1599360473, "this is secret"),
            "/eYKrXQBzTjUZJ3s6NX16VxGbTwmK7AEs8/FnvC1CSw="
        );
        assert_eq!(
            sign(1700000000, "qwertyuiopasdfgh"),
            "PiZukwOFr1F0en0EyAn90p5sOIRGIRkQLUn/XoAb0rM="
        );
    }

    #[test]
    fn answers() {
        assert!(check_answer(r#"{"code":0,"msg":"success","data":{}}"#).is_ok());
        assert!(check_answer(r#"{"Extra":null,"StatusCode":0,"StatusMessage":"success"}"#).is_ok());
        assert!(matches!(
            check_answer(r#"{"code":11232,"msg":"frequency limited"}"#),
            Err(SendError::Retryable { .. })
        ));
        assert_eq!(
            check_answer(r#"{"code":19021,"msg":"sign match fail or timestamp is not within one hour from current time"}"#),
            Err(SendError::Permanent("Feishu code 19021: sign match fail or timestamp is not within one hour from current time".into()))
        );
    }

    #[test]
    fn long_bodies_stay_under_the_limit() {
        let body = build_body(
            FeishuFormat::Card,
            "t",
            &"长".repeat(30_000),
            &[],
            EventStatus::Firing,
            crate::config::Severity::Warning,
        );
        assert!(body.to_string().len() <= MAX_BODY_BYTES);
        assert!(
            body["card"]["elements"][0]["text"]["content"]
                .as_str()
                .unwrap()
                .contains("truncated")
        );
    }
}
