//! Each rule kind: when it fires, when it resolves, and what it says.

use super::*;

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
