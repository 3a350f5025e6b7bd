//! WeCom (企业微信) group robot: a markdown message (≤ 4,096 bytes) with
//! coloured status and `[text](url)` links; the `key` in the URL is the
//! secret. Markdown cannot mention people by mobile, so for the alerts the
//! channel's `mention_*` name a short text message with `mentioned_list` /
//! `mentioned_mobile_list` follows it.
//! `errcode` 45009 is the 20-per-minute limit (retried); 93000 an invalid key.

use std::time::Duration;

use serde_json::{Value, json};

use super::render::truncate_bytes;
use super::syntax::{self, markdown_body};
use super::{Delivered, Message, Notifier, SendError, Templates, http};
use crate::config::{Secret, WeComConfig};
use crate::rules::EventStatus;

/// WeCom's limit for markdown content.
pub const MAX_MARKDOWN_BYTES: usize = 4_096;
/// WeCom's limit for text content.
const MAX_TEXT_BYTES: usize = 2_048;

pub struct WeCom {
    url: Secret,
    mentioned_mobiles: Vec<String>,
    mentioned_users: Vec<String>,
    templates: Templates,
    http: http::Http,
}

impl WeCom {
    pub fn new(config: &WeComConfig, templates: Templates, http: http::Http) -> Self {
        Self {
            url: config.url.clone(),
            mentioned_mobiles: config.mentioned_mobiles.clone(),
            mentioned_users: config.mentioned_users.clone(),
            templates,
            http,
        }
    }

    fn bodies(&self, message: &Message) -> Vec<Value> {
        let title = self.templates.title(message);
        let content = self.templates.body(message, || {
            builtin_markdown(&self.templates, message, &title)
        });
        let mut bodies = vec![build_markdown(&content)];
        if self.templates.mentions(message) {
            let plain_title = self.templates.title_in(message, &syntax::PLAIN);
            if let Some(mention) =
                build_mention(&plain_title, &self.mentioned_users, &self.mentioned_mobiles)
            {
                bodies.push(mention);
            }
        }
        bodies
    }
}

impl Notifier for WeCom {
    async fn send(&self, message: &Message) -> Result<Delivered, SendError> {
        let mut answers = Vec::new();
        for (i, body) in self.bodies(message).iter().enumerate() {
            let result = async {
                let (status, headers, text) =
                    self.http.post_json(self.url.expose(), body, &[]).await?;
                http::classify_status(status, &headers, &text)?;
                check_answer(&text)
            }
            .await;
            match (i, result) {
                (_, Ok(delivered)) => answers.push(delivered.answer),
                (0, Err(e)) => return Err(e),
                // The alert itself went out; a failed mention is logged, not retried (that would repeat the alert).
                (_, Err(e)) => {
                    tracing::warn!(error = %e, "WeCom mention message failed after the alert was delivered");
                    answers.push(format!("mention failed: {e}"));
                }
            }
        }
        Ok(Delivered {
            answer: answers.join("; "),
        })
    }

    fn preview(&self, message: &Message) -> String {
        self.bodies(message)
            .iter()
            .map(|b| serde_json::to_string_pretty(b).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn builtin_markdown(templates: &Templates, message: &Message, title: &str) -> String {
    let colour = match message.status() {
        EventStatus::Resolved => "info",
        EventStatus::Firing => "warning",
    };
    format!(
        "<font color=\"{colour}\">**{title}**</font>\n{}",
        markdown_body(&templates.view(message), &syntax::CHAT_MARKDOWN, "\n")
    )
}

pub fn build_markdown(content: &str) -> Value {
    json!({ "msgtype": "markdown", "markdown": { "content": truncate_bytes(content.trim_end(), MAX_MARKDOWN_BYTES) } })
}

/// The text message that carries the mentions, if any are configured.
pub fn build_mention(title: &str, users: &[String], mobiles: &[String]) -> Option<Value> {
    if users.is_empty() && mobiles.is_empty() {
        return None;
    }
    Some(json!({
        "msgtype": "text",
        "text": {
            "content": truncate_bytes(title, MAX_TEXT_BYTES),
            "mentioned_list": users,
            "mentioned_mobile_list": mobiles,
        }
    }))
}

pub fn check_answer(text: &str) -> Result<Delivered, SendError> {
    let Some((code, message)) = http::errcode("WeCom", text)? else {
        return Ok(Delivered::answered(text));
    };
    let reason = format!("WeCom errcode {code}: {message}");
    Err(match code {
        45009 => SendError::Retryable {
            reason,
            retry_after: Some(Duration::from_secs(60)),
        },
        -1 => SendError::retry(reason),
        _ => SendError::Permanent(reason),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_a_text_message_of_their_own() {
        let mention = build_mention("t", &["zhangsan".into()], &["13800000000".into()]).unwrap();
        assert_eq!(mention["text"]["mentioned_mobile_list"][0], "13800000000");
        assert!(build_mention("t", &[], &[]).is_none());
    }

    #[test]
    fn markdown_is_cut_to_4096_bytes() {
        let body = build_markdown(&"企".repeat(5_000));
        let content = body["markdown"]["content"].as_str().unwrap();
        assert!(content.len() <= MAX_MARKDOWN_BYTES);
        assert!(content.contains("truncated"));
    }

    #[test]
    fn answers() {
        assert!(check_answer(r#"{"errcode":0,"errmsg":"ok"}"#).is_ok());
        assert!(matches!(
            check_answer(r#"{"errcode":45009,"errmsg":"api freq out of limit"}"#),
            Err(SendError::Retryable { .. })
        ));
        assert!(matches!(
            check_answer(r#"{"errcode":93000,"errmsg":"invalid webhook url"}"#),
            Err(SendError::Permanent(_))
        ));
    }
}
