//! `/healthz` and `/metrics` for the daemon. Health says whether dtswatch is
//! doing its job: polls succeed somewhere, and the outbox is moving. Metrics
//! combine what the daemon counted with what SQLite knows at scrape time.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::metrics::{Labels, Metrics};
use crate::store::{Store, from_millis};

/// A pending notification older than this, already retried, means delivery is stuck.
const OUTBOX_STUCK_AFTER: chrono::Duration = chrono::Duration::minutes(10);

#[derive(Debug, Default)]
struct HealthState {
    /// Consecutive failed polls per job.
    failing: HashMap<String, u32>,
    last_error: Option<String>,
    last_success: Option<DateTime<Utc>>,
    /// Why the last poll could not be written, until one is.
    storage_error: Option<(DateTime<Utc>, String)>,
}

/// Whether polling works: fed by every poll.
pub struct Health {
    state: Mutex<HealthState>,
    /// Polls in a row that must fail, for every job, before dtswatch is unhealthy.
    unhealthy_after: u32,
    pub started: DateTime<Utc>,
}

impl Health {
    pub fn new(unhealthy_after: u32, started: DateTime<Utc>) -> Self {
        Self {
            state: Mutex::new(HealthState::default()),
            unhealthy_after,
            started,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HealthState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn record(&self, job: &str, error: Option<String>, at: DateTime<Utc>) {
        let mut state = self.lock();
        match error {
            None => {
                state.failing.insert(job.to_string(), 0);
                state.last_success = Some(at);
            }
            Some(e) => {
                *state.failing.entry(job.to_string()).or_default() += 1;
                state.last_error = Some(e);
            }
        }
    }

    /// A poll could not be written to the database (disk full, locked too long, …).
    pub fn storage_failed(&self, error: String, at: DateTime<Utc>) {
        self.lock().storage_error = Some((at, error));
    }

    /// A poll was written: the database works again.
    pub fn storage_ok(&self) {
        self.lock().storage_error = None;
    }

    /// `Err(reason)` while the last poll could not be written.
    pub fn storage(&self) -> Result<(), String> {
        match &self.lock().storage_error {
            Some((at, error)) => Err(format!(
                "polls cannot be written since {}: {error}",
                at.format("%Y-%m-%d %H:%M:%S UTC")
            )),
            None => Ok(()),
        }
    }

    /// Jobs no longer watched stop counting.
    pub fn forget_except(&self, watched: &[String]) {
        self.lock().failing.retain(|job, _| watched.contains(job));
    }

    pub fn last_success(&self) -> Option<DateTime<Utc>> {
        self.lock().last_success
    }

    /// `Err(reason)` when every polled job failed its last `unhealthy_after` polls.
    pub fn polling(&self) -> Result<(), String> {
        let state = self.lock();
        if state.failing.is_empty() || state.failing.values().any(|n| *n < self.unhealthy_after) {
            return Ok(());
        }
        Err(format!(
            "the last {} polls of every job failed; last error: {}",
            self.unhealthy_after,
            state.last_error.clone().unwrap_or_default()
        ))
    }
}

#[derive(Clone)]
pub struct ServerState {
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    pub store: Store,
}

/// Health as a whole: polling works and the outbox is moving.
pub async fn check(state: &ServerState) -> Result<String, String> {
    state.health.polling()?;
    state.health.storage()?;
    let stuck: Option<(i64, String, Option<String>)> = sqlx::query_as(
        "SELECT created_at, channel, last_error FROM outbox WHERE status = 'pending' AND attempts > 0 ORDER BY id LIMIT 1",
    )
    .fetch_optional(state.store.pool())
    .await
    .map_err(|e| format!("database: {e}"))?;
    if let Some((created_at, channel, error)) = stuck
        && Utc::now() - from_millis(created_at) > OUTBOX_STUCK_AFTER
    {
        return Err(format!(
            "outbox stuck: channel `{channel}` has a notification pending since {}; last error: {}",
            from_millis(created_at).format("%Y-%m-%d %H:%M:%S UTC"),
            error.unwrap_or_default()
        ));
    }
    let last = state
        .health
        .last_success()
        .map(|t| {
            format!(
                "last successful poll {}s ago",
                (Utc::now() - t).num_seconds()
            )
        })
        .unwrap_or_else(|| "no poll finished yet".into());
    Ok(format!("ok: {last}"))
}

async fn healthz(State(state): State<ServerState>) -> Response {
    match check(&state).await {
        Ok(text) => (StatusCode::OK, format!("{text}\n")).into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("unhealthy: {reason}\n"),
        )
            .into_response(),
    }
}

/// Gauges read from SQLite at scrape time.
async fn scraped(
    state: &ServerState,
) -> Result<Vec<(&'static str, Vec<(Labels, f64)>)>, sqlx::Error> {
    let alerts: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT rule, severity, status, COUNT(*) FROM alerts WHERE status != 'inactive' GROUP BY rule, severity, status",
    )
    .fetch_all(state.store.pool())
    .await?;
    let outbox: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT channel, status, COUNT(*) FROM outbox WHERE status != 'delivered' GROUP BY channel, status")
            .fetch_all(state.store.pool())
            .await?;
    let by_status = |wanted: &str| -> Vec<(Labels, f64)> {
        outbox
            .iter()
            .filter(|(_, status, _)| status == wanted)
            .map(|(channel, _, n)| (vec![("channel", channel.clone())], *n as f64))
            .collect()
    };
    let healthy = if check(state).await.is_ok() { 1.0 } else { 0.0 };
    Ok(vec![
        (
            "dtswatch_alerts",
            alerts
                .into_iter()
                .map(|(rule, severity, status, n)| {
                    (
                        vec![("rule", rule), ("severity", severity), ("status", status)],
                        n as f64,
                    )
                })
                .collect(),
        ),
        ("dtswatch_outbox_pending", by_status("pending")),
        ("dtswatch_outbox_dead", by_status("dead")),
        ("dtswatch_healthy", vec![(vec![], healthy)]),
    ])
}

async fn metrics(State(state): State<ServerState>) -> Response {
    match scraped(&state).await {
        Ok(extra) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            state.metrics.render(&extra),
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("database: {e}\n"),
        )
            .into_response(),
    }
}

/// Binds `listen` and serves until cancelled.
pub async fn serve(
    listen: SocketAddr,
    state: ServerState,
    cancel: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(state);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(async move { cancel.cancelled().await })
            .await
        {
            tracing::warn!(error = %e, "the health and metrics server stopped");
        }
    });
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unhealthy_only_when_every_job_keeps_failing() {
        let health = Health::new(3, Utc::now());
        assert!(health.polling().is_ok(), "nothing polled yet");
        for _ in 0..3 {
            health.record("a", Some("Throttling.User".into()), Utc::now());
        }
        health.record("b", None, Utc::now());
        assert!(health.polling().is_ok(), "b works");
        for _ in 0..3 {
            health.record("b", Some("ServiceUnavailable".into()), Utc::now());
        }
        let reason = health.polling().unwrap_err();
        assert!(
            reason.contains("last error: ServiceUnavailable"),
            "{reason}"
        );
        health.record("a", None, Utc::now());
        assert!(health.polling().is_ok());
        health.forget_except(&["a".to_string()]);
        assert!(health.polling().is_ok());
    }
}
