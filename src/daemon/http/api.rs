//! `/api/v1/`: the JSON API. Reads are open (the default listener is
//! loopback; `check-config` refuses a reachable one without tokens and
//! TLS); writes need a bearer token (`auth.rs`) and go through `actions`,
//! which validates and audits them. Every answer is JSON, errors included
//! (`{"error": "..."}`), with the shapes `--format json` prints (`report`).
//! Documented by `openapi.json`, served at `/api/v1/openapi.json`.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::auth::{Denied, authorize, bearer};
use super::{Peer, ReloadRequest, ServerState};
use crate::actions::{self, ActionError, Actor};
use crate::config::parse_duration;
use crate::report::{self, json};
use crate::store::outbox::{self, OutboxStatus};
use crate::store::silences::NewSilence;
use crate::store::{StoreError, jobs};

/// The OpenAPI 3.1 description of this API.
const OPENAPI: &str = include_str!("openapi.json");

pub(super) fn routes() -> Router<ServerState> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/status", get(status))
        .route("/api/v1/jobs", get(list_jobs))
        .route("/api/v1/jobs/{id}", get(one_job))
        .route("/api/v1/jobs/{id}/history", get(history))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/silences", get(silences).post(add_silence))
        .route("/api/v1/silences/{id}", delete(expire_silence))
        .route("/api/v1/outbox", get(list_outbox))
        .route("/api/v1/outbox/{id}/retry", post(retry))
        .route("/api/v1/reload", post(reload))
}

/// An API error: a status and a sentence, or a refused write.
pub(super) enum ApiError {
    Status(StatusCode, String),
    Denied(Denied),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Status(status, why) => {
                (status, Json(serde_json::json!({ "error": why }))).into_response()
            }
            ApiError::Denied(denied) => denied.into_response(),
        }
    }
}

impl From<Denied> for ApiError {
    fn from(denied: Denied) -> Self {
        ApiError::Denied(denied)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Status(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("database: {}", e.describe()),
        )
    }
}

impl From<ActionError> for ApiError {
    fn from(e: ActionError) -> Self {
        match e {
            ActionError::Invalid(why) => ApiError::Status(StatusCode::UNPROCESSABLE_ENTITY, why),
            ActionError::NotFound(why) => ApiError::Status(StatusCode::NOT_FOUND, why),
            ActionError::Store(e) => e.into(),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        ApiError::Status(e.status(), e.body_text())
    }
}

fn not_found(what: String) -> ApiError {
    ApiError::Status(StatusCode::NOT_FOUND, what)
}

type ApiResult = Result<Response, ApiError>;

/// A JSON answer that no cache keeps (it is the state of now).
fn answer<T: serde::Serialize>(status: StatusCode, body: &T) -> ApiResult {
    Ok((status, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

/// The caller of a write, or why not.
fn writer(state: &ServerState, headers: &HeaderMap, peer: Peer) -> Result<Actor, Denied> {
    authorize(&state.config().server.tokens, bearer(headers), peer.0.ip()).inspect_err(|denied| {
        tracing::warn!(from = %peer.0, reason = denied.message(), "API write refused");
    })
}

async fn openapi() -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        OPENAPI,
    )
        .into_response()
}

async fn status(State(state): State<ServerState>) -> ApiResult {
    let config = state.config();
    let status =
        report::status::status(&state.store, &config.silences, &config.ha, Utc::now()).await?;
    answer(StatusCode::OK, &status)
}

async fn list_jobs(State(state): State<ServerState>) -> ApiResult {
    answer(StatusCode::OK, &report::status::jobs(&state.store).await?)
}

async fn one_job(State(state): State<ServerState>, Path(id): Path<String>) -> ApiResult {
    match report::status::job(&state.store, &id).await? {
        Some(job) => answer(StatusCode::OK, &job),
        None => Err(not_found(format!(
            "no job `{id}` (use its DTS job id or name)"
        ))),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    /// A duration back from now (`24h`, `7d`) or an RFC 3339 time.
    since: Option<String>,
    /// Include latency and progress changes.
    #[serde(default)]
    all: bool,
}

/// `since` as a time: a duration back from `now`, or an RFC 3339 instant.
fn since_time(since: Option<&str>, now: DateTime<Utc>) -> Result<DateTime<Utc>, ApiError> {
    let Some(text) = since else {
        return Ok(now - chrono::Duration::hours(24));
    };
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    parse_duration(text)
        .map(|d| crate::scheduler::earlier(now, d))
        .map_err(|why| {
            ApiError::Status(
                StatusCode::BAD_REQUEST,
                format!(
                    "since `{text}` is neither a duration like 24h nor an RFC 3339 time: {why}"
                ),
            )
        })
}

async fn history(
    State(state): State<ServerState>,
    Path(id): Path<String>,
    query: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Query(query) =
        query.map_err(|e| ApiError::Status(StatusCode::BAD_REQUEST, e.body_text()))?;
    let since = since_time(query.since.as_deref(), Utc::now())?;
    let row = {
        let mut conn = state
            .store
            .pool()
            .acquire()
            .await
            .map_err(StoreError::from)?;
        jobs::find(&mut conn, &id).await?
    };
    let Some(row) = row else {
        return Err(not_found(format!(
            "no job `{id}` (use its DTS job id or name)"
        )));
    };
    let entries = report::history::timeline(&state.store, &row, since, query.all).await?;
    answer(StatusCode::OK, &entries)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertQuery {
    /// `firing`, `pending`, `silenced` or `inhibited`.
    state: Option<String>,
}

async fn alerts(
    State(state): State<ServerState>,
    query: Result<Query<AlertQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Query(query) =
        query.map_err(|e| ApiError::Status(StatusCode::BAD_REQUEST, e.body_text()))?;
    let config = state.config();
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(StoreError::from)?;
    let mut alerts = report::alerts::list(&mut conn, &config.silences, Utc::now()).await?;
    if let Some(wanted) = &query.state {
        alerts.retain(|a| &a.state == wanted);
    }
    answer(StatusCode::OK, &alerts)
}

async fn silences(State(state): State<ServerState>) -> ApiResult {
    let config = state.config();
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(StoreError::from)?;
    let listed = report::silences::list(&mut conn, &config.silences, Utc::now()).await?;
    answer(StatusCode::OK, &listed)
}

/// `POST /api/v1/silences`: what to silence, for how long, and why.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SilenceRequest {
    #[serde(default)]
    pub jobs: Vec<String>,
    #[serde(default)]
    pub rules: Vec<String>,
    #[serde(default)]
    pub steps: Vec<String>,
    /// When it starts; default now.
    pub starts: Option<DateTime<Utc>>,
    /// How long (`2h`), or `ends`.
    pub duration: Option<String>,
    pub ends: Option<DateTime<Utc>>,
    pub comment: String,
    pub author: Option<String>,
}

impl SilenceRequest {
    /// The silence to store, or why the request is wrong.
    pub fn into_silence(self, now: DateTime<Utc>) -> Result<NewSilence, ApiError> {
        let starts = self.starts.unwrap_or(now);
        let ends = match (self.duration.as_deref(), self.ends) {
            (Some(text), None) => parse_duration(text)
                .map(|d| crate::scheduler::later(starts, d))
                .map_err(|why| {
                    ApiError::Status(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        format!("duration `{text}`: {why}"),
                    )
                })?,
            (None, Some(ends)) => ends,
            _ => {
                return Err(ApiError::Status(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "give either `duration` (like 2h) or `ends` (RFC 3339)".into(),
                ));
            }
        };
        Ok(NewSilence {
            jobs: self.jobs,
            rules: self.rules,
            steps: self.steps,
            starts,
            ends,
            comment: self.comment,
            created_by: self.author,
        })
    }
}

async fn add_silence(
    State(state): State<ServerState>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    body: Result<Json<SilenceRequest>, JsonRejection>,
) -> ApiResult {
    let actor = writer(&state, &headers, peer)?;
    let Json(request) = body?;
    let now = Utc::now();
    let silence = request.into_silence(now)?;
    let id = actions::add_silence(&state.store, &actor, &silence, now).await?;
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(StoreError::from)?;
    let created = report::silences::list(&mut conn, &[], now)
        .await?
        .into_iter()
        .find(|s| s.id == id.to_string());
    answer(StatusCode::CREATED, &created)
}

async fn expire_silence(
    State(state): State<ServerState>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let actor = writer(&state, &headers, peer)?;
    let Ok(id) = id.parse::<i64>() else {
        return Err(not_found(format!(
            "no silence `{id}` (config silences end by editing the config)"
        )));
    };
    actions::expire_silence(&state.store, &actor, id, Utc::now()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutboxQuery {
    /// `pending` (default) or `dead`.
    status: Option<String>,
}

async fn list_outbox(
    State(state): State<ServerState>,
    query: Result<Query<OutboxQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Query(query) =
        query.map_err(|e| ApiError::Status(StatusCode::BAD_REQUEST, e.body_text()))?;
    let status = match query.status.as_deref() {
        None | Some("pending") => OutboxStatus::Pending,
        Some("dead") => OutboxStatus::Dead,
        Some(other) => {
            return Err(ApiError::Status(
                StatusCode::BAD_REQUEST,
                format!("status `{other}`: use pending or dead"),
            ));
        }
    };
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(StoreError::from)?;
    let rows = outbox::list(&mut conn, status).await?;
    let listed: Vec<json::OutboxJson> = rows.iter().map(Into::into).collect();
    answer(StatusCode::OK, &listed)
}

async fn retry(
    State(state): State<ServerState>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult {
    let actor = writer(&state, &headers, peer)?;
    actions::retry_notification(&state.store, &actor, id, Utc::now()).await?;
    answer(
        StatusCode::ACCEPTED,
        &serde_json::json!({ "id": id, "status": "pending" }),
    )
}

async fn reload(
    State(state): State<ServerState>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
) -> ApiResult {
    let actor = writer(&state, &headers, peer)?;
    let (done, answered) = tokio::sync::oneshot::channel();
    let unavailable = || {
        ApiError::Status(
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is shutting down".into(),
        )
    };
    state
        .reloads
        .send(ReloadRequest { actor, done })
        .await
        .map_err(|_| unavailable())?;
    match answered.await.map_err(|_| unavailable())? {
        Ok(()) => answer(StatusCode::OK, &serde_json::json!({ "reloaded": true })),
        Err(why) => Err(ApiError::Status(StatusCode::UNPROCESSABLE_ENTITY, why)),
    }
}
