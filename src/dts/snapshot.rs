//! The project's own view of a job's steps: normalised once, right after
//! parsing, so that every later stage (store, diff, rules, messages) sees one
//! `State` enum, latency in milliseconds, and empty strings as absent. The raw
//! state text is kept for messages.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::model::{ListJobStepResponse, WireErrorDetail, WireStep};

/// A step state. DTS sends `Finished`, `○ Finished`, `running`, `Running`,
/// `Failed`, `Pause`, `Schedule`, `Init`, `Catched`; anything else is kept as `Other`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum State {
    Init,
    Schedule,
    Running,
    /// Incremental replication has caught up ("Catched" on the wire).
    Catched,
    Pause,
    Finished,
    Failed,
    Other(String),
}

impl State {
    /// Reads a wire state: ignores decoration such as `○ ` and letter case.
    pub fn parse(raw: &str) -> State {
        let trimmed = raw.trim_matches(|c: char| !c.is_alphanumeric());
        match trimmed.to_ascii_lowercase().as_str() {
            "init" | "initial" | "notstarted" => State::Init,
            "schedule" | "scheduled" => State::Schedule,
            "running" | "migrating" | "synchronizing" => State::Running,
            "catched" | "caught" => State::Catched,
            "pause" | "paused" | "suspending" => State::Pause,
            "finished" | "finish" | "completed" => State::Finished,
            "failed" | "fail" => State::Failed,
            _ => State::Other(trimmed.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            State::Init => "Init",
            State::Schedule => "Schedule",
            State::Running => "Running",
            State::Catched => "Catched",
            State::Pause => "Pause",
            State::Finished => "Finished",
            State::Failed => "Failed",
            State::Other(s) => s,
        }
    }

    /// Running or caught up: the step is doing work and should make progress.
    pub fn is_active(&self) -> bool {
        matches!(self, State::Running | State::Catched)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: Option<String>,
    pub help_url: Option<String>,
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
    pub key: String,
    pub id: Option<String>,
    pub name: String,
    pub code: Option<String>,
    pub serial: Option<i64>,
    pub state: State,
    /// The state exactly as DTS sent it, for messages.
    pub state_raw: String,
    pub progress: Option<i64>,
    /// `None` when DTS says "not applicable" (`-1`) or says nothing.
    pub latency_ms: Option<i64>,
    /// `None` when empty.
    pub err_msg: Option<String>,
    pub error_details: Vec<ErrorDetail>,
    pub need_acceleration: Option<bool>,
    pub redis_phase: Option<String>,
    pub sub_job_count: Option<i64>,
    pub create_time: Option<String>,
    pub boot_time: Option<String>,
    pub finish_time: Option<String>,
    pub modify_time: Option<String>,
    pub sub_steps: Vec<Step>,
}

impl Step {
    /// `预检查 (01)`: name with code, as messages show a step.
    pub fn label(&self) -> String {
        match &self.code {
            Some(code) => format!("{} ({code})", self.name),
            None => self.name.clone(),
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
    pub fn from_response(response: &ListJobStepResponse) -> Self {
        let mut steps: Vec<Step> = response.job_steps.iter().map(normalise_step).collect();
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
            out.push((step.key.clone(), step, None));
            for sub in &step.sub_steps {
                out.push((format!("{}/{}", step.key, sub.key), sub, Some(step)));
            }
        }
        out
    }

    /// The step or sub-step at `path`.
    pub fn find(&self, path: &str) -> Option<&Step> {
        let (top, sub) = match path.split_once('/') {
            Some((top, sub)) => (top, Some(sub)),
            None => (path, None),
        };
        let step = self.steps.iter().find(|s| s.key == top)?;
        match sub {
            None => Some(step),
            Some(sub) => step.sub_steps.iter().find(|s| s.key == sub),
        }
    }
}

fn non_empty(value: &Option<String>) -> Option<String> {
    value
        .as_ref()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
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

fn step_key(id: &Option<String>, code: &Option<String>, name: &str) -> String {
    match id {
        Some(id) => id.clone(),
        None => format!("{}:{}", code.as_deref().unwrap_or(""), name),
    }
}

fn normalise_detail(d: &WireErrorDetail) -> ErrorDetail {
    ErrorDetail {
        code: non_empty(&d.error_code),
        help_url: non_empty(&d.help_url),
    }
}

fn normalise_step(w: &WireStep) -> Step {
    let id = non_empty(&w.job_step_id).map(|s| s.replace('/', "_"));
    let code = non_empty(&w.code);
    let name = non_empty(&w.job_step_name)
        .or_else(|| code.clone())
        .unwrap_or_else(|| "(unnamed step)".to_string());
    let state_raw = w.state.clone().unwrap_or_default();
    Step {
        key: step_key(&id, &code, &name),
        id,
        state: State::parse(&state_raw),
        state_raw,
        name,
        code,
        serial: w.serial,
        progress: w.progress,
        latency_ms: latency_ms(w.inc_latency_milliseconds, w.inc_latency_seconds),
        err_msg: non_empty(&w.err_msg),
        error_details: w.error_details.iter().map(normalise_detail).collect(),
        need_acceleration: w.need_acceleration,
        redis_phase: non_empty(&w.redis_phase_type),
        sub_job_count: w.sub_job_count,
        create_time: non_empty(&w.create_time),
        boot_time: non_empty(&w.boot_time),
        finish_time: non_empty(&w.finish_time),
        modify_time: non_empty(&w.modify_time),
        sub_steps: w.sub_job_steps.iter().map(normalise_step).collect(),
    }
}

/// Two steps sharing a key (same id, or same code+name without ids) get `#2`, `#3`
/// suffixes in order, so every path stays unique.
fn dedupe_keys(steps: &mut [Step]) {
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for step in steps.iter_mut() {
        let count = seen.entry(step.key.clone()).or_insert(0);
        *count += 1;
        if *count > 1 {
            step.key = format!("{}#{}", step.key, count);
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
        assert_eq!(step.key, "l02c1f7h179****");
        assert_eq!(step.label(), "预检查 (01)");
        assert_eq!(step.state, State::Finished);
        assert_eq!(step.state_raw, "○ Finished");
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
        assert_eq!(sub.key, "mj3z9w9s10am68o_0004_0000");
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
                State::Other(String::new()),
            ]
        );
        assert_eq!(snap.steps[2].state_raw, "Retrying");
    }

    #[test]
    fn nulls_everywhere() {
        let snap = snapshot(include_str!("../../tests/fixtures/odd_nulls.json"));
        let step = &snap.steps[0];
        assert_eq!(step.key, "02:结构迁移", "no id: code + name");
        assert_eq!(step.progress, None);
        assert_eq!(step.latency_ms, None);
        assert!(step.sub_steps.is_empty());
        assert!(step.error_details.is_empty());
    }

    #[test]
    fn missing_sub_steps_and_duplicate_id_less_steps() {
        let snap = snapshot(include_str!("../../tests/fixtures/odd_missing_fields.json"));
        assert_eq!(snap.steps[0].key, "03:全量迁移");
        assert_eq!(snap.steps[1].key, "03:全量迁移#2", "keys stay unique");
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
    fn state_parsing_is_forgiving() {
        assert_eq!(State::parse(" ○ Finished "), State::Finished);
        assert_eq!(State::parse("RUNNING"), State::Running);
        assert_eq!(State::parse("catched"), State::Catched);
        assert_eq!(State::parse("Failed"), State::Failed);
        assert_eq!(State::parse("Init"), State::Init);
        assert_eq!(State::parse("NewThing").as_str(), "NewThing");
    }
}
