//! `unreachable`: the job could not be polled (API, auth or parse error);
//! resolves when a poll succeeds. The fingerprint is the kind of failure, so
//! throttling turning into an auth error is news.

use crate::aliyun::ApiError;
use crate::rules::lifecycle::Condition;

pub fn check(failure: Option<&ApiError>) -> Condition {
    match failure {
        Some(error) => Condition::Holds {
            since: None,
            fingerprint: Some(error.class().as_str().to_string()),
        },
        None => Condition::Clear,
    }
}

pub fn summary(failure: Option<&ApiError>) -> String {
    match failure {
        Some(error) => format!("ListJobStep fails: {error}"),
        None => "ListJobStep answers again".into(),
    }
}
