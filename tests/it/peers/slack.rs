//! Slack incoming webhook: answers `ok`, `invalid_payload` / `no_text` (400)
//! for bad bodies, and 429 with `Retry-After` when told to throttle.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::{Log, Server, record};

pub struct Slack {
    pub server: Arc<Server>,
    pub log: Log,
    throttle: Arc<Mutex<(u32, u64)>>,
}

#[derive(Clone)]
struct Config {
    log: Log,
    /// (requests still to throttle, Retry-After seconds)
    throttle: Arc<Mutex<(u32, u64)>>,
}

async fn hook(
    State(config): State<Config>,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    {
        let mut throttle = config.throttle.lock().unwrap();
        if throttle.0 > 0 {
            throttle.0 -= 1;
            record(&config.log, &uri, &headers, &body, "rate_limited");
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", throttle.1.to_string())],
                "rate_limited",
            )
                .into_response();
        }
    }
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&body) else {
        record(&config.log, &uri, &headers, &body, "invalid_payload");
        return (StatusCode::BAD_REQUEST, "invalid_payload").into_response();
    };
    if !json["text"].is_string() {
        record(&config.log, &uri, &headers, &body, "no_text");
        return (StatusCode::BAD_REQUEST, "no_text").into_response();
    }
    if json["blocks"].as_array().is_some_and(|b| b.len() > 50)
        || json["blocks"].as_array().into_iter().flatten().any(|b| {
            b["text"]["text"]
                .as_str()
                .is_some_and(|t| t.chars().count() > 3000)
        })
    {
        record(&config.log, &uri, &headers, &body, "invalid_blocks");
        return (StatusCode::BAD_REQUEST, "invalid_blocks").into_response();
    }
    record(&config.log, &uri, &headers, &body, "ok");
    "ok".into_response()
}

impl Slack {
    pub async fn start() -> Self {
        let log: Log = Default::default();
        let throttle = Arc::new(Mutex::new((0, 0)));
        let config = Config {
            log: log.clone(),
            throttle: throttle.clone(),
        };
        let server = Server::start(
            Router::new()
                .route("/services/T000/B000/XXXX", post(hook))
                .with_state(config),
        )
        .await;
        Self {
            server,
            log,
            throttle,
        }
    }

    pub fn url(&self) -> String {
        self.server.url("/services/T000/B000/XXXX")
    }

    /// The next `times` requests get 429 with `Retry-After: seconds`.
    pub fn throttle(&self, times: u32, seconds: u64) {
        *self.throttle.lock().unwrap() = (times, seconds);
    }

    pub fn accepted(&self) -> Vec<super::Request> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.answer == "ok")
            .cloned()
            .collect()
    }
}
