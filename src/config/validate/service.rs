//! `[storage]`, `[ha]`, `[poll]` and `[delivery]`: the service's own
//! settings, each with its defaults.

use std::path::PathBuf;
use std::time::Duration;

use super::super::raw::{RawDelivery, RawHa, RawPoll, RawStorage};
use super::super::{
    CronSchedule, DeliveryConfig, HaConfig, PollConfig, PollMode, Secret, StorageConfig,
};
use super::errors::Errors;

pub(super) fn build_storage(raw: &RawStorage, errors: &mut Errors) -> StorageConfig {
    let url = raw.url.as_ref().map(|url| {
        let text = url.get_ref().trim();
        if !(text.starts_with("postgres://") || text.starts_with("postgresql://")) {
            // The URL may hold a password: it is not echoed.
            errors.at(
                url.span(),
                "storage.url must be a PostgreSQL URL (postgres://user:password@host:5432/database?sslmode=…)",
            );
        } else if reqwest::Url::parse(text).is_err() {
            errors.at(url.span(), "storage.url is not a valid URL");
        }
        Secret::new(text.to_string())
    });
    if let (Some(_), Some(path)) = (&url, &raw.path) {
        errors.at(
            path.span(),
            "storage.path and storage.url are two databases: keep path for SQLite or url for PostgreSQL, not both",
        );
    }
    StorageConfig {
        url,
        path: raw
            .path
            .as_ref()
            .map(|p| PathBuf::from(p.get_ref()))
            .unwrap_or_else(|| PathBuf::from("dtswatch.db")),
        retention: errors.positive_duration(
            &raw.retention,
            Duration::from_secs(30 * 86_400),
            "storage.retention",
        ),
        prune_interval: errors.positive_duration(
            &raw.prune_interval,
            Duration::from_secs(600),
            "storage.prune_interval",
        ),
    }
}

pub(super) fn build_poll(raw: &RawPoll, zone: chrono_tz::Tz, errors: &mut Errors) -> PollConfig {
    let default_schedule = "*/30 * * * * *";
    let schedule = errors
        .cron(&raw.schedule, "poll.schedule", zone)
        .unwrap_or_else(|| {
            CronSchedule::parse(default_schedule).expect("the default schedule is valid")
        });
    let max_rps = match &raw.max_rps {
        Some(v) if *v.get_ref() > 0.0 => *v.get_ref(),
        Some(v) => {
            errors.at(v.span(), "poll.max_rps must be greater than zero");
            20.0
        }
        None => 20.0,
    };
    let backoff =
        errors.positive_duration(&raw.backoff, Duration::from_millis(500), "poll.backoff");
    let max_backoff = errors.positive_duration(
        &raw.max_backoff,
        Duration::from_secs(10),
        "poll.max_backoff",
    );
    if max_backoff < backoff
        && let Some(text) = &raw.max_backoff
    {
        errors.at(
            text.span(),
            "poll.max_backoff must not be shorter than poll.backoff",
        );
    }
    PollConfig {
        schedule,
        timeout: errors.positive_duration(&raw.timeout, Duration::from_secs(10), "poll.timeout"),
        concurrency: errors.count(&raw.concurrency, 16, 1..=1024, "poll.concurrency") as usize,
        max_rps,
        attempts: errors.count(&raw.attempts, 4, 1..=10, "poll.attempts"),
        backoff,
        max_backoff,
        jitter: errors.duration(&raw.jitter, Duration::from_secs(1), "poll.jitter"),
        max_answer: errors.size(&raw.max_answer, 8_000_000, "poll.max_answer"),
        mode: match raw.mode.as_ref().map(|m| (m, m.get_ref().as_str())) {
            None | Some((_, "auto")) => PollMode::Auto,
            Some((_, "per_job")) => PollMode::PerJob,
            Some((_, "adaptive")) => PollMode::Adaptive,
            Some((text, other)) => {
                errors.at(
                    text.span(),
                    format!("poll.mode `{other}` is not auto, per_job or adaptive"),
                );
                PollMode::Auto
            }
        },
        refresh: errors.positive_duration(&raw.refresh, Duration::from_secs(600), "poll.refresh"),
        refresh_finished: errors.positive_duration(
            &raw.refresh_finished,
            Duration::from_secs(3600),
            "poll.refresh_finished",
        ),
    }
}

pub(super) fn build_delivery(raw: &RawDelivery, errors: &mut Errors) -> DeliveryConfig {
    DeliveryConfig {
        concurrency: errors.count(&raw.concurrency, 4, 1..=64, "delivery.concurrency") as usize,
        backoff: errors.positive_duration(&raw.backoff, Duration::from_secs(2), "delivery.backoff"),
        max_backoff: errors.positive_duration(
            &raw.max_backoff,
            Duration::from_secs(300),
            "delivery.max_backoff",
        ),
        max_age: errors.positive_duration(
            &raw.max_age,
            Duration::from_secs(86_400),
            "delivery.max_age",
        ),
        drain_timeout: errors.positive_duration(
            &raw.drain_timeout,
            Duration::from_secs(30),
            "delivery.drain_timeout",
        ),
        timeout: errors.positive_duration(
            &raw.timeout,
            Duration::from_secs(10),
            "delivery.timeout",
        ),
        max_answer: errors.size(&raw.max_answer, 1_000_000, "delivery.max_answer"),
    }
}

pub(super) fn build_ha(raw: &RawHa, storage: &StorageConfig, errors: &mut Errors) -> HaConfig {
    let defaults = HaConfig::default();
    if storage.url.is_none()
        && let Some(first) = raw.failover.as_ref().or(raw.instance.as_ref())
    {
        errors.at(
            first.span(),
            "[ha] needs storage.url: instances share a PostgreSQL database (one SQLite file has one daemon)",
        );
    }
    let failover = errors.positive_duration(&raw.failover, defaults.failover, "ha.failover");
    if failover < Duration::from_secs(3)
        && let Some(text) = &raw.failover
    {
        errors.at(
            text.span(),
            "ha.failover must be at least 3s: a standby looks at the lease every fifth of it",
        );
    }
    let instance = raw
        .instance
        .as_ref()
        .map(|i| i.get_ref().trim().to_string());
    if let (Some(name), Some(text)) = (&instance, &raw.instance)
        && (name.is_empty() || name.chars().count() > 200)
    {
        errors.at(text.span(), "ha.instance must be 1 to 200 characters");
    }
    HaConfig { failover, instance }
}
