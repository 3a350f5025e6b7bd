//! The status page: server-rendered HTML that works without JavaScript, in
//! the language of `[messages] locale`, usable on a phone. Pages: the fleet
//! (`fleet.rs`), a job with its chart (`job.rs`, `chart.rs`), alerts,
//! silences and the outbox (`lists.rs`), and the forms that write
//! (`forms.rs`). Templates and the stylesheet are compiled into the binary
//! (minijinja, escaping everything by default); nothing is fetched from
//! elsewhere, which the Content-Security-Policy also enforces.

mod chart;
mod fleet;
mod forms;
mod job;
mod lists;
mod view;
mod words;

use std::sync::OnceLock;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use minijinja::Environment;

use super::ServerState;
use crate::config::Config;

const STYLE: &str = include_str!("style.css");

/// Every template, by name.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("fleet.html", include_str!("templates/fleet.html")),
    ("job.html", include_str!("templates/job.html")),
    ("alerts.html", include_str!("templates/alerts.html")),
    ("silences.html", include_str!("templates/silences.html")),
    ("outbox.html", include_str!("templates/outbox.html")),
    ("message.html", include_str!("templates/message.html")),
    ("macros.html", include_str!("templates/macros.html")),
];

/// Nothing but this origin; inline styles only from the stylesheet.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub(super) fn routes() -> Router<ServerState> {
    Router::new()
        .route("/", get(fleet::page))
        .route("/jobs/{id}", get(job::page))
        .route("/alerts", get(lists::alerts))
        .route("/silences", get(lists::silences))
        .route("/outbox", get(lists::outbox))
        .route("/assets/style.css", get(style))
        .route("/alerts/silence", post(forms::silence))
        .route("/silences/{id}/expire", post(forms::expire))
        .route("/outbox/{id}/retry", post(forms::retry))
}

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        for (name, source) in TEMPLATES {
            // The templates are part of the binary and tested: one that does
            // not parse is a build mistake, reported on every page.
            if let Err(error) = env.add_template(name, source) {
                tracing::error!(%error, name, "a status page template does not parse");
            }
        }
        env
    })
}

/// A page rendered from `template` with `context` plus the shared parts
/// (words, language, which tab is open), with headers that keep it to
/// this origin and out of caches.
fn render(
    status: StatusCode,
    config: &Config,
    template: &str,
    tab: &str,
    context: minijinja::Value,
) -> Response {
    let locale = config.messages.locale;
    let shared = minijinja::context! {
        w => words::words(locale),
        lang => words::lang(locale),
        tab => tab,
        zone => crate::text::zoned_time(chrono::Utc::now(), config.messages.timezone),
    };
    let rendered = environment()
        .get_template(template)
        .and_then(|t| t.render(minijinja::context! { ..shared, ..context }));
    match rendered {
        Ok(body) => {
            let mut response = (status, body).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            headers.insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            );
            response
        }
        Err(error) => {
            tracing::error!(%error, template, "the status page cannot be rendered");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the status page cannot be rendered; see the daemon's log\n",
            )
                .into_response()
        }
    }
}

/// A short page saying what happened (a form's result, a database error).
fn message(status: StatusCode, config: &Config, title: &str, text: &str, back: &str) -> Response {
    render(
        status,
        config,
        "message.html",
        "",
        minijinja::context! { title => title, text => text, back => back },
    )
}

/// Any serializable view as a template value.
fn value<T: serde::Serialize>(view: &T) -> minijinja::Value {
    minijinja::Value::from(minijinja::value::Serde(view))
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        STYLE,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses() {
        let env = environment();
        for (name, _) in TEMPLATES {
            assert!(env.get_template(name).is_ok(), "{name}");
        }
    }
}
