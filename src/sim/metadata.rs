//! A loopback ECS metadata service: IMDSv2 tokens and RAM-role STS
//! credentials, each fetch issuing new credentials that the simulator accepts
//! until they expire. Tests use it to exercise the credentials chain.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use chrono::Utc;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::Simulator;

struct MetadataState {
    role: String,
    ttl: chrono::Duration,
    tokens: HashSet<String>,
    issued: u32,
    simulator: Arc<Mutex<super::SimState>>,
}

/// A running metadata service.
pub struct MetadataServer {
    addr: SocketAddr,
    state: Arc<Mutex<MetadataState>>,
    shutdown: CancellationToken,
}

impl Drop for MetadataServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn lock(state: &Mutex<MetadataState>) -> std::sync::MutexGuard<'_, MetadataState> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl MetadataServer {
    /// Serves credentials for `role` that expire `ttl` after each fetch.
    pub async fn start(
        simulator: &Simulator,
        role: &str,
        ttl: chrono::Duration,
    ) -> std::io::Result<Self> {
        let state = Arc::new(Mutex::new(MetadataState {
            role: role.to_string(),
            ttl,
            tokens: HashSet::new(),
            issued: 0,
            simulator: simulator.shared(),
        }));
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .route("/latest/api/token", put(token))
            .route(
                "/latest/meta-data/ram/security-credentials/",
                get(role_name),
            )
            .route(
                "/latest/meta-data/ram/security-credentials/{role}",
                get(credentials),
            )
            .with_state(state.clone());
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
        });
        Ok(Self {
            addr,
            state,
            shutdown,
        })
    }

    /// Base URL for an account's `metadata_url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many credential sets were handed out.
    pub fn issued(&self) -> u32 {
        lock(&self.state).issued
    }
}

async fn token(State(state): State<Arc<Mutex<MetadataState>>>, headers: HeaderMap) -> Response {
    if headers
        .get("X-aliyun-ecs-metadata-token-ttl-seconds")
        .is_none()
    {
        return (
            StatusCode::BAD_REQUEST,
            "missing X-aliyun-ecs-metadata-token-ttl-seconds",
        )
            .into_response();
    }
    let token = uuid::Uuid::new_v4().simple().to_string();
    lock(&state).tokens.insert(token.clone());
    token.into_response()
}

/// IMDSv2 is enforced: a request without a token we issued is refused.
fn authorised(state: &MetadataState, headers: &HeaderMap) -> bool {
    headers
        .get("X-aliyun-ecs-metadata-token")
        .and_then(|v| v.to_str().ok())
        .map(|t| state.tokens.contains(t))
        .unwrap_or(false)
}

async fn role_name(State(state): State<Arc<Mutex<MetadataState>>>, headers: HeaderMap) -> Response {
    let state = lock(&state);
    if !authorised(&state, &headers) {
        return StatusCode::FORBIDDEN.into_response();
    }
    state.role.clone().into_response()
}

async fn credentials(
    State(state): State<Arc<Mutex<MetadataState>>>,
    Path(role): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut state = lock(&state);
    if !authorised(&state, &headers) {
        return StatusCode::FORBIDDEN.into_response();
    }
    if role != state.role {
        return StatusCode::NOT_FOUND.into_response();
    }
    state.issued += 1;
    let n = state.issued;
    let access_key_id = format!("STS.sim{n}");
    let secret = format!("sts-secret-{n}");
    let token = format!("CAIS+sim/token={n}&x");
    let expires = Utc::now() + state.ttl;
    {
        let mut sim = super::lock(&state.simulator);
        sim.sts_keys.insert(access_key_id.clone(), secret.clone());
        sim.tokens.insert(
            token.clone(),
            super::StsToken {
                access_key_id: access_key_id.clone(),
                expires,
            },
        );
    }
    axum::Json(json!({
        "Code": "Success",
        "AccessKeyId": access_key_id,
        "AccessKeySecret": secret,
        "SecurityToken": token,
        "Expiration": expires.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "LastUpdated": Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    }))
    .into_response()
}
