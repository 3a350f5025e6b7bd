//! Table-driven tests of every rule kind through `evaluate_job`, with a clock
//! that advances 30 s per poll, plus inhibition and silences.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};

use super::*;
use crate::config::{self, Config};
use crate::diff::diff;
use crate::dts::{JobSnapshot, State, Step};

fn config(rules: &str) -> Config {
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

fn t(poll: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-30T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
        + chrono::Duration::seconds(30 * poll)
}

fn job() -> JobInfo {
    JobInfo {
        id: "dts1".into(),
        name: "orders".into(),
        region: "cn-hangzhou".into(),
    }
}

#[derive(Clone)]
struct S {
    key: &'static str,
    state: &'static str,
    progress: i64,
    latency: Option<i64>,
    err: Option<&'static str>,
    detail: Option<&'static str>,
    subs: Vec<S>,
}

fn s(key: &'static str, state: &'static str) -> S {
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
enum P {
    Ok(Vec<S>),
    Fail,
}

/// Runs polls through `evaluate_job`, carrying state like the store would,
/// and returns per poll the notices as `STATUS rule path reason [suppressed]`.
fn run(config: &Config, polls: Vec<P>) -> (Vec<Vec<String>>, BTreeMap<AlertKey, AlertState>) {
    run_with(config, polls, &[])
}

fn run_with(
    config: &Config,
    polls: Vec<P>,
    silences: &[Silence],
) -> (Vec<Vec<String>>, BTreeMap<AlertKey, AlertState>) {
    let mut states: BTreeMap<AlertKey, AlertState> = BTreeMap::new();
    let mut previous: Option<(JobSnapshot, DateTime<Utc>)> = None;
    let mut out = Vec::new();
    let error = ApiError::Api {
        code: "Throttling.User".into(),
        message: "denied".into(),
        status: 400,
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
                    format!(
                        "{} {} {} {}{held}",
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

fn flat(out: &[Vec<String>]) -> Vec<String> {
    out.iter().flatten().cloned().collect()
}

#[test]
fn failed_fires_and_resolves_per_step_and_sub_step() {
    let c = config("[[rules]]\nname = \"f\"\nkind = \"failed\"\nchannels = [\"c\"]");
    let (out, _) = run(
        &c,
        vec![
            P::Ok(vec![s("a", "Running").sub(s("x", "running"))]),
            P::Ok(vec![s("a", "Running").sub(s("x", "Failed"))]),
            P::Ok(vec![s("a", "Failed").sub(s("x", "Failed"))]),
            P::Ok(vec![s("a", "Running").sub(s("x", "running"))]),
        ],
    );
    assert_eq!(
        out,
        vec![
            vec![],
            vec!["firing f a/x first_notification".to_string()],
            vec!["firing f a first_notification".to_string()],
            vec![
                "resolved f a resolved".to_string(),
                "resolved f a/x resolved".to_string()
            ],
        ]
    );
}

#[test]
fn failed_with_custom_states_and_sub_steps_off() {
    let c = config(
        "[[rules]]\nname = \"f\"\nkind = \"failed\"\nstates = [\"Pause\", \"Failed\"]\nsub_steps = false\nchannels = [\"c\"]",
    );
    let (out, _) = run(&c, vec![P::Ok(vec![s("a", "Pause").sub(s("x", "Failed"))])]);
    assert_eq!(flat(&out), ["firing f a first_notification"]);
}

#[test]
fn a_failed_poll_neither_fires_nor_resolves() {
    let c = config("[[rules]]\nname = \"f\"\nkind = \"failed\"\nchannels = [\"c\"]");
    let (out, states) = run(
        &c,
        vec![
            P::Ok(vec![s("a", "Failed")]),
            P::Fail,
            P::Fail,
            P::Ok(vec![s("a", "Failed")]),
        ],
    );
    assert_eq!(flat(&out), ["firing f a first_notification"]);
    assert_eq!(
        states[&AlertKey {
            rule: "f".into(),
            path: "a".into()
        }]
            .status,
        Status::Firing
    );
}

#[test]
fn error_fingerprints_decide_when_to_notify_again() {
    let c = config("[[rules]]\nname = \"e\"\nkind = \"error\"\nchannels = [\"c\"]");
    let (out, _) = run(
        &c,
        vec![
            P::Ok(vec![
                s("a", "Running").err("fullcheck find different records : 2372"),
            ]),
            P::Ok(vec![
                s("a", "Running").err("fullcheck find different records : 2380"),
            ]),
            P::Ok(vec![
                s("a", "Running").err("UncaughtException:java.lang.NullPointerException"),
            ]),
            P::Ok(vec![s("a", "Running")]),
        ],
    );
    assert_eq!(
        out,
        vec![
            vec!["firing e a first_notification".to_string()],
            vec![],
            vec!["firing e a fingerprint_changed".to_string()],
            vec!["resolved e a resolved".to_string()],
        ]
    );
}

#[test]
fn error_details_count_unless_they_say_success() {
    let c = config("[[rules]]\nname = \"e\"\nkind = \"error\"\nchannels = [\"c\"]");
    let (out, _) = run(
        &c,
        vec![
            P::Ok(vec![
                s("a", "Running").detail("200"),
                s("b", "Running").detail("Success"),
            ]),
            P::Ok(vec![
                s("a", "Running").detail("DTS-1020042"),
                s("b", "Running").detail("Success"),
            ]),
        ],
    );
    assert_eq!(flat(&out), ["firing e a first_notification"]);
}

#[test]
fn error_pattern_and_ignore() {
    let c = config(
        "[[rules]]\nname = \"e\"\nkind = \"error\"\npattern = \"(?i)exception\"\nignore = \"Timeout\"\nchannels = [\"c\"]",
    );
    let (out, _) = run(
        &c,
        vec![P::Ok(vec![
            s("a", "Running").err("fullcheck find different records : 1"),
            s("b", "Running").err("NullPointerException"),
            s("c", "Running").err("SocketTimeoutException"),
        ])],
    );
    assert_eq!(flat(&out), ["firing e b first_notification"]);
}

#[test]
fn latency_threshold_edges_for_and_hysteresis() {
    let c = config(
        "[[rules]]\nname = \"l\"\nkind = \"latency\"\nthreshold = \"300s\"\nresolve_below = \"60s\"\nfor = \"60s\"\nchannels = [\"c\"]",
    );
    let (out, _) = run(
        &c,
        vec![
            P::Ok(vec![s("a", "Running").latency(300_000)]),
            P::Ok(vec![s("a", "Running").latency(300_001)]),
            P::Ok(vec![s("a", "Running").latency(400_000)]),
            P::Ok(vec![s("a", "Running").latency(500_000)]),
            P::Ok(vec![s("a", "Running").latency(120_000)]),
            P::Ok(vec![s("a", "Running").latency(60_001)]),
            P::Ok(vec![s("a", "Running").latency(60_000)]),
        ],
    );
    assert_eq!(
        out,
        vec![
            vec![],
            vec![],
            vec![],
            vec!["firing l a first_notification".to_string()],
            vec![],
            vec![],
            vec!["resolved l a resolved".to_string()],
        ],
        "exactly the threshold does not fire; 60 s above it does; below threshold but above resolve_below holds"
    );
}

#[test]
fn latency_without_hysteresis_resolves_at_the_threshold_and_ignores_not_applicable() {
    let c = config(
        "[[rules]]\nname = \"l\"\nkind = \"latency\"\nthreshold = \"10s\"\nchannels = [\"c\"]",
    );
    let mut not_applicable = s("a", "Running");
    not_applicable.latency = None;
    let (out, _) = run(
        &c,
        vec![
            P::Ok(vec![s("a", "Running").latency(10_001)]),
            P::Ok(vec![not_applicable]),
            P::Ok(vec![s("a", "Running").latency(10_000)]),
        ],
    );
    assert_eq!(
        flat(&out),
        ["firing l a first_notification", "resolved l a resolved"]
    );
    assert_eq!(
        out[1],
        Vec::<String>::new(),
        "-1 latency is ignored, not a recovery"
    );
}

#[test]
fn latency_repeat_while_firing() {
    let c = config(
        "[[rules]]\nname = \"l\"\nkind = \"latency\"\nthreshold = \"10s\"\nrepeat = \"1m\"\nchannels = [\"c\"]",
    );
    let polls = (0..5)
        .map(|_| P::Ok(vec![s("a", "Running").latency(20_000)]))
        .collect();
    let (out, _) = run(&c, polls);
    assert_eq!(
        flat(&out),
        [
            "firing l a first_notification",
            "firing l a repeat",
            "firing l a repeat"
        ]
    );
}

#[test]
fn stalled_counts_from_when_progress_stopped() {
    let c =
        config("[[rules]]\nname = \"st\"\nkind = \"stalled\"\nfor = \"90s\"\nchannels = [\"c\"]");
    let (out, _) = run(
        &c,
        vec![
            P::Ok(vec![s("a", "Running").progress(10)]),
            P::Ok(vec![s("a", "Running").progress(63)]),
            P::Ok(vec![s("a", "Running").progress(63)]),
            P::Ok(vec![s("a", "Running").progress(63)]),
            P::Ok(vec![s("a", "Running").progress(63)]),
            P::Ok(vec![s("a", "Running").progress(64)]),
        ],
    );
    assert_eq!(
        out,
        vec![
            vec![],
            vec![],
            vec![],
            vec![],
            vec!["firing st a first_notification".to_string()],
            vec!["resolved st a resolved".to_string()],
        ],
        "63 first seen at poll 1, stalled for 90 s at poll 4"
    );
}

#[test]
fn stalled_ignores_finished_complete_and_replicating_steps() {
    let c =
        config("[[rules]]\nname = \"st\"\nkind = \"stalled\"\nfor = \"0s\"\nchannels = [\"c\"]");
    let polls = (0..3)
        .map(|_| {
            P::Ok(vec![
                s("done", "Finished").progress(40),
                s("full", "Running").progress(100),
                s("incr", "Running").progress(0).latency(800),
                s("stuck", "Running").progress(40),
            ])
        })
        .collect();
    let (out, _) = run(&c, polls);
    assert_eq!(flat(&out), ["firing st stuck first_notification"]);
}

#[test]
fn transitions_are_one_shot_and_need_a_real_state_change() {
    let c = config(
        "[[rules]]\nname = \"tr\"\nkind = \"transition\"\nfrom = [\"Running\"]\nto = [\"Finished\"]\nchannels = [\"c\"]",
    );
    let (out, states) = run(
        &c,
        vec![
            P::Ok(vec![s("a", "Finished"), s("b", "Running"), s("c", "Init")]),
            P::Ok(vec![
                s("a", "Finished"),
                s("b", "Finished"),
                s("c", "Finished"),
            ]),
            P::Ok(vec![
                s("a", "Finished"),
                s("b", "Finished"),
                s("c", "Finished"),
            ]),
        ],
    );
    assert_eq!(
        out,
        vec![vec![], vec!["firing tr b transition".to_string()], vec![]]
    );
    assert!(states.is_empty(), "one-shot rules keep no state");
}

#[test]
fn unreachable_fires_after_for_and_resolves_on_success() {
    let c = config(
        "[[rules]]\nname = \"u\"\nkind = \"unreachable\"\nfor = \"60s\"\nchannels = [\"c\"]",
    );
    let (out, _) = run(
        &c,
        vec![P::Ok(vec![]), P::Fail, P::Fail, P::Fail, P::Ok(vec![])],
    );
    assert_eq!(
        out,
        vec![
            vec![],
            vec![],
            vec![],
            vec!["firing u  first_notification".to_string()],
            vec!["resolved u  resolved".to_string()]
        ]
    );
}

#[test]
fn a_step_that_disappears_resolves_with_step_gone() {
    let c = config("[[rules]]\nname = \"f\"\nkind = \"failed\"\nchannels = [\"c\"]");
    let (out, _) = run(
        &c,
        vec![
            P::Ok(vec![s("a", "Failed"), s("b", "Running")]),
            P::Ok(vec![s("b", "Running")]),
        ],
    );
    assert_eq!(
        flat(&out),
        ["firing f a first_notification", "resolved f a step_gone"]
    );
}

#[test]
fn retiring_a_job_resolves_its_alerts() {
    let c = config("[[rules]]\nname = \"f\"\nkind = \"failed\"\nchannels = [\"c\"]");
    let (_, states) = run(&c, vec![P::Ok(vec![s("a", "Failed")])]);
    let evaluation = evaluate_job(&c.rules, &job(), &states, &Outcome::Retired, &[], t(5));
    let reasons: Vec<&str> = evaluation
        .notices
        .iter()
        .map(|n| n.event.reason.as_str())
        .collect();
    assert_eq!(reasons, ["job_retired"]);
    assert_eq!(evaluation.notices[0].event.status, EventStatus::Resolved);
}

#[test]
fn send_resolved_off_records_but_does_not_send() {
    let c = config(
        "[[rules]]\nname = \"f\"\nkind = \"failed\"\nsend_resolved = false\nchannels = [\"c\"]",
    );
    let (out, _) = run(
        &c,
        vec![
            P::Ok(vec![s("a", "Failed")]),
            P::Ok(vec![s("a", "Running")]),
        ],
    );
    assert_eq!(
        flat(&out),
        [
            "firing f a first_notification",
            "resolved f a resolved [send_resolved_off]"
        ]
    );
}

#[test]
fn jobs_and_steps_matchers() {
    let c = config(
        "[[rules]]\nname = \"f\"\nkind = \"failed\"\nsteps = [\"step-b\"]\nchannels = [\"c\"]\n\n[[rules]]\nname = \"g\"\nkind = \"failed\"\njobs = [\"billing*\"]\nchannels = [\"c\"]",
    );
    let (out, _) = run(
        &c,
        vec![P::Ok(vec![
            s("a", "Failed"),
            s("b", "Failed").sub(s("x", "Failed")),
        ])],
    );
    assert_eq!(
        flat(&out),
        [
            "firing f b first_notification",
            "firing f b/x first_notification"
        ],
        "sub-steps of a matching step match"
    );
}

#[test]
fn a_failed_step_inhibits_lower_severity_alerts_of_the_same_step() {
    let c = config(
        "[[rules]]\nname = \"f\"\nkind = \"failed\"\nchannels = [\"c\"]\n\n[[rules]]\nname = \"e\"\nkind = \"error\"\nchannels = [\"c\"]\n\n[[rules]]\nname = \"e2\"\nkind = \"error\"\nseverity = \"critical\"\nchannels = [\"c\"]",
    );
    let (out, _) = run(
        &c,
        vec![
            P::Ok(vec![
                s("a", "Failed")
                    .err("boom")
                    .sub(s("x", "running").err("sub boom")),
                s("b", "Running").err("other"),
            ]),
            P::Ok(vec![
                s("a", "Running")
                    .err("boom")
                    .sub(s("x", "running").err("sub boom")),
                s("b", "Running").err("other"),
            ]),
        ],
    );
    assert_eq!(
        out[0],
        [
            "firing f a first_notification",
            "firing e a first_notification [inhibited:f]",
            "firing e a/x first_notification [inhibited:f]",
            "firing e b first_notification",
            "firing e2 a first_notification",
            "firing e2 a/x first_notification",
            "firing e2 b first_notification",
        ]
    );
    assert_eq!(
        out[1],
        [
            "resolved f a resolved",
            "firing e a no_longer_suppressed",
            "firing e a/x no_longer_suppressed"
        ],
        "once the failure resolves, the held-back alerts that still fire are sent"
    );
}

#[test]
fn unreachable_inhibits_the_whole_job_unless_told_otherwise() {
    let c = config(
        "[[rules]]\nname = \"u\"\nkind = \"unreachable\"\nfor = \"0s\"\nresolve_after = 2\nchannels = [\"c\"]\n\n[[rules]]\nname = \"l\"\nkind = \"latency\"\nthreshold = \"1s\"\nchannels = [\"c\"]\n\n[[rules]]\nname = \"l2\"\nkind = \"latency\"\nthreshold = \"1s\"\ninhibited_by = []\nchannels = [\"c\"]",
    );
    let lagging = || P::Ok(vec![s("a", "Running").latency(5000)]);
    let (out, _) = run(&c, vec![P::Fail, lagging(), lagging(), lagging()]);
    assert_eq!(
        out,
        vec![
            vec!["firing u  first_notification".to_string()],
            vec![
                "firing l a first_notification [inhibited:u]".to_string(),
                "firing l2 a first_notification".to_string(),
            ],
            vec![
                "resolved u  resolved".to_string(),
                "firing l a no_longer_suppressed".to_string()
            ],
            vec![],
        ],
        "while the job counts as unreachable its latency alert waits; l2 opted out"
    );
}

#[test]
fn silences_hold_back_and_owe_the_notification_until_they_end() {
    let c = config("[[rules]]\nname = \"f\"\nkind = \"failed\"\nchannels = [\"c\"]");
    let silence = Silence {
        id: "7".into(),
        jobs: Some(crate::config::Matcher::new(&["orders".to_string()]).unwrap()),
        rules: None,
        steps: None,
        window: crate::config::SilenceWindow::Fixed {
            starts: None,
            ends: t(2),
        },
        comment: "maintenance".into(),
    };
    let (out, _) = run_with(
        &c,
        vec![
            P::Ok(vec![s("a", "Failed")]),
            P::Ok(vec![s("a", "Failed")]),
            P::Ok(vec![s("a", "Failed")]),
            P::Ok(vec![s("a", "Failed")]),
        ],
        &[silence],
    );
    assert_eq!(
        out,
        vec![
            vec!["firing f a first_notification [silenced:7]".to_string()],
            vec![],
            vec!["firing f a no_longer_suppressed".to_string()],
            vec![],
        ]
    );
}

#[test]
fn an_alert_silenced_for_its_whole_life_resolves_quietly() {
    let c = config("[[rules]]\nname = \"f\"\nkind = \"failed\"\nchannels = [\"c\"]");
    let silence = Silence {
        id: "8".into(),
        jobs: None,
        rules: Some(crate::config::Matcher::new(&["f".to_string()]).unwrap()),
        steps: None,
        window: crate::config::SilenceWindow::Fixed {
            starts: None,
            ends: t(10),
        },
        comment: String::new(),
    };
    let (out, _) = run_with(
        &c,
        vec![
            P::Ok(vec![s("a", "Failed")]),
            P::Ok(vec![s("a", "Running")]),
        ],
        &[silence],
    );
    assert_eq!(
        flat(&out),
        [
            "firing f a first_notification [silenced:8]",
            "resolved f a resolved [never_notified]"
        ]
    );
}

#[test]
fn events_carry_what_a_message_needs() {
    let c = config(
        "[[rules]]\nname = \"f\"\nkind = \"failed\"\nrunbook = \"https://wiki/x\"\nchannels = [\"c\"]",
    );
    let snapshot1 = JobSnapshot {
        steps: vec![s("a", "Running").sub(s("x", "running")).build()],
    };
    let snapshot2 = JobSnapshot {
        steps: vec![
            s("a", "Running")
                .sub(s("x", "Failed").err("DTS-1 boom").detail("DTS-1"))
                .build(),
        ],
    };
    let changes = diff(Some(&snapshot1), &snapshot2);
    let outcome = Outcome::Polled {
        snapshot: &snapshot2,
        previous: Some((&snapshot1, t(0))),
        changes: &changes,
    };
    let e = evaluate_job(&c.rules, &job(), &BTreeMap::new(), &outcome, &[], t(1));
    let event = &e.notices[0].event;
    assert_eq!(event.severity, Severity::Critical);
    assert_eq!(event.job, job());
    let step = event.step.as_ref().unwrap();
    assert_eq!(step.label, "step-a (03) › step-x");
    assert_eq!(step.sub_step_id.as_deref(), Some("x"));
    assert_eq!(step.parent_name.as_deref(), Some("step-a"));
    assert_eq!(
        event.changes,
        [
            "State: running → Failed",
            "ErrMsg: — → \"DTS-1 boom\"",
            "ErrorDetails: — → DTS-1"
        ]
    );
    let current = event.current.as_ref().unwrap();
    assert_eq!(current.err_msg.as_deref(), Some("DTS-1 boom"));
    assert_eq!(current.error_details[0].code.as_deref(), Some("DTS-1"));
    assert_eq!(event.first_seen, t(1));
    assert_eq!(event.runbook.as_deref(), Some("https://wiki/x"));
}
