//! Wire types for DTS `ListJobStep` and `DescribeDtsJobs` responses, read
//! tolerantly: numbers may arrive as strings and strings as numbers, any field
//! may be missing or null, unknown fields are ignored. These types mirror the
//! JSON; `snapshot.rs` turns them into the project's own model.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// `ListJobStep` response body.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListJobStepResponse {
    #[serde(default, deserialize_with = "lenient_bool")]
    pub success: Option<bool>,
    #[serde(default, deserialize_with = "lenient_string", alias = "requestId")]
    pub request_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub code: Option<String>,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub http_status_code: Option<i64>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub err_code: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub err_message: Option<String>,
    #[serde(default, deserialize_with = "lenient_list")]
    pub job_steps: Vec<WireStep>,
}

/// One step or sub-step as DTS sends it.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct WireStep {
    #[serde(default, deserialize_with = "lenient_string")]
    pub job_step_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub job_step_name: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub code: Option<String>,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub serial: Option<i64>,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub progress: Option<i64>,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub sub_job_count: Option<i64>,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub inc_latency_seconds: Option<i64>,
    /// A number on steps and a string on sub-steps in the same response.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub inc_latency_milliseconds: Option<i64>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub state: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub err_msg: Option<String>,
    #[serde(default, deserialize_with = "lenient_list")]
    pub error_details: Vec<WireErrorDetail>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub need_acceleration: Option<bool>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub create_time: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub boot_time: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub finish_time: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub modify_time: Option<String>,
    /// Lower camel case on the wire, unlike every other field.
    #[serde(
        default,
        rename = "redisPhaseType",
        alias = "RedisPhaseType",
        deserialize_with = "lenient_string"
    )]
    pub redis_phase_type: Option<String>,
    #[serde(default, deserialize_with = "lenient_list")]
    pub sub_job_steps: Vec<WireStep>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct WireErrorDetail {
    #[serde(default, deserialize_with = "lenient_string")]
    pub error_code: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub help_url: Option<String>,
}

/// `DescribeDtsJobs` response body (only what discovery needs).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeDtsJobsResponse {
    #[serde(default, deserialize_with = "lenient_bool")]
    pub success: Option<bool>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub request_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub total_record_count: Option<i64>,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub page_number: Option<i64>,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub page_record_count: Option<i64>,
    #[serde(default, deserialize_with = "lenient_list")]
    pub dts_job_list: Vec<WireDtsJob>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct WireDtsJob {
    #[serde(default, deserialize_with = "lenient_string")]
    pub dts_job_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub dts_job_name: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub dts_job_direction: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub job_type: Option<String>,
    #[serde(default, deserialize_with = "lenient_list")]
    pub tag_list: Vec<WireTag>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct WireTag {
    #[serde(default, deserialize_with = "lenient_string")]
    pub tag_key: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub tag_value: Option<String>,
}

/// A string, or a number/bool rendered as text; null reads as missing.
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    })
}

/// An integer given as a number (possibly fractional) or a numeric string.
fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite())
                .map(|f| f.round() as i64)
        }),
        Value::String(s) => {
            let s = s.trim();
            s.parse::<i64>().ok().or_else(|| {
                s.parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .map(|f| f.round() as i64)
            })
        }
        _ => None,
    })
}

/// `true`/`false`, or their string forms.
fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Bool(b) => Some(b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        Value::Number(n) => n.as_i64().map(|i| i != 0),
        _ => None,
    })
}

/// A list of objects; null or a non-list reads as empty, and an element that is
/// not an object is skipped rather than failing the whole response.
fn lenient_list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: for<'a> Deserialize<'a>,
{
    Ok(match Value::deserialize(d)? {
        Value::Array(items) => items
            .into_iter()
            .filter(|v| v.is_object())
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect(),
        // XML-to-JSON conversions sometimes collapse a one-element list into an object.
        v @ Value::Object(_) => serde_json::from_value(v).ok().into_iter().collect(),
        _ => Vec::new(),
    })
}
