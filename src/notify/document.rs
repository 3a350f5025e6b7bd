//! The `dtswatch.webhook.v1` document: what the webhook channel posts, the
//! console channel prints as JSON, and templates see as `alerts`. Field
//! names are a contract (see the README); additions only. Each alert has a
//! `fingerprint` that stays the same across its firing, repeats and
//! resolution, its console link, and a headline in the channel's language
//! beside the stable English `summary`. Pure.

use serde_json::{Value, json};

use super::Message;
use super::view::{self, Style};
use crate::rules::{Event, EventStatus};

pub const SCHEMA_VERSION: &str = "dtswatch.webhook.v1";

/// One alert of the document.
pub fn alert(event: &Event, style: Style) -> Value {
    let step = event.step.as_ref();
    let changes: Vec<String> = event.changes.iter().map(ToString::to_string).collect();
    json!({
        "status": event.status,
        "reason": event.reason,
        "fingerprint": event.fingerprint(),
        "labels": {
            "rule": event.rule,
            "kind": event.kind,
            "severity": event.severity,
            "job_id": event.job.id,
            "job_name": event.job.name,
            "region": event.job.region,
            "step_path": step.map(|s| s.path.clone()),
            "step": step.map(|s| s.label.clone()),
            "step_name": step.map(|s| s.name.clone()),
            "step_code": step.and_then(|s| s.code.clone()),
            "sub_step_id": step.and_then(|s| s.sub_step_id.clone()),
        },
        "values": event.current,
        "summary": event.summary,
        "headline": view::event_headline(event, style).plain(),
        "changes": changes,
        "folded_sub_steps": event.folded,
        "first_seen": event.first_seen,
        "at": event.at,
        "starts_at": event.first_seen,
        "ends_at": (event.status == EventStatus::Resolved).then_some(event.at),
        "runbook": event.runbook,
        "console_url": event.job.console_url,
    })
}

/// The whole document; `title` is the channel's title for the message.
pub fn document(message: &Message, style: Style, title: &str) -> Value {
    json!({
        "version": SCHEMA_VERSION,
        "title": title,
        "status": message.status(),
        "severity": message.severity(),
        "locale": style.locale.as_str(),
        "test": message.test,
        "alerts": message.events().map(|e| alert(e, style)).collect::<Vec<_>>(),
    })
}
