//! The status page's writes, as plain HTML forms: silence an alert, expire
//! a silence, queue a notification again. The token is a field the user
//! types into the form (no cookie, no stored credential), so another site
//! cannot write on a visitor's behalf; a request whose `Origin` or
//! `Sec-Fetch-Site` says it came from elsewhere is refused before the
//! token is even looked at. Writes go through `actions` (validated,
//! audited); success redirects (303) to the list it changed.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use chrono::Utc;
use serde::Deserialize;

use super::message;
use crate::actions::{self, ActionError, Actor};
use crate::config::{Config, parse_duration};
use crate::daemon::http::auth::authorize;
use crate::daemon::http::{Peer, ServerState};
use crate::store::silences::NewSilence;

/// True when the browser says the form was posted from another site.
fn cross_site(headers: &HeaderMap) -> bool {
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return true;
    }
    match (text(header::ORIGIN), text(header::HOST)) {
        (Some("null"), _) => true,
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .map(|(_, rest)| rest)
            .is_none_or(|authority| authority != host),
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// The writer of a form, or the page saying why not.
fn writer(
    state: &ServerState,
    config: &Config,
    headers: &HeaderMap,
    peer: Peer,
    token: &str,
    back: &str,
) -> Result<Actor, Box<Response>> {
    let words = super::words::words(config.messages.locale);
    if cross_site(headers) {
        tracing::warn!(from = %peer.0, "status page write from another site refused");
        return Err(Box::new(message(
            StatusCode::FORBIDDEN,
            config,
            words["refused"],
            "this form was posted from another site",
            back,
        )));
    }
    let presented = Some(token.trim()).filter(|t| !t.is_empty());
    authorize(&state.config().server.tokens, presented, peer.0.ip()).map_err(|denied| {
        tracing::warn!(from = %peer.0, reason = denied.message(), "status page write refused");
        Box::new(message(
            denied.status(),
            config,
            words["refused"],
            denied.message(),
            back,
        ))
    })
}

/// What an action's failure looks like on the page.
fn refused(config: &Config, e: ActionError, back: &str) -> Response {
    let words = super::words::words(config.messages.locale);
    let status = match &e {
        ActionError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        ActionError::NotFound(_) => StatusCode::NOT_FOUND,
        ActionError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    message(status, config, words["refused"], &e.to_string(), back)
}

#[derive(Debug, Deserialize)]
pub(super) struct SilenceForm {
    job: String,
    rule: String,
    #[serde(default)]
    path: String,
    duration: String,
    comment: String,
    token: String,
}

pub(super) async fn silence(
    State(state): State<ServerState>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    Form(form): Form<SilenceForm>,
) -> Response {
    let config = state.config();
    let actor = match writer(&state, &config, &headers, peer, &form.token, "/alerts") {
        Ok(actor) => actor,
        Err(page) => return *page,
    };
    let now = Utc::now();
    let ends = match parse_duration(&form.duration) {
        Ok(d) => crate::scheduler::later(now, d),
        Err(why) => {
            return refused(
                &config,
                ActionError::Invalid(format!("duration: {why}")),
                "/alerts",
            );
        }
    };
    let silence = NewSilence {
        jobs: vec![globset::escape(&form.job)],
        rules: vec![globset::escape(&form.rule)],
        steps: Some(&form.path)
            .filter(|p| !p.is_empty())
            .map(|p| vec![globset::escape(p)])
            .unwrap_or_default(),
        starts: now,
        ends,
        comment: form.comment,
        created_by: Some(actor.to_string()),
    };
    match actions::add_silence(&state.store, &actor, &silence, now).await {
        Ok(_) => Redirect::to("/silences").into_response(),
        Err(e) => refused(&config, e, "/alerts"),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct TokenForm {
    token: String,
}

pub(super) async fn expire(
    State(state): State<ServerState>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<TokenForm>,
) -> Response {
    let config = state.config();
    let actor = match writer(&state, &config, &headers, peer, &form.token, "/silences") {
        Ok(actor) => actor,
        Err(page) => return *page,
    };
    match actions::expire_silence(&state.store, &actor, id, Utc::now()).await {
        Ok(()) => Redirect::to("/silences").into_response(),
        Err(e) => refused(&config, e, "/silences"),
    }
}

pub(super) async fn retry(
    State(state): State<ServerState>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<TokenForm>,
) -> Response {
    let config = state.config();
    let actor = match writer(&state, &config, &headers, peer, &form.token, "/outbox") {
        Ok(actor) => actor,
        Err(page) => return *page,
    };
    match actions::retry_notification(&state.store, &actor, id, Utc::now()).await {
        Ok(()) => Redirect::to("/outbox").into_response(),
        Err(e) => refused(&config, e, "/outbox"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    #[test]
    fn a_form_from_this_origin_passes_and_one_from_elsewhere_does_not() {
        assert!(!cross_site(&headers(&[("host", "127.0.0.1:9187")])));
        assert!(!cross_site(&headers(&[
            ("host", "127.0.0.1:9187"),
            ("origin", "http://127.0.0.1:9187"),
            ("sec-fetch-site", "same-origin"),
        ])));
        assert!(cross_site(&headers(&[
            ("host", "127.0.0.1:9187"),
            ("origin", "https://evil.example"),
        ])));
        assert!(cross_site(&headers(&[
            ("host", "127.0.0.1:9187"),
            ("origin", "null"),
        ])));
        assert!(cross_site(&headers(&[
            ("host", "127.0.0.1:9187"),
            ("sec-fetch-site", "cross-site"),
        ])));
    }
}
