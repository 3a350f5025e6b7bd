//! An Alertmanager front that asks for credentials, as one behind an
//! authenticating proxy does: `POST /api/v2/alerts` with the expected
//! `Authorization` header and a body Alertmanager would take (an array of
//! alerts, each with labels and an RFC 3339 `startsAt`) gets 200; a wrong
//! or missing header 401, a malformed body 400 with the reason.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use std::sync::Arc;

use super::{Log, Server, record};

pub struct AuthAlertmanager {
    pub server: Arc<Server>,
    pub log: Log,
}

#[derive(Clone)]
struct Expect {
    authorization: String,
    log: Log,
}

fn well_formed(body: &str) -> Result<(), String> {
    let alerts: Vec<serde_json::Value> =
        serde_json::from_str(body).map_err(|e| format!("body is not an array of alerts: {e}"))?;
    for alert in &alerts {
        let labels = alert["labels"]
            .as_object()
            .ok_or("an alert without labels")?;
        if labels.is_empty() || labels.values().any(|v| !v.is_string()) {
            return Err("labels must be a non-empty map of strings".into());
        }
        for time in ["startsAt", "endsAt"] {
            chrono::DateTime::parse_from_rfc3339(alert[time].as_str().unwrap_or_default())
                .map_err(|e| format!("{time}: {e}"))?;
        }
    }
    Ok(())
}

async fn receive(
    State(expect): State<Expect>,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if given != expect.authorization {
        record(&expect.log, &uri, &headers, &body, "401");
        return (StatusCode::UNAUTHORIZED, "Unauthorized").into_response();
    }
    if let Err(why) = well_formed(&body) {
        record(&expect.log, &uri, &headers, &body, "400");
        return (StatusCode::BAD_REQUEST, why).into_response();
    }
    record(&expect.log, &uri, &headers, &body, "200");
    StatusCode::OK.into_response()
}

impl AuthAlertmanager {
    /// Accepts requests whose `Authorization` header is exactly `authorization`.
    pub async fn start(authorization: &str) -> Self {
        let log: Log = Default::default();
        let server = Server::start(
            Router::new()
                .route("/api/v2/alerts", post(receive))
                .with_state(Expect {
                    authorization: authorization.to_string(),
                    log: log.clone(),
                }),
        )
        .await;
        Self { server, log }
    }

    pub fn url(&self) -> String {
        self.server.url("")
    }

    pub fn answered(&self, answer: &str) -> Vec<super::Request> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.answer == answer)
            .cloned()
            .collect()
    }
}
