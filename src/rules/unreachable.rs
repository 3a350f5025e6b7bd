//! `unreachable`: the job could not be polled (API, auth or parse error);
//! resolves when a poll succeeds. The fingerprint is the kind of failure, so
//! a timeout turning into an auth error is news. Throttling says nothing
//! about the job — DTS slows the whole account down — so it neither fires nor
//! resolves the job's alert; the watchdog raises one alert for the account.

use crate::aliyun::ApiError;
use crate::rules::fact::Fact;
use crate::rules::lifecycle::Condition;

pub fn check(failure: Option<&ApiError>) -> Condition {
    match failure {
        Some(error) if error.class() == crate::aliyun::ErrorClass::Throttled => Condition::Unknown,
        Some(error) => Condition::Holds {
            since: None,
            fingerprint: Some(error.class().as_str().to_string()),
        },
        None => Condition::Clear,
    }
}

pub fn fact(failure: Option<&ApiError>) -> Fact {
    match failure {
        Some(error) => Fact::Unreachable {
            class: error.class().as_str().to_string(),
            error: error.to_string(),
        },
        None => Fact::Reachable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(code: &str, status: u16) -> ApiError {
        ApiError::Api {
            code: code.into(),
            message: "m".into(),
            status,
            request_id: None,
            recommend: None,
        }
    }

    #[test]
    fn throttling_says_nothing_about_the_job() {
        assert_eq!(
            check(Some(&error("Throttling.User", 400))),
            Condition::Unknown
        );
        assert!(matches!(
            check(Some(&error("ServiceUnavailable", 503))),
            Condition::Holds { .. }
        ));
        assert_eq!(check(None), Condition::Clear);
    }
}
