//! Delivering notifications: one file per channel type behind the `Notifier`
//! trait, dispatched through the closed `Channel` enum; `render` turns events
//! into words, `http` reads chat platforms' answers, `outbox` is the durable
//! delivery worker. Channels read their URL and secrets from the config at
//! send time and sign every request fresh.

pub mod alertmanager;
pub mod console;
pub mod decide;
pub mod dingtalk;
pub mod document;
pub mod email;
pub mod escape;
pub mod feishu;
pub mod http;
pub mod outbox;
pub mod render;
mod sample;
pub mod slack;
pub mod syntax;
pub mod view;
pub mod webhook;
pub mod wecom;

use std::future::Future;
use std::time::Duration;

use crate::config::{ChannelConfig, ChannelKind, FeishuFormat, MentionPolicy, Severity};
use crate::rules::{Event, EventStatus, Notification};
pub use sample::sample_message;
use syntax::Syntax;
use view::{MessageView, Style};

/// What one message says: the notifications of one or more jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub notifications: Vec<Notification>,
    /// A sample from `test-notify`: titled `[TEST]`, nothing to silence.
    pub test: bool,
}

impl Message {
    pub fn new(notifications: Vec<Notification>) -> Self {
        Self {
            notifications,
            test: false,
        }
    }

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

    /// Whether the channel's people are @mentioned: some alert's status and
    /// severity are ones the channel's `mention_*` settings name.
    pub fn mentions(&self, policy: &MentionPolicy) -> bool {
        self.events().any(|e| {
            let status = match e.status {
                EventStatus::Firing => policy.firing,
                EventStatus::Resolved => policy.resolved,
            };
            status && policy.severities.contains(&e.severity)
        })
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
    Alertmanager(alertmanager::Alertmanager),
}

impl Channel {
    /// Builds the channel for a config entry (no I/O: clients connect on first send).
    pub fn new(config: &ChannelConfig) -> Result<Self, String> {
        let client = || http::Http::new(config.timeout, config.max_answer);
        let templates = |syntax: Syntax| Templates::of(config, syntax);
        Ok(match &config.kind {
            ChannelKind::DingTalk(c) => Channel::DingTalk(dingtalk::DingTalk::new(
                c,
                templates(syntax::CHAT_MARKDOWN),
                client()?,
            )),
            ChannelKind::Slack(c) => {
                Channel::Slack(slack::Slack::new(c, templates(syntax::SLACK), client()?))
            }
            ChannelKind::Email(c) => Channel::Email(email::Email::new(
                c,
                &config.name,
                config.timeout,
                templates(syntax::PLAIN),
            )?),
            ChannelKind::Feishu(c) => Channel::Feishu(feishu::Feishu::new(
                c,
                templates(match c.format {
                    FeishuFormat::Card => syntax::CHAT_MARKDOWN,
                    FeishuFormat::Post => syntax::PLAIN,
                }),
                client()?,
            )),
            ChannelKind::WeCom(c) => Channel::WeCom(wecom::WeCom::new(
                c,
                templates(syntax::CHAT_MARKDOWN),
                client()?,
            )),
            // The webhook escapes its own way: JSON encoding, or by content type.
            ChannelKind::Webhook(c) => Channel::Webhook(webhook::Webhook::new(
                c,
                templates(webhook::template_syntax(c)),
                client()?,
            )),
            ChannelKind::Console(c) => {
                Channel::Console(console::Console::new(c, templates(syntax::TERMINAL)))
            }
            ChannelKind::Alertmanager(c) => Channel::Alertmanager(alertmanager::Alertmanager::new(
                c,
                templates(syntax::PLAIN).style,
                http::Http::with_tls(
                    config.timeout,
                    config.max_answer,
                    c.tls_ca_file.as_deref(),
                    c.tls_insecure_skip_verify,
                )?,
            )),
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
            Channel::Alertmanager(c) => c.send(message).await,
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
            Channel::Alertmanager(c) => c.preview(message),
        }
    }
}

/// How a channel writes its messages: its language and zone, its syntax,
/// and its `template` and `title_template`, which replace the built-in body
/// and title when set (every value they print escaped for the syntax).
#[derive(Clone)]
pub struct Templates {
    body: Option<String>,
    title: Option<String>,
    pub syntax: Syntax,
    pub style: Style,
    /// Who is @mentioned for which alerts.
    pub mention: MentionPolicy,
}

impl Templates {
    pub fn of(config: &ChannelConfig, syntax: Syntax) -> Self {
        Self {
            body: config.template.clone(),
            title: config.title_template.clone(),
            syntax,
            style: Style {
                locale: config.locale,
                zone: config.timezone,
            },
            mention: config.mention.clone(),
        }
    }

    pub fn has_body(&self) -> bool {
        self.body.is_some()
    }

    pub fn view(&self, message: &Message) -> MessageView {
        view::view(message, self.style)
    }

    /// The body template rendered, if the channel has one; a template that
    /// fails on this message says so after the built-in title.
    pub fn custom_body(&self, message: &Message) -> Option<String> {
        let template = self.body.as_deref()?;
        Some(
            render::render_template(template, message, self.style, &self.syntax)
                .unwrap_or_else(|e| format!("{}\n({e})", self.title(message))),
        )
    }

    /// The body: the channel's template if it has one, else `builtin`.
    pub fn body(&self, message: &Message, builtin: impl FnOnce() -> String) -> String {
        self.custom_body(message).unwrap_or_else(builtin)
    }

    /// The title in the channel's syntax: its `title_template` if it has
    /// one, else the built-in title.
    pub fn title(&self, message: &Message) -> String {
        self.title_in(message, &self.syntax)
    }

    /// The title in `syntax` (a plain-text header beside a markdown body).
    pub fn title_in(&self, message: &Message, syntax: &Syntax) -> String {
        let custom = self
            .title
            .as_deref()
            .and_then(|t| render::render_template(t, message, self.style, syntax).ok())
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        custom.unwrap_or_else(|| syntax.write(&self.view(message).title))
    }

    /// Whether this message @mentions the channel's people.
    pub fn mentions(&self, message: &Message) -> bool {
        message.mentions(&self.mention)
    }
}
