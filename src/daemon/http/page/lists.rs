//! `/alerts`, `/silences`, `/outbox`: the alerts pending or firing (with
//! what holds them back, and a form to silence one), the silences in force
//! (runtime ones can be expired), and the notifications waiting or dead
//! (a dead one can be queued again). The forms post to `forms.rs`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use serde::Serialize;

use super::view::{AlertView, Speech};
use super::{message, render};
use crate::daemon::http::ServerState;
use crate::report;
use crate::report::json::{OutboxJson, SilenceJson};
use crate::store::outbox::{self, OutboxStatus};
use crate::store::{StoreError, from_millis};

fn speech(state: &ServerState) -> Speech {
    let config = state.config();
    Speech {
        locale: config.messages.locale,
        zone: config.messages.timezone,
    }
}

fn failed(state: &ServerState, e: StoreError) -> Response {
    message(
        StatusCode::INTERNAL_SERVER_ERROR,
        &state.config(),
        "database",
        &e.describe(),
        "/",
    )
}

pub(super) async fn alerts(State(state): State<ServerState>) -> Response {
    let config = state.config();
    let speech = speech(&state);
    let listed = async {
        let mut conn = state.store.pool().acquire().await?;
        report::alerts::list(&mut conn, &config.silences, Utc::now()).await
    }
    .await;
    match listed {
        Ok(listed) => {
            let alerts: Vec<AlertView> = listed.iter().map(|a| AlertView::of(a, speech)).collect();
            render(
                StatusCode::OK,
                &config,
                "alerts.html",
                "alerts",
                minijinja::context! {
                    alerts => super::value(&alerts),
                    refresh => true,
                    writable => !config.server.tokens.is_empty(),
                },
            )
        }
        Err(e) => failed(&state, e),
    }
}

/// A silence as a row.
#[derive(Debug, Serialize)]
struct SilenceLine {
    id: String,
    runtime: bool,
    state: String,
    matchers: String,
    window: String,
    comment: String,
    author: String,
}

fn silence_line(s: &SilenceJson, speech: Speech) -> SilenceLine {
    let mut matchers = Vec::new();
    for (label, patterns) in [("job", &s.jobs), ("rule", &s.rules), ("step", &s.steps)] {
        if !patterns.is_empty() {
            matchers.push(format!("{label}: {}", patterns.join(", ")));
        }
    }
    let window = match (&s.cron, s.duration_seconds) {
        (Some(cron), Some(seconds)) => format!(
            "cron `{cron}` · {}",
            crate::config::format_duration(std::time::Duration::from_secs(seconds))
        ),
        _ => format!("{} → {}", speech.time(s.starts), speech.time(s.ends)),
    };
    SilenceLine {
        id: s.id.clone(),
        runtime: s.source == "runtime",
        state: s.state.to_string(),
        matchers: matchers.join(" · "),
        window,
        comment: s.comment.clone(),
        author: s.author.clone().unwrap_or_else(|| s.source.to_string()),
    }
}

pub(super) async fn silences(State(state): State<ServerState>) -> Response {
    let config = state.config();
    let speech = speech(&state);
    let listed = async {
        let mut conn = state.store.pool().acquire().await?;
        report::silences::list(&mut conn, &config.silences, Utc::now()).await
    }
    .await;
    match listed {
        Ok(listed) => {
            let silences: Vec<SilenceLine> =
                listed.iter().map(|s| silence_line(s, speech)).collect();
            render(
                StatusCode::OK,
                &config,
                "silences.html",
                "silences",
                minijinja::context! {
                    silences => super::value(&silences),
                    writable => !config.server.tokens.is_empty(),
                },
            )
        }
        Err(e) => failed(&state, e),
    }
}

/// A notification as a row.
#[derive(Debug, Serialize)]
struct OutboxLine {
    id: i64,
    channel: String,
    what: String,
    created: String,
    attempts: i64,
    next_attempt: String,
    last_error: String,
}

fn outbox_line(row: &OutboxJson, speech: Speech) -> OutboxLine {
    let notification = &row.notification;
    let job = notification["job"]["name"].as_str().unwrap_or_default();
    let events = notification["events"].as_array();
    let first = events
        .and_then(|e| e.first())
        .map(|e| {
            format!(
                "{} {}",
                e["status"].as_str().unwrap_or_default(),
                e["rule"].as_str().unwrap_or_default()
            )
        })
        .unwrap_or_default();
    let more = events.map(|e| e.len()).unwrap_or(0).saturating_sub(1);
    OutboxLine {
        id: row.id,
        channel: row.channel.clone(),
        what: if more > 0 {
            format!("{job} · {first} (+{more})")
        } else {
            format!("{job} · {first}")
        },
        created: speech.time(Some(row.created_at)),
        attempts: row.attempts,
        next_attempt: speech.time(row.next_attempt_at.or(row.dead_at)),
        last_error: row.last_error.clone().unwrap_or_default(),
    }
}

pub(super) async fn outbox(State(state): State<ServerState>) -> Response {
    let config = state.config();
    let speech = speech(&state);
    let rows = async {
        let mut conn = state.store.pool().acquire().await?;
        let pending = outbox::list(&mut conn, OutboxStatus::Pending).await?;
        let dead = outbox::list(&mut conn, OutboxStatus::Dead).await?;
        Ok::<_, StoreError>((pending, dead))
    }
    .await;
    match rows {
        Ok((pending, dead)) => {
            let lines = |rows: &[outbox::OutboxRow]| -> Vec<OutboxLine> {
                rows.iter()
                    .map(|r| outbox_line(&OutboxJson::from(r), speech))
                    .collect()
            };
            let oldest = pending
                .first()
                .map(|r| speech.time(Some(from_millis(r.created_at))));
            render(
                StatusCode::OK,
                &config,
                "outbox.html",
                "outbox",
                minijinja::context! {
                    pending => super::value(&lines(&pending)),
                    dead => super::value(&lines(&dead)),
                    oldest,
                    writable => !config.server.tokens.is_empty(),
                },
            )
        }
        Err(e) => failed(&state, e),
    }
}
