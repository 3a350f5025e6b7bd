//! send_resolved, matchers, inhibition and silences, and what events carry.

use super::*;

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
        "[[rules]]\nname = \"f\"\nkind = \"failed\"\nsteps = [\"step-b\"]\nfold_sub_steps = false\nchannels = [\"c\"]\n\n[[rules]]\nname = \"g\"\nkind = \"failed\"\njobs = [\"billing*\"]\nchannels = [\"c\"]",
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
        event
            .changes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
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

#[test]
fn a_held_back_alert_sent_as_changed_is_not_sent_again_as_no_longer_suppressed() {
    let c = config(
        "[[rules]]\nname = \"f\"\nkind = \"failed\"\nchannels = [\"c\"]\n\n[[rules]]\nname = \"e\"\nkind = \"error\"\nchannels = [\"c\"]",
    );
    let (out, _) = run(
        &c,
        vec![
            P::Ok(vec![s("a", "Failed").err("boom")]),
            // The failure ends and the error text changes in the same poll.
            P::Ok(vec![s("a", "Running").err("boom, again")]),
            P::Ok(vec![s("a", "Running").err("boom, again")]),
            P::Ok(vec![s("a", "Running").err("boom, again")]),
        ],
    );
    assert_eq!(
        out,
        vec![
            vec![
                "firing f a first_notification".to_string(),
                "firing e a first_notification [inhibited:f]".to_string(),
            ],
            vec![
                "resolved f a resolved".to_string(),
                "firing e a fingerprint_changed".to_string(),
            ],
            vec![],
            vec![],
        ],
        "one notification when the suppression ends, not two"
    );
}
