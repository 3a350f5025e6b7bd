//! Slack incoming webhook: Block Kit (a header, a section per event) with a
//! plain `text` fallback for notifications. Slack answers `ok`; on excess it
//! answers 429 with `Retry-After`, which is honoured; `invalid_payload`,
//! `no_service`, `channel_not_found` and the like need the webhook fixed.

use serde_json::{Value, json};

use super::escape;
use super::render::{self, event_view, mark, truncate_chars};
use super::{Delivered, Message, Notifier, SendError, Templates, http};
use crate::config::{Secret, SlackConfig};

/// Slack's limit for a section's text.
pub const MAX_SECTION_CHARS: usize = 3_000;
/// Slack's limit for blocks in one message.
const MAX_BLOCKS: usize = 50;
/// The fallback text is cut at 40,000 by Slack; keep it short, it is a preview.
const MAX_TEXT_CHARS: usize = 3_000;

pub struct Slack {
    url: Secret,
    templates: Templates,
    http: http::Http,
}

impl Slack {
    pub fn new(config: &SlackConfig, templates: Templates, http: http::Http) -> Self {
        Self {
            url: config.url.clone(),
            templates,
            http,
        }
    }

    fn body(&self, message: &Message) -> Value {
        let title = self.templates.title(message);
        match self.templates.custom_body(message) {
            Some(text) => {
                json!({
                    "text": truncate_chars(&title, MAX_TEXT_CHARS),
                    "blocks": [section(&text)],
                })
            }
            None => build_body(&title, message),
        }
    }
}

impl Notifier for Slack {
    async fn send(&self, message: &Message) -> Result<Delivered, SendError> {
        let (status, headers, text) = self
            .http
            .post_json(self.url.expose(), &self.body(message), &[])
            .await?;
        http::classify_status(status, &headers, &text)?;
        if text.trim() == "ok" {
            Ok(Delivered::answered(&text))
        } else {
            Err(SendError::Permanent(format!(
                "Slack answered `{}` instead of `ok`",
                text.trim()
            )))
        }
    }

    fn preview(&self, message: &Message) -> String {
        serde_json::to_string_pretty(&self.body(message)).unwrap_or_default()
    }
}

fn section(text: &str) -> Value {
    json!({ "type": "section", "text": { "type": "mrkdwn", "text": truncate_chars(text, MAX_SECTION_CHARS) } })
}

/// The mrkdwn-escaped title as plain text, for the header block: plain_text
/// is not parsed for links or mentions, and would show the entities.
fn unescape(title: &str) -> String {
    title
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The message; `title` is already escaped for mrkdwn.
pub fn build_body(title: &str, message: &Message) -> Value {
    let mut blocks = vec![json!({
        "type": "header",
        "text": { "type": "plain_text", "text": truncate_chars(&unescape(title), 150), "emoji": true }
    })];
    let events: Vec<_> = message.events().collect();
    if events.len() > render::DETAILED_EVENTS {
        // One line per event, as many sections as the lines need.
        let mut chunk = String::new();
        for event in events {
            let line = truncate_chars(
                &format!(
                    "{} {}",
                    mark(event.status, event.severity),
                    escape::slack(&render::event_line(event))
                ),
                500,
            );
            if chunk.chars().count() + line.chars().count() + 1 > MAX_SECTION_CHARS {
                blocks.push(section(&chunk));
                chunk.clear();
            }
            chunk.push_str(&line);
            chunk.push('\n');
        }
        if !chunk.is_empty() {
            blocks.push(section(&chunk));
        }
    } else {
        for event in events {
            let view = event_view(event);
            let mut text = format!(
                "*{} {}*\n",
                mark(view.status, view.severity),
                escape::slack(&view.headline)
            );
            for (label, value) in &view.fields {
                text.push_str(&format!("*{label}:* {}\n", escape::slack(value)));
            }
            blocks.push(section(&text));
            blocks.push(json!({ "type": "divider" }));
        }
        blocks.pop();
    }
    blocks.truncate(MAX_BLOCKS);
    json!({ "text": truncate_chars(title, MAX_TEXT_CHARS), "blocks": blocks })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::sample_message;

    #[test]
    fn golden_sample_body() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-30T10:00:30Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let message = sample_message(now);
        let body = build_body(&render::title(&message, escape::slack), &message);
        assert_eq!(
            body["text"],
            "[FIRING critical] step failed · orders mysql -&gt; polardb · 全量迁移 (03) › order_items",
            "the notification text is mrkdwn: escaped like the sections"
        );
        assert_eq!(body["blocks"][0]["type"], "header");
        assert_eq!(
            body["blocks"][0]["text"]["text"],
            "[FIRING critical] step failed · orders mysql -> polardb · 全量迁移 (03) › order_items"
        );
        assert_eq!(
            body["blocks"][1]["text"]["text"].as_str().unwrap(),
            "*🔴 FIRING · critical · step failed*\n\
             *Job:* orders mysql -&gt; polardb (dtsl1fecyc1e01, cn-hangzhou)\n\
             *Step:* 全量迁移 (03) › order_items (sub-step st03full_0001)\n\
             *What:* state is Failed (sample alert from dtswatch test-notify)\n\
             *Changed:* State: running → Failed; ErrMsg: — → \"DTS-1020042 Execute sql error: Duplicate entry '1842' for key 'PRIMARY'\"\n\
             *Now:* state Failed · progress 30% · latency — · NeedAcceleration no\n\
             *ErrMsg:* DTS-1020042 Execute sql error: Duplicate entry '1842' for key 'PRIMARY'\n\
             *ErrorDetails:* DTS-1020042 (https://help.aliyun.com/document_detail/462133.html)\n\
             *First seen:* 2026-11-30 10:00:30 UTC\n\
             *At:* 2026-11-30 10:00:30 UTC\n"
        );
    }

    #[test]
    fn sections_stay_within_limits() {
        let now = chrono::Utc::now();
        let mut message = sample_message(now);
        let long = "x".repeat(10_000);
        message.notifications[0].events[0].summary = long;
        let body = build_body("t", &message);
        for block in body["blocks"].as_array().unwrap() {
            if let Some(text) = block["text"]["text"].as_str() {
                assert!(text.chars().count() <= MAX_SECTION_CHARS);
            }
        }
        assert!(
            body["blocks"][1]["text"]["text"]
                .as_str()
                .unwrap()
                .contains("truncated")
        );
    }
}
