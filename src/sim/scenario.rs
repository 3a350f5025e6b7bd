//! Simulator scenarios as data: jobs with frames that advance one per poll.
//! A frame lists full steps, patches the previous frame's steps, serves a raw
//! body verbatim, or injects a fault. Rendering produces JSON the way DTS does
//! (latency a number on steps and a string on sub-steps, `-1` for n/a).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

pub use super::job::{JobSummary, Script, SimJob};
use crate::config::parse_duration;

/// The built-in demo scenario: a migration's whole lifecycle plus a job that
/// serves the API document's example response verbatim.
pub const LIFECYCLE: &str = include_str!("../../config/scenarios/lifecycle.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub jobs: Vec<JobFile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobFile {
    pub id: String,
    pub name: Option<String>,
    #[serde(default = "default_region")]
    pub region: String,
    #[serde(rename = "type", default = "default_type")]
    pub job_type: String,
    #[serde(default = "default_status")]
    pub status: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// `repeat_last` (default) keeps serving the last frame; `loop` starts over.
    #[serde(default)]
    pub after_end: AfterEnd,
    #[serde(default)]
    pub frames: Vec<FrameFile>,
}

fn default_region() -> String {
    "cn-hangzhou".into()
}
fn default_type() -> String {
    "MIGRATION".into()
}
fn default_status() -> String {
    "Migrating".into()
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AfterEnd {
    #[default]
    RepeatLast,
    Loop,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrameFile {
    /// How many polls this frame answers.
    pub polls: Option<u32>,
    pub steps: Option<Vec<SimStep>>,
    pub patch: Option<Vec<StepPatch>>,
    pub body: Option<String>,
    pub fault: Option<String>,
    /// For `fault = "slow"`: how long to wait before answering normally.
    pub delay: Option<String>,
    /// A note for people reading the scenario.
    pub note: Option<String>,
}

/// A step as a scenario writes it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SimStep {
    pub id: Option<String>,
    pub name: String,
    pub code: Option<String>,
    pub serial: Option<i64>,
    pub state: String,
    #[serde(default)]
    pub progress: i64,
    /// `None` or `-1` render as "not applicable".
    pub latency_ms: Option<i64>,
    pub err: Option<String>,
    pub error_code: Option<String>,
    pub help_url: Option<String>,
    pub need_acceleration: Option<bool>,
    pub redis_phase: Option<String>,
    #[serde(default)]
    pub sub: Vec<SimStep>,
}

/// Changes to one step (`step = "id"`) or sub-step (`step = "id/subid"`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepPatch {
    pub step: String,
    pub state: Option<String>,
    pub progress: Option<i64>,
    pub latency_ms: Option<i64>,
    /// `""` clears the error.
    pub err: Option<String>,
    pub error_code: Option<String>,
    pub help_url: Option<String>,
    pub need_acceleration: Option<bool>,
    pub redis_phase: Option<String>,
    /// Removes the step from this frame on.
    pub remove: Option<bool>,
    /// Adds a step (or sub-step) when it does not exist yet.
    pub add: Option<SimStep>,
}

/// Something a poll can get instead of steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 400 `Throttling.User`.
    Throttling,
    /// HTTP 500 `ServiceUnavailable`.
    ServiceUnavailable,
    /// HTTP 500 `InternalError`.
    InternalError,
    /// HTTP 502 with an HTML body, as a gateway answers.
    BadGateway,
    /// Answers normally after a delay (longer than the client timeout = a timeout).
    Slow(Duration),
    /// HTTP 200 with truncated JSON.
    Malformed,
    /// HTTP 403 `InvalidSecurityToken.Expired`.
    TokenExpired,
    /// HTTP 200 with `Success: false`.
    SuccessFalse,
}

impl Fault {
    pub fn parse(name: &str, delay: Option<&str>) -> Result<Fault, String> {
        Ok(match name {
            "throttling" => Fault::Throttling,
            "service_unavailable" => Fault::ServiceUnavailable,
            "internal_error" => Fault::InternalError,
            "bad_gateway" => Fault::BadGateway,
            "slow" => Fault::Slow(parse_duration(delay.unwrap_or("5s"))?),
            "malformed" => Fault::Malformed,
            "token_expired" => Fault::TokenExpired,
            "success_false" => Fault::SuccessFalse,
            other => {
                return Err(format!(
                    "unknown fault `{other}`; use throttling, service_unavailable, internal_error, bad_gateway, slow, malformed, token_expired or success_false"
                ));
            }
        })
    }
}

/// A frame after patches are applied.
#[derive(Debug, Clone)]
pub enum Frame {
    Steps(Vec<SimStep>),
    Body(String),
    Fault(Fault),
}

/// Reads a scenario file (TOML) into jobs ready to serve.
pub fn load(text: &str) -> Result<(ScenarioFile, Vec<SimJob>), String> {
    let file: ScenarioFile = toml::from_str(text).map_err(|e| format!("scenario: {e}"))?;
    let mut jobs = Vec::new();
    for job in &file.jobs {
        jobs.push(expand(job)?);
    }
    Ok((file, jobs))
}

fn expand(job: &JobFile) -> Result<SimJob, String> {
    let mut frames = Vec::new();
    let mut current: Vec<SimStep> = Vec::new();
    for (i, frame) in job.frames.iter().enumerate() {
        let context = format!("job {} frame {}", job.id, i + 1);
        let polls = frame.polls.unwrap_or(1).max(1);
        let resolved = match (&frame.steps, &frame.patch, &frame.body, &frame.fault) {
            (Some(steps), None, None, None) => {
                current = steps.clone();
                Frame::Steps(current.clone())
            }
            (None, Some(patches), None, None) => {
                for patch in patches {
                    apply_patch(&mut current, patch).map_err(|e| format!("{context}: {e}"))?;
                }
                Frame::Steps(current.clone())
            }
            (None, None, Some(body), None) => Frame::Body(body.clone()),
            (None, None, None, Some(fault)) => Frame::Fault(
                Fault::parse(fault, frame.delay.as_deref())
                    .map_err(|e| format!("{context}: {e}"))?,
            ),
            _ => {
                return Err(format!(
                    "{context}: give exactly one of steps, patch, body or fault"
                ));
            }
        };
        for _ in 0..polls {
            frames.push(resolved.clone());
        }
    }
    Ok(SimJob {
        id: job.id.clone(),
        name: job.name.clone(),
        region: job.region.clone(),
        job_type: job.job_type.clone(),
        status: job.status.clone(),
        tags: job.tags.clone(),
        after_end: job.after_end,
        script: Script::Frames(frames),
        polls: 0,
    })
}

fn apply_patch(steps: &mut Vec<SimStep>, patch: &StepPatch) -> Result<(), String> {
    let (top, sub) = match patch.step.split_once('/') {
        Some((t, s)) => (t, Some(s)),
        None => (patch.step.as_str(), None),
    };
    let position = steps.iter().position(|s| s.id.as_deref() == Some(top));
    let list: &mut Vec<SimStep> = match (sub, position) {
        (None, _) => steps,
        (Some(_), Some(p)) => &mut steps[p].sub,
        (Some(_), None) => return Err(format!("no step `{top}` to patch")),
    };
    let key = sub.unwrap_or(top);
    let index = list.iter().position(|s| s.id.as_deref() == Some(key));
    if patch.remove == Some(true) {
        return match index {
            Some(i) => {
                list.remove(i);
                Ok(())
            }
            None => Err(format!("no step `{}` to remove", patch.step)),
        };
    }
    let step = match (index, &patch.add) {
        (Some(i), _) => &mut list[i],
        (None, Some(new)) => {
            list.push(new.clone());
            let last = list.len() - 1;
            &mut list[last]
        }
        (None, None) => {
            return Err(format!(
                "no step `{}` to patch (use `add` to create it)",
                patch.step
            ));
        }
    };
    if let Some(v) = &patch.state {
        step.state = v.clone();
    }
    if let Some(v) = patch.progress {
        step.progress = v;
    }
    if let Some(v) = patch.latency_ms {
        step.latency_ms = Some(v);
    }
    if let Some(v) = &patch.err {
        step.err = Some(v.clone()).filter(|e| !e.is_empty());
    }
    if let Some(v) = &patch.error_code {
        step.error_code = Some(v.clone()).filter(|e| !e.is_empty());
    }
    if let Some(v) = &patch.help_url {
        step.help_url = Some(v.clone());
    }
    if let Some(v) = patch.need_acceleration {
        step.need_acceleration = Some(v);
    }
    if let Some(v) = &patch.redis_phase {
        step.redis_phase = Some(v.clone());
    }
    Ok(())
}

/// Renders steps as a `ListJobStep` success body, quirks included.
pub fn render_list_job_step(steps: &[SimStep], request_id: &str, now: &str) -> Value {
    json!({
        "Success": true,
        "HttpStatusCode": 200,
        "RequestId": request_id,
        "Code": "200",
        "UseV2API": true,
        "JobSteps": steps.iter().map(|s| render_step(s, false, now)).collect::<Vec<_>>(),
    })
}

fn render_step(step: &SimStep, is_sub: bool, now: &str) -> Value {
    let latency_ms = step.latency_ms.filter(|ms| *ms >= 0);
    let mut object = serde_json::Map::new();
    let mut put = |k: &str, v: Value| {
        object.insert(k.to_string(), v);
    };
    if let Some(id) = &step.id {
        put("JobStepId", json!(id));
    }
    put("JobStepName", json!(step.name));
    if let Some(code) = &step.code {
        put("Code", json!(code));
    }
    if let Some(serial) = step.serial {
        put("Serial", json!(serial));
    }
    put("Progress", json!(step.progress));
    put("State", json!(step.state));
    put(
        "IncLatencySeconds",
        json!(latency_ms.map(|ms| ms / 1000).unwrap_or(-1)),
    );
    if let Some(ms) = latency_ms {
        // DTS sends milliseconds as a number on steps and as a string on sub-steps.
        put(
            "IncLatencyMilliseconds",
            if is_sub {
                json!(ms.to_string())
            } else {
                json!(ms)
            },
        );
    }
    put("ErrMsg", json!(step.err.clone().unwrap_or_default()));
    let detail_code = step.error_code.clone().unwrap_or_else(|| {
        if is_sub {
            "Success".into()
        } else {
            "200".into()
        }
    });
    put(
        "ErrorDetails",
        json!([{ "ErrorCode": detail_code, "HelpUrl": step.help_url.clone().unwrap_or_default() }]),
    );
    if let Some(acc) = step.need_acceleration {
        put("NeedAcceleration", json!(acc));
    }
    if let Some(phase) = &step.redis_phase {
        put("redisPhaseType", json!(phase));
    }
    put("CreateTime", json!("2026-11-01T00:00:00Z"));
    put("BootTime", json!("2026-11-01T00:00:05Z"));
    put("ModifyTime", json!(now));
    if !is_sub {
        put("SubJobCount", json!(step.sub.len()));
        put(
            "SubJobSteps",
            Value::Array(step.sub.iter().map(|s| render_step(s, true, now)).collect()),
        );
    }
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_scenario_loads_and_ends() {
        let (file, jobs) = load(LIFECYCLE).unwrap();
        assert_eq!(file.name, "lifecycle");
        assert!(jobs.len() >= 2);
        assert!(jobs.iter().all(|j| j.scripted_polls() > 0));
    }

    #[test]
    fn patches_apply_on_top_of_the_previous_frame() {
        let text = r#"
            [[jobs]]
            id = "j"
            [[jobs.frames]]
            steps = [{ id = "a", name = "A", state = "Running", sub = [{ id = "x", name = "X", state = "Running" }] }]
            [[jobs.frames]]
            polls = 2
            patch = [{ step = "a/x", state = "Failed", err = "boom" }, { step = "a", progress = 40 }]
            [[jobs.frames]]
            fault = "throttling"
        "#;
        let (_, mut jobs) = load(text).unwrap();
        let job = &mut jobs[0];
        assert_eq!(job.scripted_polls(), 4);
        let _ = job.next_frame(chrono::Utc::now());
        match job.next_frame(chrono::Utc::now()) {
            Frame::Steps(steps) => {
                assert_eq!(steps[0].progress, 40);
                assert_eq!(steps[0].sub[0].state, "Failed");
                assert_eq!(steps[0].sub[0].err.as_deref(), Some("boom"));
            }
            other => panic!("unexpected {other:?}"),
        }
        let _ = job.next_frame(chrono::Utc::now());
        assert!(matches!(
            job.next_frame(chrono::Utc::now()),
            Frame::Fault(Fault::Throttling)
        ));
        assert!(
            matches!(
                job.next_frame(chrono::Utc::now()),
                Frame::Fault(Fault::Throttling)
            ),
            "repeats the last frame"
        );
    }

    #[test]
    fn bad_patches_are_reported() {
        let text = r#"
            [[jobs]]
            id = "j"
            [[jobs.frames]]
            patch = [{ step = "missing", state = "Failed" }]
        "#;
        assert!(load(text).unwrap_err().contains("no step `missing`"));
    }

    #[test]
    fn rendering_keeps_the_real_quirks() {
        let steps = vec![SimStep {
            id: Some("a".into()),
            name: "A".into(),
            state: "Running".into(),
            latency_ms: Some(1500),
            sub: vec![SimStep {
                id: Some("x".into()),
                name: "X".into(),
                state: "running".into(),
                latency_ms: Some(2500),
                ..SimStep::default()
            }],
            ..SimStep::default()
        }];
        let body = render_list_job_step(&steps, "R", "2026-11-30T00:00:00Z");
        let step = &body["JobSteps"][0];
        assert_eq!(step["IncLatencyMilliseconds"], json!(1500));
        assert_eq!(step["IncLatencySeconds"], json!(1));
        assert_eq!(
            step["SubJobSteps"][0]["IncLatencyMilliseconds"],
            json!("2500")
        );
        assert_eq!(step["ErrorDetails"][0]["ErrorCode"], json!("200"));
        assert_eq!(
            step["SubJobSteps"][0]["ErrorDetails"][0]["ErrorCode"],
            json!("Success")
        );
    }
}
