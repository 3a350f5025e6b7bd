//! `error`: a step reports an error — a non-empty `ErrMsg`, or an
//! `ErrorDetails` code that is not success (`200` and `Success` are success).
//! `pattern` must match and `ignore` must not. The fingerprint is the masked
//! message, so a changed count is the same error and a new message is news.

use regex::Regex;

use super::fingerprint::fingerprint;
use crate::dts::Step;
use crate::rules::fact::Fact;
use crate::rules::lifecycle::Condition;

/// The text an error rule looks at: `ErrMsg`, else the failing error codes.
pub fn error_text(step: &Step) -> Option<String> {
    if let Some(message) = &step.err_msg {
        return Some(message.to_string());
    }
    let codes: Vec<&str> = step
        .failing_details()
        .filter_map(|d| d.code.as_deref())
        .collect();
    if codes.is_empty() {
        None
    } else {
        Some(format!("ErrorDetails: {}", codes.join(", ")))
    }
}

/// The error text if the rule cares about it.
fn relevant(pattern: Option<&Regex>, ignore: Option<&Regex>, step: &Step) -> Option<String> {
    let text = error_text(step)?;
    if pattern.is_some_and(|p| !p.is_match(&text)) || ignore.is_some_and(|i| i.is_match(&text)) {
        return None;
    }
    Some(text)
}

pub fn check(pattern: Option<&Regex>, ignore: Option<&Regex>, step: &Step) -> Condition {
    if step.err_msg.is_none() && step.failing_details().next().is_none() {
        return Condition::Clear;
    }
    match relevant(pattern, ignore, step) {
        Some(text) => Condition::Holds {
            since: None,
            fingerprint: Some(fingerprint(&text)),
        },
        None => Condition::Clear,
    }
}

pub fn fact(pattern: Option<&Regex>, ignore: Option<&Regex>, step: &Step) -> Fact {
    match (error_text(step), relevant(pattern, ignore, step)) {
        (_, Some(text)) => Fact::Error { text },
        (Some(_), None) => Fact::ErrorNoLongerMatches,
        (None, None) => Fact::ErrorCleared,
    }
}
