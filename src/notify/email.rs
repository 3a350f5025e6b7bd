//! Email through SMTP with lettre: implicit TLS (465), STARTTLS (587, and
//! refusing to send credentials without it) or, to a loopback relay only, no
//! TLS. A `multipart/alternative` message (text, then HTML with inline CSS and
//! every value escaped), a subject that says firing/resolved, severity, rule,
//! job and step, and `Auto-Submitted: auto-generated` against auto-replies.
//! SMTP 4xx answers and connection failures are retried; 5xx are permanent.

use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::escape::html as html_escape;
use super::render::{self, event_view, mark};
use super::{Delivered, Message, Notifier, SendError, Templates};
use crate::config::{EmailConfig, TlsMode};

pub struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    templates: Templates,
}

/// RFC 3834: marks the message as sent by a machine, so vacation responders stay quiet.
#[derive(Clone)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".to_string())
    }
}

impl Email {
    /// `name` and `timeout` are the channel's, for messages and the SMTP session.
    pub fn new(
        config: &EmailConfig,
        name: &str,
        timeout: std::time::Duration,
        templates: Templates,
    ) -> Result<Self, String> {
        let owner = format!("channel `{name}`");
        let tls_parameters = || -> Result<TlsParameters, String> {
            let mut builder = TlsParameters::builder(config.host.clone());
            if let Some(path) = &config.ca_file {
                let pem = std::fs::read(path)
                    .map_err(|e| format!("{owner}: reading ca_file {}: {e}", path.display()))?;
                let certificate = Certificate::from_pem(&pem)
                    .map_err(|e| format!("{owner}: ca_file {}: {e}", path.display()))?;
                builder = builder.add_root_certificate(certificate);
            }
            builder
                .build_rustls()
                .map_err(|e| format!("{owner}: TLS setup: {e}"))
        };
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.host.as_str())
                .port(config.port);
        builder = match config.tls {
            TlsMode::Implicit => builder.tls(Tls::Wrapper(tls_parameters()?)),
            TlsMode::StartTls => builder.tls(Tls::Required(tls_parameters()?)),
            TlsMode::None => builder.tls(Tls::None),
        };
        if let (Some(user), Some(pass)) = (&config.username, &config.password) {
            builder =
                builder.credentials(Credentials::new(user.clone(), pass.expose().to_string()));
        }
        Ok(Self {
            transport: builder.timeout(Some(timeout)).build(),
            from: config.from.clone(),
            to: config.to.clone(),
            templates,
        })
    }

    fn parts(&self, message: &Message) -> (String, String, String) {
        let subject = self.templates.title(message);
        let text = self.templates.body(message, || render::plain_text(message));
        let html = if self.templates.has_body() {
            format!(
                "<pre style=\"font-family:monospace\">{}</pre>",
                html_escape(&text)
            )
        } else {
            build_html(message)
        };
        (subject, text, html)
    }
}

impl Notifier for Email {
    async fn send(&self, message: &Message) -> Result<Delivered, SendError> {
        let (subject, text, html) = self.parts(message);
        let mut builder = lettre::Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .message_id(None)
            .header(AutoSubmitted)
            .user_agent(concat!("dtswatch/", env!("CARGO_PKG_VERSION")).to_string());
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        let email = builder
            .multipart(MultiPart::alternative_plain_html(text, html))
            .map_err(|e| SendError::Permanent(format!("building the email: {e}")))?;
        match self.transport.send(email).await {
            Ok(response) => Ok(Delivered {
                answer: format!(
                    "{} {}",
                    response.code(),
                    response.message().collect::<Vec<_>>().join(" ")
                ),
            }),
            Err(e) if e.is_permanent() => Err(SendError::Permanent(format!("SMTP: {e}"))),
            Err(e) => Err(SendError::retry(format!("SMTP: {e}"))),
        }
    }

    fn preview(&self, message: &Message) -> String {
        let (subject, text, html) = self.parts(message);
        let to: Vec<String> = self.to.iter().map(|m| m.to_string()).collect();
        format!(
            "From: {}\nTo: {}\nSubject: {subject}\n\n--- text/plain ---\n{text}\n--- text/html ---\n{html}\n",
            self.from,
            to.join(", ")
        )
    }
}

/// The HTML part: inline CSS, no external resources, every value escaped.
pub fn build_html(message: &Message) -> String {
    let mut out = String::from(
        "<div style=\"font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;font-size:14px\">",
    );
    out.push_str(&format!(
        "<h3 style=\"margin:0 0 12px\">{}</h3>",
        render::title(message, html_escape)
    ));
    let events: Vec<_> = message.events().collect();
    if events.len() > render::DETAILED_EVENTS {
        out.push_str("<ul>");
        for event in events {
            out.push_str(&format!(
                "<li>{} {}</li>",
                mark(event.status, event.severity),
                html_escape(&render::event_line(event))
            ));
        }
        out.push_str("</ul>");
    } else {
        for event in events {
            let view = event_view(event);
            out.push_str(&format!(
                "<p style=\"margin:16px 0 4px;font-weight:bold\">{} {}</p><table style=\"border-collapse:collapse\">",
                mark(view.status, view.severity),
                html_escape(&view.headline)
            ));
            for (label, value) in &view.fields {
                out.push_str(&format!(
                    "<tr><td style=\"padding:2px 12px 2px 0;color:#666;vertical-align:top\">{}</td><td style=\"padding:2px 0\">{}</td></tr>",
                    html_escape(label),
                    html_escape(value)
                ));
            }
            out.push_str("</table>");
        }
    }
    out.push_str("<p style=\"color:#999;font-size:12px;margin-top:16px\">Sent by dtswatch. Silence with <code>dtswatch silence add</code>.</p></div>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::sample_message;

    #[test]
    fn html_escapes_every_value() {
        let now = chrono::Utc::now();
        let mut message = sample_message(now);
        message.notifications[0].events[0].summary = "<script>alert(1)</script> & more".into();
        let html = build_html(&message);
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; more"));
        assert!(
            !html.contains("http://") || html.contains("https://help.aliyun.com"),
            "no external resources"
        );
    }

    #[test]
    fn golden_plain_text() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-30T10:00:30Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(
            render::plain_text(&sample_message(now)),
            "[FIRING critical] step failed · orders mysql -> polardb · 全量迁移 (03) › order_items\n\
             \n\
             FIRING · critical · step failed\n  \
             Job: orders mysql -> polardb (dtsl1fecyc1e01, cn-hangzhou)\n  \
             Step: 全量迁移 (03) › order_items (sub-step st03full_0001)\n  \
             What: state is Failed (sample alert from dtswatch test-notify)\n  \
             Changed: State: running → Failed; ErrMsg: — → \"DTS-1020042 Execute sql error: Duplicate entry '1842' for key 'PRIMARY'\"\n  \
             Now: state Failed · progress 30% · latency — · NeedAcceleration no\n  \
             ErrMsg: DTS-1020042 Execute sql error: Duplicate entry '1842' for key 'PRIMARY'\n  \
             ErrorDetails: DTS-1020042 (https://help.aliyun.com/document_detail/462133.html)\n  \
             First seen: 2026-11-30 10:00:30 UTC\n  \
             At: 2026-11-30 10:00:30 UTC\n"
        );
    }
}
