//! Any body: the parser answers or refuses, never panics; what it reads
//! normalises, stores and comes back unchanged, and diffs empty against itself.
#![no_main]

use dtswatch::diff::diff;
use dtswatch::dts::JobSnapshot;
use dtswatch::dts::api::parse_list_job_step;
use dtswatch::store::snapshots::{decode_volatile, encode_volatile_of, join, split};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(response) = parse_list_job_step(data) else {
        return;
    };
    let snapshot = JobSnapshot::from_response(&response);
    for (path, step, _) in snapshot.walk() {
        let found = snapshot.find(&path).expect("every walked path is found");
        assert_eq!(found.key, step.key, "{path} finds its own step");
    }
    let (structure, volatile) = split(&snapshot);
    assert_eq!(join(&structure, &volatile).expect("joins"), snapshot);
    assert_eq!(decode_volatile(&encode_volatile_of(&snapshot)).expect("decodes"), volatile);
    assert!(diff(Some(&snapshot), &snapshot).is_empty());
});
