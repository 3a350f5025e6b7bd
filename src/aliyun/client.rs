//! One Alibaba Cloud account's RPC client: builds requests the way the
//! official SDK sends them (POST, parameters in the query, empty body), signs
//! each attempt fresh, takes a slot from the account's budget in the call's
//! region (`budget.rs`; every attempt, retries included, is one request to
//! DTS), and retries what is worth retrying. Returns the raw success body;
//! parsing belongs to `dts`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::budget::{Budget, Priority};
use super::credentials::{CredentialsProvider, Environment};
use super::endpoint;
use super::error::{ApiError, ErrorClass, ErrorEnvelope, describe_transport_error};
use super::signing::{self, V1Common, V3Common};
use super::{clock, tolerant};
use crate::config::{AccountConfig, PollConfig, SignatureVersion};
use crate::metrics::{Counter, Gauge, Metrics};

/// Retry policy for one call.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Total tries for errors that back off.
    pub attempts: u32,
    pub base: Duration,
    pub max: Duration,
}

/// One API operation to call.
#[derive(Debug, Clone)]
pub struct ApiCall {
    pub action: &'static str,
    pub version: &'static str,
    pub region: String,
    pub params: Vec<(String, String)>,
    /// Where the call queues for the region's budget.
    pub priority: Priority,
}

/// A successful answer and how hard it was to get.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    pub body: Vec<u8>,
    pub request_id: Option<String>,
    pub attempts: u32,
    /// Codes of the errors that were retried before success.
    pub retried: Vec<String>,
    /// Time spent waiting between attempts.
    pub backoff: Duration,
}

/// A failed call: the final error plus the retried ones before it.
#[derive(Debug, Clone)]
pub struct ApiFailure {
    pub error: ApiError,
    pub attempts: u32,
    pub retried: Vec<String>,
    /// Time spent waiting between attempts.
    pub backoff: Duration,
}

pub struct AliyunClient {
    http: reqwest::Client,
    account: String,
    endpoint: Option<String>,
    signature: SignatureVersion,
    credentials: CredentialsProvider,
    /// `max_rps` of each region's budget.
    max_rps: f64,
    budgets: std::sync::Mutex<HashMap<String, Arc<Budget>>>,
    metrics: Option<Arc<Metrics>>,
    retry: RetryPolicy,
    timeout: Duration,
    /// The largest answer read (`poll.max_answer`).
    max_answer: usize,
    /// Throttling is about the account in a region, not the request: a
    /// throttled answer slows the region's budget down and pauses it.
    throttle: std::sync::Mutex<Throttle>,
}

/// The account's standing with DTS's flow control.
#[derive(Debug, Default)]
struct Throttle {
    /// Throttled answers in a row: the pause doubles with each.
    in_a_row: u32,
    /// Since when DTS has throttled the account without a success in between.
    since: Option<chrono::DateTime<Utc>>,
}

impl AliyunClient {
    pub fn new(
        account: &AccountConfig,
        poll: &PollConfig,
        env: &Environment,
    ) -> Result<Self, ApiError> {
        let http = crate::http::client(poll.timeout)
            .map_err(|e| ApiError::Network(describe_transport_error(e)))?;
        Ok(Self {
            credentials: CredentialsProvider::new(&account.credentials, env, http.clone()),
            http,
            account: account.name.clone(),
            endpoint: account.endpoint.clone(),
            signature: account.signature,
            max_rps: account.max_rps,
            budgets: Default::default(),
            metrics: None,
            retry: RetryPolicy {
                attempts: poll.attempts,
                base: poll.backoff,
                max: poll.max_backoff,
            },
            timeout: poll.timeout,
            max_answer: poll.max_answer,
            throttle: Default::default(),
        })
    }

    /// Counts every request and shows each region's budget in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The account's budget in `region`, made on first use.
    pub fn budget(&self, region: &str) -> Arc<Budget> {
        let mut budgets = self.budgets.lock().unwrap_or_else(|p| p.into_inner());
        budgets
            .entry(region.to_string())
            .or_insert_with(|| Arc::new(Budget::new(self.max_rps)))
            .clone()
    }

    /// Since when DTS has been throttling this account, if it is.
    pub fn throttled_since(&self) -> Option<chrono::DateTime<Utc>> {
        self.throttle_state().since
    }

    fn throttle_state(&self) -> std::sync::MutexGuard<'_, Throttle> {
        self.throttle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records an answer: a throttled one slows the region down and pauses it.
    fn note_answer(&self, region: &str, throttled: bool, retry_after: Option<Duration>) {
        let budget = self.budget(region);
        let mut state = self.throttle_state();
        if !throttled {
            *state = Throttle::default();
            drop(state);
            budget.answered(false, Duration::ZERO);
            return;
        }
        // `poll.backoff`, doubled for each throttled answer in a row, up to
        // `poll.max_backoff`; never shorter than what DTS asks for.
        let pause = crate::backoff::delay(state.in_a_row, self.retry.base, self.retry.max, 1.0)
            .max(
                retry_after
                    .unwrap_or_default()
                    .min(Duration::from_secs(300)),
            );
        state.in_a_row = state.in_a_row.saturating_add(1);
        state.since.get_or_insert_with(Utc::now);
        drop(state);
        budget.answered(true, pause);
    }

    /// Takes a slot of the region's budget for one request, and counts it.
    async fn take_slot(&self, call: &ApiCall) {
        let budget = self.budget(&call.region);
        budget.acquire(call.priority).await;
        if let Some(metrics) = &self.metrics {
            let labels = [self.account.as_str(), call.region.as_str(), call.action];
            metrics.inc(Counter::ApiRequests, &labels);
            let labels = [self.account.as_str(), call.region.as_str()];
            metrics.set(Gauge::ApiBudgetRate, &labels, budget.rate());
            metrics.set(Gauge::ApiBudgetUtilisation, &labels, budget.utilisation());
        }
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    /// Calls the API, retrying throttling, 5xx and timeouts with backoff and
    /// stale nonces, timestamps and tokens once.
    pub async fn call(&self, call: &ApiCall) -> Result<ApiResponse, ApiFailure> {
        let mut attempts = 0;
        let mut backoff_retries = 0;
        let mut fresh_retry_used = false;
        let mut retried = Vec::new();
        let mut backoff = Duration::ZERO;
        loop {
            attempts += 1;
            let outcome = self.attempt(call).await;
            let (error, retry_after) = match outcome {
                Ok((body, request_id)) => {
                    self.note_answer(&call.region, false, None);
                    return Ok(ApiResponse {
                        body,
                        request_id,
                        attempts,
                        retried,
                        backoff,
                    });
                }
                Err(e) => e,
            };
            let class = error.class();
            self.note_answer(&call.region, class == ErrorClass::Throttled, retry_after);
            let wait = if class.backs_off() && backoff_retries + 1 < self.retry.attempts {
                backoff_retries += 1;
                let jittered =
                    crate::backoff::jittered(backoff_retries - 1, self.retry.base, self.retry.max);
                Some(
                    retry_after
                        .map(|r| r.min(self.retry.max))
                        .unwrap_or(jittered),
                )
            } else if class.retries_fresh_once() && !fresh_retry_used {
                fresh_retry_used = true;
                if class == ErrorClass::TokenExpired {
                    self.credentials.invalidate().await;
                }
                Some(Duration::ZERO)
            } else {
                None
            };
            match wait {
                Some(delay) => {
                    tracing::debug!(
                        account = %self.account,
                        action = call.action,
                        code = error.code(),
                        attempt = attempts,
                        delay_ms = delay.as_millis() as u64,
                        "retrying DTS call"
                    );
                    retried.push(error.code().to_string());
                    backoff += delay;
                    tokio::time::sleep(delay).await;
                }
                None => {
                    return Err(ApiFailure {
                        error,
                        attempts,
                        retried,
                        backoff,
                    });
                }
            }
        }
    }

    /// One signed request. On error also returns `x-acs-retry-after` if the server sent it.
    async fn attempt(
        &self,
        call: &ApiCall,
    ) -> Result<(Vec<u8>, Option<String>), (ApiError, Option<Duration>)> {
        let creds = self
            .credentials
            .get()
            .await
            .map_err(|e| (ApiError::Credentials(e), None))?;
        self.take_slot(call).await;
        let base = endpoint::base_url(self.endpoint.as_deref(), &call.region);
        let nonce = uuid::Uuid::new_v4().to_string();
        let timestamp = Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let token = creds.security_token.as_ref().map(|t| t.expose());
        let mut request = match self.signature {
            SignatureVersion::V1 => {
                let query = signing::sign_v1(
                    "POST",
                    call.params.clone(),
                    &V1Common {
                        action: call.action,
                        version: call.version,
                        access_key_id: &creds.access_key_id,
                        security_token: token,
                        nonce: &nonce,
                        timestamp: &timestamp,
                    },
                    creds.access_key_secret.expose(),
                );
                self.http
                    .post(format!("{base}/?{}", signing::canonical_query(&query)))
                    .header("x-acs-action", call.action)
                    .header("x-acs-version", call.version)
            }
            SignatureVersion::V3 => {
                let url = format!("{base}/?{}", signing::canonical_query(&call.params));
                let host = host_header(&url);
                let headers = signing::sign_v3(
                    "POST",
                    &call.params,
                    b"",
                    &V3Common {
                        host: &host,
                        action: call.action,
                        version: call.version,
                        access_key_id: &creds.access_key_id,
                        security_token: token,
                        nonce: &nonce,
                        date: &timestamp,
                    },
                    creds.access_key_secret.expose(),
                );
                let mut builder = self.http.post(url).header("accept", "application/json");
                for (name, value) in headers.into_iter().filter(|(n, _)| n != "host") {
                    builder = builder.header(name, value);
                }
                builder
            }
        };
        request = request.timeout(self.timeout);
        let response = request
            .send()
            .await
            .map_err(|e| (self.transport_error(e), None))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("x-acs-retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis);
        let server_date = response
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if (300..400).contains(&status) {
            return Err((
                ApiError::Api {
                    code: format!("HTTP{status}"),
                    message: format!(
                        "a redirect to {}, not followed (it would carry the signed request and its token there); check the account's endpoint",
                        crate::http::redirect_target(response.headers())
                    ),
                    status,
                    request_id: None,
                    recommend: None,
                },
                None,
            ));
        }
        let body = crate::http::read_capped(response, self.max_answer)
            .await
            .map_err(|e| match e {
                crate::http::ReadError::Transport(e) => (self.transport_error(e), retry_after),
                too_large => (
                    ApiError::Malformed {
                        status,
                        detail: too_large.to_string(),
                        request_id: None,
                    },
                    None,
                ),
            })?;
        interpret(status, tolerant::repair(body))
            .map_err(|e| (explain(e, server_date), retry_after))
    }

    fn transport_error(&self, error: reqwest::Error) -> ApiError {
        if error.is_timeout() {
            ApiError::Timeout(self.timeout)
        } else {
            ApiError::Network(describe_transport_error(error))
        }
    }
}

/// An expired timestamp is the host's clock: say whose, by how much, and what fixes it.
fn explain(error: ApiError, server_date: Option<String>) -> ApiError {
    match error {
        ApiError::Api {
            code,
            message,
            status,
            request_id,
            recommend,
        } if code == "InvalidTimeStamp.Expired" => ApiError::Api {
            message: clock::explain_skew(&message, Utc::now(), server_date.as_deref()),
            code,
            status,
            request_id,
            recommend,
        },
        other => other,
    }
}

/// `host[:port]` as reqwest sends it in the Host header.
fn host_header(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => String::new(),
        },
        Err(_) => String::new(),
    }
}

/// Decides what an HTTP answer means. Pure: status + body in, body or typed error out.
pub fn interpret(status: u16, body: Vec<u8>) -> Result<(Vec<u8>, Option<String>), ApiError> {
    let envelope: Result<ErrorEnvelope, _> = serde_json::from_slice(&body);
    match envelope {
        Ok(envelope) if status >= 400 || envelope.is_explicit_failure() => {
            Err(envelope.into_error(status))
        }
        Ok(envelope) => Ok((body, envelope.request_id())),
        Err(_) if status >= 400 => Err(ApiError::Api {
            code: format!("HTTP{status}"),
            message: snippet(&body),
            status,
            request_id: None,
            recommend: None,
        }),
        Err(e) => Err(ApiError::Malformed {
            status,
            detail: format!("{e} in {}", snippet(&body)),
            request_id: None,
        }),
    }
}

/// The start of a body, for error messages.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return "an empty body".to_string();
    }
    let mut out: String = trimmed.chars().take(120).collect();
    if trimmed.chars().count() > 120 {
        out.push('…');
    }
    format!("`{}`", super::error::redact(&out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_200_with_success_false_is_an_error() {
        let body =
            br#"{"Success":false,"ErrCode":"InvalidJobId","ErrMessage":"bad job","RequestId":"R"}"#
                .to_vec();
        let error = interpret(200, body).unwrap_err();
        assert_eq!(error.code(), "InvalidJobId");
        assert_eq!(error.class(), ErrorClass::Client);
    }

    #[test]
    fn error_codes_decide_not_statuses() {
        let body = br#"{"RequestId":"R","HostId":"dts.aliyuncs.com","Code":"Throttling.User","Message":"Request was denied due to user flow control."}"#.to_vec();
        assert_eq!(
            interpret(400, body).unwrap_err().class(),
            ErrorClass::Throttled
        );
        let html = b"<html>502 Bad Gateway</html>".to_vec();
        let error = interpret(502, html).unwrap_err();
        assert_eq!(error.class(), ErrorClass::Server);
        assert_eq!(error.code(), "HTTP502");
    }

    #[test]
    fn a_200_that_is_not_json_is_malformed() {
        let error = interpret(200, b"{\"JobSteps\": [".to_vec()).unwrap_err();
        assert_eq!(error.class(), ErrorClass::Malformed);
        assert!(error.to_string().contains("unreadable response"), "{error}");
    }

    #[test]
    fn success_returns_the_body_and_request_id() {
        let (body, request_id) = interpret(
            200,
            br#"{"Success":true,"RequestId":"abc","JobSteps":[]}"#.to_vec(),
        )
        .unwrap();
        assert!(!body.is_empty());
        assert_eq!(request_id.as_deref(), Some("abc"));
    }
}
