//! One alert per fault. DTS reports a failure on the step and again on its
//! only sub-step (`Synchronization (04)` and `› binlog-reader`, same state,
//! same `ErrMsg`); two alerts for it would wake people twice and read as two
//! problems. A sub-step verdict that says what its step's verdict of the
//! same rule says (the condition holds with the same fingerprint, or the
//! same one-shot change) is folded into the step's: the step's alert names
//! the sub-step, and the sub-step gets no alert of its own. A sub-step that
//! already has an alert keeps it, and `fold_sub_steps = false` on a rule
//! keeps every sub-step separate. Pure.

use std::collections::{HashMap, HashSet};

use super::FoldedStep;
use super::lifecycle::Condition;
use super::verdict::{Judgement, Verdict};
use crate::config::RuleConfig;

/// What a verdict says, for comparing a sub-step with its step; `None` when
/// it says nothing that could be folded (clear, pending release, gone).
fn says(verdict: &Verdict) -> Option<String> {
    match &verdict.judgement {
        Judgement::Lifecycle(Condition::Holds { fingerprint, .. }) => {
            Some(fingerprint.clone().unwrap_or_default())
        }
        Judgement::OneShot(_) => Some(verdict.fact.summary()),
        Judgement::Lifecycle(_) => None,
    }
}

fn folded_step(verdict: &Verdict) -> FoldedStep {
    let step = verdict.step.as_ref();
    let values = verdict.values.as_ref();
    FoldedStep {
        name: step.map(|s| s.name.clone()).unwrap_or_default(),
        id: step.and_then(|s| s.sub_step_id.clone()),
        state: values.map(|v| v.state.clone()).unwrap_or_default(),
        err_msg: values.and_then(|v| v.err_msg.clone()),
    }
}

/// `verdicts` of one rule with the sub-steps that repeat their step folded
/// into it; `stateful` are the paths where the rule has an alert already.
pub(super) fn fold_sub_steps(
    rule: &RuleConfig,
    verdicts: Vec<Verdict>,
    stateful: Option<&HashSet<&str>>,
) -> Vec<Verdict> {
    if !rule.fold_sub_steps || !verdicts.iter().any(|v| v.key.path.contains('/')) {
        return verdicts;
    }
    let steps: HashMap<&str, (usize, String)> = verdicts
        .iter()
        .enumerate()
        .filter(|(_, v)| !v.key.path.contains('/'))
        .filter_map(|(i, v)| says(v).map(|said| (v.key.path.as_str(), (i, said))))
        .collect();
    let mut into: HashMap<usize, usize> = HashMap::new();
    for (i, verdict) in verdicts.iter().enumerate() {
        let Some((top, _)) = verdict.key.path.split_once('/') else {
            continue;
        };
        if stateful.is_some_and(|s| s.contains(verdict.key.path.as_str())) {
            continue;
        }
        match (steps.get(top), says(verdict)) {
            (Some((parent, parent_said)), Some(said)) if *parent_said == said => {
                into.insert(i, *parent);
            }
            _ => {}
        }
    }
    if into.is_empty() {
        return verdicts;
    }
    let mut folded: HashMap<usize, Vec<FoldedStep>> = HashMap::new();
    for (&sub, &parent) in &into {
        folded
            .entry(parent)
            .or_default()
            .push(folded_step(&verdicts[sub]));
    }
    verdicts
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !into.contains_key(i))
        .map(|(i, mut verdict)| {
            if let Some(mut steps) = folded.remove(&i) {
                steps.sort_by(|a, b| a.name.cmp(&b.name));
                verdict.folded = steps;
            }
            verdict
        })
        .collect()
}
