//! `unreachable`: the job could not be polled (API, auth or parse error);
//! resolves when a poll succeeds. The fingerprint is the kind of failure, so
//! throttling turning into an auth error is news.

use super::Finding;
use crate::aliyun::ApiError;
use crate::rules::lifecycle::Condition;

pub fn check(failure: Option<&ApiError>) -> Finding {
    match failure {
        Some(error) => Finding {
            condition: Condition::Holds {
                since: None,
                fingerprint: Some(error.class().as_str().to_string()),
            },
            summary: format!("ListJobStep fails: {error}"),
        },
        None => Finding::clear("ListJobStep answers again".into()),
    }
}
