//! A webhook receiver that checks `X-Dtswatch-Signature` (sha256=<hex HMAC of
//! the body>) and can be made to answer 500 for a while.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::{Log, Server, record};

pub struct Webhook {
    pub server: Arc<Server>,
    pub log: Log,
    pub secret: String,
    failing: Arc<Mutex<u32>>,
}

#[derive(Clone)]
struct Config {
    secret: String,
    log: Log,
    failing: Arc<Mutex<u32>>,
}

async fn receive(
    State(config): State<Config>,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    {
        let mut failing = config.failing.lock().unwrap();
        if *failing > 0 {
            *failing -= 1;
            record(&config.log, &uri, &headers, &body, "500");
            return (StatusCode::INTERNAL_SERVER_ERROR, "temporarily broken").into_response();
        }
    }
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(config.secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    if headers
        .get("x-dtswatch-signature")
        .and_then(|v| v.to_str().ok())
        != Some(expected.as_str())
    {
        record(&config.log, &uri, &headers, &body, "401");
        return (StatusCode::UNAUTHORIZED, "bad signature").into_response();
    }
    record(&config.log, &uri, &headers, &body, "200");
    (StatusCode::OK, "thanks").into_response()
}

impl Webhook {
    pub async fn start() -> Self {
        let log: Log = Default::default();
        let secret = "whsec-test-secret".to_string();
        let failing = Arc::new(Mutex::new(0));
        let config = Config {
            secret: secret.clone(),
            log: log.clone(),
            failing: failing.clone(),
        };
        let server = Server::start(
            Router::new()
                .route("/hooks/dtswatch", post(receive))
                .with_state(config),
        )
        .await;
        Self {
            server,
            log,
            secret,
            failing,
        }
    }

    pub fn url(&self) -> String {
        self.server.url("/hooks/dtswatch")
    }

    /// The next `times` requests get HTTP 500.
    pub fn fail(&self, times: u32) {
        *self.failing.lock().unwrap() = times;
    }

    pub fn accepted(&self) -> Vec<super::Request> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.answer == "200")
            .cloned()
            .collect()
    }
}
