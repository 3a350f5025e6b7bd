//! Operator writes shared by the CLI and the HTTP API: add or expire a
//! silence, queue a notification again, record a config reload. Each write
//! commits with its audit row (who, what, when) in one transaction and is
//! logged. The actor is a name (`cli (root)`, `api token #1 from
//! 127.0.0.1`), never a token: nothing secret reaches the log or the
//! database. Validation happens here, before the database is touched, so
//! both front ends refuse the same mistakes with the same words.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::store::audit::{self, NewAudit};
use crate::store::silences::NewSilence;
use crate::store::{Store, StoreError, outbox, silences};

/// The longest silence either front end accepts (a year): a typo such as
/// `--for 20000d` should not mute a fleet for decades.
pub const MAX_SILENCE: chrono::Duration = chrono::Duration::days(366);

/// The most a comment or author may hold, in characters.
pub const MAX_TEXT: usize = 1_000;

/// Why a write was refused.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// The request itself is wrong (the caller should fix it).
    #[error("{0}")]
    Invalid(String),
    /// There is no such silence or notification to act on.
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ActionError {
    fn from(e: sqlx::Error) -> Self {
        ActionError::Store(e.into())
    }
}

/// Who made a write, as the audit log names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(String);

impl Actor {
    /// A command-line user: the login name, as far as the environment tells.
    pub fn cli() -> Self {
        let user = std::env::var("SUDO_USER")
            .or_else(|_| std::env::var("USER"))
            .unwrap_or_else(|_| "unknown user".into());
        Actor(format!("cli ({user})"))
    }

    /// An API caller: which configured token (1-based), from where.
    pub fn api(token: usize, from: std::net::IpAddr) -> Self {
        Actor(format!("api token #{token} from {from}"))
    }

    /// The daemon itself (SIGHUP).
    pub fn signal() -> Self {
        Actor("SIGHUP".into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a silence before it is stored: at least one matcher, every glob
/// valid, a window that ends after it starts and within [`MAX_SILENCE`],
/// text within [`MAX_TEXT`].
pub fn check_silence(silence: &NewSilence) -> Result<(), ActionError> {
    if silence.jobs.is_empty() && silence.rules.is_empty() && silence.steps.is_empty() {
        return Err(ActionError::Invalid(
            "a silence needs at least one job, rule or step matcher (use the job `*` to silence everything)"
                .into(),
        ));
    }
    for pattern in silence
        .jobs
        .iter()
        .chain(&silence.rules)
        .chain(&silence.steps)
    {
        if pattern.is_empty() || pattern.chars().count() > MAX_TEXT {
            return Err(ActionError::Invalid(
                "a matcher must be 1 to 1000 characters".into(),
            ));
        }
        globset::Glob::new(pattern)
            .map_err(|e| ActionError::Invalid(format!("bad glob `{pattern}`: {e}")))?;
    }
    if silence.ends <= silence.starts {
        return Err(ActionError::Invalid(
            "a silence must end after it starts".into(),
        ));
    }
    if silence.ends - silence.starts > MAX_SILENCE {
        return Err(ActionError::Invalid(
            "a silence may last at most 366 days".into(),
        ));
    }
    if silence.comment.trim().is_empty() {
        return Err(ActionError::Invalid(
            "a silence needs a comment saying why".into(),
        ));
    }
    let too_long = |text: &str| text.chars().count() > MAX_TEXT;
    if too_long(&silence.comment) || silence.created_by.as_deref().is_some_and(too_long) {
        return Err(ActionError::Invalid(
            "comment and author are limited to 1000 characters".into(),
        ));
    }
    Ok(())
}

/// Adds a silence; returns its id.
pub async fn add_silence(
    store: &Store,
    actor: &Actor,
    silence: &NewSilence,
    now: DateTime<Utc>,
) -> Result<i64, ActionError> {
    check_silence(silence)?;
    let mut tx = store.begin().await?;
    let id = silences::add(&mut tx, silence, now).await?;
    audit::record(
        &mut tx,
        &NewAudit {
            actor: actor.as_str(),
            action: "silence_add",
            target: Some(id.to_string()),
            job: None,
            detail: json!({
                "jobs": silence.jobs,
                "rules": silence.rules,
                "steps": silence.steps,
                "starts": silence.starts,
                "ends": silence.ends,
                "comment": silence.comment,
                "author": silence.created_by,
            }),
        },
        now,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(%actor, silence = id, ends = %silence.ends, "silence added");
    Ok(id)
}

/// Ends a silence now.
pub async fn expire_silence(
    store: &Store,
    actor: &Actor,
    id: i64,
    now: DateTime<Utc>,
) -> Result<(), ActionError> {
    let mut tx = store.begin().await?;
    let jobs = match silences::get(&mut tx, id).await? {
        Some(row) => row
            .to_silence()?
            .jobs
            .map(|m| m.patterns)
            .unwrap_or_default(),
        None => Vec::new(),
    };
    if !silences::expire(&mut tx, id, now).await? {
        return Err(ActionError::NotFound(format!(
            "no unexpired silence {id} (config silences end by editing the config)"
        )));
    }
    audit::record(
        &mut tx,
        &NewAudit {
            actor: actor.as_str(),
            action: "silence_expire",
            target: Some(id.to_string()),
            job: None,
            detail: json!({ "jobs": jobs }),
        },
        now,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(%actor, silence = id, "silence expired");
    Ok(())
}

/// Queues a pending or dead notification again, due now.
pub async fn retry_notification(
    store: &Store,
    actor: &Actor,
    id: i64,
    now: DateTime<Utc>,
) -> Result<(), ActionError> {
    let mut tx = store.begin().await?;
    if !outbox::retry(&mut tx, id, now).await? {
        return Err(ActionError::NotFound(format!(
            "no pending or dead notification {id}"
        )));
    }
    let job = outbox::job_of(&mut tx, id).await?;
    audit::record(
        &mut tx,
        &NewAudit {
            actor: actor.as_str(),
            action: "outbox_retry",
            target: Some(id.to_string()),
            job,
            detail: json!({}),
        },
        now,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(%actor, notification = id, "notification queued again");
    Ok(())
}

/// Records a config reload and how it ended.
pub async fn record_reload(
    store: &Store,
    actor: &Actor,
    outcome: Result<(), String>,
    now: DateTime<Utc>,
) -> Result<(), ActionError> {
    let detail = match &outcome {
        Ok(()) => json!({ "ok": true }),
        Err(reason) => json!({ "ok": false, "error": reason }),
    };
    let mut tx = store.begin().await?;
    audit::record(
        &mut tx,
        &NewAudit {
            actor: actor.as_str(),
            action: "reload",
            target: None,
            job: None,
            detail,
        },
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
