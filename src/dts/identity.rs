//! Step identity across polls: which step of this poll is which step of the
//! previous one. The rule (documented in the README) is `JobStepId`, then
//! (`Code`, `JobStepName`), then `Serial`; a matched step keeps the key it
//! had, so its alerts, history and diffs follow it when DTS renumbers ids.

use std::collections::HashSet;
use std::sync::Arc;

use super::snapshot::{JobSnapshot, Step, Text};

/// The snapshot with every step keeping the identity it had in `previous`.
///
/// DTS sometimes returns the same steps under new `JobStepId`s; keyed by id
/// alone, every step would "disappear" and "appear" again and its alerts
/// resolve and re-fire. A step is matched to a step of the previous poll by
/// `JobStepId`, then by (`Code`, `JobStepName`), then by `Serial` — each
/// previous step at most once, sub-steps within their matched parent — and
/// a matched step takes the previous step's key. Returns `current` itself
/// when nothing needs re-keying (the usual case: no copy).
pub fn carry_keys(current: &Arc<JobSnapshot>, previous: &JobSnapshot) -> Arc<JobSnapshot> {
    if keys_line_up(&current.steps, &previous.steps) {
        return current.clone();
    }
    let mut snapshot = JobSnapshot::clone(current);
    adopt_keys(&mut snapshot.steps, &previous.steps);
    Arc::new(snapshot)
}

/// Same ids and keys at the same positions, all the way down: matching
/// would change nothing.
fn keys_line_up(current: &[Step], previous: &[Step]) -> bool {
    current.len() == previous.len()
        && current.iter().zip(previous).all(|(c, p)| {
            c.key == p.key && c.id == p.id && keys_line_up(&c.sub_steps, &p.sub_steps)
        })
}

/// How two steps can be the same step, strongest first.
const MATCH_RULES: [fn(&Step, &Step) -> bool; 3] = [
    |c, p| c.id.is_some() && c.id == p.id,
    |c, p| c.code == p.code && c.name == p.name,
    |c, p| c.serial.is_some() && c.serial == p.serial,
];

fn adopt_keys(current: &mut [Step], previous: &[Step]) {
    let mut claimed = vec![false; previous.len()];
    let mut matched: Vec<Option<usize>> = vec![None; current.len()];
    for same in MATCH_RULES {
        for (step, slot) in current.iter().zip(matched.iter_mut()) {
            if slot.is_some() {
                continue;
            }
            if let Some(j) = (0..previous.len()).find(|&j| !claimed[j] && same(step, &previous[j]))
            {
                claimed[j] = true;
                *slot = Some(j);
            }
        }
    }
    for (step, slot) in current.iter_mut().zip(&matched) {
        if let Some(j) = *slot {
            step.key = previous[j].key.clone();
            adopt_keys(&mut step.sub_steps, &previous[j].sub_steps);
        }
    }
    // A new step whose own key another step just adopted gets a suffix.
    let mut taken: HashSet<Text> = current
        .iter()
        .zip(&matched)
        .filter(|(_, slot)| slot.is_some())
        .map(|(step, _)| step.key.clone())
        .collect();
    for (step, slot) in current.iter_mut().zip(&matched) {
        if slot.is_some() {
            continue;
        }
        let base = step.key.clone();
        let mut n = 2;
        while taken.contains(&step.key) {
            step.key = Arc::from(format!("{base}#{n}"));
            n += 1;
        }
        taken.insert(step.key.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dts::api::parse_list_job_step;

    /// One step with a sub-step, under ids `ids.0` and `ids.1`.
    fn snapshot(ids: (&str, &str), name: &str, serial: i64) -> Arc<JobSnapshot> {
        let json = format!(
            r#"{{"JobSteps":[{{"JobStepId":"{}","Code":"03","JobStepName":"{name}","Serial":{serial},"State":"Failed","ErrMsg":"DTS-1020042",
               "SubJobSteps":[{{"JobStepId":"{}","JobStepName":"order_items","Serial":1,"State":"Failed"}}]}},
              {{"JobStepId":"inc","Code":"04","JobStepName":"增量迁移","Serial":{},"State":"Running"}}]}}"#,
            ids.0,
            ids.1,
            serial + 1
        );
        Arc::new(JobSnapshot::from_response(
            &parse_list_job_step(json.as_bytes()).expect("parses"),
        ))
    }

    fn keys(snapshot: &JobSnapshot) -> Vec<String> {
        snapshot
            .walk()
            .into_iter()
            .map(|(path, _, _)| path)
            .collect()
    }

    #[test]
    fn renumbered_ids_keep_the_first_key() {
        let first = snapshot(("a1", "b1"), "全量迁移", 3);
        let second = carry_keys(&snapshot(("a2", "b2"), "全量迁移", 3), &first);
        assert_eq!(keys(&second), keys(&first));
        assert_eq!(
            second.steps[0].id.as_deref(),
            Some("a2"),
            "the new id is kept"
        );
        // And again: the id of the previous poll (a2) is what matches now.
        let third = carry_keys(&snapshot(("a3", "b3"), "全量迁移", 3), &second);
        assert_eq!(keys(&third), ["a1", "a1/b1", "inc"]);
    }

    #[test]
    fn a_renamed_step_is_matched_by_serial_and_unchanged_ones_are_not_copied() {
        let first = snapshot(("a1", "b1"), "全量迁移", 3);
        let renamed = carry_keys(&snapshot(("a2", "b2"), "Full data", 3), &first);
        assert_eq!(keys(&renamed), ["a1", "a1/b1", "inc"]);
        let same = snapshot(("a1", "b1"), "全量迁移", 3);
        assert!(Arc::ptr_eq(&carry_keys(&same, &first), &same));
    }

    #[test]
    fn a_new_step_never_takes_a_key_already_adopted() {
        // `a1` came back as `a2` (and kept the key `a1`); now it is `a3`,
        // and a brand-new step carries the id `a1`.
        let first = snapshot(("a1", "b1"), "全量迁移", 3);
        let second = carry_keys(&snapshot(("a2", "b2"), "全量迁移", 3), &first);
        let json = r#"{"JobSteps":[
            {"JobStepId":"a3","Code":"03","JobStepName":"全量迁移","Serial":3,"State":"Failed"},
            {"JobStepId":"inc","Code":"04","JobStepName":"增量迁移","Serial":4,"State":"Running"},
            {"JobStepId":"a1","Code":"05","JobStepName":"数据校验","Serial":9,"State":"Running"}]}"#;
        let current = Arc::new(JobSnapshot::from_response(
            &parse_list_job_step(json.as_bytes()).expect("parses"),
        ));
        let carried = carry_keys(&current, &second);
        let keys: Vec<&str> = carried.steps.iter().map(|s| &*s.key).collect();
        assert_eq!(keys, ["a1", "inc", "a1#2"]);
    }
}
