//! The simulator's gateway: every request as Alibaba's API gateway and DTS
//! would answer it — authentication (signature, timestamp, nonce, STS
//! token), injected faults, then `ListJobStep` and `DescribeDtsJobs` from
//! the scripted jobs, in JSON or XML, with real error codes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::actions::{describe_dts_jobs, list_job_step, over_quota};
use super::auth::{self, SimError};
use super::scenario::{self, Fault, SimStep};
use super::{RequestRecord, SimState, lock};
use crate::aliyun::signing;

pub(super) fn error_body(state: &mut SimState, error: &SimError) -> Response {
    let request_id = state.request_id();
    let body = json!({
        "RequestId": request_id,
        "HostId": "dts.aliyuncs.com",
        "Code": error.code,
        "Message": error.message,
        "Recommend": format!("https://api.aliyun.com/troubleshoot?q={}&product=Dts&requestId={request_id}", error.code),
    });
    json_response(
        StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST),
        &body,
        &request_id,
        state.now(),
    )
}

/// A JSON answer with the gateway's headers; `Date` is the simulator's
/// (possibly skewed) clock, as DTS sends its own.
pub(super) fn json_response(
    status: StatusCode,
    body: &Value,
    request_id: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Response {
    (
        status,
        [
            (
                header::DATE,
                now.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
            ),
            (
                header::CONTENT_TYPE,
                "application/json;charset=utf-8".to_string(),
            ),
            (
                header::HeaderName::from_static("x-acs-request-id"),
                request_id.to_string(),
            ),
        ],
        body.to_string(),
    )
        .into_response()
}

/// Minimal JSON → XML, for clients that forget `Format=JSON` (the gateway's default is XML).
fn to_xml(name: &str, value: &Value, out: &mut String) {
    match value {
        Value::Array(items) => {
            for item in items {
                to_xml(name, item, out);
            }
        }
        Value::Object(map) => {
            out.push_str(&format!("<{name}>"));
            for (k, v) in map {
                to_xml(k, v, out);
            }
            out.push_str(&format!("</{name}>"));
        }
        Value::String(s) => out.push_str(&format!(
            "<{name}>{}</{name}>",
            s.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        )),
        other => out.push_str(&format!("<{name}>{other}</{name}>")),
    }
}

/// Who signed a request and how.
pub(super) struct Caller {
    pub(super) access_key_id: String,
    pub(super) token: Option<String>,
    pub(super) signature: &'static str,
    pub(super) action: String,
    pub(super) params: Vec<(String, String)>,
    pub(super) wants_json: bool,
}

fn authenticate(
    state: &mut SimState,
    method: &Method,
    headers: &HeaderMap,
    query: Vec<(String, String)>,
    body: &[u8],
) -> Result<Caller, Box<(SimError, Option<Caller>)>> {
    let now = state.now();
    let get = |params: &[(String, String)], k: &str| {
        params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    };
    let header_value = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    if get(&query, "Signature").is_some() {
        let mut params = query;
        let is_form = header_value("content-type")
            .map(|c| c.starts_with("application/x-www-form-urlencoded"))
            .unwrap_or(false);
        if is_form {
            params.extend(
                reqwest::Url::parse(&format!("http://x/?{}", String::from_utf8_lossy(body)))
                    .map(|u| {
                        u.query_pairs()
                            .map(|(k, v)| (k.into_owned(), v.into_owned()))
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default(),
            );
        }
        let access_key_id = get(&params, "AccessKeyId").unwrap_or_default();
        let token = get(&params, "SecurityToken");
        let caller = Caller {
            access_key_id: access_key_id.clone(),
            token: token.clone(),
            signature: "v1",
            action: get(&params, "Action").unwrap_or_default(),
            wants_json: get(&params, "Format")
                .map(|f| f.eq_ignore_ascii_case("json"))
                .unwrap_or(false),
            params: params.clone(),
        };
        for required in [
            "AccessKeyId",
            "SignatureMethod",
            "SignatureNonce",
            "SignatureVersion",
            "Timestamp",
            "Action",
            "Version",
        ] {
            if get(&params, required).is_none() {
                return Err(Box::new((
                    SimError::new(
                        400,
                        "MissingParameter",
                        format!(
                            "The input parameter \"{required}\" that is mandatory for processing this request is not supplied."
                        ),
                    ),
                    Some(caller),
                )));
            }
        }
        if get(&params, "SignatureMethod").as_deref() != Some("HMAC-SHA1")
            || get(&params, "SignatureVersion").as_deref() != Some("1.0")
        {
            return Err(Box::new((
                SimError::new(
                    400,
                    "InvalidParameter",
                    "SignatureMethod must be HMAC-SHA1 and SignatureVersion 1.0.",
                ),
                Some(caller),
            )));
        }
        let secret = match state.secret_for(&access_key_id, token.as_deref(), now) {
            Ok(s) => s,
            Err(e) => return Err(Box::new((e, Some(caller)))),
        };
        if let Err(e) = auth::check_timestamp(&get(&params, "Timestamp").unwrap_or_default(), now) {
            return Err(Box::new((e, Some(caller))));
        }
        if let Err(e) = auth::verify_v1(method.as_str(), &params, &secret) {
            return Err(Box::new((e, Some(caller))));
        }
        if let Err(e) =
            state.remember_nonce(&get(&params, "SignatureNonce").unwrap_or_default(), now)
        {
            return Err(Box::new((e, Some(caller))));
        }
        return Ok(caller);
    }
    let Some(authorization) = header_value("authorization") else {
        return Err(Box::new((
            SimError::new(
                400,
                "IncompleteSignature",
                "The request signature does not conform to Aliyun standards.",
            ),
            None,
        )));
    };
    let Some(parsed) = signing::parse_v3_authorization(&authorization) else {
        return Err(Box::new((
            SimError::new(
                400,
                "IncompleteSignature",
                "The Authorization header is not ACS3-HMAC-SHA256.",
            ),
            None,
        )));
    };
    let token = header_value("x-acs-security-token");
    let caller = Caller {
        access_key_id: parsed.access_key_id.clone(),
        token: token.clone(),
        signature: "v3",
        action: header_value("x-acs-action").unwrap_or_default(),
        params: query.clone(),
        wants_json: true,
    };
    let secret = match state.secret_for(&parsed.access_key_id, token.as_deref(), now) {
        Ok(s) => s,
        Err(e) => return Err(Box::new((e, Some(caller)))),
    };
    if let Err(e) = auth::check_timestamp(&header_value("x-acs-date").unwrap_or_default(), now) {
        return Err(Box::new((e, Some(caller))));
    }
    if let Err(e) = auth::verify_v3(
        method.as_str(),
        &query,
        &header_value,
        body,
        &secret,
        &parsed,
    ) {
        return Err(Box::new((e, Some(caller))));
    }
    if let Err(e) = state.remember_nonce(
        &header_value("x-acs-signature-nonce").unwrap_or_default(),
        now,
    ) {
        return Err(Box::new((e, Some(caller))));
    }
    Ok(caller)
}

pub(super) fn record(state: &mut SimState, caller: Option<&Caller>, outcome: &str) {
    if state.requests.len() >= 200_000 {
        state.requests.drain(..100_000);
    }
    let now = state.now();
    state.requests.push(RequestRecord {
        action: caller.map(|c| c.action.clone()).unwrap_or_default(),
        job_id: caller.and_then(|c| {
            c.params
                .iter()
                .find(|(k, _)| k == "DtsJobId")
                .map(|(_, v)| v.clone())
        }),
        access_key_id: caller.map(|c| c.access_key_id.clone()).unwrap_or_default(),
        security_token: caller.and_then(|c| c.token.clone()),
        signature: caller.map(|c| c.signature).unwrap_or("none"),
        outcome: outcome.to_string(),
        at: now,
    });
}

/// What to answer, decided under the lock and sent after it (a slow answer sleeps unlocked).
pub(super) enum Answer {
    Now(Response),
    After(Duration, Response),
}

pub(super) async fn handle(
    State(state): State<Arc<Mutex<SimState>>>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let answer = {
        let mut sim = lock(&state);
        answer(
            &mut sim,
            &method,
            &headers,
            query.as_deref().unwrap_or(""),
            &body,
        )
    };
    match answer {
        Answer::Now(response) => response,
        Answer::After(delay, response) => {
            tokio::time::sleep(delay).await;
            response
        }
    }
}

fn answer(
    sim: &mut SimState,
    method: &Method,
    headers: &HeaderMap,
    raw_query: &str,
    body: &[u8],
) -> Answer {
    if sim.offline {
        record(sim, None, "HTTP503");
        return Answer::Now(
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "<html><body>503 Service Temporarily Unavailable</body></html>",
            )
                .into_response(),
        );
    }
    let query: Vec<(String, String)> = reqwest::Url::parse(&format!("http://x/?{raw_query}"))
        .map(|u| {
            u.query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default();
    let caller = match authenticate(sim, method, headers, query, body) {
        Ok(c) => c,
        Err(rejected) => {
            let (error, caller) = *rejected;
            record(sim, caller.as_ref(), &error.code);
            return Answer::Now(error_body(sim, &error));
        }
    };
    if over_quota(sim, &caller) {
        let error = SimError::new(
            400,
            "Throttling.User",
            "Request was denied due to user flow control.",
        );
        record(sim, Some(&caller), &error.code);
        return Answer::Now(error_body(sim, &error));
    }
    let job_id = caller
        .params
        .iter()
        .find(|(k, _)| k == "DtsJobId")
        .map(|(_, v)| v.clone());
    // Injected faults for this request, if any: for its action first, then for its job.
    let by_action = sim
        .action_faults
        .iter()
        .position(|(action, _)| *action == caller.action);
    let injected = match by_action.and_then(|i| sim.action_faults.remove(i)) {
        Some((_, fault)) => Some(fault),
        None => {
            let fault_index = sim.faults.iter().position(|(job, _)| {
                job.is_none() || (job.is_some() && job.as_deref() == job_id.as_deref())
            });
            fault_index
                .and_then(|i| sim.faults.remove(i))
                .map(|(_, f)| f)
        }
    };
    match caller.action.as_str() {
        "ListJobStep" => list_job_step(sim, &caller, job_id, injected),
        "DescribeDtsJobs" => match injected {
            Some(fault) => fault_answer(sim, &caller, &fault, None),
            None => describe_dts_jobs(sim, &caller),
        },
        other => {
            let error = SimError::new(
                404,
                "InvalidApi.NotFound",
                format!("Specified api `{other}` is not found, please check your url and method."),
            );
            record(sim, Some(&caller), &error.code);
            Answer::Now(error_body(sim, &error))
        }
    }
}

pub(super) fn success(sim: &mut SimState, caller: &Caller, body: Value) -> Response {
    record(sim, Some(caller), "Success");
    let request_id = body["RequestId"].as_str().unwrap_or_default().to_string();
    if caller.wants_json {
        json_response(StatusCode::OK, &body, &request_id, sim.now())
    } else {
        let mut xml = String::from("<?xml version='1.0' encoding='UTF-8'?>");
        to_xml(&format!("{}Response", caller.action), &body, &mut xml);
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/xml;charset=utf-8")],
            xml,
        )
            .into_response()
    }
}

pub(super) fn fault_answer(
    sim: &mut SimState,
    caller: &Caller,
    fault: &Fault,
    steps: Option<Vec<SimStep>>,
) -> Answer {
    let error = match fault {
        Fault::Throttling => SimError::new(
            400,
            "Throttling.User",
            "Request was denied due to user flow control.",
        ),
        Fault::ServiceUnavailable => SimError::new(
            500,
            "ServiceUnavailable",
            "The request has failed due to a temporary failure of the server.",
        ),
        Fault::InternalError => SimError::new(
            500,
            "InternalError",
            "The request processing has failed due to some unknown error, exception or failure.",
        ),
        Fault::TokenExpired => SimError::new(
            403,
            "InvalidSecurityToken.Expired",
            "Specified SecurityToken is expired.",
        ),
        Fault::BadGateway => {
            record(sim, Some(caller), "HTTP502");
            return Answer::Now((StatusCode::BAD_GATEWAY, [(header::CONTENT_TYPE, "text/html")], "<html><head><title>502 Bad Gateway</title></head><body>502 Bad Gateway</body></html>").into_response());
        }
        Fault::Malformed => {
            record(sim, Some(caller), "Malformed");
            return Answer::Now(
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json;charset=utf-8")],
                    "{\"Success\":true,\"JobSteps\":[{\"JobStepId\":\"l02c1f7h179\",\"State\":",
                )
                    .into_response(),
            );
        }
        Fault::SuccessFalse => {
            let request_id = sim.request_id();
            record(sim, Some(caller), "OperationDenied.JobStatus");
            let body = json!({
                "Success": false,
                "HttpStatusCode": 403,
                "Code": "OperationDenied.JobStatus",
                "ErrCode": "OperationDenied.JobStatus",
                "ErrMessage": "The operation is not allowed in the current job status.",
                "RequestId": request_id,
            });
            return Answer::Now(json_response(StatusCode::OK, &body, &request_id, sim.now()));
        }
        Fault::Slow(delay) => {
            let request_id = sim.request_id();
            let now = sim.now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
            let body =
                scenario::render_list_job_step(&steps.unwrap_or_default(), &request_id, &now);
            let response = success(sim, caller, body);
            return Answer::After(*delay, response);
        }
    };
    record(sim, Some(caller), &error.code);
    Answer::Now(error_body(sim, &error))
}
