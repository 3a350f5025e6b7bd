//! DingTalk custom robot: `access_token`, `timestamp` (ms, within an hour) and
//! `sign` = urlencode(base64(HMAC-SHA256(secret, timestamp + "\n" + secret)))
//! checked as documented; 20 messages a minute, then errcode 130101; HTTP 200
//! with an `errcode` always. A robot with keyword security drops (310000)
//! any message whose text holds none of its keywords.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::routing::post;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::{Log, Server, recent, record};

pub struct DingTalk {
    pub server: Arc<Server>,
    pub log: Log,
    pub token: String,
    pub secret: String,
}

#[derive(Clone)]
struct Config {
    token: String,
    secret: String,
    /// At most this many messages per window (DingTalk: 20 a minute).
    limit: (usize, Duration),
    /// Keyword security: the text must hold one of these (none: no check).
    keywords: Vec<String>,
    log: Log,
    accepted: Arc<Mutex<Vec<Instant>>>,
}

fn expected_sign(timestamp: &str, secret: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}\n{secret}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

async fn send(State(config): State<Config>, uri: Uri, headers: HeaderMap, body: String) -> String {
    let request = super::Request {
        path_and_query: uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        headers: headers.clone(),
        body: body.clone(),
        at: Instant::now(),
        answer: String::new(),
    };
    let answer = (|| {
        if request.query("access_token").as_deref() != Some(config.token.as_str()) {
            return r#"{"errcode":300005,"errmsg":"token is not exist"}"#.to_string();
        }
        if !headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"))
        {
            return r#"{"errcode":43004,"errmsg":"无效的HTTP HEADER Content-Type"}"#.to_string();
        }
        let (Some(timestamp), Some(sign)) = (request.query("timestamp"), request.query("sign"))
        else {
            return r#"{"errcode":310000,"errmsg":"sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]"}"#.to_string();
        };
        let now = chrono::Utc::now().timestamp_millis();
        if timestamp
            .parse::<i64>()
            .map(|t| (now - t).abs() > 3_600_000)
            .unwrap_or(true)
        {
            return r#"{"errcode":310000,"errmsg":"invalid timestamp"}"#.to_string();
        }
        // `request.query` decodes the URL encoding, so this compares the base64 itself.
        if sign != expected_sign(&timestamp, &config.secret) {
            return r#"{"errcode":310000,"errmsg":"sign not match"}"#.to_string();
        }
        let Ok(json) = serde_json::from_str::<serde_json::Value>(&body) else {
            return r#"{"errcode":40035,"errmsg":"缺少参数 json"}"#.to_string();
        };
        if json["msgtype"] != "markdown"
            || !json["markdown"]["text"].is_string()
            || !json["markdown"]["title"].is_string()
        {
            return r#"{"errcode":40035,"errmsg":"缺少参数 markdown"}"#.to_string();
        }
        let text = json["markdown"]["text"].as_str().unwrap_or_default();
        if !config.keywords.is_empty() && !config.keywords.iter().any(|k| text.contains(k.as_str()))
        {
            return r#"{"errcode":310000,"errmsg":"keywords not in content, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]"}"#.to_string();
        }
        if body.len() > 20_000 {
            return r#"{"errcode":460101,"errmsg":"message too long, exceed 20000 bytes"}"#
                .to_string();
        }
        let mut accepted = config.accepted.lock().unwrap();
        if recent(&mut accepted, config.limit.1) >= config.limit.0 {
            return r#"{"errcode":130101,"errmsg":"send too fast, exceed 20 times per minute"}"#
                .to_string();
        }
        accepted.push(Instant::now());
        r#"{"errcode":0,"errmsg":"ok"}"#.to_string()
    })();
    record(&config.log, &uri, &headers, &body, &answer);
    answer
}

impl DingTalk {
    pub async fn start() -> Self {
        Self::start_limited(20, Duration::from_secs(60)).await
    }

    /// A robot with a tighter rate limit than DingTalk's 20 a minute, so a
    /// test can watch the limit work in seconds; over it, the same errcode 130101.
    pub async fn start_limited(count: usize, window: Duration) -> Self {
        Self::start_with(count, window, &[]).await
    }

    /// A robot with keyword security as well as its signature.
    pub async fn start_with_keywords(keywords: &[&str]) -> Self {
        Self::start_with(100, Duration::from_secs(60), keywords).await
    }

    async fn start_with(count: usize, window: Duration, keywords: &[&str]) -> Self {
        let log: Log = Default::default();
        let token = "dt-token-0123456789".to_string();
        let secret =
            "SEC1a2b3c4d5e6f7g8h9i0jklmnopqrstuvwxyz0123456789abcdef0123456789ab".to_string();
        let config = Config {
            token: token.clone(),
            secret: secret.clone(),
            limit: (count, window),
            keywords: keywords.iter().map(|k| k.to_string()).collect(),
            log: log.clone(),
            accepted: Default::default(),
        };
        let server = Server::start(
            Router::new()
                .route("/robot/send", post(send))
                .with_state(config),
        )
        .await;
        Self {
            server,
            log,
            token,
            secret,
        }
    }

    pub fn url(&self) -> String {
        self.server
            .url(&format!("/robot/send?access_token={}", self.token))
    }

    /// Messages it accepted (errcode 0).
    pub fn accepted(&self) -> Vec<super::Request> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.answer.contains("\"errcode\":0"))
            .cloned()
            .collect()
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
