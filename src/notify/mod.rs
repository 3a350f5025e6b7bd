//! Delivering notifications: one file per channel type behind the `Notifier`
//! trait, dispatched through the closed `Channel` enum; `render` turns events
//! into words, `http` reads chat platforms' answers, `outbox` is the durable
//! delivery worker. Channels read their URL and secrets from the config at
//! send time and sign every request fresh.

pub mod console;
pub mod decide;
pub mod dingtalk;
pub mod email;
pub mod escape;
pub mod feishu;
pub mod http;
pub mod outbox;
pub mod render;
pub mod slack;
pub mod webhook;
pub mod wecom;

use std::future::Future;
use std::time::Duration;

use crate::config::{ChannelConfig, ChannelKind, FeishuFormat, Severity};
use crate::rules::{Event, EventKind, EventStatus, Notification};

/// What one message says: the notifications of one or more jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub notifications: Vec<Notification>,
}

impl Message {
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.notifications.iter().flat_map(|n| n.events.iter())
    }

    /// Firing if anything fires, else resolved.
    pub fn status(&self) -> EventStatus {
        if self.events().any(|e| e.status == EventStatus::Firing) {
            EventStatus::Firing
        } else {
            EventStatus::Resolved
        }
    }

    /// The worst severity among firing events (or among all, when all resolved).
    pub fn severity(&self) -> Severity {
        let status = self.status();
        self.events()
            .filter(|e| e.status == status)
            .map(|e| e.severity)
            .max()
            .unwrap_or(Severity::Info)
    }
}

/// The peer accepted the message; what it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// At most [`MAX_ANSWER_SHOWN`] characters, control characters made
    /// visible: it is logged and printed, and the peer is not trusted.
    pub answer: String,
}

/// How much of a peer's answer is kept for logs and `test-notify`.
pub const MAX_ANSWER_SHOWN: usize = 300;

impl Delivered {
    pub fn answered(text: &str) -> Self {
        Self {
            answer: escape::terminal(&crate::text::ellipsize(text.trim(), MAX_ANSWER_SHOWN)),
        }
    }
}

/// Why a send failed, and whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("{reason} (will retry)")]
    Retryable {
        reason: String,
        retry_after: Option<Duration>,
    },
    #[error("{0}")]
    Permanent(String),
}

impl SendError {
    pub fn retry(reason: impl Into<String>) -> Self {
        SendError::Retryable {
            reason: reason.into(),
            retry_after: None,
        }
    }
}

/// A channel that can send a message.
pub trait Notifier {
    fn send(&self, message: &Message) -> impl Future<Output = Result<Delivered, SendError>> + Send;
    /// Exactly what `send` would put on the wire, for `dtswatch render` (no signatures).
    fn preview(&self, message: &Message) -> String;
}

/// Every channel type, closed: `match` dispatch, no trait objects.
pub enum Channel {
    DingTalk(dingtalk::DingTalk),
    Slack(slack::Slack),
    Email(email::Email),
    Feishu(feishu::Feishu),
    WeCom(wecom::WeCom),
    Webhook(webhook::Webhook),
    Console(console::Console),
}

impl Channel {
    /// Builds the channel for a config entry (no I/O: clients connect on first send).
    pub fn new(config: &ChannelConfig) -> Result<Self, String> {
        let client = || http::Http::new(config.timeout, config.max_answer);
        let templates = |escape: render::Escape| Templates::of(config, escape);
        Ok(match &config.kind {
            ChannelKind::DingTalk(c) => Channel::DingTalk(dingtalk::DingTalk::new(
                c,
                templates(escape::chat_markdown),
                client()?,
            )),
            ChannelKind::Slack(c) => {
                Channel::Slack(slack::Slack::new(c, templates(escape::slack), client()?))
            }
            ChannelKind::Email(c) => Channel::Email(email::Email::new(
                c,
                &config.name,
                config.timeout,
                templates(escape::plain),
            )?),
            ChannelKind::Feishu(c) => Channel::Feishu(feishu::Feishu::new(
                c,
                templates(match c.format {
                    FeishuFormat::Card => escape::chat_markdown,
                    FeishuFormat::Post => escape::plain,
                }),
                client()?,
            )),
            ChannelKind::WeCom(c) => Channel::WeCom(wecom::WeCom::new(
                c,
                templates(escape::chat_markdown),
                client()?,
            )),
            // JSON encoding is the webhook document's escaping.
            ChannelKind::Webhook(c) => Channel::Webhook(webhook::Webhook::new(
                c,
                templates(render::verbatim),
                client()?,
            )),
            ChannelKind::Console(c) => {
                Channel::Console(console::Console::new(c, templates(escape::terminal)))
            }
        })
    }

    pub async fn send(&self, message: &Message) -> Result<Delivered, SendError> {
        match self {
            Channel::DingTalk(c) => c.send(message).await,
            Channel::Slack(c) => c.send(message).await,
            Channel::Email(c) => c.send(message).await,
            Channel::Feishu(c) => c.send(message).await,
            Channel::WeCom(c) => c.send(message).await,
            Channel::Webhook(c) => c.send(message).await,
            Channel::Console(c) => c.send(message).await,
        }
    }

    pub fn preview(&self, message: &Message) -> String {
        match self {
            Channel::DingTalk(c) => c.preview(message),
            Channel::Slack(c) => c.preview(message),
            Channel::Email(c) => c.preview(message),
            Channel::Feishu(c) => c.preview(message),
            Channel::WeCom(c) => c.preview(message),
            Channel::Webhook(c) => c.preview(message),
            Channel::Console(c) => c.preview(message),
        }
    }
}

/// A channel's `template` and `title_template`, which replace the built-in
/// body and title when set, and the escaper of the channel's syntax, which
/// every value they print goes through.
#[derive(Debug, Clone)]
pub struct Templates {
    body: Option<String>,
    title: Option<String>,
    escape: render::Escape,
}

impl Templates {
    pub fn of(config: &ChannelConfig, escape: render::Escape) -> Self {
        Self {
            body: config.template.clone(),
            title: config.title_template.clone(),
            escape,
        }
    }

    pub fn has_body(&self) -> bool {
        self.body.is_some()
    }

    /// The body template rendered, if the channel has one.
    pub fn custom_body(&self, message: &Message) -> Option<String> {
        self.body
            .as_deref()
            .map(|template| render::render_template(template, message, self.escape))
    }

    /// The body: the channel's template if it has one, else `builtin`.
    pub fn body(&self, message: &Message, builtin: impl FnOnce() -> String) -> String {
        self.custom_body(message).unwrap_or_else(builtin)
    }

    /// The title, escaped for the channel: its `title_template` if it has one,
    /// else the built-in title.
    pub fn title(&self, message: &Message) -> String {
        match &self.title {
            Some(template) => render::render_template(template, message, self.escape)
                .trim()
                .to_string(),
            None => render::title(message, self.escape),
        }
    }
}

/// A realistic sample message, for `test-notify` and golden tests.
pub fn sample_message(now: chrono::DateTime<chrono::Utc>) -> Message {
    use crate::dts::ErrorDetail;
    use crate::rules::{JobInfo, Reason, StepInfo, StepValues};
    let job = JobInfo {
        id: "dtsl1fecyc1e01".into(),
        name: "orders mysql -> polardb".into(),
        region: "cn-hangzhou".into(),
    };
    let event = Event {
        status: EventStatus::Firing,
        reason: Reason::FirstNotification,
        rule: "step failed".into(),
        kind: EventKind::Failed,
        severity: Severity::Critical,
        job: job.clone(),
        step: Some(StepInfo {
            path: "st03full/st03full_0001".into(),
            label: "全量迁移 (03) › order_items".into(),
            name: "order_items".into(),
            code: Some("03".into()),
            sub_step_id: Some("st03full_0001".into()),
            parent_name: Some("全量迁移".into()),
        }),
        summary: "state is Failed (sample alert from dtswatch test-notify)".into(),
        changes: vec![
            "State: running → Failed".into(),
            "ErrMsg: — → \"DTS-1020042 Execute sql error: Duplicate entry '1842' for key 'PRIMARY'\"".into(),
        ],
        current: Some(StepValues {
            state: "Failed".into(),
            progress: Some(30),
            latency_ms: None,
            err_msg: Some("DTS-1020042 Execute sql error: Duplicate entry '1842' for key 'PRIMARY'".into()),
            error_details: vec![ErrorDetail {
                code: Some("DTS-1020042".into()),
                help_url: Some("https://help.aliyun.com/document_detail/462133.html".into()),
            }],
            need_acceleration: Some(false),
        }),
        first_seen: now,
        at: now,
        runbook: None,
    };
    Message {
        notifications: vec![Notification {
            job,
            events: vec![event],
        }],
    }
}
