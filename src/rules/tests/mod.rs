//! Table-driven tests of `evaluate_job`, with a clock that advances 30 s per
//! poll: every rule kind (`kinds.rs`), and what holds notices back or lets
//! them go (`suppression.rs`). This file holds the scenario builders.

mod fold;
mod kinds;
mod suppression;

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};

use super::*;
use crate::config::{self, Config};
use crate::diff::diff;
use crate::dts::{JobSnapshot, State, Step};

pub(super) fn config(rules: &str) -> Config {
    let text = format!(
        r#"
[[accounts]]
name = "a"
access_key_id = "x"
access_key_secret = "y"

[[jobs]]
id = "dts1"
region = "cn-hangzhou"
name = "orders"

[channels.c]
type = "console"

{rules}
"#
    );
    config::parse(&text, Path::new("t.toml"), &|_| None).unwrap_or_else(|e| panic!("{e}"))
}

pub(super) fn t(poll: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-30T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
        + chrono::Duration::seconds(30 * poll)
}

pub(super) fn job() -> JobInfo {
    JobInfo {
        id: "dts1".into(),
        name: "orders".into(),
        region: "cn-hangzhou".into(),
        console_url: None,
    }
}

#[derive(Clone)]
pub(super) struct S {
    key: &'static str,
    state: &'static str,
    progress: i64,
    latency: Option<i64>,
    err: Option<&'static str>,
    detail: Option<&'static str>,
    subs: Vec<S>,
}

pub(super) fn s(key: &'static str, state: &'static str) -> S {
    S {
        key,
        state,
        progress: 50,
        latency: None,
        err: None,
        detail: None,
        subs: vec![],
    }
}

impl S {
    fn progress(mut self, p: i64) -> Self {
        self.progress = p;
        self
    }
    fn latency(mut self, ms: i64) -> Self {
        self.latency = Some(ms);
        self
    }
    fn err(mut self, e: &'static str) -> Self {
        self.err = Some(e);
        self
    }
    fn detail(mut self, code: &'static str) -> Self {
        self.detail = Some(code);
        self
    }
    fn sub(mut self, sub: S) -> Self {
        self.subs.push(sub);
        self
    }
    fn build(&self) -> Step {
        Step {
            key: self.key.into(),
            id: Some(self.key.into()),
            name: format!("step-{}", self.key).into(),
            code: Some("03".into()),
            serial: None,
            state: State::parse(self.state),
            state_raw: self.state.into(),
            progress: Some(self.progress),
            latency_ms: self.latency,
            err_msg: self.err.map(Into::into),
            error_details: self
                .detail
                .map(|c| {
                    vec![crate::dts::ErrorDetail {
                        code: Some(c.into()),
                        help_url: None,
                    }]
                })
                .unwrap_or_default(),
            need_acceleration: None,
            redis_phase: None,
            sub_job_count: None,
            sub_steps: self.subs.iter().map(S::build).collect(),
        }
    }
}

/// A poll: steps seen, or a failure.
pub(super) enum P {
    Ok(Vec<S>),
    Fail,
}

/// Runs polls through `evaluate_job`, carrying state like the store would,
/// and returns per poll the notices as `STATUS rule path reason [suppressed]`.
pub(super) fn run(
    config: &Config,
    polls: Vec<P>,
) -> (Vec<Vec<String>>, BTreeMap<AlertKey, AlertState>) {
    run_with(config, polls, &[])
}

pub(super) fn run_with(
    config: &Config,
    polls: Vec<P>,
    silences: &[Silence],
) -> (Vec<Vec<String>>, BTreeMap<AlertKey, AlertState>) {
    let mut states: BTreeMap<AlertKey, AlertState> = BTreeMap::new();
    let mut previous: Option<(JobSnapshot, DateTime<Utc>)> = None;
    let mut out = Vec::new();
    let error = ApiError::Api {
        code: "ServiceUnavailable".into(),
        message: "The request has failed due to a temporary failure of the server.".into(),
        status: 503,
        request_id: None,
        recommend: None,
    };
    for (i, poll) in polls.into_iter().enumerate() {
        let now = t(i as i64);
        let evaluation = match &poll {
            P::Ok(steps) => {
                let snapshot = JobSnapshot {
                    steps: steps.iter().map(S::build).collect(),
                };
                let changes = diff(previous.as_ref().map(|(p, _)| p), &snapshot);
                let outcome = Outcome::Polled {
                    snapshot: &snapshot,
                    previous: previous.as_ref().map(|(p, at)| (p, *at)),
                    changes: &changes,
                };
                let e = evaluate_job(&config.rules, &job(), &states, &outcome, silences, now);
                previous = Some((snapshot.clone(), now));
                e
            }
            P::Fail => evaluate_job(
                &config.rules,
                &job(),
                &states,
                &Outcome::Failed(&error),
                silences,
                now,
            ),
        };
        for (k, st) in evaluation.updates {
            states.insert(k, st);
        }
        out.push(
            evaluation
                .notices
                .iter()
                .map(|n| {
                    let held = n
                        .suppressed
                        .as_ref()
                        .map(|s| format!(" [{}]", s.describe()))
                        .unwrap_or_default();
                    let folded: Vec<&str> =
                        n.event.folded.iter().map(|f| f.name.as_str()).collect();
                    let folded = if folded.is_empty() {
                        String::new()
                    } else {
                        format!(" (+{})", folded.join(","))
                    };
                    format!(
                        "{} {} {} {}{folded}{held}",
                        n.event.status.as_str(),
                        n.event.rule,
                        n.key.path,
                        n.event.reason.as_str()
                    )
                })
                .collect(),
        );
    }
    (out, states)
}

pub(super) fn flat(out: &[Vec<String>]) -> Vec<String> {
    out.iter().flatten().cloned().collect()
}
