//! `error`: a step reports an error — a non-empty `ErrMsg`, or an
//! `ErrorDetails` code that is not success (`200` and `Success` are success).
//! `pattern` must match and `ignore` must not. The fingerprint is the masked
//! message, so a changed count is the same error and a new message is news.

use regex::Regex;

use super::fingerprint::fingerprint;
use super::{Finding, StepContext};
use crate::dts::Step;
use crate::rules::lifecycle::Condition;

/// The text an error rule looks at: `ErrMsg`, else the failing error codes.
pub fn error_text(step: &Step) -> Option<String> {
    if let Some(message) = &step.err_msg {
        return Some(message.clone());
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

pub fn check(pattern: Option<&Regex>, ignore: Option<&Regex>, ctx: &StepContext<'_>) -> Finding {
    let Some(text) = error_text(ctx.step) else {
        return Finding::clear("the error cleared".into());
    };
    if pattern.is_some_and(|p| !p.is_match(&text)) || ignore.is_some_and(|i| i.is_match(&text)) {
        return Finding::clear("the error no longer matches the rule".into());
    }
    Finding {
        condition: Condition::Holds {
            since: None,
            fingerprint: Some(fingerprint(&text)),
        },
        summary: text,
    }
}
