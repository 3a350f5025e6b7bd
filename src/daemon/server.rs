//! `/healthz` and `/metrics` for the daemon. Health says whether dtswatch is
//! doing its job: polls succeed somewhere, they can be written, and the
//! outbox is moving. Metrics combine what the daemon counted with what the
//! store knows at scrape time (alerts firing, outbox depth). The listener is
//! bounded: at most [`MAX_CONNECTIONS`] at once, headers within
//! [`HEADER_TIMEOUT`], no connection past [`CONNECTION_LIFETIME`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::metrics::{Gauge, Metrics, Series};
use crate::poll::Health;
use crate::store::{Store, StoreError, alerts, from_millis, outbox};
use crate::text::utc_time;

/// A pending notification older than this, already retried, means delivery is stuck.
const OUTBOX_STUCK_AFTER: chrono::Duration = chrono::Duration::minutes(10);

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
            format!("database: {}\n", e.describe()),
        )
            .into_response(),
    }
}

/// Connections served at once; more are closed as they arrive, so a flood
/// of idle connections cannot take the file descriptors polls need.
pub const MAX_CONNECTIONS: usize = 64;
/// A client must send its request headers within this (idle keep-alive included).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// No connection lives longer than this.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// Binds `listen` and serves until cancelled, within the limits above.
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
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = cancel.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of descriptors, most likely: wait rather than spin.
                    tracing::warn!(%error, "the health and metrics server cannot accept");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                drop(stream);
                continue;
            };
            let service = TowerToHyperService::new(app.clone());
            let cancel = cancel.clone();
            tokio::spawn(async move {
                let _slot = slot;
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service);
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = tokio::time::timeout(CONNECTION_LIFETIME, connection) => {}
                }
            });
        }
    });
    Ok(addr)
}
