//! The project's own view of a job's steps: normalised once, right after
//! parsing, so that every later stage (store, diff, rules, messages) sees one
//! `State` enum, latency in milliseconds, and empty strings as absent. The raw
//! state text is kept for messages.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::model::{ListJobStepResponse, WireErrorDetail, WireStep};
pub use crate::state::State;
pub use crate::text::{Text, intern};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: Option<Text>,
    pub help_url: Option<Text>,
}

impl ErrorDetail {
    /// DTS reports success in `ErrorDetails` too: `200` and `Success` are not errors.
    pub fn is_success(&self) -> bool {
        match self.code.as_deref().map(str::trim) {
            None | Some("") => true,
            Some(code) => code == "200" || code.eq_ignore_ascii_case("success"),
        }
    }
}

/// One step (or sub-step) of a job at one poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Identity across polls: `JobStepId`, else `Code` + `JobStepName`.
    pub key: Text,
    pub id: Option<Text>,
    pub name: Text,
    pub code: Option<Text>,
    pub serial: Option<i64>,
    pub state: State,
    /// The state exactly as DTS sent it, for messages.
    pub state_raw: Text,
    pub progress: Option<i64>,
    /// `None` when DTS says "not applicable" (`-1`) or says nothing.
    pub latency_ms: Option<i64>,
    /// `None` when empty.
    pub err_msg: Option<Text>,
    pub error_details: Vec<ErrorDetail>,
    pub need_acceleration: Option<bool>,
    pub redis_phase: Option<Text>,
    pub sub_job_count: Option<i64>,
    pub sub_steps: Vec<Step>,
}

impl Step {
    /// `预检查 (01)`: name with code, as messages show a step.
    pub fn label(&self) -> String {
        match &self.code {
            Some(code) => format!("{} ({code})", self.name),
            None => self.name.to_string(),
        }
    }

    /// Error details that are real errors (not `200` / `Success`).
    pub fn failing_details(&self) -> impl Iterator<Item = &ErrorDetail> {
        self.error_details.iter().filter(|d| !d.is_success())
    }
}

/// Everything one successful `ListJobStep` poll said about a job.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct JobSnapshot {
    pub steps: Vec<Step>,
}

impl JobSnapshot {
    pub fn from_response(response: &ListJobStepResponse<'_>) -> Self {
        let mut steps: Vec<Step> = response
            .job_steps
            .iter()
            .map(|w| normalise_step(w, true))
            .collect();
        dedupe_keys(&mut steps);
        for step in &mut steps {
            dedupe_keys(&mut step.sub_steps);
        }
        JobSnapshot { steps }
    }

    /// Steps then their sub-steps, each with its path. Paths are built on the fly.
    pub fn walk(&self) -> Vec<(String, &Step, Option<&Step>)> {
        let mut out = Vec::new();
        for step in &self.steps {
            out.push((step.key.to_string(), step, None));
            for sub in &step.sub_steps {
                out.push((format!("{}/{}", step.key, sub.key), sub, Some(step)));
            }
        }
        out
    }

    /// The step or sub-step at `path`.
    pub fn find(&self, path: &str) -> Option<&Step> {
        self.find_with_parent(path).map(|(step, _)| step)
    }

    /// The step or sub-step at `path`, with its parent for a sub-step.
    pub fn find_with_parent(&self, path: &str) -> Option<(&Step, Option<&Step>)> {
        let (top, sub) = match path.split_once('/') {
            Some((top, sub)) => (top, Some(sub)),
            None => (path, None),
        };
        let step = self.steps.iter().find(|s| &*s.key == top)?;
        match sub {
            None => Some((step, None)),
            Some(sub) => step
                .sub_steps
                .iter()
                .find(|s| &*s.key == sub)
                .map(|s| (s, Some(step))),
        }
    }
}

/// Finds a step's counterpart (same key) in another poll's list. Steps nearly
/// always come back in the same order, so the same position is tried first
/// and a map is built only when that fails.
pub struct Counterparts<'a> {
    steps: &'a [Step],
    by_key: OnceCell<HashMap<&'a str, &'a Step>>,
}

impl<'a> Counterparts<'a> {
    pub fn new(steps: &'a [Step]) -> Self {
        Self {
            steps,
            by_key: OnceCell::new(),
        }
    }

    /// The step keyed `key`; `position` is where the other list had it.
    pub fn find(&self, position: usize, key: &str) -> Option<&'a Step> {
        match self.steps.get(position) {
            Some(step) if &*step.key == key => Some(step),
            _ => self
                .by_key
                .get_or_init(|| self.steps.iter().map(|s| (&*s.key, s)).collect())
                .get(key)
                .copied(),
        }
    }
}

/// A step or sub-step of this poll, with its parent and its counterpart in the previous poll.
#[derive(Debug, Clone, Copy)]
pub struct StepPair<'a> {
    pub step: &'a Step,
    pub parent: Option<&'a Step>,
    pub previous: Option<&'a Step>,
}

impl StepPair<'_> {
    /// `key` or `parent/key`, as alerts and changes name the step.
    pub fn path(&self) -> String {
        match self.parent {
            Some(parent) => format!("{}/{}", parent.key, self.step.key),
            None => self.step.key.to_string(),
        }
    }

    /// True when this is the step at `path`, compared without building the path.
    pub fn is_at(&self, path: &str) -> bool {
        match (self.parent, path.split_once('/')) {
            (Some(parent), Some((top, sub))) => &*parent.key == top && &*self.step.key == sub,
            (None, None) => &*self.step.key == path,
            _ => false,
        }
    }
}

/// Every step then its sub-steps, each paired with its counterpart in `previous`.
pub fn pair_steps<'a>(
    current: &'a JobSnapshot,
    previous: Option<&'a JobSnapshot>,
) -> Vec<StepPair<'a>> {
    let mut pairs = Vec::with_capacity(current.steps.iter().map(|s| 1 + s.sub_steps.len()).sum());
    let before = previous.map(|p| Counterparts::new(&p.steps));
    for (position, step) in current.steps.iter().enumerate() {
        let old = before.as_ref().and_then(|b| b.find(position, &step.key));
        pairs.push(StepPair {
            step,
            parent: None,
            previous: old,
        });
        let old_subs = old.map(|o| Counterparts::new(&o.sub_steps));
        for (sub_position, sub) in step.sub_steps.iter().enumerate() {
            pairs.push(StepPair {
                step: sub,
                parent: Some(step),
                previous: old_subs
                    .as_ref()
                    .and_then(|b| b.find(sub_position, &sub.key)),
            });
        }
    }
    pairs
}

/// The trimmed text, or `None` when there is none.
fn non_empty<'a>(value: &'a Option<Cow<'_, str>>) -> Option<&'a str> {
    value.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Milliseconds from `IncLatencyMilliseconds`, else `IncLatencySeconds` × 1000; negative means n/a.
pub fn latency_ms(milliseconds: Option<i64>, seconds: Option<i64>) -> Option<i64> {
    match (milliseconds, seconds) {
        (Some(ms), _) if ms >= 0 => Some(ms),
        (Some(_), _) => None,
        (None, Some(s)) if s >= 0 => Some(s.saturating_mul(1000)),
        _ => None,
    }
}

fn step_key(id: &Option<Text>, code: Option<&str>, name: &str) -> Text {
    match id {
        Some(id) => id.clone(),
        // A key never holds `/`: paths join a step's key and its sub-step's with it.
        None => Arc::from(format!("{}:{}", code.unwrap_or(""), name).replace('/', "_")),
    }
}

fn normalise_detail(d: &WireErrorDetail<'_>) -> ErrorDetail {
    ErrorDetail {
        code: non_empty(&d.error_code).map(intern),
        help_url: non_empty(&d.help_url).map(intern),
    }
}

/// A step and, for a top-level step, its sub-steps. DTS has two levels; a
/// `SubJobSteps` inside a sub-step is not part of the API and is ignored.
fn normalise_step(w: &WireStep<'_>, top_level: bool) -> Step {
    let id: Option<Text> = non_empty(&w.job_step_id).map(|s| Arc::from(s.replace('/', "_")));
    let code = non_empty(&w.code);
    let name = non_empty(&w.job_step_name)
        .or(code)
        .unwrap_or("(unnamed step)");
    let state_raw = w.state.as_deref().unwrap_or_default();
    Step {
        key: step_key(&id, code, name),
        id,
        state: State::parse(state_raw),
        state_raw: intern(state_raw),
        name: intern(name),
        code: code.map(intern),
        serial: w.serial,
        progress: w.progress,
        latency_ms: latency_ms(w.inc_latency_milliseconds, w.inc_latency_seconds),
        err_msg: non_empty(&w.err_msg).map(Arc::from),
        error_details: w.error_details.iter().map(normalise_detail).collect(),
        need_acceleration: w.need_acceleration,
        redis_phase: non_empty(&w.redis_phase_type).map(intern),
        sub_job_count: w.sub_job_count,
        sub_steps: if top_level {
            w.sub_job_steps
                .iter()
                .map(|sub| normalise_step(sub, false))
                .collect()
        } else {
            Vec::new()
        },
    }
}

/// Two steps sharing a key (same id, or same code+name without ids) get `#2`, `#3`
/// suffixes in order, so every path stays unique.
fn dedupe_keys(steps: &mut [Step]) {
    let mut seen: std::collections::HashMap<Text, usize> = std::collections::HashMap::new();
    for step in steps.iter_mut() {
        let count = seen.entry(step.key.clone()).or_insert(0);
        *count += 1;
        if *count > 1 {
            step.key = Arc::from(format!("{}#{}", step.key, count));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dts::api::parse_list_job_step;

    fn snapshot(json: &str) -> JobSnapshot {
        JobSnapshot::from_response(&parse_list_job_step(json.as_bytes()).expect("parses"))
    }

    #[test]
    fn the_seed_response_normalises() {
        let snap = snapshot(include_str!("../../tests/fixtures/list_job_step_seed.json"));
        assert_eq!(snap.steps.len(), 1);
        let step = &snap.steps[0];
        assert_eq!(&*step.key, "l02c1f7h179****");
        assert_eq!(step.label(), "预检查 (01)");
        assert_eq!(step.state, State::Finished);
        assert_eq!(&*step.state_raw, "○ Finished");
        assert_eq!(step.progress, Some(100));
        // IncLatencySeconds is -1 but IncLatencyMilliseconds says 1.
        assert_eq!(step.latency_ms, Some(1));
        assert_eq!(
            step.err_msg.as_deref(),
            Some("fullcheck find different records : 2372")
        );
        assert!(
            step.error_details[0].is_success(),
            "ErrorCode 200 is success"
        );
        assert_eq!(step.failing_details().count(), 0);
        assert_eq!(step.need_acceleration, Some(true));
        let sub = &step.sub_steps[0];
        assert_eq!(&*sub.key, "mj3z9w9s10am68o_0004_0000");
        assert_eq!(sub.state, State::Running);
        assert_eq!(sub.latency_ms, Some(1), "string milliseconds on a sub-step");
        assert!(
            sub.error_details[0].is_success(),
            "ErrorCode Success is success"
        );
        assert_eq!(
            sub.err_msg.as_deref(),
            Some("UncaughtException:java.lang.NullPointerException")
        );
        let paths: Vec<String> = snap.walk().into_iter().map(|(p, _, _)| p).collect();
        assert_eq!(
            paths,
            [
                "l02c1f7h179****",
                "l02c1f7h179****/mj3z9w9s10am68o_0004_0000"
            ]
        );
        assert!(
            snap.find("l02c1f7h179****/mj3z9w9s10am68o_0004_0000")
                .is_some()
        );
    }

    #[test]
    fn numbers_given_as_strings_and_strings_as_numbers() {
        let snap = snapshot(include_str!("../../tests/fixtures/odd_string_numbers.json"));
        let step = &snap.steps[0];
        assert_eq!(step.serial, Some(4));
        assert_eq!(step.progress, Some(63));
        assert_eq!(step.latency_ms, Some(12_345));
        assert_eq!(step.err_msg, None, "an empty ErrMsg is no error");
        assert_eq!(step.need_acceleration, Some(false));
        assert_eq!(step.sub_steps[0].progress, Some(63));
        assert_eq!(step.sub_steps[0].latency_ms, Some(12_000));
    }

    #[test]
    fn every_state_spelling_and_unknown_states() {
        let snap = snapshot(include_str!("../../tests/fixtures/odd_unknown_states.json"));
        let states: Vec<State> = snap.steps.iter().map(|s| s.state.clone()).collect();
        assert_eq!(
            states,
            [
                State::Finished,
                State::Finished,
                State::Other("Retrying".into()),
                State::Catched,
                State::Pause,
                State::Schedule,
                State::Other("".into()),
            ]
        );
        assert_eq!(&*snap.steps[2].state_raw, "Retrying");
    }

    #[test]
    fn nulls_everywhere() {
        let snap = snapshot(include_str!("../../tests/fixtures/odd_nulls.json"));
        let step = &snap.steps[0];
        assert_eq!(&*step.key, "02:结构迁移", "no id: code + name");
        assert_eq!(step.progress, None);
        assert_eq!(step.latency_ms, None);
        assert!(step.sub_steps.is_empty());
        assert!(step.error_details.is_empty());
    }

    #[test]
    fn missing_sub_steps_and_duplicate_id_less_steps() {
        let snap = snapshot(include_str!("../../tests/fixtures/odd_missing_fields.json"));
        assert_eq!(&*snap.steps[0].key, "03:全量迁移");
        assert_eq!(&*snap.steps[1].key, "03:全量迁移#2", "keys stay unique");
        assert_eq!(
            snap.steps[0].latency_ms, None,
            "-1 seconds means not applicable"
        );
        assert!(snap.steps[0].sub_steps.is_empty());
    }

    #[test]
    fn unknown_fields_are_ignored_and_bad_list_items_skipped() {
        let snap = snapshot(include_str!("../../tests/fixtures/odd_unknown_fields.json"));
        let step = &snap.steps[0];
        assert_eq!(step.state, State::Failed);
        assert_eq!(step.error_details.len(), 1);
        assert_eq!(
            step.failing_details()
                .next()
                .and_then(|d| d.code.as_deref()),
            Some("DTS-1020042")
        );
        assert_eq!(step.sub_steps[0].state, State::Failed);
    }

    #[test]
    fn redis_phase_in_either_case() {
        let snap = snapshot(include_str!("../../tests/fixtures/odd_redis.json"));
        assert_eq!(snap.steps[0].redis_phase.as_deref(), Some("full"));
        assert_eq!(
            snap.steps[0].latency_ms,
            Some(3_000),
            "seconds × 1000 when milliseconds are absent"
        );
        assert_eq!(snap.steps[1].redis_phase.as_deref(), Some("incr"));
        assert_eq!(snap.steps[1].latency_ms, None);
    }

    #[test]
    fn latency_prefers_milliseconds() {
        assert_eq!(latency_ms(Some(1500), Some(1)), Some(1500));
        assert_eq!(latency_ms(None, Some(2)), Some(2000));
        assert_eq!(latency_ms(None, Some(-1)), None);
        assert_eq!(latency_ms(Some(-1), Some(5)), None);
        assert_eq!(latency_ms(None, None), None);
    }

    #[test]
    fn escaped_and_plain_texts_read_the_same() {
        let plain = snapshot(
            r#"{"JobSteps":[{"JobStepId":"a","JobStepName":"全量迁移","State":"Running"}]}"#,
        );
        let escaped = snapshot(
            r#"{"JobSteps":[{"JobStepId":"a","JobStepName":"\u5168\u91cf\u8fc1\u79fb","State":"Run\u006eing"}]}"#,
        );
        assert_eq!(plain, escaped);
        assert_eq!(&*escaped.steps[0].name, "全量迁移");
        assert_eq!(escaped.steps[0].state, State::Running);
    }

    #[test]
    fn a_slash_in_an_id_less_name_cannot_break_paths() {
        let snap = snapshot(
            r#"{"JobSteps":[{"Code":"03","JobStepName":"orders/2024","SubJobSteps":[{"JobStepName":"a/b"}]}]}"#,
        );
        let step = &snap.steps[0];
        assert_eq!(&*step.key, "03:orders_2024");
        let path = format!("{}/{}", step.key, step.sub_steps[0].key);
        assert_eq!(snap.find(&path).map(|s| &*s.name), Some("a/b"));
    }

    #[test]
    fn counterparts_are_found_in_place_or_after_a_reorder() {
        let a = snapshot(
            r#"{"JobSteps":[{"JobStepId":"a","SubJobSteps":[{"JobStepId":"x"},{"JobStepId":"y"}]},{"JobStepId":"b"}]}"#,
        );
        let b = snapshot(
            r#"{"JobSteps":[{"JobStepId":"b"},{"JobStepId":"a","SubJobSteps":[{"JobStepId":"y"},{"JobStepId":"x"}]},{"JobStepId":"c"}]}"#,
        );
        let pairs = pair_steps(&b, Some(&a));
        let named: Vec<(String, Option<&str>)> = pairs
            .iter()
            .map(|p| (p.path(), p.previous.map(|s| &*s.key)))
            .collect();
        assert_eq!(
            named,
            [
                ("b".to_string(), Some("b")),
                ("a".to_string(), Some("a")),
                ("a/y".to_string(), Some("y")),
                ("a/x".to_string(), Some("x")),
                ("c".to_string(), None),
            ]
        );
        assert!(pairs[2].is_at("a/y") && !pairs[2].is_at("y") && !pairs[0].is_at("a/b"));
    }
}
