//! `/healthz` and `/metrics`. Health says whether dtswatch is doing its
//! job: polls succeed somewhere, they can be written, and the outbox is
//! moving. Metrics combine what the daemon counted with what the store
//! knows at scrape time (alerts firing, outbox depth).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use super::ServerState;
use crate::metrics::{Gauge, Series};
use crate::store::{StoreError, alerts, from_millis, lease, outbox};
use crate::text::utc_time;

/// A pending notification older than this, already retried, means delivery is stuck.
const OUTBOX_STUCK_AFTER: chrono::Duration = chrono::Duration::minutes(10);

/// Health as a whole: polling works and the outbox is moving. A standby
/// (instances sharing PostgreSQL) is healthy while it can read the lease,
/// that is, while it could take over.
pub async fn check(state: &ServerState) -> Result<String, String> {
    let leading = match &state.fence {
        None => None,
        Some(fence) => match fence.term() {
            Some(term) => Some(format!("leader (term {term}) ")),
            None => return standby(state).await,
        },
    };
    leader_check(state)
        .await
        .map(|ok| format!("{}{ok}", leading.unwrap_or_default()))
}

async fn standby(state: &ServerState) -> Result<String, String> {
    let lease = async {
        let mut conn = state.store.pool().acquire().await?;
        lease::read(&mut conn).await
    }
    .await
    .map_err(|e: StoreError| {
        format!(
            "standby, and cannot read the leader lease: {}",
            e.describe()
        )
    })?;
    Ok(if lease.held() {
        format!(
            "standby: {} leads (term {}); its lease runs {} ms more",
            lease.instance,
            lease.term,
            lease.expires_at.saturating_sub(lease.now)
        )
    } else {
        format!(
            "standby: no instance leads (last term {}); taking over",
            lease.term
        )
    })
}

async fn leader_check(state: &ServerState) -> Result<String, String> {
    state.health.polling()?;
    state.health.storage()?;
    state.health.schedule(Utc::now())?;
    state.store.file_check()?;
    let stuck = async {
        let mut conn = state.store.pool().acquire().await?;
        outbox::oldest_retried(&mut conn).await
    }
    .await
    .map_err(|e: StoreError| e.describe())?;
    if let Some(row) = stuck
        && Utc::now() - from_millis(row.created_at) > OUTBOX_STUCK_AFTER
    {
        return Err(format!(
            "outbox stuck: channel `{}` has a notification pending since {}; last error: {}",
            row.channel,
            utc_time(from_millis(row.created_at)),
            row.last_error.unwrap_or_default()
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

pub(super) async fn healthz(State(state): State<ServerState>) -> Response {
    match check(&state).await {
        Ok(text) => (StatusCode::OK, format!("{text}\n")).into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("unhealthy: {reason}\n"),
        )
            .into_response(),
    }
}

/// Gauges read from the store at scrape time.
async fn scraped(state: &ServerState) -> Result<Vec<(Gauge, Series)>, StoreError> {
    let (alerts, outbox) = {
        let mut conn = state.store.pool().acquire().await?;
        (
            alerts::counts(&mut conn).await?,
            outbox::counts(&mut conn).await?,
        )
    };
    let healthy = if check(state).await.is_ok() { 1.0 } else { 0.0 };
    Ok(vec![
        (
            Gauge::Alerts,
            alerts
                .into_iter()
                .map(|a| (vec![a.rule, a.severity, a.status], a.count as f64))
                .collect(),
        ),
        (
            Gauge::OutboxPending,
            outbox
                .iter()
                .filter(|c| c.pending > 0)
                .map(|c| (vec![c.channel.clone()], c.pending as f64))
                .collect(),
        ),
        (
            Gauge::OutboxDead,
            outbox
                .iter()
                .filter(|c| c.dead > 0)
                .map(|c| (vec![c.channel.clone()], c.dead as f64))
                .collect(),
        ),
        (Gauge::Healthy, vec![(vec![], healthy)]),
    ])
}

pub(super) async fn metrics(State(state): State<ServerState>) -> Response {
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
            format!("database: {}\n", e.describe()),
        )
            .into_response(),
    }
}
