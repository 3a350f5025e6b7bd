//! How the simulator checks a request the way Alibaba Cloud's gateway does:
//! the V1 or V3 signature recomputed from what arrived, the timestamp within
//! 15 minutes, a nonce used once. Pure functions over the request's parts.

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::aliyun::signing;

/// An error answer in Alibaba's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl SimError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_string(),
            message: message.into(),
        }
    }
}

/// The gateway's allowed clock skew.
pub const MAX_SKEW: chrono::Duration = chrono::Duration::minutes(15);

/// `yyyy-MM-ddTHH:mm:ssZ` within 15 minutes of `now`.
pub fn check_timestamp(value: &str, now: DateTime<Utc>) -> Result<(), SimError> {
    let parsed = NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%SZ")
        .map_err(|_| {
            SimError::new(
                400,
                "InvalidTimeStamp.Format",
                format!("Specified time stamp or date value is not well formatted: {value}"),
            )
        })?
        .and_utc();
    if (now - parsed).abs() > MAX_SKEW {
        return Err(SimError::new(
            400,
            "InvalidTimeStamp.Expired",
            "Specified time stamp or date value is expired.",
        ));
    }
    Ok(())
}

/// Alibaba's answer to a signature that does not match, with what the server signed.
fn matches(expected: &str, given: &str, signed: &str) -> Result<(), SimError> {
    if expected == given {
        Ok(())
    } else {
        Err(SimError::new(
            400,
            "SignatureDoesNotMatch",
            format!("Specified signature is not matched with our calculation. server {signed}"),
        ))
    }
}

/// Recomputes a V1 signature over every parameter but `Signature`.
pub fn verify_v1(method: &str, params: &[(String, String)], secret: &str) -> Result<(), SimError> {
    let given = params
        .iter()
        .find(|(k, _)| k == "Signature")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    let string_to_sign = signing::v1_string_to_sign(method, params);
    matches(
        &signing::v1_signature(secret, &string_to_sign),
        given,
        &format!("string to sign is:{string_to_sign}"),
    )
}

/// Recomputes a V3 signature from the headers the request says it signed.
/// `header` looks a lower-case header name up in the request.
pub fn verify_v3(
    method: &str,
    query: &[(String, String)],
    header: &dyn Fn(&str) -> Option<String>,
    body: &[u8],
    secret: &str,
    authorization: &signing::V3Authorization,
) -> Result<(), SimError> {
    let required = [
        "host",
        "x-acs-action",
        "x-acs-version",
        "x-acs-date",
        "x-acs-signature-nonce",
        "x-acs-content-sha256",
    ];
    for name in required {
        if !authorization.signed_headers.iter().any(|h| h == name) {
            return Err(SimError::new(
                400,
                "IncompleteSignature",
                format!(
                    "The request signature does not conform to Aliyun standards: header `{name}` must be signed."
                ),
            ));
        }
    }
    let mut headers = Vec::new();
    for name in &authorization.signed_headers {
        let value = header(name).ok_or_else(|| {
            SimError::new(
                400,
                "IncompleteSignature",
                format!("Signed header `{name}` is missing from the request."),
            )
        })?;
        headers.push((name.clone(), value));
    }
    if header("x-acs-content-sha256").as_deref() != Some(signing::hex_sha256(body).as_str()) {
        return Err(SimError::new(
            400,
            "IncompleteSignature",
            "x-acs-content-sha256 does not match the body.",
        ));
    }
    let (canonical, _) = signing::v3_canonical_request(method, query, &headers, body);
    let expected = signing::v3_signature(secret, &signing::v3_string_to_sign(&canonical));
    matches(
        &expected,
        &authorization.signature,
        &format!("canonical request is:{}", canonical.replace('\n', "\\n")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_checked_for_format_and_skew() {
        let now = DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert!(check_timestamp("2024-05-01T12:14:59Z", now).is_ok());
        assert!(check_timestamp("2024-05-01T11:45:00Z", now).is_ok());
        assert_eq!(
            check_timestamp("2024-05-01T12:16:00Z", now)
                .unwrap_err()
                .code,
            "InvalidTimeStamp.Expired"
        );
        assert_eq!(
            check_timestamp("2024-05-01 12:00:00", now)
                .unwrap_err()
                .code,
            "InvalidTimeStamp.Format"
        );
    }

    #[test]
    fn v1_verification_accepts_the_vector_and_rejects_a_wrong_secret() {
        let params: Vec<(String, String)> = [
            ("AccessKeyId", "testid"),
            ("Action", "ListJobStep"),
            ("DtsJobId", "l3m1jdq9m1xxxxx"),
            ("Format", "json"),
            ("RegionId", "cn-hangzhou"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"),
            ("SignatureVersion", "1.0"),
            ("Timestamp", "2024-05-01T12:00:00Z"),
            ("Version", "2020-01-01"),
            ("Signature", "uJb9PPQZlekZvTGvZJmqktxgxr4="),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert!(verify_v1("POST", &params, "testsecret").is_ok());
        let error = verify_v1("POST", &params, "wrong").unwrap_err();
        assert_eq!(error.code, "SignatureDoesNotMatch");
        assert!(
            error
                .message
                .contains("server string to sign is:POST&%2F&AccessKeyId")
        );
        assert!(
            verify_v1("GET", &params, "testsecret").is_err(),
            "the method is signed"
        );
    }
}
