//! The daemon's counters and gauges, rendered in the Prometheus text format.
//! Values updated as things happen live here; values that are cheaper to read
//! than to track (alerts firing, outbox depth) are queried from SQLite at
//! scrape time by `server.rs` and added to the same exposition.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the poll duration histogram, in seconds.
pub const POLL_DURATION_BUCKETS: [f64; 10] =
    [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// A label set, sorted by name.
pub type Labels = Vec<(&'static str, String)>;

#[derive(Default)]
struct Histogram {
    counts: [u64; POLL_DURATION_BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Families {
    counters: BTreeMap<&'static str, BTreeMap<Labels, f64>>,
    gauges: BTreeMap<&'static str, BTreeMap<Labels, f64>>,
    poll_duration: Histogram,
}

/// Thread-safe metric values.
#[derive(Default)]
pub struct Metrics {
    families: Mutex<Families>,
}

/// What each metric means, for `# HELP`.
fn help(name: &str) -> &'static str {
    match name {
        "dtswatch_polls_total" => "Polls of DTS jobs by outcome (ok or the error class).",
        "dtswatch_polls_skipped_total" => {
            "Scheduled polls skipped because the job's previous poll was still running."
        }
        "dtswatch_api_errors_total" => {
            "Alibaba Cloud API errors by code, including the ones retried within a poll."
        }
        "dtswatch_api_retries_total" => {
            "Alibaba Cloud API calls retried within a poll, by the code that caused the retry."
        }
        "dtswatch_api_backoff_seconds_total" => {
            "Time polls spent backing off between retried API calls."
        }
        "dtswatch_store_errors_total" => {
            "Polls that could not be written to the database, by kind (disk_full, other)."
        }
        "dtswatch_notifications_total" => {
            "Delivery attempts by channel and outcome (delivered, retry, dead)."
        }
        "dtswatch_config_reloads_total" => "Config reloads on SIGHUP by result.",
        "dtswatch_discovery_runs_total" => "DescribeDtsJobs discovery runs by result.",
        "dtswatch_last_successful_poll_timestamp_seconds" => {
            "When each job was last polled successfully (Unix time)."
        }
        "dtswatch_jobs_watched" => "Jobs currently watched (configured and discovered).",
        "dtswatch_alerts" => "Alerts pending or firing by rule, severity and status.",
        "dtswatch_outbox_pending" => "Notifications waiting to be delivered, by channel.",
        "dtswatch_outbox_dead" => "Notifications given up on, by channel.",
        "dtswatch_poll_duration_seconds" => "Time to poll one job, retries included.",
        "dtswatch_healthy" => "1 while /healthz answers 200.",
        _ => "",
    }
}

fn lock(metrics: &Metrics) -> std::sync::MutexGuard<'_, Families> {
    metrics.families.lock().unwrap_or_else(|p| p.into_inner())
}

fn sorted(mut labels: Labels) -> Labels {
    labels.sort();
    labels
}

impl Metrics {
    pub fn inc(&self, name: &'static str, labels: Labels) {
        self.add(name, labels, 1.0);
    }

    pub fn add(&self, name: &'static str, labels: Labels, by: f64) {
        *lock(self)
            .counters
            .entry(name)
            .or_default()
            .entry(sorted(labels))
            .or_default() += by;
    }

    pub fn set(&self, name: &'static str, labels: Labels, value: f64) {
        lock(self)
            .gauges
            .entry(name)
            .or_default()
            .insert(sorted(labels), value);
    }

    /// Replaces every series of a gauge (for values recomputed as a whole, like watched jobs).
    pub fn replace(&self, name: &'static str, series: Vec<(Labels, f64)>) {
        lock(self).gauges.insert(
            name,
            series.into_iter().map(|(l, v)| (sorted(l), v)).collect(),
        );
    }

    pub fn observe_poll(&self, duration: Duration) {
        let seconds = duration.as_secs_f64();
        let mut families = lock(self);
        let histogram = &mut families.poll_duration;
        for (i, bound) in POLL_DURATION_BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                histogram.counts[i] += 1;
            }
        }
        histogram.count += 1;
        histogram.sum += seconds;
    }

    /// A counter's value, for tests and health checks.
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let families = lock(self);
        families
            .counters
            .get(name)
            .and_then(|series| {
                series
                    .iter()
                    .find(|(l, _)| {
                        labels
                            .iter()
                            .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
                    })
                    .map(|(_, v)| *v)
            })
            .unwrap_or(0.0)
    }

    /// The Prometheus text exposition, with `extra` gauges (computed at scrape time) appended.
    pub fn render(&self, extra: &[(&'static str, Vec<(Labels, f64)>)]) -> String {
        let families = lock(self);
        let mut out = String::new();
        for (name, series) in &families.counters {
            family(
                &mut out,
                name,
                "counter",
                series.iter().map(|(l, v)| (l.clone(), *v)),
            );
        }
        for (name, series) in &families.gauges {
            family(
                &mut out,
                name,
                "gauge",
                series.iter().map(|(l, v)| (l.clone(), *v)),
            );
        }
        for (name, series) in extra {
            family(
                &mut out,
                name,
                "gauge",
                series.iter().map(|(l, v)| (sorted(l.clone()), *v)),
            );
        }
        let h = &families.poll_duration;
        let name = "dtswatch_poll_duration_seconds";
        let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} histogram", help(name));
        for (i, bound) in POLL_DURATION_BUCKETS.iter().enumerate() {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {}", h.counts[i]);
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", h.count);
        let _ = writeln!(out, "{name}_sum {}", h.sum);
        let _ = writeln!(out, "{name}_count {}", h.count);
        out
    }
}

/// Escapes a label value: backslash, quote and newline.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, series: impl Iterator<Item = (Labels, f64)>) {
    let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} {kind}", help(name));
    for (labels, value) in series {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let text: Vec<String> = labels
                .iter()
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
        let metrics = Metrics::default();
        metrics.inc("dtswatch_polls_total", vec![("outcome", "ok".into())]);
        metrics.inc("dtswatch_polls_total", vec![("outcome", "ok".into())]);
        metrics.set("dtswatch_jobs_watched", vec![], 3.0);
        metrics.observe_poll(Duration::from_millis(80));
        let text = metrics.render(&[(
            "dtswatch_outbox_pending",
            vec![(vec![("channel", "a\"b".into())], 2.0)],
        )]);
        assert!(
            text.contains(
                "# TYPE dtswatch_polls_total counter\ndtswatch_polls_total{outcome=\"ok\"} 2\n"
            ),
            "{text}"
        );
        assert!(text.contains("dtswatch_jobs_watched 3\n"));
        assert!(text.contains("dtswatch_outbox_pending{channel=\"a\\\"b\"} 2\n"));
        assert!(text.contains("dtswatch_poll_duration_seconds_bucket{le=\"0.05\"} 0\n"));
        assert!(text.contains("dtswatch_poll_duration_seconds_bucket{le=\"0.1\"} 1\n"));
        assert!(text.contains("dtswatch_poll_duration_seconds_count 1\n"));
        assert_eq!(
            metrics.counter("dtswatch_polls_total", &[("outcome", "ok")]),
            2.0
        );
    }
}
