//! DTS operations on top of the generic client: `ListJobStep` for one job's
//! steps and `DescribeDtsJobs` (every page, one job type at a time) for
//! discovery. Request building and response parsing are pure functions.

use std::collections::BTreeMap;

use super::model::{DescribeDtsJobsResponse, ListJobStepResponse};
use super::snapshot::JobSnapshot;
use crate::aliyun::{AliyunClient, ApiCall, ApiError, ApiFailure, Priority};
use crate::config::JobType;

pub const VERSION: &str = "2020-01-01";
/// `DescribeDtsJobs` answers at most this many jobs per page by default.
pub const PAGE_SIZE: u32 = 30;
/// A guard against an API that never stops paging.
const MAX_PAGES: u32 = 1_000;

/// What `ListJobStep` needs to know about a job.
#[derive(Debug, Clone)]
pub struct ListJobStepRequest<'a> {
    pub job_id: &'a str,
    pub region: &'a str,
    pub zero_etl: Option<bool>,
    pub resource_group_id: Option<&'a str>,
    /// Where the call queues for the account's budget in the region.
    pub priority: Priority,
}

pub fn list_job_step_call(req: &ListJobStepRequest<'_>) -> ApiCall {
    let mut params = vec![
        ("DtsJobId".to_string(), req.job_id.to_string()),
        ("RegionId".to_string(), req.region.to_string()),
    ];
    if let Some(zero_etl) = req.zero_etl {
        params.push(("ZeroEtlJob".to_string(), zero_etl.to_string()));
    }
    if let Some(rg) = req.resource_group_id {
        params.push(("ResourceGroupId".to_string(), rg.to_string()));
    }
    ApiCall {
        action: "ListJobStep",
        version: VERSION,
        region: req.region.to_string(),
        params,
        priority: req.priority,
    }
}

/// Reads a `ListJobStep` body; only a body that is not a JSON object is an error.
pub fn parse_list_job_step(body: &[u8]) -> Result<ListJobStepResponse<'_>, ApiError> {
    let malformed = |detail: String| ApiError::Malformed {
        status: 200,
        detail: format!("ListJobStep body is not the expected JSON object ({detail})"),
        request_id: None,
    };
    // serde would read a struct from an array too; DTS only ever sends an object.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(malformed("it does not start with `{`".into()));
    }
    serde_json::from_slice::<ListJobStepResponse>(body).map_err(|e| malformed(e.to_string()))
}

/// One successful poll of one job.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Shared: the recorder keeps it as the next poll's baseline without a copy.
    pub snapshot: std::sync::Arc<JobSnapshot>,
    pub request_id: Option<String>,
    pub attempts: u32,
    pub retried: Vec<String>,
    /// Time spent waiting between attempts.
    pub backoff: std::time::Duration,
}

pub async fn list_job_step(
    client: &AliyunClient,
    req: &ListJobStepRequest<'_>,
) -> Result<Fetched, ApiFailure> {
    let response = client.call(&list_job_step_call(req)).await?;
    let parsed = parse_list_job_step(&response.body).map_err(|error| ApiFailure {
        error: match error {
            ApiError::Malformed { status, detail, .. } => ApiError::Malformed {
                status,
                detail,
                request_id: response.request_id.clone(),
            },
            other => other,
        },
        attempts: response.attempts,
        retried: response.retried.clone(),
        backoff: response.backoff,
    })?;
    Ok(Fetched {
        snapshot: std::sync::Arc::new(JobSnapshot::from_response(&parsed)),
        request_id: parsed.request_id.or(response.request_id),
        attempts: response.attempts,
        retried: response.retried,
        backoff: response.backoff,
    })
}

pub fn describe_dts_jobs_call(
    region: &str,
    job_type: JobType,
    page: u32,
    resource_group_id: Option<&str>,
) -> ApiCall {
    let mut params = vec![
        ("RegionId".to_string(), region.to_string()),
        ("Region".to_string(), region.to_string()),
        ("JobType".to_string(), job_type.as_api().to_string()),
        ("PageNumber".to_string(), page.to_string()),
        ("PageSize".to_string(), PAGE_SIZE.to_string()),
        ("WithoutDbList".to_string(), "true".to_string()),
    ];
    if let Some(rg) = resource_group_id {
        params.push(("ResourceGroupId".to_string(), rg.to_string()));
    }
    ApiCall {
        action: "DescribeDtsJobs",
        version: VERSION,
        region: region.to_string(),
        params,
        priority: Priority::Sweep,
    }
}

/// A job as `DescribeDtsJobs` lists it: what discovery filters on and
/// what a sweep reads (status, delay, errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredJob {
    pub id: String,
    pub name: Option<String>,
    pub status: Option<String>,
    pub job_type: JobType,
    pub region: String,
    pub tags: BTreeMap<String, String>,
    /// Incremental delay in milliseconds.
    pub delay_ms: Option<i64>,
    pub error_message: Option<String>,
    /// `ErrorDetails` codes that are not success (`200`, `Success`).
    pub error_codes: Vec<String>,
}

/// Every job of one type in one region, walking all pages.
pub async fn describe_all(
    client: &AliyunClient,
    region: &str,
    job_type: JobType,
    resource_group_id: Option<&str>,
) -> Result<Vec<DiscoveredJob>, ApiFailure> {
    let mut jobs = Vec::new();
    for page in 1..=MAX_PAGES {
        let response = client
            .call(&describe_dts_jobs_call(
                region,
                job_type,
                page,
                resource_group_id,
            ))
            .await?;
        let parsed: DescribeDtsJobsResponse =
            serde_json::from_slice(&response.body).map_err(|e| ApiFailure {
                error: ApiError::Malformed {
                    status: 200,
                    detail: format!("DescribeDtsJobs body is not the expected JSON object ({e})"),
                    request_id: response.request_id.clone(),
                },
                attempts: response.attempts,
                retried: response.retried.clone(),
                backoff: response.backoff,
            })?;
        let count = parsed.dts_job_list.len();
        for job in parsed.dts_job_list {
            let Some(id) = job.dts_job_id.filter(|id| !id.is_empty()) else {
                continue;
            };
            jobs.push(DiscoveredJob {
                id,
                name: job.dts_job_name.filter(|n| !n.is_empty()),
                status: job.status,
                job_type,
                region: region.to_string(),
                tags: job
                    .tag_list
                    .into_iter()
                    .filter_map(|t| Some((t.tag_key?, t.tag_value.unwrap_or_default())))
                    .collect(),
                delay_ms: job.delay.filter(|d| *d >= 0),
                error_message: job.error_message.filter(|m| !m.trim().is_empty()),
                error_codes: job
                    .error_details
                    .into_iter()
                    .filter_map(|d| d.error_code)
                    .map(|c| c.trim().to_string())
                    .filter(|c| !c.is_empty() && c != "200" && !c.eq_ignore_ascii_case("success"))
                    .collect(),
            });
        }
        let total = parsed.total_record_count.unwrap_or(0).max(0) as usize;
        if count == 0 || jobs.len() >= total || count < PAGE_SIZE as usize {
            break;
        }
    }
    Ok(jobs)
}

/// The whole fleet of an account in a region: every job type, every page.
/// One failed call fails the sweep, so a partial list never reads as
/// jobs gone quiet.
pub async fn sweep(client: &AliyunClient, region: &str) -> Result<Vec<DiscoveredJob>, ApiFailure> {
    let mut jobs = Vec::new();
    for job_type in JobType::ALL {
        jobs.extend(describe_all(client, region, job_type, None).await?);
    }
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_job_step_sends_all_four_parameters() {
        let call = list_job_step_call(&ListJobStepRequest {
            job_id: "k2gm967v16f",
            region: "cn-hangzhou",
            zero_etl: Some(true),
            resource_group_id: Some("rg-aek3dcgyq7p"),
            priority: Priority::Poll,
        });
        assert_eq!(call.action, "ListJobStep");
        assert_eq!(call.version, "2020-01-01");
        let names: Vec<&str> = call.params.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            ["DtsJobId", "RegionId", "ZeroEtlJob", "ResourceGroupId"]
        );
        assert!(call.params.contains(&("ZeroEtlJob".into(), "true".into())));
    }

    #[test]
    fn describe_pages_with_job_type() {
        let call = describe_dts_jobs_call("cn-beijing", JobType::Sync, 3, None);
        assert!(call.params.contains(&("JobType".into(), "SYNC".into())));
        assert!(call.params.contains(&("PageNumber".into(), "3".into())));
        assert!(call.params.contains(&("PageSize".into(), "30".into())));
    }

    #[test]
    fn non_object_bodies_are_malformed() {
        assert!(parse_list_job_step(b"[1,2]").is_err());
        assert!(parse_list_job_step(b"not json").is_err());
        assert!(parse_list_job_step(b"{}").is_ok());
    }
}
