//! WeCom group robot: the `key` is the secret (93000 when wrong); markdown up
//! to 4,096 bytes, text up to 2,048; 20 messages a minute, then 45009.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::routing::post;

use super::{Log, Server, recent, record};

pub struct WeCom {
    pub server: Arc<Server>,
    pub log: Log,
    pub key: String,
}

#[derive(Clone)]
struct Config {
    key: String,
    log: Log,
    accepted: Arc<Mutex<Vec<Instant>>>,
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
        if request.query("key").as_deref() != Some(config.key.as_str()) {
            return r#"{"errcode":93000,"errmsg":"invalid webhook url, hint: [1700000000_1_abc], from ip: 127.0.0.1"}"#;
        }
        let json = request.json();
        match json["msgtype"].as_str() {
            Some("markdown")
                if json["markdown"]["content"]
                    .as_str()
                    .is_some_and(|c| c.len() <= 4096) => {}
            Some("markdown") => {
                return r#"{"errcode":40058,"errmsg":"markdown.content exceed max length 4096"}"#;
            }
            Some("text")
                if json["text"]["content"]
                    .as_str()
                    .is_some_and(|c| c.len() <= 2048) => {}
            _ => return r#"{"errcode":40008,"errmsg":"invalid message type"}"#,
        }
        let mut accepted = config.accepted.lock().unwrap();
        if recent(&mut accepted, Duration::from_secs(60)) >= 20 {
            return r#"{"errcode":45009,"errmsg":"api freq out of limit"}"#;
        }
        accepted.push(Instant::now());
        r#"{"errcode":0,"errmsg":"ok"}"#
    })();
    record(&config.log, &uri, &headers, &body, answer);
    answer.to_string()
}

impl WeCom {
    pub async fn start() -> Self {
        let log: Log = Default::default();
        let key = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa".to_string();
        let config = Config {
            key: key.clone(),
            log: log.clone(),
            accepted: Default::default(),
        };
        let server = Server::start(
            Router::new()
                .route("/cgi-bin/webhook/send", post(send))
                .with_state(config),
        )
        .await;
        Self { server, log, key }
    }

    pub fn url(&self, key: &str) -> String {
        self.server.url(&format!("/cgi-bin/webhook/send?key={key}"))
    }

    pub fn requests(&self) -> Vec<super::Request> {
        self.log.lock().unwrap().clone()
    }
}
