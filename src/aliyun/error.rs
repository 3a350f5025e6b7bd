//! Typed Alibaba Cloud API errors and their classification. DTS's HTTP statuses
//! differ between its docs and the generic tables, so decisions branch on the
//! error `Code`; the status is kept only for messages. Error text is redacted:
//! no signature, token or URL query ever appears in it.

use std::time::Duration;

use serde::Deserialize;

/// What the retry loop and the operator should do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// `Throttling*`: back off and retry.
    Throttled,
    /// 5xx, `ServiceUnavailable`, `InternalError`: back off and retry.
    Server,
    Timeout,
    /// Connection refused/reset, DNS: back off and retry.
    Network,
    /// `SignatureNonceUsed`: retry once with a fresh nonce.
    NonceUsed,
    /// `InvalidTimeStamp.Expired`: retry once with a fresh timestamp.
    TimestampExpired,
    /// `InvalidSecurityToken.Expired`: refresh credentials, retry once.
    TokenExpired,
    /// Wrong key, signature, permissions: never retried, reported.
    Auth,
    /// Any other client error (bad parameter, unknown job): not retried.
    Client,
    /// The body could not be read as the expected JSON.
    Malformed,
    /// No usable credentials could be obtained.
    Credentials,
}

impl ErrorClass {
    /// Retried with exponential backoff inside one poll.
    pub fn backs_off(self) -> bool {
        matches!(
            self,
            ErrorClass::Throttled | ErrorClass::Server | ErrorClass::Timeout | ErrorClass::Network
        )
    }

    /// Retried once, immediately, after refreshing what made the request stale.
    pub fn retries_fresh_once(self) -> bool {
        matches!(
            self,
            ErrorClass::NonceUsed | ErrorClass::TimestampExpired | ErrorClass::TokenExpired
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Throttled => "throttled",
            ErrorClass::Server => "server",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Network => "network",
            ErrorClass::NonceUsed => "nonce_used",
            ErrorClass::TimestampExpired => "timestamp_expired",
            ErrorClass::TokenExpired => "token_expired",
            ErrorClass::Auth => "auth",
            ErrorClass::Client => "client",
            ErrorClass::Malformed => "malformed",
            ErrorClass::Credentials => "credentials",
        }
    }
}

/// Classifies an Alibaba Cloud error code; `status` only decides among unknown codes.
pub fn classify(code: &str, status: u16) -> ErrorClass {
    match code {
        c if c.starts_with("Throttling") => ErrorClass::Throttled,
        "ServiceUnavailable"
        | "InternalError"
        | "UnknownError"
        | "InternalServerError"
        | "ServiceTimeout" => ErrorClass::Server,
        "SignatureNonceUsed" => ErrorClass::NonceUsed,
        "InvalidTimeStamp.Expired" => ErrorClass::TimestampExpired,
        "InvalidSecurityToken.Expired" => ErrorClass::TokenExpired,
        "SignatureDoesNotMatch"
        | "IncompleteSignature"
        | "InvalidAccessKeySecret"
        | "MissingSecurityToken"
        | "NoPermission"
        | "InvalidTimeStamp.Format" => ErrorClass::Auth,
        c if c.starts_with("InvalidAccessKeyId")
            || c.starts_with("InvalidSecurityToken")
            || c.starts_with("Forbidden") =>
        {
            ErrorClass::Auth
        }
        _ if status >= 500 => ErrorClass::Server,
        _ => ErrorClass::Client,
    }
}

/// A failed DTS API call, safe to log and store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("{code}: {message} (HTTP {status}{})", request_suffix(request_id))]
    Api {
        code: String,
        message: String,
        status: u16,
        request_id: Option<String>,
        recommend: Option<String>,
    },
    #[error("request timed out after {}", crate::config::format_duration(*.0))]
    Timeout(Duration),
    #[error("network error: {0}")]
    Network(String),
    #[error(
        "unreadable response (HTTP {status}): {detail}{}",
        request_suffix(request_id)
    )]
    Malformed {
        status: u16,
        detail: String,
        request_id: Option<String>,
    },
    #[error("no usable credentials: {0}")]
    Credentials(String),
}

fn request_suffix(request_id: &Option<String>) -> String {
    request_id
        .as_ref()
        .map(|id| format!(", request {id}"))
        .unwrap_or_default()
}

impl ApiError {
    pub fn class(&self) -> ErrorClass {
        match self {
            ApiError::Api { code, status, .. } => classify(code, *status),
            ApiError::Timeout(_) => ErrorClass::Timeout,
            ApiError::Network(_) => ErrorClass::Network,
            ApiError::Malformed { .. } => ErrorClass::Malformed,
            ApiError::Credentials(_) => ErrorClass::Credentials,
        }
    }

    /// A short code for metrics and the polls table: the API code, or the failure kind.
    pub fn code(&self) -> &str {
        match self {
            ApiError::Api { code, .. } => code,
            ApiError::Timeout(_) => "Timeout",
            ApiError::Network(_) => "NetworkError",
            ApiError::Malformed { .. } => "MalformedResponse",
            ApiError::Credentials(_) => "NoCredentials",
        }
    }

    pub fn request_id(&self) -> Option<&str> {
        match self {
            ApiError::Api { request_id, .. } | ApiError::Malformed { request_id, .. } => {
                request_id.as_deref()
            }
            _ => None,
        }
    }
}

/// The error envelope Alibaba Cloud and DTS use, in every spelling seen.
#[derive(Debug, Default, Deserialize)]
pub struct ErrorEnvelope {
    #[serde(rename = "RequestId", alias = "requestId")]
    pub request_id: Option<serde_json::Value>,
    #[serde(rename = "Code", alias = "code")]
    pub code: Option<serde_json::Value>,
    #[serde(rename = "ErrCode")]
    pub err_code: Option<serde_json::Value>,
    #[serde(rename = "Message", alias = "message")]
    pub message: Option<serde_json::Value>,
    #[serde(rename = "ErrMessage")]
    pub err_message: Option<serde_json::Value>,
    #[serde(rename = "DynamicMessage")]
    pub dynamic_message: Option<serde_json::Value>,
    #[serde(rename = "Recommend")]
    pub recommend: Option<serde_json::Value>,
    #[serde(rename = "Success")]
    pub success: Option<serde_json::Value>,
}

fn text(value: &Option<serde_json::Value>) -> Option<String> {
    match value {
        Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

impl ErrorEnvelope {
    pub fn request_id(&self) -> Option<String> {
        text(&self.request_id)
    }

    /// `Success: false` (or `"false"`) in a 200 answer.
    pub fn is_explicit_failure(&self) -> bool {
        match &self.success {
            Some(serde_json::Value::Bool(b)) => !b,
            Some(serde_json::Value::String(s)) => s.eq_ignore_ascii_case("false"),
            _ => false,
        }
    }

    /// Builds the typed error; `ErrCode` wins over a `Code` of `200` that DTS sometimes sends.
    pub fn into_error(self, status: u16) -> ApiError {
        let code = text(&self.err_code)
            .or_else(|| text(&self.code).filter(|c| c != "200"))
            .unwrap_or_else(|| format!("HTTP{status}"));
        let mut message = text(&self.err_message)
            .or_else(|| text(&self.message))
            .unwrap_or_else(|| "no message".to_string());
        if let Some(dynamic) = text(&self.dynamic_message) {
            message = if message.contains("%s") {
                message.replacen("%s", &dynamic, 1)
            } else {
                format!("{message} ({dynamic})")
            };
        }
        ApiError::Api {
            code,
            message: redact(&message),
            status,
            request_id: text(&self.request_id),
            recommend: text(&self.recommend),
        }
    }
}

/// Removes security tokens and signatures from text that echoes a request
/// (e.g. the StringToSign inside `SignatureDoesNotMatch`).
pub fn redact(text: &str) -> String {
    static PATTERNS: std::sync::OnceLock<[regex::Regex; 3]> = std::sync::OnceLock::new();
    let patterns = PATTERNS.get_or_init(|| {
        [
            // Inside a StringToSign the query is encoded twice: values are plain or `%25XX`, `%26` separates.
            r"(SecurityToken|Signature)(%3D)(?:[^%&\s]|%25[0-9A-Fa-f]{2})*",
            // A plain query string.
            r"(SecurityToken|Signature)(=)[^&\s]*",
            // A V3 header echoed back.
            r"(?i)(security-token)(:\s*)\S+",
        ]
        .map(|p| regex::Regex::new(p).expect("static regex compiles"))
    });
    patterns.iter().fold(text.to_string(), |acc, re| {
        re.replace_all(&acc, "$1$2***").into_owned()
    })
}

/// A reqwest error as text without its URL (the query carries the signature).
pub fn describe_transport_error(error: reqwest::Error) -> String {
    use std::error::Error as _;
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    redact(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_branches_on_code_not_status() {
        let cases = [
            ("Throttling.User", 400, ErrorClass::Throttled),
            ("Throttling.Api", 503, ErrorClass::Throttled),
            ("ServiceUnavailable", 500, ErrorClass::Server),
            ("ServiceUnavailable", 503, ErrorClass::Server),
            (
                "InvalidSecurityToken.Expired",
                403,
                ErrorClass::TokenExpired,
            ),
            (
                "InvalidSecurityToken.Expired",
                400,
                ErrorClass::TokenExpired,
            ),
            ("InvalidSecurityToken.Malformed", 400, ErrorClass::Auth),
            ("SignatureDoesNotMatch", 400, ErrorClass::Auth),
            ("SignatureDoesNotMatch", 403, ErrorClass::Auth),
            ("InvalidAccessKeyId.NotFound", 404, ErrorClass::Auth),
            ("SignatureNonceUsed", 400, ErrorClass::NonceUsed),
            (
                "InvalidTimeStamp.Expired",
                400,
                ErrorClass::TimestampExpired,
            ),
            ("Forbidden.RAM", 403, ErrorClass::Auth),
            ("InvalidParameter", 400, ErrorClass::Client),
            ("SomethingNew", 502, ErrorClass::Server),
        ];
        for (code, status, class) in cases {
            assert_eq!(classify(code, status), class, "{code} {status}");
        }
    }

    #[test]
    fn envelope_reads_success_false_with_err_code() {
        let body = r#"{"Success":false,"HttpStatusCode":404,"Code":"200","ErrCode":"InvalidJobId","ErrMessage":"The Value of Input Parameter %s is not valid","DynamicMessage":"DtsJobId","RequestId":"R1"}"#;
        let envelope: ErrorEnvelope = serde_json::from_str(body).unwrap();
        assert!(envelope.is_explicit_failure());
        match envelope.into_error(200) {
            ApiError::Api {
                code,
                message,
                request_id,
                ..
            } => {
                assert_eq!(code, "InvalidJobId");
                assert_eq!(
                    message,
                    "The Value of Input Parameter DtsJobId is not valid"
                );
                assert_eq!(request_id.as_deref(), Some("R1"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn redacts_tokens_in_server_string_to_sign() {
        let message = "Specified signature is not matched with our calculation. server string to sign is:POST&%2F&AccessKeyId%3Dtestid%26SecurityToken%3DCAIS%252Btoken%252Fwith%253Dspecial%2526chars%26SignatureMethod%3DHMAC-SHA1";
        let redacted = redact(message);
        assert!(!redacted.contains("CAIS"), "{redacted}");
        assert!(!redacted.contains("special"), "{redacted}");
        assert!(redacted.contains("SignatureMethod"), "{redacted}");
        assert_eq!(redact("x?Signature=abc%2Bdef&y=1"), "x?Signature=***&y=1");
    }
}
