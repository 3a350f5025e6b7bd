//! Loopback fakes of the chat platforms and an SMTP server. Each behaves like
//! the real service where it matters: it verifies signatures with the
//! documented algorithm, enforces the documented rate limits and size limits,
//! and answers with the platform's real error codes. A fake can be stopped
//! (connection refused) and started again on the same port.

pub mod alertmanager;
pub mod dingtalk;
pub mod feishu;
pub mod hostile;
pub mod slack;
pub mod smtp;
pub mod webhook;
pub mod wecom;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use tokio_util::sync::CancellationToken;

/// One request a fake accepted or refused.
#[derive(Debug, Clone)]
pub struct Request {
    pub path_and_query: String,
    pub headers: axum::http::HeaderMap,
    pub body: String,
    pub at: Instant,
    /// What the fake answered.
    pub answer: String,
}

impl Request {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub fn query(&self, name: &str) -> Option<String> {
        let query = self.path_and_query.split_once('?')?.1;
        reqwest::Url::parse(&format!("http://x/?{query}"))
            .ok()?
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// A fake HTTP peer on 127.0.0.1 that can go down and come back on the same port.
pub struct Server {
    addr: SocketAddr,
    router: Router,
    stop: Mutex<Option<CancellationToken>>,
}

impl Server {
    pub async fn start(router: Router) -> Arc<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = Arc::new(Self {
            addr,
            router,
            stop: Mutex::new(None),
        });
        server.serve(listener);
        server
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let token = CancellationToken::new();
        let stop = token.clone();
        let router = self.router.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
        });
        *self.stop.lock().unwrap() = Some(token);
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops listening: clients get "connection refused".
    pub async fn down(&self) {
        if let Some(token) = self.stop.lock().unwrap().take() {
            token.cancel();
        }
        // Let the listener close before anyone connects again.
        for _ in 0..50 {
            if tokio::net::TcpStream::connect(self.addr).await.is_err() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Listens again on the same port.
    pub async fn up(&self) {
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }
}

/// Requests seen, shared between a fake's handler and the test.
pub type Log = Arc<Mutex<Vec<Request>>>;

pub fn record(
    log: &Log,
    uri: &axum::http::Uri,
    headers: &axum::http::HeaderMap,
    body: &str,
    answer: &str,
) {
    log.lock().unwrap().push(Request {
        path_and_query: uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        headers: headers.clone(),
        body: body.to_string(),
        at: Instant::now(),
        answer: answer.to_string(),
    });
}

/// Timestamps of accepted requests in the last `window`, for rate limits.
pub fn recent(times: &mut Vec<Instant>, window: std::time::Duration) -> usize {
    let now = Instant::now();
    times.retain(|t| now.duration_since(*t) < window);
    times.len()
}
