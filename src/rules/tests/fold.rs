//! One alert per fault: a sub-step that says what its step says is named
//! inside the step's alert; one that says something else, or already has
//! an alert, or belongs to a rule that wants sub-steps apart, is not.

use super::*;

const FAILED: &str = "[[rules]]\nname = \"f\"\nkind = \"failed\"\nchannels = [\"c\"]";

#[test]
fn a_step_and_its_sub_step_failing_alike_are_one_alert() {
    let (out, states) = run(
        &config(FAILED),
        vec![
            P::Ok(vec![s("a", "Running").sub(s("x", "Running"))]),
            P::Ok(vec![s("a", "Failed").sub(s("x", "Failed"))]),
            P::Ok(vec![s("a", "Running").sub(s("x", "Running"))]),
        ],
    );
    assert_eq!(
        flat(&out),
        [
            "firing f a first_notification (+step-x)",
            "resolved f a resolved"
        ]
    );
    assert!(
        !states.keys().any(|k| k.path == "a/x"),
        "the folded sub-step has no alert of its own: {states:?}"
    );
}

#[test]
fn a_sub_step_saying_something_else_keeps_its_own_alert() {
    let error = "[[rules]]\nname = \"e\"\nkind = \"error\"\nchannels = [\"c\"]";
    let (out, _) = run(
        &config(error),
        vec![P::Ok(vec![
            s("a", "Failed")
                .err("DTS-1 boom")
                .sub(s("x", "Failed").err("DTS-2 other")),
            s("b", "Failed")
                .err("DTS-3 same")
                .sub(s("y", "Failed").err("DTS-3 same")),
        ])],
    );
    assert_eq!(
        flat(&out),
        [
            "firing e a first_notification",
            "firing e a/x first_notification",
            "firing e b first_notification (+step-y)"
        ]
    );
}

#[test]
fn a_sub_step_already_alerting_stays_apart_and_rules_can_ask_for_sub_steps() {
    let (out, _) = run(
        &config(FAILED),
        vec![
            P::Ok(vec![s("a", "Running").sub(s("x", "Failed"))]),
            P::Ok(vec![s("a", "Failed").sub(s("x", "Failed"))]),
        ],
    );
    assert_eq!(
        out,
        [
            vec!["firing f a/x first_notification".to_string()],
            vec!["firing f a first_notification".to_string()]
        ]
    );
    let apart = format!("{FAILED}\nfold_sub_steps = false");
    let (out, _) = run(
        &config(&apart),
        vec![P::Ok(vec![s("a", "Failed").sub(s("x", "Failed"))])],
    );
    assert_eq!(
        flat(&out),
        [
            "firing f a first_notification",
            "firing f a/x first_notification"
        ]
    );
}
