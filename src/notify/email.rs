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
use super::syntax::{self, plain_body};
use super::view::{MessageView, mark};
use super::{Delivered, Message, Notifier, SendError, Templates};
use crate::config::{EmailConfig, TlsMode};

/// Mail clients show about this much of a subject.
const MAX_SUBJECT_CHARS: usize = 200;

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
        // A subject is one line people scan; a template could make it any length.
        let subject = crate::text::ellipsize(&self.templates.title(message), MAX_SUBJECT_CHARS);
        let view = self.templates.view(message);
        let text = self
            .templates
            .body(message, || plain_body(&view, &syntax::PLAIN, false));
        let html = if self.templates.has_body() {
            format!(
                "<pre style=\"font-family:monospace\">{}</pre>",
                html_escape(&text)
            )
        } else {
            build_html(&view)
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

/// The HTML part: inline CSS, no external resources, every value escaped,
/// links as `<a>` (their URLs made safe by the view).
pub fn build_html(view: &MessageView) -> String {
    let html = syntax::HTML;
    let mut out = String::from(
        "<div style=\"font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;font-size:14px\">",
    );
    out.push_str(&format!(
        "<h3 style=\"margin:0 0 12px\">{}</h3>",
        html.write(&view.heading())
    ));
    if view.is_list() {
        out.push_str("<ul>");
        for event in &view.events {
            out.push_str(&format!(
                "<li>{} {}</li>",
                mark(event.status, event.severity),
                html.write(&event.headline)
            ));
        }
        out.push_str("</ul>");
    } else {
        for event in &view.events {
            if !view.is_single() {
                out.push_str(&format!(
                    "<p style=\"margin:16px 0 4px;font-weight:bold\">{} {}</p>",
                    mark(event.status, event.severity),
                    html.write(&event.headline)
                ));
            }
            out.push_str("<table style=\"border-collapse:collapse\">");
            for field in &event.fields {
                out.push_str(&format!(
                    "<tr><td style=\"padding:2px 12px 2px 0;color:#666;vertical-align:top;white-space:nowrap\">{}</td><td style=\"padding:2px 0\">{}</td></tr>",
                    html_escape(field.label),
                    html.write(&field.value)
                ));
            }
            out.push_str("</table>");
        }
    }
    out.push_str(&format!(
        "<p style=\"color:#999;font-size:12px;margin-top:16px\">{}</p></div>",
        html.write(&view.footer)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Locale;
    use crate::notify::sample_message;
    use crate::notify::view::{Style, view};

    #[test]
    fn html_escapes_every_value() {
        let mut message = sample_message(chrono::Utc::now(), Locale::En);
        message.notifications[0].events[0].job.name = "<script>alert(1)</script> & more".into();
        let html = build_html(&view(&message, Style::default()));
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; more"));
        assert!(!html.contains("src="), "no external resources");
    }
}
