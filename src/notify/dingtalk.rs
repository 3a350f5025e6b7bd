//! DingTalk custom group robot: a markdown message, signed with `timestamp` +
//! `sign` query parameters when the robot has a `SEC…` secret. A robot with
//! keyword security rejects a message without its keyword, so `keyword` is
//! written into every message (alerts, test-notify, the watchdog). People
//! are @mentioned only for the alerts the channel's `mention_*` name. DingTalk
//! answers HTTP 200 even on failure; `errcode` decides: 130101 / 410100 (sent
//! too fast) and -1 (busy) are retried, 310000 (security check), 300001 and
//! token errors are configuration problems reported as permanent.

use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::render::truncate_bytes;
use super::syntax::{self, markdown_body};
use super::{Delivered, Message, Notifier, SendError, Templates, http};
use crate::config::{DingTalkConfig, Secret};

/// DingTalk rejects bodies over 20,000 bytes; stay clear of it.
pub const MAX_BODY_BYTES: usize = 19_000;
/// Titles show in the notification preview; DingTalk cuts them around 64 characters.
const MAX_TITLE_CHARS: usize = 64;

pub struct DingTalk {
    url: Secret,
    secret: Option<Secret>,
    at_mobiles: Vec<String>,
    at_user_ids: Vec<String>,
    at_all: bool,
    keyword: Option<String>,
    templates: Templates,
    http: http::Http,
}

impl DingTalk {
    pub fn new(config: &DingTalkConfig, templates: Templates, http: http::Http) -> Self {
        Self {
            url: config.url.clone(),
            secret: config.secret.clone(),
            at_mobiles: config.at_mobiles.clone(),
            at_user_ids: config.at_user_ids.clone(),
            at_all: config.at_all,
            keyword: config.keyword.clone(),
            templates,
            http,
        }
    }

    fn body(&self, message: &Message) -> Value {
        let mentions = self.templates.mentions(message);
        let none: &[String] = &[];
        build_body(
            &self.templates.title(message),
            &self
                .templates
                .body(message, || builtin_markdown(&self.templates, message)),
            if mentions { &self.at_mobiles } else { none },
            if mentions { &self.at_user_ids } else { none },
            mentions && self.at_all,
            self.keyword.as_deref(),
        )
    }
}

impl Notifier for DingTalk {
    async fn send(&self, message: &Message) -> Result<Delivered, SendError> {
        let url = match &self.secret {
            Some(secret) => signed_url(
                self.url.expose(),
                secret.expose(),
                chrono::Utc::now().timestamp_millis(),
            ),
            None => self.url.expose().to_string(),
        };
        let (status, headers, text) = self.http.post_json(&url, &self.body(message), &[]).await?;
        http::classify_status(status, &headers, &text)?;
        check_answer(&text)
    }

    fn preview(&self, message: &Message) -> String {
        serde_json::to_string_pretty(&self.body(message)).unwrap_or_default()
    }
}

/// `urlencode(base64(HMAC-SHA256(key = secret, timestamp + "\n" + secret)))`.
pub fn sign(timestamp_ms: i64, secret: &str) -> String {
    let string_to_sign = format!("{timestamp_ms}\n{secret}");
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC accepts any key length");
    mac.update(string_to_sign.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    percent_encoding::utf8_percent_encode(&signature, percent_encoding::NON_ALPHANUMERIC)
        .to_string()
}

/// The webhook URL with `timestamp` and `sign` appended.
pub fn signed_url(url: &str, secret: &str, timestamp_ms: i64) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!(
        "{url}{separator}timestamp={timestamp_ms}&sign={}",
        sign(timestamp_ms, secret)
    )
}

fn builtin_markdown(templates: &Templates, message: &Message) -> String {
    let view = templates.view(message);
    let syntax = syntax::CHAT_MARKDOWN;
    format!(
        "#### {}\n\n{}",
        syntax.write(&view.heading()),
        markdown_body(&view, &syntax, "\n\n")
    )
}

/// The markdown message. Mobiles to @ are also written into the text: DingTalk
/// only renders a mention that appears in the text. The keyword, when the
/// text lacks it, ends the text: it must survive truncation like the mentions.
pub fn build_body(
    title: &str,
    markdown: &str,
    at_mobiles: &[String],
    at_user_ids: &[String],
    at_all: bool,
    keyword: Option<&str>,
) -> Value {
    let mut mentions = String::new();
    for mobile in at_mobiles {
        mentions.push_str(&format!(" @{mobile}"));
    }
    for user in at_user_ids {
        mentions.push_str(&format!(" @{user}"));
    }
    let mentions = mentions.trim().to_string();
    let title = crate::text::ellipsize(title, MAX_TITLE_CHARS);
    let mut body = json!({
        "msgtype": "markdown",
        "markdown": { "title": title, "text": "" },
        "at": { "atMobiles": at_mobiles, "atUserIds": at_user_ids, "isAtAll": at_all },
    });
    let keyword_len = keyword.map_or(0, str::len);
    let mut room =
        MAX_BODY_BYTES.saturating_sub(body.to_string().len() + mentions.len() + keyword_len + 64);
    loop {
        let mut text = truncate_bytes(markdown.trim_end(), room);
        let mut tail: Vec<&str> = Vec::new();
        if let Some(keyword) = keyword.filter(|k| !text.contains(k)) {
            tail.push(keyword);
        }
        if !mentions.is_empty() {
            tail.push(&mentions);
        }
        if !tail.is_empty() {
            text.push_str("\n\n");
            text.push_str(&tail.join(" "));
        }
        body["markdown"]["text"] = Value::String(text);
        // JSON escaping can grow the text (quotes, control characters): cut more if needed.
        if body.to_string().len() <= MAX_BODY_BYTES || room == 0 {
            return body;
        }
        room = room * 9 / 10;
    }
}

/// Reads DingTalk's `{"errcode":…,"errmsg":…}`.
pub fn check_answer(text: &str) -> Result<Delivered, SendError> {
    let Some((code, message)) = http::errcode("DingTalk", text)? else {
        return Ok(Delivered::answered(text));
    };
    let reason = format!("DingTalk errcode {code}: {message}");
    let too_fast = SendError::Retryable {
        reason: reason.clone(),
        retry_after: Some(Duration::from_secs(60)),
    };
    Err(match code {
        130101 | 410100 => too_fast,
        300001 if message.contains("frequency") || message.contains("too fast") => too_fast,
        -1 => SendError::retry(reason),
        _ => SendError::Permanent(reason),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_vectors() {
        assert_eq!(
            sign(1577262236757, "this is secret"),
            "hmPWwU%2B7lVdm3ZZz0r9tSfx0L4Q26jWOZr9%2BGs6EZQM%3D"
        );
        assert_eq!(
            sign(
                1700000000000,
                "SEC1a2b3c4d5e6f7g8h9i0jklmnopqrstuvwxyz0123456789abcdef0123456789ab"
            ),
            "AoGgqo8VdPOn70d7FslXPwKaiBRwnN9%2B8IStKBXf49o%3D"
        );
        assert_eq!(
            signed_url(
                "https://oapi.dingtalk.com/robot/send?access_token=ACCESS_TOKEN",
                "this is secret",
                1577262236757
            ),
            "https://oapi.dingtalk.com/robot/send?access_token=ACCESS_TOKEN&timestamp=1577262236757&sign=hmPWwU%2B7lVdm3ZZz0r9tSfx0L4Q26jWOZr9%2BGs6EZQM%3D"
        );
    }

    #[test]
    fn mentions_are_listed_and_written_into_the_text() {
        let body = build_body("t", "hello", &["13800000000".to_string()], &[], false, None);
        assert_eq!(body["at"]["atMobiles"][0], "13800000000");
        assert!(
            body["markdown"]["text"]
                .as_str()
                .unwrap()
                .ends_with("@13800000000")
        );
    }

    #[test]
    fn long_bodies_stay_under_the_limit_with_a_marker() {
        let body = build_body(
            "t",
            &"预\"".repeat(20_000),
            &["13800000000".to_string()],
            &[],
            false,
            Some("告警"),
        );
        let text = body["markdown"]["text"].as_str().unwrap();
        assert!(body.to_string().len() <= MAX_BODY_BYTES);
        assert!(text.contains("truncated"));
        assert!(
            text.ends_with("告警 @13800000000"),
            "the keyword and the mention survive truncation: {}",
            &text[text.len() - 40..]
        );
    }

    #[test]
    fn answers() {
        assert!(check_answer(r#"{"errcode":0,"errmsg":"ok"}"#).is_ok());
        assert!(matches!(
            check_answer(
                r#"{"errcode":130101,"errmsg":"send too fast, exceed 20 times per minute"}"#
            ),
            Err(SendError::Retryable {
                retry_after: Some(_),
                ..
            })
        ));
        assert_eq!(
            check_answer(r#"{"errcode":310000,"errmsg":"sign not match"}"#),
            Err(SendError::Permanent(
                "DingTalk errcode 310000: sign not match".into()
            ))
        );
        assert!(matches!(
            check_answer(r#"{"errcode":300001,"errmsg":"token is not exist"}"#),
            Err(SendError::Permanent(_))
        ));
        assert!(matches!(
            check_answer(r#"{"errcode":-1,"errmsg":"系统繁忙"}"#),
            Err(SendError::Retryable { .. })
        ));
    }

    #[test]
    fn the_keyword_is_in_every_text_once() {
        let without = build_body("t", "an alert", &[], &[], false, Some("告警"));
        assert_eq!(without["markdown"]["text"], "an alert\n\n告警");
        let with = build_body("t", "告警: an alert", &[], &[], false, Some("告警"));
        assert_eq!(with["markdown"]["text"], "告警: an alert");
    }
}
