//! Two bodies (split at the first 0xFF byte, which UTF-8 JSON never holds):
//! the diff names only steps that exist, and "appeared" / "disappeared" only
//! for steps on the right side.
#![no_main]

use dtswatch::diff::{ChangeKind, diff};
use dtswatch::dts::JobSnapshot;
use dtswatch::dts::api::parse_list_job_step;
use libfuzzer_sys::fuzz_target;

fn snapshot(body: &[u8]) -> JobSnapshot {
    parse_list_job_step(body)
        .map(|r| JobSnapshot::from_response(&r))
        .unwrap_or_default()
}

fuzz_target!(|data: &[u8]| {
    let (left, right) = match data.iter().position(|b| *b == 0xFF) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let (a, b) = (snapshot(left), snapshot(right));
    assert!(diff(Some(&a), &a).is_empty());
    let first = diff(None, &b);
    assert_eq!(first.len(), b.walk().len(), "a first poll: every step appeared");
    for change in diff(Some(&a), &b) {
        let (in_a, in_b) = (a.find(&change.path).is_some(), b.find(&change.path).is_some());
        match change.kind {
            ChangeKind::Appeared => assert!(in_b && !in_a, "{}", change.path),
            ChangeKind::Disappeared => assert!(in_a && !in_b, "{}", change.path),
            _ => assert!(in_a && in_b, "{}", change.path),
        }
    }
});
