//! What becomes of a batch of outbox rows after one send attempt: delivered,
//! retried later (capped exponential backoff with full jitter, never sooner
//! than the platform's `Retry-After`), or dead (a permanent error, or a
//! retryable one past the max age, with the reason kept). Pure: the random
//! draw for the jitter and `now` are arguments, so the decision is a table test.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::SendError;
use crate::backoff;

/// The longest `Retry-After` honoured: a peer cannot park a channel for ever.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The retry settings that apply to one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// A row still undelivered this long after it was queued is given up on.
    pub max_age: Duration,
}

/// What the batch's oldest row says about the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempted {
    pub created_at: DateTime<Utc>,
    /// Attempts before this one.
    pub attempts: u32,
}

/// What to write back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Delivered,
    Retry { at: DateTime<Utc>, reason: String },
    Dead { reason: String },
}

/// Decides the fate of a batch from the send's result; `unit` is a random number in `[0, 1)`.
pub fn decide(
    result: Result<(), &SendError>,
    batch: Attempted,
    policy: &Policy,
    now: DateTime<Utc>,
    unit: f64,
) -> Decision {
    let (reason, retry_after) = match result {
        Ok(()) => return Decision::Delivered,
        Err(SendError::Permanent(reason)) => {
            return Decision::Dead {
                reason: reason.clone(),
            };
        }
        Err(SendError::Retryable {
            reason,
            retry_after,
        }) => (reason, *retry_after),
    };
    let age = (now - batch.created_at).to_std().unwrap_or_default();
    if age >= policy.max_age {
        return Decision::Dead {
            reason: format!(
                "gave up after {} attempt(s): {reason}",
                batch.attempts.saturating_add(1)
            ),
        };
    }
    let backoff = backoff::delay(batch.attempts, policy.backoff, policy.max_backoff, unit);
    // A platform's Retry-After is honoured, within reason.
    let wait = retry_after.map_or(backoff, |r| r.min(MAX_RETRY_AFTER).max(backoff));
    Decision::Retry {
        at: crate::scheduler::later(now, wait),
        reason: reason.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_796_000_000 + seconds, 0).unwrap()
    }

    const POLICY: Policy = Policy {
        backoff: Duration::from_secs(2),
        max_backoff: Duration::from_secs(300),
        max_age: Duration::from_secs(86_400),
    };

    fn retryable(retry_after: Option<u64>) -> SendError {
        SendError::Retryable {
            reason: "HTTP 503".into(),
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    #[test]
    fn every_outcome() {
        let young = Attempted {
            created_at: at(0),
            attempts: 0,
        };
        let third = Attempted {
            created_at: at(0),
            attempts: 3,
        };
        let old = Attempted {
            created_at: at(-86_400),
            attempts: 41,
        };
        let retry = |secs: i64| Decision::Retry {
            at: at(secs),
            reason: "HTTP 503".into(),
        };
        let permanent =
            SendError::Permanent("DingTalk errcode 310000: keywords not in content".into());
        let cases: [(Result<(), &SendError>, Attempted, f64, Decision); 8] = [
            (Ok(()), young, 0.5, Decision::Delivered),
            (Ok(()), old, 0.5, Decision::Delivered),
            (
                Err(&permanent),
                young,
                0.5,
                Decision::Dead {
                    reason: "DingTalk errcode 310000: keywords not in content".into(),
                },
            ),
            // Full jitter: up to backoff · 2^attempts.
            (Err(&retryable(None)), young, 1.0, retry(2)),
            (Err(&retryable(None)), third, 1.0, retry(16)),
            (Err(&retryable(None)), third, 0.0, retry(0)),
            // Retry-After is a floor, never shortened by the jitter.
            (Err(&retryable(Some(60))), third, 1.0, retry(60)),
            (
                Err(&retryable(Some(60))),
                old,
                1.0,
                Decision::Dead {
                    reason: "gave up after 42 attempt(s): HTTP 503".into(),
                },
            ),
        ];
        for (result, batch, unit, expected) in cases {
            assert_eq!(
                decide(result, batch, &POLICY, at(0), unit),
                expected,
                "{result:?} {batch:?} {unit}"
            );
        }
    }

    #[test]
    fn the_backoff_is_capped() {
        let batch = Attempted {
            created_at: at(0),
            attempts: 30,
        };
        assert_eq!(
            decide(Err(&retryable(None)), batch, &POLICY, at(0), 1.0),
            Decision::Retry {
                at: at(300),
                reason: "HTTP 503".into()
            }
        );
    }
}
