//! The daemon's counters and gauges, typed, rendered in the Prometheus text
//! format. Every metric is a variant that carries its name, help text and
//! label names, so a metric cannot be misspelt or left without help, and
//! every family is exposed (with its known label values at 0) from start-up,
//! before its first event: a `rate()` over a counter that appears only after
//! the first failure misses that failure. Values that are cheaper to read
//! than to track (alerts firing, outbox depth) are computed at scrape time by
//! the daemon and passed to [`Metrics::render`]. Pure: no I/O, no clock.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

mod jobs;

pub use jobs::{JobSeries, StepSeries};

/// Upper bounds of the poll duration histogram, in seconds.
pub const POLL_DURATION_BUCKETS: [f64; 10] =
    [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// Counters: values that only grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Counter {
    Polls,
    PollsSkipped,
    ApiErrors,
    ApiRetries,
    ApiBackoffSeconds,
    StoreErrors,
    Notifications,
    ConfigReloads,
    DiscoveryRuns,
    ApiRequests,
    SchedulerWakeups,
    Sweeps,
    HaFailovers,
}

impl Counter {
    pub const ALL: [Counter; 13] = [
        Counter::Polls,
        Counter::PollsSkipped,
        Counter::ApiErrors,
        Counter::ApiRetries,
        Counter::ApiBackoffSeconds,
        Counter::StoreErrors,
        Counter::Notifications,
        Counter::ConfigReloads,
        Counter::DiscoveryRuns,
        Counter::ApiRequests,
        Counter::SchedulerWakeups,
        Counter::Sweeps,
        Counter::HaFailovers,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Counter::Polls => "dtswatch_polls_total",
            Counter::PollsSkipped => "dtswatch_polls_skipped_total",
            Counter::ApiErrors => "dtswatch_api_errors_total",
            Counter::ApiRetries => "dtswatch_api_retries_total",
            Counter::ApiBackoffSeconds => "dtswatch_api_backoff_seconds_total",
            Counter::StoreErrors => "dtswatch_store_errors_total",
            Counter::Notifications => "dtswatch_notifications_total",
            Counter::ConfigReloads => "dtswatch_config_reloads_total",
            Counter::DiscoveryRuns => "dtswatch_discovery_runs_total",
            Counter::ApiRequests => "dtswatch_api_requests_total",
            Counter::SchedulerWakeups => "dtswatch_scheduler_wakeups_total",
            Counter::Sweeps => "dtswatch_sweeps_total",
            Counter::HaFailovers => "dtswatch_ha_failovers_total",
        }
    }

    pub fn help(self) -> &'static str {
        match self {
            Counter::Polls => "Polls of DTS jobs by outcome (ok or the error class).",
            Counter::PollsSkipped => {
                "Scheduled polls skipped because the job's previous poll was still running."
            }
            Counter::ApiErrors => {
                "Alibaba Cloud API errors by code, including the ones retried within a poll."
            }
            Counter::ApiRetries => {
                "Alibaba Cloud API calls retried within a poll, by the code that caused the retry."
            }
            Counter::ApiBackoffSeconds => "Time polls spent backing off between retried API calls.",
            Counter::StoreErrors => {
                "Polls that could not be written to the database, by kind (disk_full, other)."
            }
            Counter::Notifications => {
                "Delivery attempts by channel and outcome (delivered, retry, dead)."
            }
            Counter::ConfigReloads => "Config reloads on SIGHUP by result.",
            Counter::DiscoveryRuns => "DescribeDtsJobs discovery runs by result.",
            Counter::ApiRequests => {
                "HTTP requests to the Alibaba Cloud API by account, region and action, retries included."
            }
            Counter::SchedulerWakeups => "Times the poll scheduler woke up to look for due work.",
            Counter::Sweeps => {
                "DescribeDtsJobs fleet sweeps by account, region and result (ok or error)."
            }
            Counter::HaFailovers => {
                "Times this instance took the leader lease over from another instance whose lease lapsed."
            }
        }
    }

    pub fn labels(self) -> &'static [&'static str] {
        match self {
            Counter::Polls => &["outcome"],
            Counter::PollsSkipped => &["dts_job_id"],
            Counter::ApiErrors | Counter::ApiRetries => &["code"],
            Counter::ApiBackoffSeconds => &[],
            Counter::StoreErrors => &["kind"],
            Counter::Notifications => &["channel", "outcome"],
            Counter::ConfigReloads | Counter::DiscoveryRuns => &["result"],
            Counter::ApiRequests => &["account", "region", "action"],
            Counter::SchedulerWakeups | Counter::HaFailovers => &[],
            Counter::Sweeps => &["account", "region", "result"],
        }
    }
}

/// Gauges: values that go up and down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Gauge {
    LastSuccessfulPoll,
    JobsWatched,
    Alerts,
    OutboxPending,
    OutboxDead,
    Healthy,
    ApiBudgetRate,
    ApiBudgetUtilisation,
    BuildInfo,
    ConfigReloadSuccessful,
    ConfigReloadTimestamp,
    HaLeader,
    HaTerm,
}

impl Gauge {
    pub const ALL: [Gauge; 13] = [
        Gauge::LastSuccessfulPoll,
        Gauge::JobsWatched,
        Gauge::Alerts,
        Gauge::OutboxPending,
        Gauge::OutboxDead,
        Gauge::Healthy,
        Gauge::ApiBudgetRate,
        Gauge::ApiBudgetUtilisation,
        Gauge::BuildInfo,
        Gauge::ConfigReloadSuccessful,
        Gauge::ConfigReloadTimestamp,
        Gauge::HaLeader,
        Gauge::HaTerm,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Gauge::LastSuccessfulPoll => "dtswatch_last_successful_poll_timestamp_seconds",
            Gauge::JobsWatched => "dtswatch_jobs_watched",
            Gauge::Alerts => "dtswatch_alerts",
            Gauge::OutboxPending => "dtswatch_outbox_pending",
            Gauge::OutboxDead => "dtswatch_outbox_dead",
            Gauge::Healthy => "dtswatch_healthy",
            Gauge::ApiBudgetRate => "dtswatch_api_budget_requests_per_second",
            Gauge::ApiBudgetUtilisation => "dtswatch_api_budget_utilisation_ratio",
            Gauge::BuildInfo => "dtswatch_build_info",
            Gauge::ConfigReloadSuccessful => "dtswatch_config_last_reload_successful",
            Gauge::ConfigReloadTimestamp => "dtswatch_config_last_reload_success_timestamp_seconds",
            Gauge::HaLeader => "dtswatch_ha_leader",
            Gauge::HaTerm => "dtswatch_ha_term",
        }
    }

    pub fn help(self) -> &'static str {
        match self {
            Gauge::LastSuccessfulPoll => "When each job was last polled successfully (Unix time).",
            Gauge::JobsWatched => "Jobs currently watched (configured and discovered).",
            Gauge::Alerts => "Alerts pending or firing by rule, severity and status.",
            Gauge::OutboxPending => "Notifications waiting to be delivered, by channel.",
            Gauge::OutboxDead => "Notifications given up on, by channel.",
            Gauge::Healthy => "1 while /healthz answers 200.",
            Gauge::ApiBudgetRate => {
                "The request rate an account may use in a region now: max_rps, less while DTS throttles."
            }
            Gauge::ApiBudgetUtilisation => {
                "The share of an account's budget in a region its requests used over the last 10 s."
            }
            Gauge::BuildInfo => "Always 1: the version and source revision of this dtswatch.",
            Gauge::ConfigReloadSuccessful => {
                "1 when the last config load (start or SIGHUP) succeeded, 0 when it was rejected."
            }
            Gauge::ConfigReloadTimestamp => {
                "When the config was last loaded successfully (Unix time)."
            }
            Gauge::HaLeader => {
                "1 while this instance holds the leader lease (polls and delivers), 0 on a standby."
            }
            Gauge::HaTerm => "The leader lease's term as this instance last saw it.",
        }
    }

    pub fn labels(self) -> &'static [&'static str] {
        match self {
            Gauge::LastSuccessfulPoll => &["dts_job_id"],
            Gauge::JobsWatched | Gauge::Healthy => &[],
            Gauge::Alerts => &["rule", "severity", "status"],
            Gauge::OutboxPending | Gauge::OutboxDead => &["channel"],
            Gauge::ApiBudgetRate | Gauge::ApiBudgetUtilisation => &["account", "region"],
            Gauge::BuildInfo => &["version", "revision"],
            Gauge::ConfigReloadSuccessful | Gauge::ConfigReloadTimestamp => &[],
            Gauge::HaLeader | Gauge::HaTerm => &[],
        }
    }
}

/// Every outcome a poll can have (`ok`, or an error class), registered at 0.
const OUTCOMES: [&str; 12] = [
    "ok",
    "throttled",
    "server",
    "timeout",
    "network",
    "nonce_used",
    "timestamp_expired",
    "token_expired",
    "auth",
    "client",
    "malformed",
    "credentials",
];

const POLL_DURATION: &str = "dtswatch_poll_duration_seconds";
const POLL_DURATION_HELP: &str = "Time to poll one job, retries included.";

/// Label values, in the order of the metric's label names.
pub type Values = Vec<String>;

/// One gauge's series computed at scrape time.
pub type Series = Vec<(Values, f64)>;

#[derive(Default)]
struct Histogram {
    counts: [u64; POLL_DURATION_BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Families {
    counters: BTreeMap<Counter, BTreeMap<Values, f64>>,
    gauges: BTreeMap<Gauge, BTreeMap<Values, f64>>,
    poll_duration: Histogram,
    /// What each job's last poll said, by DTS job id: `dtswatch_job_up` and the step gauges.
    jobs: BTreeMap<String, JobSeries>,
}

/// Thread-safe metric values.
pub struct Metrics {
    families: Mutex<Families>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn values(labels: &[&str]) -> Values {
    labels.iter().map(|v| v.to_string()).collect()
}

impl Metrics {
    /// A registry with the label values known up front already at 0.
    pub fn new() -> Self {
        let metrics = Self {
            families: Mutex::new(Families::default()),
        };
        for result in ["ok", "error"] {
            metrics.register(Counter::ConfigReloads, &[result]);
            metrics.register(Counter::DiscoveryRuns, &[result]);
        }
        for kind in ["disk_full", "other"] {
            metrics.register(Counter::StoreErrors, &[kind]);
        }
        metrics.register(Counter::ApiBackoffSeconds, &[]);
        metrics.register(Counter::SchedulerWakeups, &[]);
        for outcome in OUTCOMES {
            metrics.register(Counter::Polls, &[outcome]);
        }
        metrics.set(
            Gauge::BuildInfo,
            &[env!("CARGO_PKG_VERSION"), env!("DTSWATCH_REVISION")],
            1.0,
        );
        metrics
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Families> {
        self.families.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes a series exist at 0 (if it does not yet), so it is exposed before its first event.
    pub fn register(&self, counter: Counter, labels: &[&str]) {
        debug_assert_eq!(labels.len(), counter.labels().len(), "{}", counter.name());
        self.lock()
            .counters
            .entry(counter)
            .or_default()
            .entry(values(labels))
            .or_default();
    }

    pub fn inc(&self, counter: Counter, labels: &[&str]) {
        self.add(counter, labels, 1.0);
    }

    pub fn add(&self, counter: Counter, labels: &[&str], by: f64) {
        debug_assert_eq!(labels.len(), counter.labels().len(), "{}", counter.name());
        *self
            .lock()
            .counters
            .entry(counter)
            .or_default()
            .entry(values(labels))
            .or_default() += by;
    }

    pub fn set(&self, gauge: Gauge, labels: &[&str], value: f64) {
        debug_assert_eq!(labels.len(), gauge.labels().len(), "{}", gauge.name());
        self.lock()
            .gauges
            .entry(gauge)
            .or_default()
            .insert(values(labels), value);
    }

    /// Drops the series of `gauge` whose first label value is not in `keep`
    /// (for per-job gauges when jobs stop being watched).
    pub fn retain(&self, gauge: Gauge, keep: impl Fn(&str) -> bool) {
        if let Some(series) = self.lock().gauges.get_mut(&gauge) {
            series.retain(|labels, _| labels.first().is_none_or(|v| keep(v)));
        }
    }

    /// Replaces what the metrics show of one job.
    pub fn set_job(&self, id: &str, series: JobSeries) {
        self.lock().jobs.insert(id.to_string(), series);
    }

    /// Marks a job's last poll as failed, keeping its last known steps.
    pub fn set_job_down(&self, id: &str, name: &str, region: &str) {
        let mut families = self.lock();
        let job = families.jobs.entry(id.to_string()).or_default();
        job.up = false;
        job.name = name.to_string();
        job.region = region.to_string();
    }

    /// Drops the series of jobs no longer watched.
    pub fn retain_jobs(&self, keep: impl Fn(&str) -> bool) {
        self.lock().jobs.retain(|id, _| keep(id));
    }

    pub fn observe_poll(&self, duration: Duration) {
        let seconds = duration.as_secs_f64();
        let mut families = self.lock();
        let histogram = &mut families.poll_duration;
        for (i, bound) in POLL_DURATION_BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                histogram.counts[i] += 1;
            }
        }
        histogram.count += 1;
        histogram.sum += seconds;
    }

    /// The sum of a counter's series whose labels include every given pair.
    pub fn counter(&self, counter: Counter, labels: &[(&str, &str)]) -> f64 {
        let names = counter.labels();
        self.lock()
            .counters
            .get(&counter)
            .map(|series| {
                series
                    .iter()
                    .filter(|(values, _)| {
                        labels.iter().all(|(k, v)| {
                            names
                                .iter()
                                .position(|n| n == k)
                                .is_some_and(|i| values.get(i).is_some_and(|x| x == v))
                        })
                    })
                    .map(|(_, v)| *v)
                    .sum()
            })
            .unwrap_or(0.0)
    }

    /// The Prometheus text exposition; `scraped` replaces the series of the gauges it names.
    pub fn render(&self, scraped: &[(Gauge, Series)]) -> String {
        let families = self.lock();
        let mut out = String::new();
        for counter in Counter::ALL {
            let series = families.counters.get(&counter);
            family(
                &mut out,
                (counter.name(), counter.help(), "counter"),
                counter.labels(),
                series.into_iter().flatten().map(|(l, v)| (l, *v)),
            );
        }
        for gauge in Gauge::ALL {
            let meta = (gauge.name(), gauge.help(), "gauge");
            match scraped.iter().find(|(g, _)| *g == gauge) {
                Some((_, series)) => {
                    let mut sorted: Vec<&(Values, f64)> = series.iter().collect();
                    sorted.sort_by(|a, b| a.0.cmp(&b.0));
                    family(
                        &mut out,
                        meta,
                        gauge.labels(),
                        sorted.into_iter().map(|(l, v)| (l, *v)),
                    )
                }
                None => family(
                    &mut out,
                    meta,
                    gauge.labels(),
                    families
                        .gauges
                        .get(&gauge)
                        .into_iter()
                        .flatten()
                        .map(|(l, v)| (l, *v)),
                ),
            }
        }
        jobs::render_jobs(&mut out, &families.jobs);
        let h = &families.poll_duration;
        let _ = writeln!(
            out,
            "# HELP {POLL_DURATION} {POLL_DURATION_HELP}\n# TYPE {POLL_DURATION} histogram"
        );
        for (i, bound) in POLL_DURATION_BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{POLL_DURATION}_bucket{{le=\"{bound}\"}} {}",
                h.counts[i]
            );
        }
        let _ = writeln!(out, "{POLL_DURATION}_bucket{{le=\"+Inf\"}} {}", h.count);
        let _ = writeln!(out, "{POLL_DURATION}_sum {}", h.sum);
        let _ = writeln!(out, "{POLL_DURATION}_count {}", h.count);
        out
    }
}

/// Escapes a label value: backslash, quote and newline.
pub(crate) fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn family<'a>(
    out: &mut String,
    (name, help, kind): (&str, &str, &str),
    names: &[&str],
    series: impl Iterator<Item = (&'a Values, f64)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, value) in series {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let text: Vec<String> = names
                .iter()
                .zip(labels)
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            let _ = writeln!(out, "{name}{{{}}} {value}", text.join(","));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let metrics = Metrics::new();
        metrics.inc(Counter::Polls, &["ok"]);
        metrics.inc(Counter::Polls, &["ok"]);
        metrics.set(Gauge::JobsWatched, &[], 3.0);
        metrics.observe_poll(Duration::from_millis(80));
        let text = metrics.render(&[(Gauge::OutboxPending, vec![(vec!["a\"b".to_string()], 2.0)])]);
        assert!(
            text.contains("# TYPE dtswatch_polls_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("dtswatch_polls_total{outcome=\"ok\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("dtswatch_jobs_watched 3\n"));
        assert!(text.contains("dtswatch_outbox_pending{channel=\"a\\\"b\"} 2\n"));
        assert!(text.contains("dtswatch_poll_duration_seconds_bucket{le=\"0.05\"} 0\n"));
        assert!(text.contains("dtswatch_poll_duration_seconds_bucket{le=\"0.1\"} 1\n"));
        assert!(text.contains("dtswatch_poll_duration_seconds_count 1\n"));
        assert_eq!(metrics.counter(Counter::Polls, &[("outcome", "ok")]), 2.0);
    }

    #[test]
    fn every_family_is_exposed_with_help_before_its_first_event() {
        let text = Metrics::new().render(&[]);
        for counter in Counter::ALL {
            assert!(
                text.contains(&format!(
                    "# HELP {} {}\n# TYPE {} counter\n",
                    counter.name(),
                    counter.help(),
                    counter.name()
                )),
                "{text}"
            );
            assert!(!counter.help().is_empty());
        }
        for gauge in Gauge::ALL {
            assert!(text.contains(&format!("# TYPE {} gauge\n", gauge.name())));
        }
        assert!(text.contains("dtswatch_config_reloads_total{result=\"error\"} 0\n"));
        assert!(text.contains("dtswatch_store_errors_total{kind=\"disk_full\"} 0\n"));
        assert!(text.contains("dtswatch_api_backoff_seconds_total 0\n"));
    }

    #[test]
    fn retain_drops_series_of_jobs_no_longer_watched() {
        let metrics = Metrics::new();
        metrics.set(Gauge::LastSuccessfulPoll, &["a"], 1.0);
        metrics.set(Gauge::LastSuccessfulPoll, &["b"], 2.0);
        metrics.retain(Gauge::LastSuccessfulPoll, |job| job == "a");
        let text = metrics.render(&[]);
        assert!(text.contains("dts_job_id=\"a\""), "{text}");
        assert!(!text.contains("dts_job_id=\"b\""), "{text}");
    }
}
