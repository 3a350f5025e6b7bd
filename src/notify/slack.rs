//! Slack incoming webhook: Block Kit (a header, a section per alert, a
//! context footer) with a plain `text` fallback for notifications. Links
//! are `<url|text>`; `mentions` (`<!here>`, `<@U…>`, `<!subteam^S…>`) are
//! written into the fallback and the first section for the alerts the
//! channel's `mention_*` name. Slack answers `ok`; on excess it answers 429
//! with `Retry-After`, which is honoured; `invalid_payload`, `no_service`,
//! `channel_not_found` and the like need the webhook fixed.

use serde_json::{Value, json};

use super::render::truncate_chars;
use super::syntax::{self, Syntax};
use super::view::{MessageView, mark};
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
    mentions: Vec<String>,
    templates: Templates,
    http: http::Http,
}

impl Slack {
    pub fn new(config: &SlackConfig, templates: Templates, http: http::Http) -> Self {
        Self {
            url: config.url.clone(),
            mentions: config.mentions.clone(),
            templates,
            http,
        }
    }

    fn body(&self, message: &Message) -> Value {
        let title = self.templates.title(message);
        let header = self.templates.title_in(message, &syntax::PLAIN);
        let mentions = if self.templates.mentions(message) {
            self.mentions.join(" ")
        } else {
            String::new()
        };
        match self.templates.custom_body(message) {
            Some(text) => {
                json!({
                    "text": truncate_chars(&with_mentions(&title, &mentions), MAX_TEXT_CHARS),
                    "blocks": [section(&with_mentions(&text, &mentions))],
                })
            }
            None => build_body(&title, &header, &self.templates.view(message), &mentions),
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

/// `text` followed by the mentions (configured, never from data).
fn with_mentions(text: &str, mentions: &str) -> String {
    if mentions.is_empty() {
        text.to_string()
    } else {
        format!("{mentions} {text}")
    }
}

/// The message: `title` escaped for mrkdwn (the notification text),
/// `header` as plain text (the header block shows entities literally).
pub fn build_body(title: &str, header: &str, view: &MessageView, mentions: &str) -> Value {
    let syntax: Syntax = syntax::SLACK;
    let mut blocks = vec![json!({
        "type": "header",
        "text": { "type": "plain_text", "text": truncate_chars(header, 150), "emoji": true }
    })];
    let mut sections = Vec::new();
    if view.is_list() {
        // One line per alert, as many sections as the lines need.
        let mut chunk = String::new();
        for event in &view.events {
            let line = truncate_chars(
                &format!(
                    "{} {}",
                    mark(event.status, event.severity),
                    syntax.write(&event.headline)
                ),
                500,
            );
            if chunk.chars().count() + line.chars().count() + 1 > MAX_SECTION_CHARS {
                sections.push(std::mem::take(&mut chunk));
            }
            chunk.push_str(&line);
            chunk.push('\n');
        }
        if !chunk.is_empty() {
            sections.push(chunk);
        }
    } else {
        for event in &view.events {
            let mut text = String::new();
            if !view.is_single() {
                let headline = format!(
                    "{} {}",
                    mark(event.status, event.severity),
                    syntax.write(&event.headline)
                );
                text.push_str(&format!("{}\n", syntax.bold(&headline)));
            }
            for field in &event.fields {
                text.push_str(&syntax.field(field, view.colon()));
                text.push('\n');
            }
            sections.push(text);
        }
    }
    if let Some(first) = sections.first_mut() {
        *first = with_mentions(first, mentions);
    }
    for (i, text) in sections.iter().enumerate() {
        if i > 0 && !view.is_list() {
            blocks.push(json!({ "type": "divider" }));
        }
        blocks.push(section(text));
    }
    blocks.truncate(MAX_BLOCKS - 1);
    blocks.push(json!({
        "type": "context",
        "elements": [{ "type": "mrkdwn", "text": truncate_chars(&syntax.write(&view.footer), MAX_SECTION_CHARS) }]
    }));
    json!({ "text": truncate_chars(&with_mentions(title, mentions), MAX_TEXT_CHARS), "blocks": blocks })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Locale;
    use crate::notify::sample_message;
    use crate::notify::view::{Style, view};

    #[test]
    fn sections_stay_within_limits() {
        let mut message = sample_message(chrono::Utc::now(), Locale::En);
        let long = "x".repeat(10_000);
        message.notifications[0].events[0]
            .current
            .as_mut()
            .unwrap()
            .err_msg = Some(long);
        let view = view(&message, Style::default());
        let body = build_body("t", "t", &view, "");
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
