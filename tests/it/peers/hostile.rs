//! Peers that misbehave on purpose, standing in for DTS or a chat platform:
//! one that redirects every request elsewhere, one that answers with a huge
//! or endless body, and a catcher that records whatever reaches it (to show
//! a redirect target got nothing).

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::{Log, Server, record};

/// How a hostile peer answers every request.
#[derive(Clone)]
pub enum Mode {
    /// `302 Found` to this URL.
    Redirect(String),
    /// `200` with a JSON-looking body of this many bytes.
    Huge(usize),
    /// `200` with a body that never ends.
    Endless,
}

pub struct Hostile {
    pub server: Arc<Server>,
    pub log: Log,
}

#[derive(Clone)]
struct Config {
    mode: Mode,
    log: Log,
}

async fn answer(
    State(config): State<Config>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(
        &config.log,
        &uri,
        &headers,
        &String::from_utf8_lossy(&body),
        "hostile",
    );
    match config.mode {
        Mode::Redirect(to) => (StatusCode::FOUND, [("location", to)], "moved").into_response(),
        Mode::Huge(bytes) => {
            let mut text = String::with_capacity(bytes);
            text.push_str("{\"Success\":true,\"errcode\":0,\"JobSteps\":[],\"Pad\":\"");
            while text.len() < bytes.saturating_sub(2) {
                text.push('x');
            }
            text.push_str("\"}");
            (StatusCode::OK, text).into_response()
        }
        Mode::Endless => {
            let chunk = Bytes::from(vec![b' '; 64 * 1024]);
            let stream = futures_stream(chunk);
            (StatusCode::OK, Body::from_stream(stream)).into_response()
        }
    }
}

/// The same chunk for ever.
fn futures_stream(
    chunk: Bytes,
) -> impl tokio_stream::Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    tokio_stream::iter(std::iter::repeat(chunk).map(Ok))
}

impl Hostile {
    pub async fn start(mode: Mode) -> Self {
        let log: Log = Default::default();
        let server = Server::start(Router::new().fallback(answer).with_state(Config {
            mode,
            log: log.clone(),
        }))
        .await;
        Self { server, log }
    }

    /// A catcher: answers 200 to everything and records it.
    pub async fn catcher() -> Self {
        Self::start(Mode::Huge(64)).await
    }

    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    pub fn requests(&self) -> usize {
        self.log.lock().unwrap().len()
    }
}
