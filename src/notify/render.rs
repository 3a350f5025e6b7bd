//! Per-channel minijinja templates and truncation with a visible marker.
//! A template sees the message's title, status and severity in the
//! channel's language, and every alert as the `dtswatch.webhook.v1`
//! document describes it (`document.rs`); every value it prints is escaped
//! for the channel's output syntax unless marked `|safe` (or made by
//! `tojson`). Pure functions only.

use serde::Serialize;
use serde_json::Value;

use super::Message;
use super::document;
use super::syntax::Syntax;
use super::view::{self, Style};
use crate::config::Severity;

/// Characters that open a link or code span in the chat syntaxes; data
/// never carries them unescaped there, so one in a line is the renderer's.
const MARKUP_OPENERS: [char; 3] = ['[', '<', '`'];

/// Where to cut `text` near `cut` without leaving a link or code span of the
/// renderer's half written: a line with markup in its kept part goes whole.
fn cut_outside_markup(text: &str, cut: usize) -> usize {
    let line_start = text[..cut].rfind('\n').map_or(0, |i| i + 1);
    let line_goes_on = text[cut..].chars().next().is_some_and(|c| c != '\n');
    if line_goes_on && text[line_start..cut].contains(MARKUP_OPENERS) {
        line_start
    } else {
        cut
    }
}

/// Cuts `text` to at most `max` bytes (on a character boundary, never
/// through a link), ending with a marker saying how much was cut.
pub fn truncate_bytes(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let marker_room = 64.min(max);
    let mut cut = max - marker_room;
    while cut > 0 && !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let cut = cut_outside_markup(text, cut);
    let marker = format!("\n…(truncated, {} more bytes)", text.len() - cut);
    let mut out = String::with_capacity(max);
    out.push_str(&text[..cut]);
    out.push_str(&marker);
    if out.len() > max {
        // A marker longer than the room left (tiny limits): plain cut.
        let mut end = max;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    out
}

/// Cuts `text` to at most `max` characters (never through a link) with a marker.
pub fn truncate_chars(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_string();
    }
    // The marker takes at most 48 characters.
    let keep = max.saturating_sub(48);
    let byte_cut = text.char_indices().nth(keep).map_or(text.len(), |(i, _)| i);
    let kept = &text[..cut_outside_markup(text, byte_cut)];
    format!(
        "{kept}\n…(truncated, {} more characters)",
        count - kept.chars().count()
    )
}

/// What templates see.
#[derive(Debug, Serialize)]
pub struct TemplateContext {
    /// The built-in title, in the channel's language.
    pub title: String,
    pub status: &'static str,
    pub severity: Severity,
    pub locale: &'static str,
    pub count: usize,
    pub test: bool,
    /// Each alert as the webhook document has it.
    pub alerts: Vec<Value>,
    /// The first alert: for receivers that take one alert per request.
    pub alert: Value,
}

impl TemplateContext {
    pub fn of(message: &Message, style: Style) -> Self {
        let alerts: Vec<Value> = message
            .events()
            .map(|e| document::alert(e, style))
            .collect();
        Self {
            title: view::view(message, style).title.plain(),
            status: message.status().as_str(),
            severity: message.severity(),
            locale: style.locale.as_str(),
            count: alerts.len(),
            test: message.test,
            alert: alerts.first().cloned().unwrap_or(Value::Null),
            alerts,
        }
    }
}

/// Renders a channel's minijinja template; every value the template prints
/// is escaped by `syntax`'s escaper (`|safe` and `tojson` opt out), so data
/// cannot add markup the template did not write.
pub fn render_template(
    template: &str,
    message: &Message,
    style: Style,
    syntax: &Syntax,
) -> Result<String, String> {
    let escape = syntax.escape;
    let mut env = minijinja::Environment::new();
    env.set_formatter(move |out, _state, value| {
        let text = if value.is_none() || value.is_undefined() {
            String::new()
        } else if value.is_safe() {
            value.to_string()
        } else {
            escape(&value.to_string())
        };
        out.write_str(&text)
            .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string()))
    });
    env.render_str(
        template,
        minijinja::value::Serde(&TemplateContext::of(message, style)),
    )
    .map_err(|e| format!("template error: {e:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_utf8_and_says_what_was_cut() {
        let text = "预".repeat(10_000);
        let cut = truncate_bytes(&text, 1000);
        assert!(cut.len() <= 1000);
        assert!(cut.contains("truncated"), "{cut}");
        assert_eq!(truncate_bytes("short", 100), "short");
        let chars = truncate_chars(&"x".repeat(5000), 3000);
        assert!(chars.chars().count() <= 3000);
        assert!(chars.ends_with("more characters)"), "{chars}");
    }

    #[test]
    fn a_link_is_kept_whole_or_left_out() {
        let text = format!("**Job:** [{}](https://e.com/x)\nnext", "j".repeat(500));
        let cut = truncate_bytes(&text, 300);
        assert!(cut.starts_with("\n…(truncated"), "{cut}");
        let cut = truncate_chars(&text, 300);
        assert!(!cut.contains('['), "{cut}");
        let plain = format!("{}\n{}", "a".repeat(100), "b".repeat(500));
        assert!(truncate_bytes(&plain, 300).starts_with(&"a".repeat(100)));
    }
}
