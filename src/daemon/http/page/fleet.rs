//! `/`: the fleet at a glance. How many jobs are in each state, the alerts
//! firing (first), then every job, worst first: jobs with a firing alert
//! (critical before warning), failed, failing to poll, then by latency.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::view::{AlertView, Speech, job_href, severity_rank};
use super::{message, render};
use crate::daemon::http::ServerState;
use crate::report::json::AlertJson;
use crate::report::status::JobJson;

/// One job in the list.
#[derive(Debug, Serialize)]
pub struct JobLine {
    pub id: String,
    pub name: String,
    pub href: String,
    pub region: String,
    /// `failed`, `poll_failing`, `running`, `catched`, `finished`, `unknown`, …: the CSS class.
    pub class: String,
    pub state: String,
    pub worst_latency: String,
    pub progress: String,
    pub last_poll: String,
    /// Alerts firing on the job (silenced and inhibited included).
    pub firing: usize,
    #[serde(skip)]
    order: (u8, u8, i64),
}

/// A state and how many jobs are in it.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct StateCount {
    pub class: String,
    pub text: String,
    pub count: usize,
}

/// How bad a job class is, for ordering: lower is worse.
fn class_rank(class: &str) -> u8 {
    match class {
        "failed" => 0,
        "poll_failing" => 1,
        "pause" => 2,
        "running" | "catched" => 3,
        "unknown" => 4,
        "finished" => 6,
        _ => 5,
    }
}

/// The job's state in one word: its worst step, or its polls failing.
fn classify(job: &JobJson) -> String {
    let states: Vec<&str> = job.steps.iter().map(|s| s.state.as_str()).collect();
    if states.contains(&"Failed") {
        return "failed".into();
    }
    if job.last_poll.as_ref().is_some_and(|p| p.outcome != "ok") {
        return "poll_failing".into();
    }
    let top: Vec<&str> = job
        .steps
        .iter()
        .filter(|s| s.parent.is_none())
        .map(|s| s.state.as_str())
        .collect();
    if top.is_empty() {
        return "unknown".into();
    }
    for state in ["Pause", "Running", "Catched"] {
        if top.contains(&state) {
            return state.to_lowercase();
        }
    }
    if top.iter().all(|s| *s == "Finished") {
        return "finished".into();
    }
    top.iter()
        .find(|s| **s != "Finished")
        .map(|s| s.to_lowercase())
        .unwrap_or_else(|| "unknown".into())
}

/// The job list, worst first, and the counts per state. Pure.
pub fn lines(
    jobs: &[JobJson],
    alerts: &[AlertJson],
    speech: Speech,
    words: &BTreeMap<&str, &str>,
) -> (Vec<JobLine>, Vec<StateCount>) {
    let mut out: Vec<JobLine> = jobs
        .iter()
        .filter(|job| !job.retired)
        .map(|job| {
            let class = classify(job);
            let state = match class.as_str() {
                "poll_failing" => words["poll_failing"].to_string(),
                "unknown" => words["no_data"].to_string(),
                other => job
                    .steps
                    .iter()
                    .find(|s| s.state.to_lowercase() == other)
                    .map(|s| speech.state(&s.state))
                    .unwrap_or_else(|| other.to_string()),
            };
            let worst = job.steps.iter().filter_map(|s| s.latency_ms).max();
            // Progress of a step that copies (not of one that replicates,
            // whose progress DTS leaves at 0).
            let running = job.steps.iter().find(|s| {
                s.parent.is_none()
                    && s.state != "Finished"
                    && s.latency_ms.is_none()
                    && s.progress.is_some()
            });
            let firing: Vec<&AlertJson> = alerts
                .iter()
                .filter(|a| a.job_id == job.id && a.status == "firing")
                .collect();
            let alert_rank = firing
                .iter()
                .map(|a| severity_rank(&a.severity))
                .min()
                .unwrap_or(9);
            JobLine {
                id: job.id.clone(),
                name: job.name.clone().unwrap_or_else(|| job.id.clone()),
                href: job_href(&job.id),
                region: job.region.clone(),
                order: (alert_rank, class_rank(&class), -worst.unwrap_or(0)),
                class,
                state,
                worst_latency: speech.latency(worst),
                progress: running
                    .and_then(|s| s.progress)
                    .map(|p| format!("{p}%"))
                    .unwrap_or_default(),
                last_poll: job
                    .last_poll
                    .as_ref()
                    .map(|p| speech.time(Some(p.at)))
                    .unwrap_or_else(|| words["never"].to_string()),
                firing: firing.len(),
            }
        })
        .collect();
    out.sort_by(|a, b| a.order.cmp(&b.order).then_with(|| a.name.cmp(&b.name)));
    let mut counts: Vec<StateCount> = Vec::new();
    for line in &out {
        match counts.iter_mut().find(|c| c.class == line.class) {
            Some(count) => count.count += 1,
            None => counts.push(StateCount {
                class: line.class.clone(),
                text: line.state.clone(),
                count: 1,
            }),
        }
    }
    counts.sort_by_key(|c| class_rank(&c.class));
    (out, counts)
}

pub(super) async fn page(State(state): State<ServerState>) -> Response {
    let config = state.config();
    let speech = Speech {
        locale: config.messages.locale,
        zone: config.messages.timezone,
    };
    let status = match crate::report::status::status(
        &state.store,
        &config.silences,
        &config.ha,
        chrono::Utc::now(),
    )
    .await
    {
        Ok(status) => status,
        Err(e) => {
            return message(
                StatusCode::INTERNAL_SERVER_ERROR,
                &config,
                "database",
                &e.describe(),
                "/",
            );
        }
    };
    let words = super::words::words(speech.locale);
    let (jobs, counts) = lines(&status.jobs, &status.alerts, speech, &words);
    let alerts: Vec<AlertView> = status
        .alerts
        .iter()
        .filter(|a| a.status == "firing")
        .map(|a| AlertView::of(a, speech))
        .collect();
    let outbox_dead: i64 = status.outbox.iter().map(|c| c.dead).sum();
    render(
        StatusCode::OK,
        &config,
        "fleet.html",
        "fleet",
        minijinja::context! {
            jobs => super::value(&jobs),
            counts => super::value(&counts),
            alerts => super::value(&alerts),
            outbox_dead,
            ha => super::value(&status.ha),
            refresh => true,
        },
    )
}
