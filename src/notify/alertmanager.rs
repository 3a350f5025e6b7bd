//! Prometheus Alertmanager: alerts posted to `/api/v2/alerts` as
//! Alertmanager's own clients post them, so a team's routing tree,
//! silences, inhibitions and receivers (PagerDuty, Opsgenie, Teams, …) take
//! over from there. Labels identify the alert (`alertname`, `rule`,
//! `severity`, `dts_job_id`, `dts_job_name`, `region`, `step`, `step_path`)
//! and stay the same across its life; annotations describe it (`summary`,
//! `description`, `error`, `runbook_url`, `console_url`), in the channel's
//! language. A firing alert says it ends four `repost_interval`s from now
//! and is posted again every interval (`repost`) while it fires, as
//! Prometheus does, so an alert dtswatch stops speaking about ends by
//! itself; a resolution sets `endsAt` to when it resolved. 2xx is success,
//! 429/5xx retried, other 4xx need the channel fixed (Alertmanager answers
//! 400 with the reason).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::syntax::{self, Syntax};
use super::view::{self, Style};
use super::{Delivered, Message, Notifier, SendError, http};
use crate::config::{AlertmanagerAuth, AlertmanagerConfig, Secret};
use crate::rules::{Event, EventStatus, Notification};

/// The API path alerts are posted to.
pub const ALERTS_PATH: &str = "/api/v2/alerts";

/// A firing alert ends after this many repost intervals without a repost.
const INTERVALS_TO_LIVE: u32 = 4;

pub struct Alertmanager {
    url: Secret,
    auth: AlertmanagerAuth,
    repost_interval: std::time::Duration,
    status_page: Option<String>,
    style: Style,
    http: http::Http,
}

impl Alertmanager {
    pub fn new(config: &AlertmanagerConfig, style: Style, http: http::Http) -> Self {
        Self {
            url: config.url.clone(),
            auth: config.auth.clone(),
            repost_interval: config.repost_interval,
            status_page: config.status_page.clone(),
            style,
            http,
        }
    }

    /// The alerts of `message` as Alertmanager takes them, at `now`.
    pub fn body(&self, message: &Message, now: DateTime<Utc>) -> Value {
        Value::Array(
            message
                .events()
                .map(|event| self.alert(event, now))
                .collect(),
        )
    }

    /// One alert. Pure.
    fn alert(&self, event: &Event, now: DateTime<Utc>) -> Value {
        let mut labels = serde_json::Map::new();
        let mut label = |name: &str, value: Option<&str>| {
            if let Some(value) = value.filter(|v| !v.is_empty()) {
                labels.insert(name.into(), Value::String(value.into()));
            }
        };
        let step = event.step.as_ref();
        label("alertname", Some(&event.rule));
        label("rule", Some(&event.rule));
        label("severity", Some(event.severity.as_str()));
        label("dts_job_id", Some(&event.job.id));
        label("dts_job_name", Some(&event.job.name));
        label("region", Some(&event.job.region));
        label("step", step.map(|s| s.label.as_str()));
        label("step_path", step.map(|s| s.path.as_str()));
        label("source", Some("dtswatch"));
        let mut annotations = serde_json::Map::new();
        let mut annotation = |name: &str, value: Option<String>| {
            if let Some(value) = value.filter(|v| !v.is_empty()) {
                annotations.insert(name.into(), Value::String(value));
            }
        };
        annotation(
            "summary",
            Some(syntax::PLAIN.write(&view::event_summary(event, self.style))),
        );
        annotation("description", Some(self.description(event)));
        annotation(
            "error",
            event.current.as_ref().and_then(|c| c.err_msg.clone()),
        );
        annotation("runbook_url", event.runbook.clone());
        annotation("console_url", event.job.console_url.clone());
        let ends_at = match event.status {
            EventStatus::Resolved => event.at,
            EventStatus::Firing => {
                now + chrono::Duration::from_std(self.repost_interval * INTERVALS_TO_LIVE)
                    .unwrap_or(chrono::Duration::minutes(4))
            }
        };
        let mut alert = json!({
            "labels": labels,
            "annotations": annotations,
            "startsAt": event.first_seen,
            "endsAt": ends_at,
        });
        if let Some(base) = &self.status_page {
            alert["generatorURL"] = Value::String(format!(
                "{base}/jobs/{}",
                percent_encoding::utf8_percent_encode(
                    &event.job.id,
                    percent_encoding::NON_ALPHANUMERIC
                )
            ));
        }
        alert
    }

    /// The alert's body as the plain-text channels write it.
    fn description(&self, event: &Event) -> String {
        let alone = Message::new(vec![Notification {
            job: event.job.clone(),
            events: vec![event.clone()],
        }]);
        let view = view::view(&alone, self.style);
        let syntax: &Syntax = &syntax::PLAIN;
        syntax::plain_body(&view, syntax, false)
            .lines()
            .skip(1)
            .collect::<Vec<_>>()
            .join("\n")
            .trim()
            .to_string()
    }

    /// Posts `body` with the channel's auth.
    async fn post(&self, body: &Value) -> Result<Delivered, SendError> {
        let mut headers = Vec::new();
        match &self.auth {
            AlertmanagerAuth::None => {}
            AlertmanagerAuth::Basic { username, password } => {
                use base64::Engine as _;
                let pair = format!("{username}:{}", password.expose());
                headers.push((
                    "Authorization".to_string(),
                    format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(pair)
                    ),
                ));
            }
            AlertmanagerAuth::Bearer(token) => {
                headers.push((
                    "Authorization".to_string(),
                    format!("Bearer {}", token.expose()),
                ));
            }
        }
        let url = format!("{}{ALERTS_PATH}", self.url.expose());
        let (status, response_headers, text) = self.http.post_json(&url, body, &headers).await?;
        http::classify_status(status, &response_headers, &text)?;
        Ok(Delivered::answered(&format!("HTTP {status}")))
    }

    /// Posts firing alerts again so Alertmanager keeps them open.
    pub async fn repost(&self, events: &[Event], now: DateTime<Utc>) -> Result<(), SendError> {
        if events.is_empty() {
            return Ok(());
        }
        let body = Value::Array(events.iter().map(|e| self.alert(e, now)).collect());
        self.post(&body).await.map(|_| ())
    }

    pub fn repost_interval(&self) -> std::time::Duration {
        self.repost_interval
    }
}

impl Notifier for Alertmanager {
    async fn send(&self, message: &Message) -> Result<Delivered, SendError> {
        self.post(&self.body(message, Utc::now())).await
    }

    fn preview(&self, message: &Message) -> String {
        serde_json::to_string_pretty(&self.body(message, Utc::now())).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Locale;
    use chrono::TimeZone;

    fn channel(locale: Locale) -> Alertmanager {
        Alertmanager::new(
            &AlertmanagerConfig {
                url: Secret::new("http://alertmanager:9093"),
                auth: AlertmanagerAuth::None,
                tls_ca_file: None,
                tls_insecure_skip_verify: false,
                repost_interval: std::time::Duration::from_secs(60),
                status_page: Some("https://dtswatch.example.com".into()),
            },
            Style {
                locale,
                zone: chrono_tz::Asia::Shanghai,
            },
            http::Http::new(std::time::Duration::from_secs(1), 1024).unwrap(),
        )
    }

    #[test]
    fn a_firing_alert_has_stable_labels_and_ends_four_intervals_ahead() {
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap();
        let message = super::super::sample::sample_message(now, Locale::ZhCn);
        let body = channel(Locale::ZhCn).body(&message, now);
        let alert = &body[0];
        assert_eq!(
            alert["labels"],
            json!({
                "alertname": "步骤失败",
                "rule": "步骤失败",
                "severity": "critical",
                "dts_job_id": "dtsl1fecyc1e01",
                "dts_job_name": "订单库 MySQL → PolarDB",
                "region": "cn-hangzhou",
                "step": "全量迁移 (03) › order_items",
                "step_path": "st03full/st03full_0001",
                "source": "dtswatch",
            })
        );
        assert_eq!(alert["startsAt"], "2026-12-01T10:00:00Z");
        assert_eq!(alert["endsAt"], "2026-12-01T10:04:00Z");
        assert_eq!(
            alert["generatorURL"],
            "https://dtswatch.example.com/jobs/dtsl1fecyc1e01"
        );
        let annotations = &alert["annotations"];
        assert!(
            annotations["summary"]
                .as_str()
                .unwrap()
                .contains("全量迁移"),
            "{annotations}"
        );
        assert!(!annotations["summary"].as_str().unwrap().contains("【"));
        assert!(
            annotations["error"]
                .as_str()
                .unwrap()
                .starts_with("DTS-1020042")
        );
        assert!(
            annotations["description"]
                .as_str()
                .unwrap()
                .contains("错误"),
            "{annotations}"
        );
        assert!(annotations.get("runbook_url").is_none(), "no empty values");
    }

    #[test]
    fn a_resolution_ends_at_the_time_it_resolved_with_the_same_labels() {
        let fired = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap();
        let resolved = Utc.with_ymd_and_hms(2026, 12, 1, 10, 14, 0).unwrap();
        let firing = super::super::sample::sample_message(fired, Locale::En);
        let mut ended = firing.clone();
        let event = &mut ended.notifications[0].events[0];
        event.status = EventStatus::Resolved;
        event.at = resolved;
        let channel = channel(Locale::En);
        let later = resolved + chrono::Duration::minutes(5);
        let (a, b) = (channel.body(&firing, fired), channel.body(&ended, later));
        assert_eq!(a[0]["labels"], b[0]["labels"]);
        assert_eq!(b[0]["startsAt"], "2026-12-01T10:00:00Z");
        assert_eq!(b[0]["endsAt"], "2026-12-01T10:14:00Z");
    }
}
