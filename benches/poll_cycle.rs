//! `cargo bench --bench poll_cycle`: the figures of SPEC section 8, measured
//! on the process users run. The real `dtswatch run` binary runs as a child
//! process against the DTS simulator in this process (so the simulator's
//! work is not counted), and everything is read from outside: the daemon's
//! own CPU (`wait4` rusage when it exits, start-up included, and
//! `/proc/PID/stat` over the measured window), its peak RSS (`VmHWM`), what
//! it counted in `/metrics`, the requests the simulator answered (and the
//! ones its quota refused), and the database it wrote (compacted copies
//! taken with `VACUUM INTO` while it runs).
//!
//! Every job has 8 steps × 4 sub-steps with latency moving all the time.
//! Runs:
//! 1. 1,000 jobs as users run them (`poll.mode = "auto"`, `max_rps = 20`):
//!    swept, quiet jobs refreshed slowly; 20 jobs fail during the window
//!    and each failure is timed from the instant DTS shows it to the
//!    DingTalk receiver in this process.
//! 2. 1,000 jobs with `mode = "per_job"` (one `ListJobStep` per job per
//!    tick, no budget): the cost of one poll; then every answer unchanged
//!    (bytes an unchanged poll adds).
//! 3. 10,000 jobs in one account-region with a budget of 10 requests/s and
//!    a simulator quota of 10/s: swept, 20 failures timed the same way.
//!
//! Options (after `--`): `--jobs N` (1000), `--large N` (10000; 0 skips run
//! 3), `--period S` (3), `--window S` (30), `--failures N` (20),
//! `--skip-small` (run 3 only).

#[path = "poll_cycle/daemon.rs"]
mod daemon;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use daemon::{Daemon, free_addr, measure_db};
use dtswatch::sim::scenario::Script;
use dtswatch::sim::{SimJob, SimOptions, SimStep, Simulator};

struct Args {
    jobs: usize,
    large: usize,
    period: u64,
    window: u64,
    failures: usize,
    /// Only the large fleet (while tuning it).
    skip_small: bool,
}

fn args() -> Args {
    let mut args = Args {
        jobs: 1000,
        large: 10_000,
        period: 3,
        window: 30,
        failures: 20,
        skip_small: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        match a.as_str() {
            "--jobs" => args.jobs = value() as usize,
            "--large" => args.large = value() as usize,
            "--period" => args.period = value().max(1),
            "--window" => args.window = value().max(1),
            "--failures" => args.failures = value() as usize,
            "--skip-small" => args.skip_small = true,
            _ => {}
        }
    }
    args
}

const ACCOUNT: &str = "[[accounts]]\nname = \"bench\"\naccess_key_id = \"dtswatch-demo\"\naccess_key_secret = \"dtswatch-demo-secret\"\n";

const RULES: &str = r#"
[[rules]]
name = "step failed"
kind = "failed"
channels = ["oncall"]

[[rules]]
name = "step error"
kind = "error"
channels = ["oncall"]

[[rules]]
name = "replication lag"
kind = "latency"
threshold = "300s"
for = "5m"
channels = ["oncall"]

[[rules]]
name = "progress stalled"
kind = "stalled"
for = "10m"
channels = ["oncall"]

[[rules]]
name = "finished"
kind = "transition"
to = ["Finished"]
channels = ["oncall"]
"#;

/// One measured run.
struct Run {
    label: &'static str,
    jobs: usize,
    mode: &'static str,
    period: u64,
    max_rps: f64,
    /// The simulator's quota per account and region.
    quota: Option<f64>,
    moving: bool,
    /// `poll.refresh`: what the budget left after sweeps can afford.
    refresh: &'static str,
    window: u64,
    failures: usize,
}

#[derive(Default)]
struct Figures {
    cpu_total: Duration,
    /// Periods from the daemon's start to its stop.
    periods_total: f64,
    cpu_window: Duration,
    periods_window: f64,
    polls_window: f64,
    requests_window: f64,
    throttled_window: usize,
    wakeups_window: f64,
    peak_rss: u64,
    bytes_per_poll: f64,
    latencies: Vec<Duration>,
    missed: usize,
}

fn replicating(latency_ms: i64) -> SimStep {
    SimStep {
        id: Some("st04incr".into()),
        name: "增量同步".into(),
        code: Some("04".into()),
        serial: Some(4),
        state: "Running".into(),
        latency_ms: Some(latency_ms),
        ..Default::default()
    }
}

/// A job that replicates quietly, then fails at `at`.
fn failing_job(id: &str, at: DateTime<Utc>) -> SimJob {
    let mut job = SimJob::generated(id, "cn-hangzhou", 8, 4);
    let failed = SimStep {
        state: "Failed".into(),
        latency_ms: None,
        err: Some("DTS-31009 binlog reader: connection reset by peer".into()),
        error_code: Some("DTS-31009".into()),
        ..replicating(0)
    };
    job.script = Script::Timed(vec![
        (
            Utc::now() - chrono::Duration::hours(1),
            vec![replicating(1_200)],
        ),
        (at, vec![failed]),
    ]);
    job
}

/// When each job's first alert reached the robot.
type Arrivals = Arc<Mutex<BTreeMap<String, DateTime<Utc>>>>;

/// A DingTalk robot that accepts everything and notes when each job's first alert arrived.
async fn receiver() -> (String, Arrivals) {
    let received: Arrivals = Default::default();
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/robot/send",
        axum::routing::post(move |body: String| {
            let sink = sink.clone();
            async move {
                let at = Utc::now();
                let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                let text = json["markdown"]["text"].as_str().unwrap_or_default();
                for word in text.split(|c: char| !c.is_ascii_alphanumeric()) {
                    if word.len() > 4
                        && word.starts_with("fail")
                        && word[4..].bytes().all(|b| b.is_ascii_digit())
                    {
                        let mut arrivals = sink.lock().unwrap_or_else(|p| p.into_inner());
                        arrivals.entry(word.to_string()).or_insert(at);
                    }
                }
                r#"{"errcode":0,"errmsg":"ok"}"#
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("receiver binds");
    let addr = listener.local_addr().expect("receiver address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (
        format!("http://{addr}/robot/send?access_token=bench"),
        received,
    )
}

fn jobs_toml(ids: &[String]) -> String {
    ids.iter()
        .map(|id| format!("[[jobs]]\nid = \"{id}\"\nregion = \"cn-hangzhou\"\n\n"))
        .collect()
}

fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("bench.toml");
    std::fs::write(&path, text).expect("config written");
    path
}

/// Requests the simulator refused for its quota so far.
fn throttled(sim: &Simulator) -> usize {
    sim.requests()
        .iter()
        .filter(|r| r.outcome == "Throttling.User")
        .count()
}

async fn measure(run: &Run) -> Figures {
    let started = Utc::now();
    // Failures spread over the middle of the window, after the warm-up.
    let warm_up = Duration::from_secs(run.period * 2 + 5);
    let fail_at: Vec<DateTime<Utc>> = (0..run.failures)
        .map(|i| {
            let offset = warm_up.as_secs_f64()
                + run.window as f64 * (0.1 + 0.6 * i as f64 / run.failures.max(1) as f64);
            started + chrono::Duration::milliseconds((offset * 1000.0) as i64)
        })
        .collect();
    let mut ids = Vec::with_capacity(run.jobs);
    let mut jobs = Vec::with_capacity(run.jobs);
    for i in 0..run.jobs {
        let id = match i < run.failures {
            true => format!("fail{i:05}"),
            false => format!("bench{i:05}"),
        };
        jobs.push(match fail_at.get(i) {
            Some(at) => failing_job(&id, *at),
            None => SimJob::generated_with(&id, "cn-hangzhou", 8, 4, run.moving),
        });
        ids.push(id);
    }
    let sim = Simulator::start(SimOptions {
        jobs,
        quota: run.quota,
        ..SimOptions::default()
    })
    .await
    .expect("simulator");
    let (url, received) = receiver().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("bench.db");
    let metrics = free_addr();
    let config = write_config(
        dir.path(),
        &format!(
            "[storage]\npath = \"{}\"\n\n[poll]\nschedule = \"@every {}s\"\njitter = \"{}s\"\nconcurrency = 32\nmax_rps = {}\nmode = \"{}\"\nrefresh = \"{}\"\nrefresh_finished = \"6h\"\ntimeout = \"30s\"\n\n[server]\nlisten = \"{metrics}\"\n\n{ACCOUNT}endpoint = \"{}\"\n\n[channels.oncall]\ntype = \"dingtalk\"\nurl = \"{url}\"\nrate_limit = \"off\"\n\n{RULES}\n{}",
            db.display(),
            run.period,
            run.period / 2,
            run.max_rps,
            run.mode,
            run.refresh,
            sim.endpoint(),
            jobs_toml(&ids)
        ),
    );
    let daemon = Daemon::start(&config, metrics);
    let daemon_started = Instant::now();
    tokio::time::sleep(warm_up).await;
    let (warm_bytes, warm_polls) = measure_db(&db, &dir.path().join("warm.db")).await;
    let before = (
        daemon.cpu(),
        daemon.metric("dtswatch_polls_total", "").await,
        daemon.metric("dtswatch_api_requests_total", "").await,
        daemon.metric("dtswatch_scheduler_wakeups_total", "").await,
        throttled(&sim),
    );
    let window = Instant::now();
    tokio::time::sleep(Duration::from_secs(run.window)).await;
    let elapsed = window.elapsed();
    let after = (
        daemon.cpu(),
        daemon.metric("dtswatch_polls_total", "").await,
        daemon.metric("dtswatch_api_requests_total", "").await,
        daemon.metric("dtswatch_scheduler_wakeups_total", "").await,
        throttled(&sim),
    );
    let (end_bytes, end_polls) = measure_db(&db, &dir.path().join("end.db")).await;
    // Every failure alerted, or two minutes past the window.
    let deadline = Instant::now() + Duration::from_secs(120);
    while received.lock().unwrap_or_else(|p| p.into_inner()).len() < run.failures
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let peak_rss = daemon.peak_rss();
    let total_wall = daemon_started.elapsed();
    let exited = daemon.stop();
    let arrivals = received.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut latencies: Vec<Duration> = arrivals
        .iter()
        .filter_map(|(id, at)| {
            let i: usize = id[4..].parse().ok()?;
            (*at - *fail_at.get(i)?).to_std().ok()
        })
        .collect();
    latencies.sort();
    let period = Duration::from_secs(run.period).as_secs_f64();
    Figures {
        cpu_total: exited.cpu,
        periods_total: total_wall.as_secs_f64() / period,
        cpu_window: after.0.saturating_sub(before.0),
        periods_window: elapsed.as_secs_f64() / period,
        polls_window: after.1 - before.1,
        requests_window: after.2 - before.2,
        throttled_window: after.4 - before.4,
        wakeups_window: after.3 - before.3,
        peak_rss,
        bytes_per_poll: end_bytes.saturating_sub(warm_bytes) as f64
            / (end_polls - warm_polls).max(1) as f64,
        missed: run.failures.saturating_sub(latencies.len()),
        latencies,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted
        .get(index.min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default()
}

fn micros(cpu: Duration, per: f64) -> f64 {
    cpu.as_secs_f64() * 1e6 / per.max(1.0)
}

fn report(run: &Run, f: &Figures) {
    let jobs = run.jobs as f64;
    println!(
        "{} — {} jobs, poll.mode = \"{}\", every {} s, budget {} requests/s{}:",
        run.label,
        run.jobs,
        run.mode,
        run.period,
        run.max_rps,
        run.quota
            .map(|q| format!(", simulator quota {q}/s"))
            .unwrap_or_default()
    );
    println!(
        "  CPU per job per period, start-up included: {:>9.1} µs   ({:.2} s over {:.0} periods)",
        micros(f.cpu_total, jobs * f.periods_total),
        f.cpu_total.as_secs_f64(),
        f.periods_total
    );
    println!(
        "  CPU per job per period, measured window:   {:>9.1} µs   ({:.2} s over {:.1} periods)",
        micros(f.cpu_window, jobs * f.periods_window),
        f.cpu_window.as_secs_f64(),
        f.periods_window
    );
    println!(
        "  CPU per ListJobStep poll, window:          {:>9.1} µs   ({:.0} polls, {:.3} per job per period)",
        micros(f.cpu_window, f.polls_window),
        f.polls_window,
        f.polls_window / (jobs * f.periods_window).max(1.0)
    );
    let seconds = f.periods_window * run.period as f64;
    println!(
        "  requests per second (the account-region):  {:>9.2}      ({:.2} ListJobStep-equivalent per job per period; {} throttled)",
        f.requests_window / seconds.max(1.0),
        f.requests_window / (jobs * f.periods_window).max(1.0),
        f.throttled_window
    );
    println!(
        "  scheduler wake-ups per period:             {:>9.1}",
        f.wakeups_window / f.periods_window.max(1.0)
    );
    println!(
        "  peak RSS:                                  {:>9.1} MB   ({:.1} KB per job)",
        f.peak_rss as f64 / 1_048_576.0,
        f.peak_rss as f64 / 1024.0 / jobs
    );
    println!(
        "  database bytes per poll:                   {:>9.1} B",
        f.bytes_per_poll
    );
    if run.failures > 0 {
        println!(
            "  failure → DingTalk over {} failures:        p50 {:.1} s, p99 {:.1} s, max {:.1} s{}",
            f.latencies.len(),
            percentile(&f.latencies, 0.5).as_secs_f64(),
            percentile(&f.latencies, 0.99).as_secs_f64(),
            f.latencies
                .last()
                .copied()
                .unwrap_or_default()
                .as_secs_f64(),
            if f.missed > 0 {
                format!(" ({} never arrived)", f.missed)
            } else {
                String::new()
            }
        );
    }
}

fn main() {
    let args = args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        println!(
            "dtswatch benchmark: `dtswatch run` as a process; jobs of 8 steps × 4 sub-steps, latency moving\n"
        );
        let mut runs = vec![
            Run {
                label: "as users run it",
                jobs: args.jobs,
                mode: "auto",
                period: args.period,
                max_rps: 20.0,
                quota: Some(20.0),
                moving: true,
                refresh: "30m",
                window: args.window,
                failures: args.failures,
            },
            Run {
                label: "every job every tick",
                jobs: args.jobs,
                mode: "per_job",
                period: args.period,
                max_rps: 1_000_000.0,
                quota: None,
                moving: true,
                refresh: "30m",
                window: args.window,
                failures: 0,
            },
            Run {
                label: "every job every tick, every answer unchanged",
                jobs: args.jobs,
                mode: "per_job",
                period: args.period,
                max_rps: 1_000_000.0,
                quota: None,
                moving: false,
                refresh: "30m",
                window: args.window,
                failures: 0,
            },
        ];
        if args.large > 0 {
            runs.push(Run {
                label: "a large fleet on a small budget",
                jobs: args.large,
                mode: "auto",
                // A sweep of 336 pages every 45 s takes 7.5 of the 10
                // requests a second; refreshes every 2 h take 1.4.
                period: 45,
                max_rps: 10.0,
                quota: Some(10.0),
                moving: true,
                refresh: "2h",
                window: 180,
                failures: args.failures,
            });
        }
        if args.skip_small {
            runs.retain(|r| r.jobs == args.large);
        }
        let mut small_rss = None;
        for run in &runs {
            let figures = measure(run).await;
            report(run, &figures);
            if run.jobs == args.jobs && run.mode == "auto" {
                small_rss = Some(figures.peak_rss);
            }
            if run.jobs == args.large
                && let Some(small) = small_rss
            {
                let extra = (args.large - args.jobs) as f64;
                println!(
                    "  RSS per additional job over the {}-job run: {:.2} KB",
                    args.jobs,
                    figures.peak_rss.saturating_sub(small) as f64 / 1024.0 / extra
                );
            }
            println!();
        }
    });
}
