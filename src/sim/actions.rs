//! The DTS actions the simulator answers once a request is through the
//! gateway: `ListJobStep` (the job's next frame) and `DescribeDtsJobs`
//! (every job's status, delay and error now, paged), and DTS's flow
//! control per account and region.

use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::SimState;
use super::auth::SimError;
use super::gateway::{Answer, Caller, error_body, fault_answer, json_response, record, success};
use super::scenario::{self, Fault, Frame, SimJob, SimStep};

/// DTS's flow control: at most `quota` requests of an account in a region
/// in any second; the request that would exceed it is refused (and counted).
pub(super) fn over_quota(sim: &mut SimState, caller: &Caller) -> bool {
    let Some(quota) = sim.quota else {
        return false;
    };
    let region = caller
        .params
        .iter()
        .find(|(k, _)| k == "RegionId" || k == "Region")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let now = std::time::Instant::now();
    let arrivals = sim
        .arrivals
        .entry((caller.access_key_id.clone(), region))
        .or_default();
    while arrivals
        .front()
        .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
    {
        arrivals.pop_front();
    }
    if arrivals.len() as f64 >= quota {
        return true;
    }
    arrivals.push_back(now);
    false
}

pub(super) fn list_job_step(
    sim: &mut SimState,
    caller: &Caller,
    job_id: Option<String>,
    injected: Option<Fault>,
) -> Answer {
    let Some(job_id) = job_id else {
        let error = SimError::new(
            400,
            "MissingDtsJobId",
            "The input parameter \"DtsJobId\" that is mandatory for processing this request is not supplied.",
        );
        record(sim, Some(caller), &error.code);
        return Answer::Now(error_body(sim, &error));
    };
    if let Some(fault) = injected {
        return fault_answer(sim, caller, &fault, None);
    }
    let now = sim.now();
    let Some(job) = sim.jobs.get_mut(&job_id) else {
        let request_id = sim.request_id();
        record(sim, Some(caller), "InvalidJobId");
        let body = json!({
            "Success": false,
            "HttpStatusCode": 404,
            "Code": "InvalidJobId",
            "ErrCode": "InvalidJobId",
            "ErrMessage": "The specified DTS job %s does not exist.",
            "DynamicMessage": job_id,
            "RequestId": request_id,
        });
        return Answer::Now(json_response(StatusCode::OK, &body, &request_id, sim.now()));
    };
    let frame = job.next_frame(now);
    let request_id = sim.request_id();
    let now = sim.now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    match frame {
        Frame::Steps(steps) => {
            let body = scenario::render_list_job_step(&steps, &request_id, &now);
            Answer::Now(success(sim, caller, body))
        }
        Frame::Body(text) => {
            record(sim, Some(caller), "Success");
            Answer::Now(
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json;charset=utf-8")],
                    text,
                )
                    .into_response(),
            )
        }
        Frame::Fault(fault) => {
            let steps = match &fault {
                Fault::Slow(_) => last_steps(sim.jobs.get(&job_id)),
                _ => None,
            };
            fault_answer(sim, caller, &fault, steps)
        }
    }
}

/// The steps a job served most recently, for a slow answer that still carries data.
fn last_steps(job: Option<&SimJob>) -> Option<Vec<SimStep>> {
    let job = job?;
    match &job.script {
        scenario::Script::Frames(frames) => {
            frames
                .iter()
                .take(job.polls as usize)
                .rev()
                .find_map(|f| match f {
                    Frame::Steps(s) => Some(s.clone()),
                    _ => None,
                })
        }
        scenario::Script::Generated { .. } | scenario::Script::Timed(_) => None,
    }
}

pub(super) fn describe_dts_jobs(sim: &mut SimState, caller: &Caller) -> Answer {
    let get = |k: &str| {
        caller
            .params
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    let region = get("Region")
        .or_else(|| get("RegionId"))
        .unwrap_or_else(|| "cn-hangzhou".into());
    // The API lists migration jobs unless asked for another type.
    let job_type = get("JobType")
        .unwrap_or_else(|| "MIGRATION".into())
        .to_ascii_uppercase();
    let page_size: usize = get("PageSize").and_then(|p| p.parse().ok()).unwrap_or(30);
    if ![30, 50, 100].contains(&page_size) {
        let error = SimError::new(400, "InvalidParameter", "PageSize must be 30, 50 or 100.");
        record(sim, Some(caller), &error.code);
        return Answer::Now(error_body(sim, &error));
    }
    let page: usize = get("PageNumber")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1)
        .max(1);
    let matching: Vec<&SimJob> = sim
        .jobs
        .values()
        .filter(|j| j.region == region && j.job_type.eq_ignore_ascii_case(&job_type))
        .collect();
    let total = matching.len();
    let now = sim.now();
    let list: Vec<Value> = matching
        .iter()
        .skip((page - 1) * page_size)
        .take(page_size)
        .map(|j| {
            let summary = j.summary(now);
            json!({
                "DtsJobId": j.id,
                "DtsJobName": j.name.clone().unwrap_or_default(),
                "Status": summary.status,
                "Delay": summary.delay_ms.unwrap_or(0),
                "ErrorMessage": summary.error_message.unwrap_or_default(),
                "ErrorDetails": summary.error_code.map(|code| vec![json!({"ErrorCode": code, "HelpUrl": ""})]).unwrap_or_default(),
                "DtsJobDirection": "Forward",
                "TagList": j.tags.iter().map(|(k, v)| json!({"TagKey": k, "TagValue": v})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let request_id = sim.request_id();
    let body = json!({
        "Success": true,
        "HttpStatusCode": 200,
        "RequestId": request_id,
        "TotalRecordCount": total,
        "PageNumber": page,
        "PageRecordCount": list.len(),
        "DtsJobList": list,
    });
    Answer::Now(success(sim, caller, body))
}
