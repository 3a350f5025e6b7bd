//! Console: one readable block per event on stdout (or one JSON document per
//! message with `format = "json"`). Used by the demo; handy when trying rules.

use std::io::Write as _;

use super::{Delivered, Message, Notifier, SendError, Templates, escape, render, webhook};
use crate::config::{ConsoleConfig, ConsoleFormat};

pub struct Console {
    format: ConsoleFormat,
    templates: Templates,
}

impl Console {
    pub fn new(config: &ConsoleConfig, templates: Templates) -> Self {
        Self {
            format: config.format,
            templates,
        }
    }
}

impl Notifier for Console {
    async fn send(&self, message: &Message) -> Result<Delivered, SendError> {
        let text = self.preview(message);
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(text.as_bytes())
            .and_then(|_| stdout.flush())
            .map_err(|e| SendError::retry(format!("writing to stdout: {e}")))?;
        Ok(Delivered {
            answer: "printed".into(),
        })
    }

    fn preview(&self, message: &Message) -> String {
        match self.format {
            ConsoleFormat::Json => format!(
                "{}\n",
                webhook::build_body(message, &render::title(message, render::verbatim))
            ),
            ConsoleFormat::Text => self.templates.body(message, || build_text(message)),
        }
    }
}

/// `>>> 🔴 FIRING · critical · step failed` and the fields, one block per event.
pub fn build_text(message: &Message) -> String {
    let mut out = String::new();
    for event in message.events() {
        let view = render::event_view(event);
        out.push_str(&format!(
            ">>> {} {}\n",
            render::mark(view.status, view.severity),
            escape::terminal(&view.headline)
        ));
        for (label, value) in &view.fields {
            out.push_str(&format!("    {label}: {}\n", escape::terminal(value)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::sample_message;

    #[test]
    fn one_block_per_event() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-30T10:00:30Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let text = build_text(&sample_message(now));
        assert!(text.starts_with(">>> 🔴 FIRING · critical · step failed\n    Job: orders mysql -> polardb (dtsl1fecyc1e01, cn-hangzhou)\n"), "{text}");
        assert_eq!(text.matches(">>>").count(), 1);
    }
}
