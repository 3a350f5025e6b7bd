//! A message as the person on call should read it, before any syntax: a
//! title that carries the news, then for each alert the fields that matter
//! (job with its console link, step, state and what changed, error with its
//! help link, when it started, rule and runbook, a silence command), in the
//! channel's language and time zone. Channels write this view in their own
//! syntax (`notify::syntax`). Pure.

pub mod line;
pub mod subject;
pub mod words;

use super::Message;
use crate::config::{Locale, Severity};
use crate::diff::ChangeKind;
use crate::rules::{ChangeNote, Event, EventKind, EventStatus, Fact, Reason};
use crate::text::zoned_time;
pub use line::{Line, Piece, safe_url};
use subject::{error_brief, error_text, lasted, step_field, subject};
use words::{Label, Word};

/// More events than this are listed one line each instead of in full.
pub const DETAILED_EVENTS: usize = 5;

/// The most a title or headline shows of one name (job, rule, step).
const TITLE_NAME_CHARS: usize = 60;

/// How a channel writes: its language and the zone of its times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    pub locale: Locale,
    pub zone: chrono_tz::Tz,
}

impl Default for Style {
    fn default() -> Self {
        Self {
            locale: Locale::En,
            zone: chrono_tz::UTC,
        }
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

/// One labelled field of an alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub label: &'static str,
    pub value: Line,
}

/// One alert of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventView {
    pub status: EventStatus,
    pub severity: Severity,
    /// `[FIRING·critical] Full data failed · orders`: what a group lists.
    pub headline: Line,
    pub fields: Vec<Field>,
}

/// A whole message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageView {
    pub locale: Locale,
    pub status: EventStatus,
    pub severity: Severity,
    pub title: Line,
    /// Every alert; channels show the fields of at most [`DETAILED_EVENTS`].
    pub events: Vec<EventView>,
    /// `dtswatch · 2026-11-30 18:00:30 UTC+8`.
    pub footer: Line,
}

impl MessageView {
    /// True when the message lists its alerts one line each.
    pub fn is_list(&self) -> bool {
        self.events.len() > DETAILED_EVENTS
    }

    /// True when the title already says everything the alert's headline would.
    pub fn is_single(&self) -> bool {
        self.events.len() == 1
    }

    /// `🔴 [FIRING·critical] …`: the title with its mark, as a body heading.
    pub fn heading(&self) -> Line {
        let mut line = Line::new().own(format!("{} ", mark(self.status, self.severity)));
        line.extend(self.title.clone());
        line
    }

    pub fn colon(&self) -> &'static str {
        Word::Colon.text(self.locale)
    }
}

/// The view of `message` in `style`.
pub fn view(message: &Message, style: Style) -> MessageView {
    let events: Vec<&Event> = message.events().collect();
    let status = message.status();
    let severity = message.severity();
    let mut title = Line::new();
    if message.test {
        title.push_own(words::test_tag(style.locale));
    }
    match events.as_slice() {
        [only] => title.extend(headline(only, style, true, true)),
        _ => title.extend(group_title(&events, status, severity, style.locale)),
    }
    let latest = events.iter().map(|e| e.at).max().unwrap_or_default();
    let mut footer = Line::new();
    if message.test {
        footer.push_own(format!("{} ", Word::TestFooter.text(style.locale)));
    }
    footer.push_own(format!("dtswatch · {}", zoned_time(latest, style.zone)));
    MessageView {
        locale: style.locale,
        status,
        severity,
        title,
        events: events
            .iter()
            .map(|e| EventView {
                status: e.status,
                severity: e.severity,
                headline: headline(e, style, false, true),
                fields: fields(e, style, message.test),
            })
            .collect(),
        footer,
    }
}

/// The headline of one alert with its error brief, as a title of that alert alone would read.
pub fn event_headline(event: &Event, style: Style) -> Line {
    headline(event, style, true, true)
}

/// The same without the status tag, for receivers that track the status
/// themselves (Alertmanager's `summary`).
pub fn event_summary(event: &Event, style: Style) -> Line {
    headline(event, style, true, false)
}

/// `[FIRING·critical] Full data › order_items failed · orders · DTS-1020042 …`;
/// `with_error` adds the error's code and first words (titles of one alert),
/// `tagged` the status and severity in front.
fn headline(event: &Event, style: Style, with_error: bool, tagged: bool) -> Line {
    let locale = style.locale;
    let mut line = Line::new();
    if tagged {
        let tag = words::status_tag(event.status, event.severity, locale);
        line.push_own(match locale {
            Locale::En => format!("{tag} "),
            Locale::ZhCn => tag,
        });
    }
    line.extend(subject(event, locale));
    if let Some(lasted) = lasted(event, locale) {
        line.push_own(lasted);
    }
    line.push_own(" · ");
    line.push_data(words::job_name(event, locale));
    if with_error && let Some(brief) = error_brief(event) {
        line.push_own(" · ");
        line.push_data(brief);
    }
    line.capped(TITLE_NAME_CHARS)
}

/// Distinct names in order of appearance, each with how often it appears.
fn counted<'a>(names: impl Iterator<Item = &'a str>) -> Vec<(&'a str, usize)> {
    let mut out: Vec<(&str, usize)> = Vec::new();
    for name in names {
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, count)) => *count += 1,
            None => out.push((name, 1)),
        }
    }
    out
}

/// How many rules and jobs a group title names before `…`.
const NAMED_IN_TITLE: usize = 3;

/// `[FIRING·critical] 3 firing, 2 resolved: step failed ×2, lag · orders, billing`.
fn group_title(events: &[&Event], status: EventStatus, severity: Severity, locale: Locale) -> Line {
    let firing = events
        .iter()
        .filter(|e| e.status == EventStatus::Firing)
        .count();
    let resolved = events.len() - firing;
    let tag = words::status_tag(status, severity, locale);
    let mut counts = Vec::new();
    let (firing_word, resolved_word, separator) = match locale {
        Locale::En => ("firing", "resolved", ", "),
        Locale::ZhCn => ("条告警", "条恢复", "，"),
    };
    if firing > 0 {
        counts.push(format!("{firing} {firing_word}"));
    }
    if resolved > 0 {
        counts.push(format!("{resolved} {resolved_word}"));
    }
    let mut line = Line::new().own(match locale {
        Locale::En => format!("{tag} {}: ", counts.join(separator)),
        Locale::ZhCn => format!("{tag}{}：", counts.join(separator)),
    });
    let list = Word::ListSeparator.text(locale);
    let named = |line: &mut Line, names: Vec<(&str, usize)>| {
        for (i, (name, count)) in names.iter().enumerate() {
            if i == NAMED_IN_TITLE {
                line.push_own(format!("{list}…"));
                break;
            }
            if i > 0 {
                line.push_own(list);
            }
            line.push_data(name.to_string());
            if *count > 1 {
                line.push_own(format!(" ×{count}"));
            }
        }
    };
    let rules: Vec<String> = events.iter().map(|e| words::rule_name(e, locale)).collect();
    named(&mut line, counted(rules.iter().map(String::as_str)));
    line.push_own(" · ");
    let job_names: Vec<String> = events.iter().map(|e| words::job_name(e, locale)).collect();
    let jobs = counted(job_names.iter().map(String::as_str))
        .into_iter()
        .map(|(name, _)| (name, 1))
        .collect();
    named(&mut line, jobs);
    line.capped(TITLE_NAME_CHARS)
}

fn field(fields: &mut Vec<Field>, label: Label, locale: Locale, value: Line) {
    if !value.is_empty() {
        fields.push(Field {
            label: label.text(locale),
            value,
        });
    }
}

/// The fields of one alert, each only when it says something.
fn fields(event: &Event, style: Style, test: bool) -> Vec<Field> {
    let locale = style.locale;
    let mut out = Vec::new();
    let mut job = Line::new();
    match &event.job.console_url {
        Some(url) => job.push_link(words::job_name(event, locale), url),
        None => job.push_data(words::job_name(event, locale)),
    }
    // dtswatch's own pseudo-job has no DTS id or region to show.
    if event.kind != EventKind::Watchdog {
        job.push_own(" · ");
        job.push_data(event.job.id.clone());
        job.push_own(" · ");
        job.push_data(event.job.region.clone());
    }
    field(&mut out, Label::Job, locale, job);
    if let Some(step) = &event.step {
        field(&mut out, Label::Step, locale, step_field(step, locale));
    }
    let mut folded = Line::new();
    for (i, sub) in event.folded.iter().enumerate() {
        if i > 0 {
            folded.push_own(Word::ListSeparator.text(locale));
        }
        folded.push_data(sub.name.clone());
        if let Some(id) = &sub.id {
            folded.push_own(" (");
            folded.push_data(id.clone());
            folded.push_own(")");
        }
    }
    field(&mut out, Label::SubSteps, locale, folded);
    values(&mut out, event, locale);
    field(&mut out, Label::What, locale, what(event));
    let times = match event.status {
        EventStatus::Firing => {
            let mut line = Line::new().own(zoned_time(event.first_seen, style.zone));
            let held = (event.at - event.first_seen).num_seconds();
            if held >= 60 {
                let span = words::span(held, locale);
                line.push_own(match locale {
                    Locale::En => format!(" (for {span})"),
                    Locale::ZhCn => format!("（已持续 {span}）"),
                });
            }
            (Label::FirstSeen, line)
        }
        EventStatus::Resolved => {
            let span = words::span((event.at - event.first_seen).num_seconds(), locale);
            let since = zoned_time(event.first_seen, style.zone);
            (
                Label::Lasted,
                Line::new().own(match locale {
                    Locale::En => format!("{span} (since {since})"),
                    Locale::ZhCn => format!("{span}（自 {since} 起）"),
                }),
            )
        }
    };
    field(&mut out, times.0, locale, times.1);
    let mut rule = Line::new().data(words::rule_name(event, locale));
    if let Some(runbook) = &event.runbook {
        rule.push_own(" · ");
        rule.push_link(Word::Runbook.text(locale), runbook);
    }
    field(&mut out, Label::Rule, locale, rule);
    // A one-shot notice (a transition) is news, not a problem to silence.
    if event.status == EventStatus::Firing && !test && event.reason != Reason::Transition {
        let mut silence = Line::new();
        silence.push_code(silence_command(event, locale));
        field(&mut out, Label::Silence, locale, silence);
    }
    out
}

/// State, latency, error, help and what else changed, with each change
/// shown once: in the field it changes (`running → failed`), not again.
fn values(out: &mut Vec<Field>, event: &Event, locale: Locale) {
    let kinds: Vec<&ChangeKind> = event
        .changes
        .iter()
        .filter_map(|c| match c {
            ChangeNote::Kind(kind) => Some(kind),
            ChangeNote::Text(_) => None,
        })
        .collect();
    let Some(now) = &event.current else {
        return;
    };
    let state = |raw: &str| words::state(raw, locale);
    let mut state_line = Line::new();
    match kinds.iter().find_map(|k| match k {
        ChangeKind::State {
            from_raw, to_raw, ..
        } => Some((from_raw, to_raw)),
        _ => None,
    }) {
        Some((from, to)) => state_line.push_data(format!("{} → {}", state(from), state(to))),
        None => state_line.push_data(state(&now.state)),
    }
    // A replicating step's progress says nothing (it stays at 0 or 100).
    if let (Some(progress), None) = (now.progress, now.latency_ms) {
        let was = kinds.iter().find_map(|k| match k {
            ChangeKind::Progress { from: Some(f), .. } => Some(*f),
            _ => None,
        });
        let text = match was {
            Some(was) if was != progress => format!("{was}% → {progress}%"),
            _ => format!("{progress}%"),
        };
        state_line.push_own(format!(" · {} ", Word::Progress.text(locale)));
        state_line.push_data(text);
    }
    field(out, Label::State, locale, state_line);
    if let Some(ms) = now.latency_ms {
        let was = kinds.iter().find_map(|k| match k {
            ChangeKind::Latency { from: Some(f), .. } => Some(*f),
            _ => None,
        });
        let text = match was {
            Some(was) if was != ms => format!(
                "{} → {}",
                words::latency(was, locale),
                words::latency(ms, locale)
            ),
            _ => words::latency(ms, locale),
        };
        field(out, Label::Latency, locale, Line::new().data(text));
    }
    if let Some(error) = error_text(event) {
        field(out, Label::Error, locale, Line::new().data(error));
    }
    let previous = kinds.iter().find_map(|k| match k {
        ChangeKind::ErrorChanged { from, .. } => Some(from.to_string()),
        ChangeKind::ErrorCleared { previous } => Some(previous.to_string()),
        _ => None,
    });
    if let Some(previous) = previous {
        field(
            out,
            Label::PreviousError,
            locale,
            Line::new().data(previous),
        );
    }
    let mut help = Line::new();
    for detail in now.error_details.iter().filter(|d| !d.is_success()) {
        if !help.is_empty() {
            help.push_own(Word::ListSeparator.text(locale));
        }
        let code = detail.code.as_deref().unwrap_or("?").to_string();
        match &detail.help_url {
            Some(url) => help.push_link(code, url),
            None => help.push_data(code),
        }
    }
    field(out, Label::Help, locale, help);
    if now.need_acceleration == Some(true) {
        field(
            out,
            Label::Acceleration,
            locale,
            Line::new().own(Word::Yes.text(locale)),
        );
    }
    field(out, Label::Changed, locale, other_changes(event, locale));
}

/// Changes no other field shows: acceleration, Redis phase, error codes, a
/// step that disappeared, and lines queued by older versions.
fn other_changes(event: &Event, locale: Locale) -> Line {
    let option = |v: &Option<String>| v.clone().unwrap_or_else(|| "—".into());
    let yes_no = |v: Option<bool>| match (v, locale) {
        (Some(true), Locale::En) => "yes",
        (Some(false), Locale::En) => "no",
        (Some(true), Locale::ZhCn) => "是",
        (Some(false), Locale::ZhCn) => "否",
        (None, _) => "—",
    };
    let codes = |details: &[crate::dts::ErrorDetail]| {
        let codes: Vec<String> = details
            .iter()
            .filter(|d| !d.is_success())
            .filter_map(|d| d.code.as_deref().map(str::to_string))
            .collect();
        if codes.is_empty() {
            "—".to_string()
        } else {
            codes.join(", ")
        }
    };
    let zh = locale == Locale::ZhCn;
    let mut line = Line::new();
    for note in &event.changes {
        let (label, value) = match note {
            ChangeNote::Text(text) => ("", text.clone()),
            ChangeNote::Kind(ChangeKind::NeedAcceleration { from, to }) => (
                if zh {
                    "需要加速"
                } else {
                    "Needs acceleration"
                },
                format!("{} → {}", yes_no(*from), yes_no(*to)),
            ),
            ChangeNote::Kind(ChangeKind::RedisPhase { from, to }) => (
                if zh { "Redis 阶段" } else { "Redis phase" },
                format!(
                    "{} → {}",
                    option(&from.as_deref().map(str::to_string)),
                    option(&to.as_deref().map(str::to_string))
                ),
            ),
            // New failing codes are in the Help field already.
            ChangeNote::Kind(ChangeKind::ErrorDetails { to, .. })
                if to.iter().any(|d| !d.is_success()) =>
            {
                continue;
            }
            ChangeNote::Kind(ChangeKind::ErrorDetails { from, to }) => (
                if zh { "错误码" } else { "Error codes" },
                format!("{} → {}", codes(from), codes(to)),
            ),
            ChangeNote::Kind(ChangeKind::Disappeared) => (
                if zh {
                    "步骤已消失"
                } else {
                    "step disappeared"
                },
                String::new(),
            ),
            ChangeNote::Kind(_) => continue,
        };
        if !line.is_empty() {
            line.push_own("; ");
        }
        match (label.is_empty(), value.is_empty()) {
            (true, _) => line.push_data(value),
            (false, true) => line.push_own(label),
            (false, false) => {
                line.push_own(format!("{label}{}", Word::Colon.text(locale)));
                line.push_data(value);
            }
        }
    }
    line
}

/// The detail of a job-level alert (the API error, which channels died),
/// or an older row's summary; empty when the title says it all.
fn what(event: &Event) -> Line {
    let detail = match &event.fact {
        None if event.step.is_none() => Some(event.summary.clone()),
        None => None,
        Some(Fact::Unreachable { error, .. }) => Some(error.clone()),
        Some(Fact::DeadNotifications { detail }) | Some(Fact::DatabaseReplaced { detail }) => {
            Some(detail.clone())
        }
        Some(Fact::StoreUnwritable { problem }) | Some(Fact::NoLeader { problem }) => {
            Some(problem.clone())
        }
        Some(_) => None,
    };
    detail.map(|d| Line::new().data(d)).unwrap_or_default()
}

/// Quotes `text` for a POSIX shell when it needs it.
fn shell_quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@".contains(c));
    if plain {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// How long the prefilled silence lasts.
const SILENCE_FOR: &str = "2h";

/// `dtswatch silence add --job … --rule … --for 2h --comment …`, ready to paste.
fn silence_command(event: &Event, locale: Locale) -> String {
    format!(
        "dtswatch silence add --job {} --rule {} --for {SILENCE_FOR} --comment {}",
        shell_quote(&event.job.id),
        shell_quote(&event.rule),
        shell_quote(Word::SilenceComment.text(locale))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting_keeps_commands_pasteable() {
        assert_eq!(shell_quote("dtsl1fecyc1e01"), "dtsl1fecyc1e01");
        assert_eq!(shell_quote("step failed"), "'step failed'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote("$(rm -rf /)"), "'$(rm -rf /)'");
    }
}
