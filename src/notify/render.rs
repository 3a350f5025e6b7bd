//! From events to words: the title, and each event as a headline plus labelled
//! fields, which every channel then writes in its own dialect (DingTalk and
//! WeCom markdown, Slack mrkdwn, Feishu lark_md, plain text, HTML). Also the
//! per-channel minijinja templates and truncation with a visible marker.
//! Every function that writes a syntax takes that syntax's escaper
//! (`escape.rs`) and applies it to every piece of data; the labels, markers
//! and separators it adds are its own. Pure functions only.

use serde::Serialize;

use super::Message;
use crate::config::Severity;
use crate::rules::{Event, EventStatus, JobInfo};
use crate::text::{latency_text, utc_time};

/// How untrusted text is made inert in one output syntax.
pub type Escape = fn(&str) -> String;

/// More events than this are listed one line each instead of in full.
pub const DETAILED_EVENTS: usize = 5;

pub fn status_word(status: EventStatus) -> &'static str {
    match status {
        EventStatus::Firing => "FIRING",
        EventStatus::Resolved => "RESOLVED",
    }
}

/// A coloured mark that reads at a glance in a chat list.
pub fn mark(status: EventStatus, severity: Severity) -> &'static str {
    match (status, severity) {
        (EventStatus::Resolved, _) => "✅",
        (EventStatus::Firing, Severity::Critical) => "🔴",
        (EventStatus::Firing, Severity::Warning) => "🟠",
        (EventStatus::Firing, Severity::Info) => "🔵",
    }
}

/// No escaping: for outputs whose encoding escapes by itself (JSON), and
/// for values handed to templates, which escape what they print.
pub fn verbatim(text: &str) -> String {
    text.to_string()
}

/// `[FIRING critical] step failed · orders mysql -> polardb` for one event;
/// counts for more. The rule, job and step names go through `escape`.
pub fn title(message: &Message, escape: Escape) -> String {
    let events: Vec<&Event> = message.events().collect();
    let status = message.status();
    let severity = message.severity();
    let prefix = format!("[{} {}]", status_word(status), severity);
    match (events.as_slice(), message.notifications.len()) {
        ([only], _) => {
            let step = only
                .step
                .as_ref()
                .map(|s| format!(" · {}", escape(&s.label)))
                .unwrap_or_default();
            format!(
                "{prefix} {} · {}{step}",
                escape(&only.rule),
                escape(&only.job.name)
            )
        }
        (_, 1) => format!(
            "{prefix} {} alerts · {}",
            events.len(),
            escape(&message.notifications[0].job.name)
        ),
        (_, jobs) => format!("{prefix} {} alerts on {jobs} DTS jobs", events.len()),
    }
}

/// One event as a headline and labelled fields, in reading order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventView {
    pub status: EventStatus,
    pub severity: Severity,
    /// `FIRING · critical · step failed`.
    pub headline: String,
    pub fields: Vec<(&'static str, String)>,
}

fn job_text(job: &JobInfo) -> String {
    format!("{} ({}, {})", job.name, job.id, job.region)
}

fn yes_no(value: Option<bool>) -> &'static str {
    match value {
        Some(true) => "yes",
        Some(false) => "no",
        None => "—",
    }
}

pub fn event_view(event: &Event) -> EventView {
    let mut fields = vec![("Job", job_text(&event.job))];
    if let Some(step) = &event.step {
        let mut text = step.label.clone();
        if let Some(id) = &step.sub_step_id {
            text.push_str(&format!(" (sub-step {id})"));
        }
        fields.push(("Step", text));
    }
    fields.push(("What", event.summary.clone()));
    if !event.changes.is_empty() {
        fields.push(("Changed", event.changes.join("; ")));
    }
    if let Some(now) = &event.current {
        fields.push((
            "Now",
            format!(
                "state {} · progress {} · latency {} · NeedAcceleration {}",
                now.state,
                now.progress
                    .map(|p| format!("{p}%"))
                    .unwrap_or_else(|| "—".into()),
                match now.latency_ms {
                    Some(ms) => latency_text(Some(ms)),
                    None => "—".into(),
                },
                yes_no(now.need_acceleration),
            ),
        ));
        if let Some(err) = &now.err_msg {
            fields.push(("ErrMsg", err.clone()));
        }
        let details: Vec<String> = now
            .error_details
            .iter()
            .filter(|d| !d.is_success())
            .map(|d| match (&d.code, &d.help_url) {
                (Some(code), Some(url)) => format!("{code} ({url})"),
                (Some(code), None) => code.to_string(),
                (None, Some(url)) => url.to_string(),
                (None, None) => String::new(),
            })
            .filter(|t| !t.is_empty())
            .collect();
        if !details.is_empty() {
            fields.push(("ErrorDetails", details.join(", ")));
        }
    }
    fields.push(("First seen", utc_time(event.first_seen)));
    fields.push(("At", utc_time(event.at)));
    if let Some(runbook) = &event.runbook {
        fields.push(("Runbook", runbook.clone()));
    }
    EventView {
        status: event.status,
        severity: event.severity,
        headline: format!(
            "{} · {} · {}",
            status_word(event.status),
            event.severity,
            event.rule
        ),
        fields,
    }
}

/// `FIRING critical step failed · orders · 全量迁移 (03): state is Failed`, for long lists.
pub fn event_line(event: &Event) -> String {
    let step = event
        .step
        .as_ref()
        .map(|s| format!(" · {}", s.label))
        .unwrap_or_default();
    format!(
        "{} {} {} · {}{step}: {}",
        status_word(event.status),
        event.severity,
        event.rule,
        event.job.name,
        event.summary
    )
}

/// Cuts `text` to at most `max` bytes (on a character boundary), ending with a marker saying how much was cut.
pub fn truncate_bytes(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let marker_room = 64.min(max);
    let mut cut = max - marker_room;
    while cut > 0 && !text.is_char_boundary(cut) {
        cut -= 1;
    }
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

/// Cuts `text` to at most `max` characters with a marker.
pub fn truncate_chars(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_string();
    }
    // The marker takes at most 48 characters.
    let keep = max.saturating_sub(48);
    let kept: String = text.chars().take(keep).collect();
    format!("{kept}\n…(truncated, {} more characters)", count - keep)
}

/// What templates see.
#[derive(Debug, Serialize)]
pub struct TemplateContext<'a> {
    pub title: String,
    pub status: &'static str,
    pub severity: Severity,
    pub count: usize,
    pub events: Vec<&'a Event>,
}

/// Renders a channel's minijinja template; every value the template prints
/// is escaped for the channel's syntax (`|safe` opts out), so data cannot
/// add markup the template did not write. Errors become text so a broken
/// template still sends something.
pub fn render_template(template: &str, message: &Message, escape: Escape) -> String {
    let context = TemplateContext {
        title: title(message, verbatim),
        status: status_word(message.status()),
        severity: message.severity(),
        count: message.events().count(),
        events: message.events().collect(),
    };
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
    match env.render_str(template, minijinja::value::Serde(&context)) {
        Ok(text) => text,
        Err(e) => format!("{}\n(template error: {e})", title(message, escape)),
    }
}

/// Markdown in the DingTalk / WeCom / Feishu style: `**label:** value`
/// lines, every value through `escape`.
pub fn markdown(message: &Message, bold: &str, separator: &str, escape: Escape) -> String {
    let events: Vec<&Event> = message.events().collect();
    let mut out = String::new();
    if events.len() > DETAILED_EVENTS {
        for event in &events {
            out.push_str(&format!(
                "- {} {}{separator}",
                mark(event.status, event.severity),
                escape(&event_line(event))
            ));
        }
        return out;
    }
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            out.push_str(&format!("---{separator}"));
        }
        let view = event_view(event);
        out.push_str(&format!(
            "{bold}{} {}{bold}{separator}",
            mark(view.status, view.severity),
            escape(&view.headline)
        ));
        for (label, value) in &view.fields {
            out.push_str(&format!(
                "{bold}{label}:{bold} {}{separator}",
                escape(value)
            ));
        }
    }
    out
}

/// Plain text: the title, then each event's fields, control characters in
/// the data turned into spaces so every line is the renderer's.
pub fn plain_text(message: &Message) -> String {
    let plain = super::escape::plain;
    let events: Vec<&Event> = message.events().collect();
    let mut out = format!("{}\n", title(message, plain));
    if events.len() > DETAILED_EVENTS {
        for event in &events {
            out.push_str(&format!("- {}\n", plain(&event_line(event))));
        }
        return out;
    }
    for event in events {
        let view = event_view(event);
        out.push_str(&format!("\n{}\n", plain(&view.headline)));
        for (label, value) in &view.fields {
            out.push_str(&format!("  {label}: {}\n", plain(value)));
        }
    }
    out
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
}
