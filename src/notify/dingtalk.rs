//! DingTalk custom group robot: a markdown message, signed with `timestamp` +
//! `sign` query parameters when the robot has a `SEC…` secret. DingTalk
//! answers HTTP 200 even on failure; `errcode` decides: 130101 / 410100 (sent
//! too fast) and -1 (busy) are retried, 310000 (security check), 300001 and
//! token errors are configuration problems reported as permanent.

use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::escape;
use super::render::{self, truncate_bytes};
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
            templates,
            http,
        }
    }

    fn body(&self, message: &Message) -> Value {
        build_body(
            &self.templates.title(message),
            &self.templates.body(message, || builtin_markdown(message)),
            &self.at_mobiles,
            &self.at_user_ids,
            self.at_all,
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

fn builtin_markdown(message: &Message) -> String {
    format!(
        "#### {}\n\n{}",
        render::title(message, escape::chat_markdown),
        render::markdown(message, "**", "\n\n", escape::chat_markdown)
    )
}

/// The markdown message. Mobiles to @ are also written into the text: DingTalk
/// only renders a mention that appears in the text.
pub fn build_body(
    title: &str,
    markdown: &str,
    at_mobiles: &[String],
    at_user_ids: &[String],
    at_all: bool,
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
    let mut room = MAX_BODY_BYTES.saturating_sub(body.to_string().len() + mentions.len() + 64);
    loop {
        let mut text = truncate_bytes(markdown.trim_end(), room);
        if !mentions.is_empty() {
            text.push_str("\n\n");
            text.push_str(&mentions);
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
    use crate::notify::sample_message;

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
        let body = build_body("t", "hello", &["13800000000".to_string()], &[], false);
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
        );
        let text = body["markdown"]["text"].as_str().unwrap();
        assert!(body.to_string().len() <= MAX_BODY_BYTES);
        assert!(text.contains("truncated"));
        assert!(
            text.ends_with("@13800000000"),
            "the mention survives truncation"
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
    fn golden_sample_body() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-30T10:00:30Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let body = build_body(
            &render::title(&sample_message(now), escape::chat_markdown),
            &builtin_markdown(&sample_message(now)),
            &[],
            &[],
            false,
        );
        assert_eq!(
            body["markdown"]["title"],
            "[FIRING critical] step failed · orders mysql -> polardb · 全量迁移 …"
        );
        assert_eq!(
            body["markdown"]["text"].as_str().unwrap(),
            "#### [FIRING critical] step failed · orders mysql -> polardb · 全量迁移 (03) › order_items\n\n\
             **🔴 FIRING · critical · step failed**\n\n\
             **Job:** orders mysql -> polardb (dtsl1fecyc1e01, cn-hangzhou)\n\n\
             **Step:** 全量迁移 (03) › order_items (sub-step st03full_0001)\n\n\
             **What:** state is Failed (sample alert from dtswatch test-notify)\n\n\
             **Changed:** State: running → Failed; ErrMsg: — → \"DTS-1020042 Execute sql error: Duplicate entry '1842' for key 'PRIMARY'\"\n\n\
             **Now:** state Failed · progress 30% · latency — · NeedAcceleration no\n\n\
             **ErrMsg:** DTS-1020042 Execute sql error: Duplicate entry '1842' for key 'PRIMARY'\n\n\
             **ErrorDetails:** DTS-1020042 (https://help.aliyun.com/document_detail/462133.html)\n\n\
             **First seen:** 2026-11-30 10:00:30 UTC\n\n\
             **At:** 2026-11-30 10:00:30 UTC"
        );
    }
}
