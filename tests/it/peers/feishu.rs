//! Feishu custom bot: `timestamp` (seconds, within an hour) and `sign` =
//! base64(HMAC-SHA256(key = timestamp + "\n" + secret, message = "")) in the
//! body; 5 requests a second, then code 11232; bodies over 20 KB get 9499.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::{Log, Server, recent, record};

pub struct Feishu {
    pub server: Arc<Server>,
    pub log: Log,
    pub secret: String,
}

#[derive(Clone)]
struct Config {
    secret: String,
    log: Log,
    accepted: Arc<Mutex<Vec<Instant>>>,
}

fn expected_sign(timestamp: &str, secret: &str) -> String {
    let mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(format!("{timestamp}\n{secret}").as_bytes())
            .unwrap();
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

async fn hook(
    State(config): State<Config>,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    let (status, answer) = (|| {
        if body.len() > 20 * 1024 {
            return (
                StatusCode::BAD_REQUEST,
                r#"{"code":9499,"msg":"Bad Request","data":{}}"#,
            );
        }
        let Ok(json) = serde_json::from_str::<serde_json::Value>(&body) else {
            return (
                StatusCode::BAD_REQUEST,
                r#"{"code":9499,"msg":"Bad Request","data":{}}"#,
            );
        };
        let timestamp = json["timestamp"].as_str().unwrap_or_default();
        let fresh = timestamp
            .parse::<i64>()
            .map(|t| (chrono::Utc::now().timestamp() - t).abs() <= 3600)
            .unwrap_or(false);
        if !fresh
            || json["sign"].as_str() != Some(expected_sign(timestamp, &config.secret).as_str())
        {
            return (
                StatusCode::OK,
                r#"{"code":19021,"msg":"sign match fail or timestamp is not within one hour from current time","data":{}}"#,
            );
        }
        if json["msg_type"] != "interactive" && json["msg_type"] != "post" {
            return (
                StatusCode::OK,
                r#"{"code":9499,"msg":"Bad Request","data":{}}"#,
            );
        }
        let mut accepted = config.accepted.lock().unwrap();
        if recent(&mut accepted, Duration::from_secs(1)) >= 5 {
            return (
                StatusCode::OK,
                r#"{"code":11232,"msg":"frequency limited psm[lark.oapi.app_platform_runtime]appID[1]","data":{}}"#,
            );
        }
        accepted.push(Instant::now());
        (StatusCode::OK, r#"{"code":0,"msg":"success","data":{}}"#)
    })();
    record(&config.log, &uri, &headers, &body, answer);
    (status, [("content-type", "application/json")], answer).into_response()
}

impl Feishu {
    pub async fn start() -> Self {
        let log: Log = Default::default();
        let secret = "qwertyuiopasdfgh".to_string();
        let config = Config {
            secret: secret.clone(),
            log: log.clone(),
            accepted: Default::default(),
        };
        let server = Server::start(
            Router::new()
                .route("/open-apis/bot/v2/hook/{id}", post(hook))
                .with_state(config),
        )
        .await;
        Self {
            server,
            log,
            secret,
        }
    }

    pub fn url(&self) -> String {
        self.server
            .url("/open-apis/bot/v2/hook/2b7a0f3e-0000-4000-8000-000000000000")
    }

    pub fn answers(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.answer.clone())
            .collect()
    }
}
