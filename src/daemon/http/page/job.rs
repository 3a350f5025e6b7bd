//! `/jobs/{id}`: one job. Its steps and sub-steps as the last successful
//! poll saw them, its alerts, a chart of latency and progress over the
//! stored polls (`?since=`, default 24 h), and its recent history.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::view::{AlertView, Speech, StepView};
use super::{chart, message, render};
use crate::config::parse_duration;
use crate::daemon::http::ServerState;
use crate::report;
use crate::store::{StoreError, jobs};

/// The history lines shown under the chart, newest first.
const HISTORY_LINES: usize = 50;

#[derive(Debug, Deserialize)]
pub(super) struct JobQuery {
    since: Option<String>,
}

#[derive(Debug, Serialize)]
struct HistoryLine {
    at: String,
    kind: String,
    text: String,
}

pub(super) async fn page(
    State(state): State<ServerState>,
    Path(id): Path<String>,
    Query(query): Query<JobQuery>,
) -> Response {
    let config = state.config();
    let words = super::words::words(config.messages.locale);
    let window = match query.since.as_deref().map(parse_duration) {
        None => std::time::Duration::from_secs(24 * 3600),
        Some(Ok(d)) => d,
        Some(Err(why)) => {
            return message(
                StatusCode::BAD_REQUEST,
                &config,
                words["refused"],
                &format!("since: {why}"),
                "/",
            );
        }
    };
    match build(&state, &id, window).await {
        Ok(Some(context)) => render(StatusCode::OK, &config, "job.html", "fleet", context),
        Ok(None) => message(
            StatusCode::NOT_FOUND,
            &config,
            words["refused"],
            &format!("no job `{id}`"),
            "/",
        ),
        Err(e) => message(
            StatusCode::INTERNAL_SERVER_ERROR,
            &config,
            "database",
            &e.describe(),
            "/",
        ),
    }
}

async fn build(
    state: &ServerState,
    id: &str,
    window: std::time::Duration,
) -> Result<Option<minijinja::Value>, StoreError> {
    let config = state.config();
    let speech = Speech {
        locale: config.messages.locale,
        zone: config.messages.timezone,
    };
    let now = Utc::now();
    let since = crate::scheduler::earlier(now, window);
    let row = {
        let mut conn = state.store.pool().acquire().await?;
        jobs::find(&mut conn, id).await?
    };
    let Some(row) = row else {
        return Ok(None);
    };
    let Some(job) = report::status::job(&state.store, &row.dts_job_id).await? else {
        return Ok(None);
    };
    let alerts: Vec<AlertView> = {
        let mut conn = state.store.pool().acquire().await?;
        report::alerts::list(&mut conn, &config.silences, now)
            .await?
            .iter()
            .filter(|a| a.job_id == job.id)
            .map(|a| AlertView::of(a, speech))
            .collect()
    };
    let points = report::series::series(&state.store, &row, since).await?;
    let svg = chart::svg(&points, speech.locale, speech.zone);
    let history: Vec<HistoryLine> = report::history::timeline(&state.store, &row, since, false)
        .await?
        .into_iter()
        .rev()
        .take(HISTORY_LINES)
        .map(|entry| HistoryLine {
            at: speech.time(Some(entry.at)),
            kind: entry.kind,
            text: entry.text,
        })
        .collect();
    let steps: Vec<StepView> = job.steps.iter().map(|s| StepView::of(s, speech)).collect();
    Ok(Some(minijinja::context! {
        job => minijinja::context! {
            name => job.name.clone().unwrap_or_else(|| job.id.clone()),
            id => job.id,
            region => job.region,
            source => job.source,
            last_poll => job.last_poll.as_ref().map(|p| speech.time(Some(p.at))),
            last_outcome => job.last_poll.as_ref().map(|p| p.outcome.clone()),
        },
        steps => super::value(&steps),
        alerts => super::value(&alerts),
        chart => minijinja::Value::from_safe_string(svg),
        points => points.len(),
        window => crate::config::format_duration(window),
        history => super::value(&history),
    }))
}
