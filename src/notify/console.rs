//! Console: one readable block per message on stdout — the title with its
//! mark, each alert's fields — or one JSON document per message with
//! `format = "json"`. Used by the demo; handy when trying rules.

use std::io::Write as _;

use super::syntax::{self, plain_body};
use super::{Delivered, Message, Notifier, SendError, Templates, document};
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
                document::document(
                    message,
                    self.templates.style,
                    &self.templates.title_in(message, &syntax::VERBATIM)
                )
            ),
            ConsoleFormat::Text => self.templates.body(message, || {
                plain_body(&self.templates.view(message), &syntax::TERMINAL, true)
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Locale;
    use crate::notify::sample_message;
    use crate::notify::view::{Style, view};

    #[test]
    fn control_characters_from_data_are_shown_not_obeyed() {
        let mut message = sample_message(chrono::Utc::now(), Locale::En);
        message.notifications[0].events[0].job.name = "evil\u{1b}[2J".into();
        let text = plain_body(&view(&message, Style::default()), &syntax::TERMINAL, true);
        assert!(text.contains("evil\\x1b[2J"), "{text}");
        assert!(!text.contains('\u{1b}'));
    }
}
